// Zero-downtime restarts end to end: socket-activate (through its ./cli
// export on Deno, the npm bin on Node) restarts a serve() child ten times
// while clients keep opening new connections. None may be refused or
// reset, and every generation must serve the one socket the activator
// opened.

import assert from "node:assert/strict";
import { readdirSync, readlinkSync } from "node:fs";
import process from "node:process";
import { test } from "node:test";
import { freePort, httpGet } from "./_activator.ts";
import { type ClientLoop, clientLoop } from "./_client_loop.ts";
import { fixtureCommand } from "./_runtime.ts";
import { startCli } from "./_socket_activate.ts";

const RESTARTS = 10;
const CLIENTS = 4;

interface Answer {
  pid: number;
  socket: string;
}

/** Asks the child which process and socket served: a new connection. */
async function served(port: number): Promise<Answer> {
  const answer = await httpGet({ port }, "/");
  if (answer.status !== 200) throw new Error(`status ${answer.status}`);
  return JSON.parse(answer.body) as Answer;
}

/** Resolves once a client got an answer from `pid`. */
function answeredBy(clients: ClientLoop<Answer>, pid: number): Promise<void> {
  return clients.answered((answer) => answer.pid === pid, `pid ${pid}`);
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
  let clients: ClientLoop<Answer> | undefined;
  try {
    let pid = pidOf(await cli.event(/^ready pid/));
    clients = clientLoop(CLIENTS, () => served(port));
    const pids = [pid];
    for (let round = 0; round < RESTARTS; round++) {
      await answeredBy(clients, pid);
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
    await answeredBy(clients, pid);
    await clients.stop();
    assert.deepEqual(clients.failures, [], cli.stderr());
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
