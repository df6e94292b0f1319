// End to end: the real systemd-socket-activate opens the sockets and starts
// tests/fixtures/serve.ts (in the runtime running this file) on the first
// connection; the test then talks HTTP to it and checks who answered.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import {
  activate,
  type Activated,
  freePort,
  httpGet,
  stop,
  type Target,
  within,
} from "./_activator.ts";
import { isCloexec } from "./_fd.ts";
import { launch } from "./_launch.ts";
import { fixtureCommand, runtime } from "./_runtime.ts";

// What the fixture needs on Deno, and nothing more: no --allow-net, because
// node:http serving on an inherited fd needs none (SPEC section 5).
const DENO_FLAGS = ["--allow-env", "--allow-ffi"];

/** What the fixture answers to every request. */
interface Served {
  runtime: string;
  fd: number;
  name: string;
  pid: number;
  method: string;
  url: string;
  address: unknown;
}

function listenArgument(target: Target): string {
  return "port" in target ? `127.0.0.1:${target.port}` : target.socketPath;
}

/**
 * Starts the fixture under systemd-socket-activate listening on `targets`
 * (fds 3, 4, … in order) and resolves once every socket is open, so that
 * the first connection is what starts the fixture.
 */
function activateServe(
  targets: readonly Target[],
  options: {
    names?: readonly string[];
    env?: Record<string, string>;
    denoFlags?: readonly string[];
  } = {},
): Promise<Activated> {
  return activate(
    fixtureCommand("serve", { denoFlags: options.denoFlags ?? DENO_FLAGS }),
    {
      listen: targets.map(listenArgument),
      names: options.names,
      env: options.env,
    },
  );
}

/** The next JSON line the fixture prints on stdout. */
async function nextEvent(
  server: Activated,
  what: string,
): Promise<Record<string, unknown>> {
  return JSON.parse(await within(server.nextLine(), what));
}

/** GET `path` on `target` over a fresh connection; the parsed JSON answer. */
async function get(target: Target, path: string): Promise<Served> {
  const answer = await httpGet(target, path, { connection: "close" });
  assert.equal(answer.status, 200, answer.body);
  return JSON.parse(answer.body);
}

/** Runs `body` with a fresh temporary folder, removed afterwards. */
async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "socket-activation-e2e-"));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Activates the fixture on `targets`, asks for `socketName`, sends one
 * request to `targets[index]` and checks the answer; then checks every
 * passed fd is close-on-exec in the server and stops it with SIGTERM.
 */
async function serveAndCheck(
  targets: readonly Target[],
  index: number,
  expectedName: string,
  options: { names?: readonly string[]; socketName?: string } = {},
): Promise<void> {
  const env: Record<string, string> = { SERVE_COUNT: "2" };
  if (options.socketName !== undefined) env.SOCKET_NAME = options.socketName;
  const server = await activateServe(targets, { env, ...options });
  try {
    const target = targets[index]!;
    const served = await within(get(target, "/hello?x=1"), "the answer");
    assert.equal(served.runtime, runtime);
    assert.equal(served.fd, 3 + index);
    assert.equal(served.name, expectedName);
    // systemd-socket-activate execs the server in its own process.
    assert.equal(served.pid, server.child.pid);
    assert.equal(served.method, "GET");
    assert.equal(served.url, "/hello?x=1");
    if ("port" in target) {
      assert.deepEqual(served.address, {
        address: "127.0.0.1",
        family: "IPv4",
        port: target.port,
      });
    }
    assert.deepEqual(await nextEvent(server, "the listening line"), {
      event: "listening",
      runtime,
      pid: server.child.pid,
      fd: 3 + index,
      name: expectedName,
    });
    // Every passed fd, not only the one served, must not leak into children.
    for (let fd = 3; fd < 3 + targets.length; fd++) {
      assert.equal(isCloexec(fd, server.child.pid!), true, `fd ${fd}`);
    }
    // process.kill, not child.kill: Deno's ChildProcess reports a signal it
    // sent itself as the exit status, even when the child handled it.
    process.kill(server.child.pid!, "SIGTERM");
    assert.equal(await within(server.exited, "the exit"), 0, server.stderr());
  } finally {
    await stop(server);
  }
}

test("getSystemdSocket() serves HTTP on the one TCP socket systemd-socket-activate passed", async () => {
  const port = await freePort();
  await serveAndCheck([{ port }], 0, "unknown");
});

test("getSystemdSocket() serves HTTP on a unix socket named by --fdname", async () => {
  await withTempDir(async (dir) => {
    const socketPath = join(dir, "web.sock");
    await serveAndCheck([{ socketPath }], 0, "web", {
      names: ["web"],
      socketName: "web",
    });
  });
});

for (const [index, name] of ["a", "b", "c"].entries()) {
  test(`getSystemdSocket("${name}") serves the socket named ${name} among three of mixed kinds`, async () => {
    await withTempDir(async (dir) => {
      const targets: Target[] = [
        { port: await freePort() },
        { socketPath: join(dir, "b.sock") },
        { port: await freePort() },
      ];
      await serveAndCheck(targets, index, name, {
        names: ["a", "b", "c"],
        socketName: name,
      });
    });
  });
}

test("getSystemdSocket() under systemd-socket-activate fails with NAME_NOT_FOUND for a name not passed", async () => {
  await withTempDir(async (dir) => {
    const socketPath = join(dir, "a.sock");
    const port = await freePort();
    const server = await activateServe([{ socketPath }, { port }], {
      names: ["a", "b"],
      env: { SOCKET_NAME: "nope" },
    });
    try {
      const trigger = await triggerStart({ socketPath });
      const event = await nextEvent(server, "the error line");
      assert.equal(event.event, "error");
      assert.equal(event.code, "NAME_NOT_FOUND");
      assert.match(String(event.message), /"nope"/);
      assert.equal(await within(server.exited, "the exit"), 1);
      await within(trigger.closed, "the connection to close");
    } finally {
      await stop(server);
    }
  });
});

test(
  "getSystemdSocket() under activation on Deno without --allow-ffi fails with FFI_UNAVAILABLE naming --allow-ffi",
  { skip: runtime === "deno" ? false : "Deno permission flags only" },
  async () => {
    await withTempDir(async (dir) => {
      const socketPath = join(dir, "web.sock");
      const server = await activateServe([{ socketPath }], {
        denoFlags: ["--allow-env"],
      });
      try {
        const trigger = await triggerStart({ socketPath });
        const event = await nextEvent(server, "the error line");
        assert.equal(event.event, "error");
        assert.equal(event.code, "FFI_UNAVAILABLE");
        assert.match(String(event.message), /--allow-ffi/);
        assert.equal(await within(server.exited, "the exit"), 1);
        await within(trigger.closed, "the connection to close");
      } finally {
        await stop(server);
      }
    });
  },
);

test("getSystemdSocket() finds no socket when LISTEN_PID is another process", async () => {
  const launched = await launch({
    argv: fixtureCommand("serve", { denoFlags: DENO_FLAGS }),
    fds: [{ type: "tcp" }],
    env: { LISTEN_PID: "1", LISTEN_FDS: "1", LISTEN_FDNAMES: "web" },
  });
  try {
    const line = await within(launched.nextLine(), "the fixture's line");
    assert.deepEqual(JSON.parse(line), {
      event: "no-socket",
      runtime,
      pid: launched.pid,
      socketName: null,
    });
    assert.equal(
      await within(launched.exited, "the exit"),
      0,
      launched.stderr(),
    );
  } finally {
    await stop(launched);
  }
});

/**
 * Connects to `target` so that systemd-socket-activate starts the child,
 * which is expected to fail; the returned promise settles when the
 * connection ends (closed or reset, whichever the child's exit causes).
 */
async function triggerStart(
  target: Target,
): Promise<{ closed: Promise<void> }> {
  const socket = "port" in target
    ? connect({ host: "127.0.0.1", port: target.port })
    : connect({ path: target.socketPath });
  await within(
    new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    }),
    "the connection",
  );
  const closed = new Promise<void>((resolve) => {
    socket.on("error", () => {});
    socket.on("close", () => resolve());
    socket.resume();
  });
  return { closed };
}
