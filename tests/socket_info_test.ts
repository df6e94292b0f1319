import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { test } from "node:test";
import { activate, freePort, stop, within } from "./_activator.ts";
import { launch, type LaunchFd } from "./_launch.ts";
import { fixtureCommand } from "./_runtime.ts";

interface Result {
  info?: Record<string, unknown>;
  error?: { code?: string; errno?: number; message: string };
}

/** What socketInfo() says of `ask` (default: every passed fd) in a child. */
async function describeFds(
  fds: readonly LaunchFd[],
  ask: readonly number[] = fds.map((_, index) => 3 + index),
): Promise<{ results: Result[]; ports: (number | undefined)[] }> {
  const launched = await launch({
    argv: [...fixtureCommand("socket_info"), ...ask.map(String)],
    fds,
  });
  const line = await launched.nextLine().catch((error: Error) => {
    throw new Error(`${error.message}\n${launched.stderr()}`);
  });
  assert.equal(await launched.exited, 0, launched.stderr());
  return {
    results: JSON.parse(line) as Result[],
    ports: launched.fds.map((fd) => fd.port),
  };
}

test("socketInfo() describes listening TCP, IPv6, UDP and unix sockets", async () => {
  const dir = mkdtempSync(join(tmpdir(), "socket-info-"));
  try {
    const { results, ports } = await describeFds([
      { type: "tcp" },
      { type: "tcp", host: "::1" },
      { type: "udp" },
      { type: "unix", path: join(dir, "listening.sock") },
      { type: "unix", path: join(dir, "bound.sock"), listen: false },
    ]);
    assert.deepEqual(results, [
      {
        info: {
          fd: 3,
          type: "stream",
          listening: true,
          address: { family: "ipv4", host: "127.0.0.1", port: ports[0] },
        },
      },
      {
        info: {
          fd: 4,
          type: "stream",
          listening: true,
          address: { family: "ipv6", host: "::1", port: ports[1] },
        },
      },
      {
        info: {
          fd: 5,
          type: "dgram",
          listening: false,
          address: { family: "ipv4", host: "127.0.0.1", port: ports[2] },
        },
      },
      {
        info: {
          fd: 6,
          type: "stream",
          listening: true,
          address: { family: "unix", path: join(dir, "listening.sock") },
        },
      },
      {
        info: {
          fd: 7,
          type: "stream",
          listening: false,
          address: { family: "unix", path: join(dir, "bound.sock") },
        },
      },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("socketInfo() says what a non-socket fd is: NOT_A_SOCKET naming a pipe", async () => {
  const { results } = await describeFds(["pipe"]);
  assert.deepEqual(results[0], {
    error: {
      code: "NOT_A_SOCKET",
      errno: 88,
      message: "Fd 3 is not a socket: it is a FIFO or pipe",
    },
  });
});

test("socketInfo() gives IPv6 addresses in their RFC 5952 form", async () => {
  const { results, ports } = await describeFds([
    { type: "tcp", host: "::" },
    { type: "tcp", host: "::ffff:127.0.0.1" },
  ]);
  assert.deepEqual(results.map((result) => result.info?.address), [
    { family: "ipv6", host: "::", port: ports[0] },
    { family: "ipv6", host: "::ffff:127.0.0.1", port: ports[1] },
  ]);
});

test("socketInfo() fails with NOT_A_SOCKET and EBADF for a closed fd", async () => {
  const { results } = await describeFds([], [999]);
  assert.deepEqual(results[0], {
    error: { code: "NOT_A_SOCKET", errno: 9, message: "Fd 999 is not open" },
  });
});

test("socketInfo() gives the peer of the connection systemd-socket-activate --accept passed", async () => {
  const port = await freePort();
  const activated = await activate([...fixtureCommand("socket_info"), "3"], {
    listen: [`127.0.0.1:${port}`],
    accept: true,
  });
  try {
    const client = connect({ host: "127.0.0.1", port });
    const clientPort = await within(
      new Promise<number>((resolve, reject) => {
        client.once("connect", () => resolve(client.localPort!));
        client.once("error", reject);
      }),
      "the connection",
    );
    const [result] = JSON.parse(
      await within(activated.nextLine(), "the fixture's line"),
    ) as Result[];
    client.destroy();
    assert.deepEqual(result, {
      info: {
        fd: 3,
        type: "stream",
        listening: false,
        address: { family: "ipv4", host: "127.0.0.1", port },
        peer: { family: "ipv4", host: "127.0.0.1", port: clientPort },
      },
    });
  } finally {
    await stop(activated);
  }
});
