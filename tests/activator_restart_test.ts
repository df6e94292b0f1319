// Zero-downtime restarts end to end: socket-activate (through its ./cli
// export on Deno, the npm bin on Node) restarts a serve() child ten times
// while clients keep opening new connections. None may be refused or
// reset, and every generation must serve the one socket the activator
// opened.

import assert from "node:assert/strict";
import { readdirSync, readlinkSync } from "node:fs";
import process from "node:process";
import { test } from "node:test";
import { freePort, httpGet, within } from "./_activator.ts";
import { fixtureCommand } from "./_runtime.ts";
import { startCli } from "./_socket_activate.ts";

const RESTARTS = 10;
const CLIENTS = 4;

interface Answer {
  pid: number;
  socket: string;
}

/** Clients that each open one connection after another until stopped. */
function clientLoops(port: number) {
  const answers: Answer[] = [];
  const failures = new Map<string, number>();
  const waiters: { pid: number; resolve(): void }[] = [];
  let running = true;
  async function client(): Promise<void> {
    while (running) {
      try {
        const answer = await httpGet({ port }, "/");
        if (answer.status !== 200) throw new Error(`status ${answer.status}`);
        const body = JSON.parse(answer.body) as Answer;
        answers.push(body);
        for (const waiter of waiters.filter((w) => w.pid === body.pid)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      } catch (error) {
        const code = (error as { code?: string }).code ??
          (error as Error).message;
        failures.set(code, (failures.get(code) ?? 0) + 1);
      }
    }
  }
  const done = Promise.all(Array.from({ length: CLIENTS }, client));
  return {
    answers,
    failures,
    /** Resolves once a client got an answer from `pid`. */
    answeredBy(pid: number): Promise<void> {
      if (answers.some((answer) => answer.pid === pid)) {
        return Promise.resolve();
      }
      return within(
        new Promise((resolve) => waiters.push({ pid, resolve })),
        `an answer from pid ${pid} (failures: ${
          JSON.stringify([...failures])
        })`,
      );
    },
    async stop(): Promise<void> {
      running = false;
      await done;
    },
  };
}

function pidOf(line: string): number {
  return Number(/pid (\d+)/.exec(line)![1]);
}

async function restartUnderLoad(
  fixture: string,
  notify: boolean,
): Promise<void> {
  const port = await freePort();
  const cli = startCli([
    "-l",
    `127.0.0.1:${port}`,
    "--fdname",
    "web",
    ...notify ? ["--notify"] : [],
    "--",
    // Reading /proc/self/fd/N on Deno takes --allow-all.
    ...fixtureCommand(fixture, { denoFlags: ["--allow-all"] }),
  ]);
  let clients: ReturnType<typeof clientLoops> | undefined;
  try {
    let pid = pidOf(await cli.event(/^ready pid/));
    clients = clientLoops(port);
    const pids = [pid];
    for (let round = 0; round < RESTARTS; round++) {
      await clients.answeredBy(pid);
      process.kill(cli.child.pid!, "SIGHUP");
      await cli.event(/^restarting: SIGHUP$/);
      const next = pidOf(await cli.event(/^ready pid/));
      // The old child is stopped only after the new one is ready (at once
      // without --notify: the new one is "ready" when it started).
      assert.equal(
        pidOf(await cli.event(/^stopping pid \d+ \(SIGTERM\)$/)),
        pid,
      );
      assert.equal(pidOf(await cli.event(/^stopped pid/)), pid);
      pid = next;
      pids.push(pid);
    }
    await clients.answeredBy(pid);
    await clients.stop();
    assert.deepEqual(Object.fromEntries(clients.failures), {}, cli.stderr());
    // Every generation answered, each on the same socket, which is the
    // activator's own.
    const sockets = new Set(clients.answers.map((answer) => answer.socket));
    assert.deepEqual(
      [...new Set(clients.answers.map((answer) => answer.pid))].sort(),
      [...pids].sort(),
    );
    assert.equal(sockets.size, 1, [...sockets].join(", "));
    const [socket] = sockets;
    const own = readdirSync(`/proc/${cli.child.pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${cli.child.pid}/fd/${fd}`);
      } catch {
        return "";
      }
    });
    assert.ok(own.includes(socket!), `${socket} is not among ${own}`);
  } finally {
    await clients?.stop();
    process.kill(cli.child.pid!, "SIGTERM");
    await cli.exited;
  }
}

// A serve() child keeps the connections it accepted until their first
// request is answered, so nothing is reset when it hands over.
test(
  `socket-activate --notify restarts a serve() child ${RESTARTS} times under new connections: none refused or reset, one socket`,
  () => restartUnderLoad("activated", true),
);

for (const notify of [true, false]) {
  test(
    `socket-activate ${
      notify ? "--notify" : "without --notify"
    } restarts a node:http child that shuts down gracefully ${RESTARTS} times under new connections: none refused or reset, one socket`,
    () => restartUnderLoad("activated_http", notify),
  );
}
