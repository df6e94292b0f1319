// activate(), the activator's engine, as a test helper in a user's suite:
// it starts real services (tests/fixtures/activated.ts on serve(), the
// notify sender, a Python child that describes its fds) in this process,
// on both runtimes.

import assert from "node:assert/strict";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { eventLog, freePort, httpGet, within } from "./_activator.ts";
import { REPORT, type Report } from "./_fd_report.ts";
import { PYTHON } from "./_launch.ts";
import { activate, ActivationError, type Notification } from "./_lib.ts";
import { clearCloexec } from "./_native.common.ts";
import { native } from "./_native.deno.ts";
import { fixtureCommand } from "./_runtime.ts";
import type { Step } from "./fixtures/notify_launch.ts";

const folder = mkdtempSync(join(tmpdir(), "activate-test-"));
after(() => rmSync(folder, { recursive: true, force: true }));

const SERVICE = fixtureCommand("activated", { denoFlags: ["--allow-all"] });

function sender(steps: Step[]): string[] {
  return [
    ...fixtureCommand("notify_sender", {
      denoFlags: ["--allow-env", "--allow-ffi"],
    }),
    JSON.stringify({ steps, natural: false }),
  ];
}

test("activate() serves on a port it picked, tells the child's pid, restarts it, and stops", async () => {
  const log = eventLog();
  const activation = await activate(SERVICE, {
    listen: ["http://127.0.0.1:0"],
    names: ["web"],
    notify: true,
    onEvent: log.onEvent,
  });
  let stopped = false;
  try {
    assert.equal(activation.endpoints.length, 1);
    const [web] = activation.endpoints;
    assert.equal(web!.fd, 3);
    assert.equal(web!.name, "web");
    assert.equal(web!.endpoint?.kind, "http");
    const port = (web!.endpoint as { port: number }).port;
    assert.notEqual(port, 0);
    assert.equal(web!.address, `127.0.0.1:${port}`);
    await within(activation.ready, "the first READY=1");
    const first = activation.pid!;
    const answer = JSON.parse((await httpGet({ port }, "/")).body);
    assert.equal(answer.pid, first);
    assert.equal(answer.env.LISTEN_PID, String(first));

    await within(activation.restart("a test"), "the restart");
    const second = activation.pid!;
    assert.notEqual(second, first);
    await log.until(
      (event) => event.type === "stopped" && event.pid === first,
      "the old child's exit",
    );
    assert.equal(JSON.parse((await httpGet({ port }, "/")).body).pid, second);
    assert.ok(
      log.events.some((event) =>
        event.type === "restarting" && event.message === "restarting: a test"
      ),
    );

    const exit = await within(activation.stop(), "the stop");
    stopped = true;
    assert.deepEqual(exit, { pid: second, code: 0, signal: null });
    assert.equal(activation.pid, undefined);
    await assert.rejects(
      httpGet({ port }, "/"),
      (error: { code?: string }) => error.code === "ECONNREFUSED",
    );
  } finally {
    if (!stopped) await activation.stop("SIGKILL");
  }
});

test("activate() hands out every child's notifications, with their pids", async () => {
  const activation = await activate(
    sender([
      { call: "status", arg: "starting" },
      { call: "ready" },
      { call: "stopping" },
    ]),
    { listen: ["127.0.0.1:0"], notify: true, stdout: "ignore" },
  );
  const seen: Notification[] = [];
  for await (const message of activation.notifications) seen.push(message);
  const exit = await activation.finished;
  assert.deepEqual(
    seen.map((message) => message.fields),
    [{ STATUS: "starting" }, { READY: "1" }, { STOPPING: "1" }],
  );
  assert.ok(seen.every((message) => message.pid === exit!.pid));
  assert.equal(exit!.code, 0);
});

test("activate() passes no fd of this process but the sockets, close-on-exec or not", async () => {
  const out = join(folder, "report.json");
  // An fd of this process without close-on-exec, which a plain exec would
  // pass on.
  const fd = openSync(join(folder, "inheritable"), "w");
  clearCloexec(native, fd);
  try {
    const activation = await activate(
      ["sh", "-c", `exec ${PYTHON} -c "$0" > ${out}`, REPORT],
      { listen: ["127.0.0.1:0", join(folder, "inherit.sock")] },
    );
    assert.equal((await activation.finished)!.code, 0);
  } finally {
    closeSync(fd);
  }
  const report = JSON.parse(readFileSync(out, "utf8")) as Report;
  assert.deepEqual(report.fds.map((entry) => entry.fd), [0, 1, 2, 3, 4]);
  assert.equal(report.env.LISTEN_PID, String(report.pid));
});

test("activate() keeps a child that feeds its watchdog", async () => {
  const log = eventLog();
  const activation = await activate(
    sender([{ call: "startWatchdog" }, { call: "ready" }, { hold: 60_000 }]),
    {
      listen: ["127.0.0.1:0"],
      notify: true,
      watchdogMs: 400,
      onEvent: log.onEvent,
      stdout: "ignore",
    },
  );
  try {
    await activation.ready;
    const pid = activation.pid;
    // Pings every 200 ms: six of them span three times the watchdog's 400.
    let pings = 0;
    for await (const message of activation.notifications) {
      if (message.fields.WATCHDOG === "1" && ++pings === 6) break;
    }
    assert.equal(log.events.some((event) => event.type === "watchdog"), false);
    assert.equal(activation.pid, pid);
  } finally {
    await activation.stop();
  }
});

test("activate() restarts a child that sends WATCHDOG=trigger", async () => {
  const log = eventLog();
  const activation = await activate(
    sender([
      { call: "ready" },
      { call: "notify", arg: "WATCHDOG=trigger" },
      { hold: 60_000 },
    ]),
    {
      listen: ["127.0.0.1:0"],
      notify: true,
      watchdogMs: 60_000,
      onEvent: log.onEvent,
      stdout: "ignore",
    },
  );
  try {
    await activation.ready;
    const first = activation.pid;
    await log.until(
      (event) => event.type === "watchdog" && event.pid === first,
      "the watchdog",
    );
    await log.until(
      (event) => event.type === "started" && event.pid !== first,
      "the restart",
    );
  } finally {
    await activation.stop();
  }
});

test("activate() leaves nothing open when it fails", async () => {
  const port = await freePort();
  const file = join(folder, "a-file");
  writeFileSync(file, "mine");
  await assert.rejects(
    activate(["true"], { listen: [`127.0.0.1:${port}`, file] }),
    (error) =>
      error instanceof ActivationError && error.code === "PATH_NOT_SOCKET",
  );
  assert.equal(readFileSync(file, "utf8"), "mine");
  await assert.rejects(
    activate(["no-such-program-here"], { listen: [`127.0.0.1:${port}`] }),
    (error) =>
      error instanceof ActivationError && error.code === "SPAWN_FAILED",
  );
  const socket = join(folder, "spawn-failed.sock");
  await assert.rejects(
    activate([join(folder, "missing")], { listen: [socket] }),
    (error) =>
      error instanceof ActivationError && error.code === "SPAWN_FAILED" &&
      error.message.includes("no such executable"),
  );
  assert.equal(existsSync(socket), false);
  // The port is free again.
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port }, resolve);
  });
  await new Promise((resolve) => server.close(resolve));
});

test("activate() refuses bad arguments with the error that names them", async () => {
  await assert.rejects(
    activate([], { listen: ["0"] }),
    (error) => error instanceof TypeError && /command/.test(error.message),
  );
  await assert.rejects(
    activate(["true"], { listen: ["ftp://x"] }),
    (error) =>
      error instanceof ActivationError && error.code === "INVALID_ENDPOINT",
  );
  await assert.rejects(
    activate(["true"], { listen: ["fd://3"] }),
    /fd:\/\/ names a socket passed to a service/,
  );
  await assert.rejects(
    activate(["true"], { listen: ["0", "0"], names: ["a", "b", "c"] }),
    /3 names for 2 sockets/,
  );
  await assert.rejects(
    activate(["true"], { listen: ["0"], watchdogMs: 1000 }),
    /A watchdog needs notify/,
  );
  await assert.rejects(
    activate(["true"], { listen: [{ endpoint: "/tmp/x.sock", mode: 0o1777 }] }),
    /A socket mode is an integer from 0 to 0o777/,
  );
  await assert.rejects(
    activate(["true"], { listen: ["0"], stopTimeoutMs: -1 }),
    /stopTimeoutMs is a positive number of ms/,
  );
});

test('activate() stores an fd with an invalid FDNAME= as "stored", and says so', async () => {
  const log = eventLog();
  const activation = await activate([
    PYTHON,
    "-c",
    String.raw`
import os, socket
r, w = os.pipe()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
socket.send_fds(s, [b"FDSTORE=1\nFDNAME=bad:name\nFDPOLL=0"], [r])
s.send(b"FDSTOREREMOVE=1")
`,
  ], { listen: ["127.0.0.1:0"], notify: true, onEvent: log.onEvent });
  await activation.finished;
  assert.deepEqual(
    log.events.filter((event) => event.type === "fdstore").map((event) =>
      event.message
    ),
    [
      `FDNAME="bad:name" is not printable ASCII without ':': the fds are stored as "stored"`,
      'stored fd "stored"',
      "FDSTOREREMOVE=1 without a valid FDNAME= is ignored",
    ],
  );
});

test("activate() runs the child in cwd, and finds a relative program there", async () => {
  const work = mkdtempSync(join(folder, "cwd-"));
  writeFileSync(
    join(work, "run.sh"),
    `#!/bin/sh\npwd > ${join(work, "pwd")}\n`,
    {
      mode: 0o755,
    },
  );
  const activation = await activate(["./run.sh"], {
    listen: ["127.0.0.1:0"],
    cwd: work,
  });
  assert.equal((await activation.finished)!.code, 0);
  assert.equal(readFileSync(join(work, "pwd"), "utf8").trim(), work);
});
