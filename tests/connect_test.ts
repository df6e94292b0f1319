// connect(): TCP and unix sockets against echo servers in this process, and a
// connected socket passed by the real systemd-socket-activate --accept to
// tests/fixtures/listen_connect_fd.ts in this runtime.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { activate, freePort, stop, within } from "./_activator.ts";
import { launch, type LaunchFd } from "./_launch.ts";
import { ActivationError, connect } from "./_lib.ts";
import { fixtureCommand } from "./_runtime.ts";

const DENO_FLAGS = ["--allow-env", "--allow-ffi"];

const root = mkdtempSync(join(tmpdir(), "connect-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** An echo server: answers each chunk with "echo CHUNK". */
async function echoServer(
  options: { host: string; port: number } | { path: string },
): Promise<Server> {
  const server = createServer((socket) => {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => socket.write(`echo ${chunk}`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options, resolve);
  });
  return server;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Writes `line` and resolves with the first line read back. */
function exchange(socket: Socket, line: string): Promise<string> {
  return within(
    new Promise((resolve, reject) => {
      socket.setEncoding("utf8");
      let buffered = "";
      socket.on("data", (chunk: string) => {
        buffered += chunk;
        const end = buffered.indexOf("\n");
        if (end >= 0) resolve(buffered.slice(0, end));
      });
      socket.on("error", reject);
      socket.write(`${line}\n`);
    }),
    "an answer",
  );
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port;
}

test("connect() talks TCP to http://127.0.0.1:PORT", async () => {
  const server = await echoServer({ host: "127.0.0.1", port: 0 });
  try {
    const socket = await connect(`http://127.0.0.1:${portOf(server)}`);
    assert.equal(socket.remotePort, portOf(server));
    assert.equal(await exchange(socket, "hi"), "echo hi");
    socket.destroy();
  } finally {
    await close(server);
  }
});

test("connect() talks TCP to http://[::1]:PORT over IPv6 and takes an Endpoint record", async () => {
  const server = await echoServer({ host: "::1", port: 0 });
  try {
    const socket = await connect({
      kind: "http",
      host: "::1",
      port: portOf(server),
    });
    assert.equal(socket.remoteAddress, "::1");
    assert.equal(await exchange(socket, "six"), "echo six");
    socket.destroy();
  } finally {
    await close(server);
  }
});

test("connect() talks to a unix socket", async () => {
  const path = join(root, "echo.sock");
  const server = await echoServer({ path });
  try {
    const socket = await connect(`unix://${path}`);
    assert.equal(await exchange(socket, "local"), "echo local");
    socket.destroy();
  } finally {
    await close(server);
  }
});

test("connect() fails with CONNECT_FAILED and the errno when nobody listens", async () => {
  const server = await echoServer({ host: "127.0.0.1", port: 0 });
  const port = portOf(server);
  await close(server);
  await assert.rejects(
    connect(`http://127.0.0.1:${port}`),
    (error: unknown) => {
      assert.ok(error instanceof ActivationError);
      assert.equal(error.code, "CONNECT_FAILED");
      assert.equal(error.errno, 111);
      assert.equal(
        error.message,
        `Cannot connect to http://127.0.0.1:${port}: ECONNREFUSED`,
      );
      return true;
    },
  );
  const missing = join(root, "missing.sock");
  await assert.rejects(connect(`unix://${missing}`), {
    code: "CONNECT_FAILED",
    errno: 2,
    message: `Cannot connect to unix://${missing}: ENOENT`,
  });
});

test("connect() takes the seed's endpoints and rejects ftp://", async () => {
  await assert.rejects(connect("ftp://127.0.0.1"), {
    name: "ActivationError",
    code: "INVALID_ENDPOINT",
  });
  if (!existsSync("/run/aziot/keyd.sock")) {
    await assert.rejects(connect("unix:///run/aziot/keyd.sock"), {
      code: "CONNECT_FAILED",
      errno: 2,
    });
  }
});

test("connect() fails clearly for fd:// endpoints when nothing was passed", async () => {
  await assert.rejects(connect("fd://3"), {
    code: "FD_NOT_PASSED",
    message: "Cannot connect to fd://3: systemd passed no fds to this process",
  });
  await assert.rejects(connect("fd://conn"), {
    code: "NAME_NOT_FOUND",
    message:
      "Cannot connect to fd://conn: systemd passed no fds to this process",
  });
});

/** Runs the client fixture on `uri` with `fds` passed; its error event. */
async function clientError(
  uri: string,
  fds: readonly LaunchFd[],
): Promise<{ event: { code?: string; message?: string }; ports: number[] }> {
  const launched = await launch({
    argv: [
      ...fixtureCommand("listen_connect_fd", { denoFlags: DENO_FLAGS }),
      uri,
    ],
    fds,
    env: { LISTEN_PID: "$PID", LISTEN_FDS: String(fds.length) },
  });
  const line = await within(launched.nextLine(), "the fixture").catch(
    (error: Error) => {
      launched.child.kill();
      throw new Error(`${error.message}\n${launched.stderr()}`);
    },
  );
  assert.equal(await launched.exited, 0, launched.stderr());
  return {
    event: JSON.parse(line),
    ports: launched.fds.map((fd) => fd.port ?? 0),
  };
}

test("connect() refuses a passed listening socket or pipe for fd://N", async () => {
  const listening = await clientError("fd://3", [{ type: "tcp" }]);
  assert.deepEqual(listening.event, {
    event: "error",
    code: "UNSUITABLE_SOCKET",
    message:
      `Cannot connect to fd://3: fd 3 is a listening stream ipv4 socket on 127.0.0.1:${
        listening.ports[0]
      }, not a connected stream socket (unix, IPv4 or IPv6)`,
  });
  const pipe = await clientError("fd://3", ["pipe"]);
  assert.equal(pipe.event.code, "NOT_A_SOCKET");
  assert.equal(
    pipe.event.message,
    "Cannot connect to fd://3: fd 3 is not a socket: it is a FIFO or pipe",
  );
  const outside = await clientError("fd://5", ["pipe"]);
  assert.equal(outside.event.code, "FD_NOT_PASSED");
});

for (const uri of ["fd://3", "fd://conn"]) {
  test(`connect() uses the connected socket systemd-socket-activate --accept passed, as ${uri}`, async () => {
    const port = await freePort();
    const activated = await activate(
      [...fixtureCommand("listen_connect_fd", { denoFlags: DENO_FLAGS }), uri],
      { listen: [`127.0.0.1:${port}`], names: ["conn"], accept: true },
    );
    try {
      // Each connection starts the fixture on its own connected socket.
      const client = await connect(`http://127.0.0.1:${port}`);
      client.setEncoding("utf8");
      let received = "";
      client.on("data", (chunk: string) => {
        received += chunk;
        if (received.endsWith("\n") && !received.includes("got")) {
          client.write("ping\n");
        }
      });
      await within(
        new Promise((resolve) => client.on("end", resolve)),
        `the fixture to answer (stdout: ${activated.stdout()}, stderr: ${activated.stderr()})`,
      );
      assert.match(received, /^hello (deno|node) \d+\ngot ping\n$/);
    } finally {
      await stop(activated, "SIGTERM");
    }
  });
}
