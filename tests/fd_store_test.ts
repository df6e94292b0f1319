// The fd store for restarts without downtime: storeFds() and
// removeStoredFds() against a real receiver (tests/_receiver.ts, reading
// what arrived from its own side), listen()'s fdStore option in this
// process, and services (tests/fixtures/fd_store_service.ts, on serve())
// under the library's activator, which keeps their fd store as systemd
// does: the socket is bound once, stored, and passed back to every later
// child, across a SIGKILL and across graceful restarts under load.

import assert from "node:assert/strict";
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { eventLog, within } from "./_activator.ts";
import { type ClientLoop, clientLoop } from "./_client_loop.ts";
import {
  activate,
  ActivationError,
  type ActivatorEvent,
  listen,
  removeStoredFds,
  storeFds,
} from "./_lib.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { fixtureCommand } from "./_runtime.ts";
import { ask, MODES, type Target } from "./_serve.ts";
import { startCli } from "./_socket_activate.ts";

const folder = mkdtempSync(join(tmpdir(), "fd-store-test-"));
after(() => rmSync(folder, { recursive: true, force: true }));
let files = 0;
/** A path in this file's temporary folder, new each time. */
function fresh(name: string): string {
  return join(folder, `${files++}-${name}`);
}

/** The fixture, with the Deno flags the README gives for the endpoint. */
function service(endpoint: string): string[] {
  return fixtureCommand("fd_store_service", {
    denoFlags: endpoint.startsWith("unix:")
      ? [
        "--allow-env",
        "--allow-ffi",
        "--allow-read",
        "--allow-write",
        "--allow-net",
      ]
      : ["--allow-env", "--allow-ffi", "--allow-net"],
  });
}

/**
 * The inode of the one socket listening at `target`, as the kernel lists
 * it (/proc/net/tcp, /proc/net/unix): who holds it is another question.
 */
function listeningInode(target: Target): number {
  const rows = (file: string) =>
    readFileSync(file, "utf8").trim().split("\n").slice(1).map((line) =>
      line.trim().split(/\s+/)
    );
  let found: string[][];
  if ("port" in target) {
    // sl local_address rem_address st … inode; st 0A is LISTEN.
    found = rows("/proc/net/tcp").filter((row) =>
      row[1] === `0100007F:${target.port.toString(16).toUpperCase()}` &&
      row[3] === "0A"
    ).map((row) => [row[9]!]);
  } else {
    // Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 is a
    // listening socket (__SO_ACCEPTCON).
    found = rows("/proc/net/unix").filter((row) =>
      row[7] === target.socketPath && (parseInt(row[3]!, 16) & 0x10000) !== 0
    ).map((row) => [row[6]!]);
  }
  assert.equal(found.length, 1, `sockets listening at ${target}: ${found}`);
  return Number(found[0]![0]);
}

/** The fds of process `pid` that are socket `inode`. */
function fdsOf(pid: number | "self", inode: number): number[] {
  const folder = `/proc/${pid}/fd`;
  return readdirSync(folder).filter((fd) => {
    try {
      return readlinkSync(`${folder}/${fd}`) === `socket:[${inode}]`;
    } catch {
      return false; // Closed meanwhile.
    }
  }).map(Number);
}

/** What the fixture answers. */
interface Served {
  pid: number;
  source: "bound" | "systemd";
  fd: number | null;
  env: { LISTEN_FDS: string | null; LISTEN_FDNAMES: string | null };
}

async function get(target: Target): Promise<Served> {
  const answer = await ask(target, { path: "/" });
  assert.equal(answer.status, 200, answer.body);
  return JSON.parse(answer.body);
}

/** Where the service said it listens (its STATUS=), as a client target. */
function targetFrom(events: readonly ActivatorEvent[]): Target {
  for (const event of events) {
    const said = /STATUS=Listening on (\S+)$/.exec(event.message)?.[1];
    if (said === undefined) continue;
    const url = new URL(said);
    return url.protocol === "unix:"
      ? { socketPath: url.pathname }
      : { port: Number(url.port) };
  }
  throw new Error("The service did not say where it listens");
}

function pidOf(line: string): number {
  return Number(/pid (\d+)/.exec(line)![1]);
}

const byPid = (type: ActivatorEvent["type"], pid: number) =>
(
  event: ActivatorEvent,
) => event.type === type && event.pid === pid;

/** With NOTIFY_SOCKET set to `value` (unset for undefined) during `run`. */
async function withNotifySocket<T>(
  value: string | undefined,
  run: () => Promise<T> | T,
): Promise<T> {
  const saved = process.env.NOTIFY_SOCKET;
  if (value === undefined) delete process.env.NOTIFY_SOCKET;
  else process.env.NOTIFY_SOCKET = value;
  try {
    return await run();
  } finally {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
  }
}

async function withReceiver(
  run: (receiver: Receiver) => Promise<void>,
): Promise<void> {
  const receiver = await startReceiver();
  try {
    await withNotifySocket(receiver.address, () => run(receiver));
  } finally {
    await receiver.close();
  }
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Whether a connection to `target` is accepted by the kernel. */
function connects(target: Target): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(
      "port" in target ? { host: "127.0.0.1", port: target.port } : {
        path: target.socketPath,
      },
    );
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

// storeFds() and removeStoredFds(): what the manager receives.

test("storeFds() sends FDSTORE=1 and FDNAME= with the fds, and FDPOLL=0 when poll is false", async () => {
  const first = fresh("first");
  const second = fresh("second");
  writeFileSync(first, "1");
  writeFileSync(second, "2");
  const fds = [openSync(first, "r"), openSync(second, "r")];
  try {
    await withReceiver(async (receiver) => {
      assert.equal(storeFds("state", fds), true);
      assert.equal(storeFds("state", [fds[1]!], { poll: false }), true);
      const polled = await within(receiver.next(), "the first datagram");
      assert.equal(polled.text, "FDSTORE=1\nFDNAME=state");
      assert.deepEqual(polled.fds.map((fd) => fd.target), [first, second]);
      const unpolled = await within(receiver.next(), "the second datagram");
      assert.equal(unpolled.text, "FDSTORE=1\nFDNAME=state\nFDPOLL=0");
      assert.deepEqual(unpolled.fds.map((fd) => fd.target), [second]);
    });
  } finally {
    fds.forEach((fd) => closeSync(fd));
  }
});

test("removeStoredFds() sends FDSTOREREMOVE=1 and FDNAME= without fds", async () => {
  await withReceiver(async (receiver) => {
    assert.equal(removeStoredFds("web"), true);
    const datagram = await within(receiver.next(), "the datagram");
    assert.equal(datagram.text, "FDSTOREREMOVE=1\nFDNAME=web");
    assert.deepEqual(datagram.fds, []);
  });
});

test("storeFds() and removeStoredFds() send nothing and return false without NOTIFY_SOCKET", async () => {
  await withNotifySocket(undefined, () => {
    assert.equal(storeFds("web", [0]), false);
    assert.equal(removeStoredFds("web"), false);
  });
});

// The names systemd's fdname_is_valid() refuses, and why.
const BAD_NAMES: [string, RegExp][] = [
  ["", /: Invalid fd name "": it is empty$/],
  ["a:b", /: Invalid fd name "a:b": it is not printable ASCII without ':'$/],
  ["tab\there", /it is not printable ASCII without ':'$/],
  ["é", /it is not printable ASCII without ':'$/],
  ["x".repeat(256), /it is over 255 characters$/],
];

for (const [name, message] of BAD_NAMES) {
  test(
    `storeFds(), removeStoredFds() and listen({ fdStore }) refuse the fd name ${
      JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…` : name)
    } before sending or binding anything`,
    async () => {
      await withReceiver(async (receiver) => {
        assert.throws(() => storeFds(name, [0]), RangeError);
        assert.throws(() => storeFds(name, [0]), message);
        assert.throws(() => removeStoredFds(name), message);
        const path = fresh("refused.sock");
        await assert.rejects(
          listen(`unix://${path}`, { name, fdStore: true }),
          message,
        );
        assert.equal(existsSync(path), false);
        assert.equal(await receiver.received(), 0);
      });
    },
  );
}

test("storeFds() refuses a name that is not a string, and an empty or missing array of fds", () => {
  assert.throws(
    () => storeFds(7 as unknown as string, [0]),
    { name: "TypeError", message: "An fd name is a string, not number" },
  );
  assert.throws(() => storeFds("web", []), {
    name: "RangeError",
    message: 'Cannot store fds under "web": the array is empty',
  });
  assert.throws(
    () => storeFds("web", 3 as unknown as number[]),
    { name: "TypeError", message: "The fds to store are an array, not number" },
  );
});

test("storeFds() of a closed fd fails with NOTIFY_FAILED and EBADF, and nothing arrives", async () => {
  await withReceiver(async (receiver) => {
    assert.throws(
      () => storeFds("web", [987]),
      (error: unknown) =>
        error instanceof ActivationError && error.code === "NOTIFY_FAILED" &&
        error.errno === 9 && /EBADF/.test(error.message),
    );
    assert.equal(await receiver.received(), 0);
  });
});

// listen({ fdStore }) in this process.

test("listen({ fdStore }) needs a name and an endpoint to bind", async () => {
  await assert.rejects(listen("http://127.0.0.1:0", { fdStore: true }), {
    name: "TypeError",
    message: "fdStore needs a name (options.name) to store the socket under",
  });
  await assert.rejects(
    listen("fd://web", { name: "web", fdStore: true }),
    {
      name: "TypeError",
      message:
        "fdStore needs an endpoint to bind on the first start, http:// or unix://, not fd://web",
    },
  );
});

test("listen({ fdStore }) binds TCP and hands the listening socket to the store under its name", async () => {
  await withReceiver(async (receiver) => {
    const server = await listen("http://127.0.0.1:0", {
      name: "web",
      fdStore: true,
    });
    try {
      const port = (server.address() as { port: number }).port;
      const inode = listeningInode({ port });
      const datagram = await within(receiver.next(), "FDSTORE=1");
      assert.equal(datagram.text, "FDSTORE=1\nFDNAME=web");
      assert.deepEqual(datagram.fds.map((fd) => fd.target), [
        `socket:[${inode}]`,
      ]);
      // This process serves it through the one fd it opened.
      assert.equal(fdsOf("self", inode).length, 1);
    } finally {
      await close(server);
    }
  });
});

test("listen({ fdStore }) keeps a stored unix socket's path when the server closes: the socket lives on in the store", async () => {
  const path = fresh("stored.sock");
  await withReceiver(async (receiver) => {
    const server = await listen(`unix://${path}`, {
      name: "web",
      fdStore: true,
      mode: 0o600,
    });
    const inode = listeningInode({ socketPath: path });
    const datagram = await within(receiver.next(), "FDSTORE=1");
    assert.equal(datagram.text, "FDSTORE=1\nFDNAME=web");
    assert.deepEqual(datagram.fds.map((fd) => fd.target), [
      `socket:[${inode}]`,
    ]);
    assert.equal(lstatSync(path).mode & 0o777, 0o600);
    await close(server);
    assert.deepEqual(fdsOf("self", inode), []);
    // The receiver, as the manager, still holds it: still listening, at its
    // path, its backlog taking connections for the next process.
    assert.equal(listeningInode({ socketPath: path }), inode);
    assert.equal(await connects({ socketPath: path }), true);
  });
});

test("listen({ fdStore }) without NOTIFY_SOCKET stores nothing and serves an ordinary socket, whose path goes when it closes", async () => {
  const path = fresh("alone.sock");
  await withNotifySocket(undefined, async () => {
    const server = await listen(`unix://${path}`, {
      name: "web",
      fdStore: true,
    });
    assert.equal(await connects({ socketPath: path }), true);
    await close(server);
    assert.equal(existsSync(path), false);
    const tcp = await listen("http://127.0.0.1:0", {
      name: "web",
      fdStore: true,
    });
    const port = (tcp.address() as { port: number }).port;
    assert.equal(await connects({ port }), true);
    await close(tcp);
    assert.equal(await connects({ port }), false);
  });
});

test("listen({ fdStore }) leaves no socket behind when it cannot notify", async () => {
  const path = fresh("unsent.sock");
  await withNotifySocket("relative/notify", async () => {
    await assert.rejects(
      listen(`unix://${path}`, { name: "web", fdStore: true }),
      (error: unknown) =>
        error instanceof ActivationError &&
        error.code === "INVALID_NOTIFY_SOCKET",
    );
  });
  assert.equal(existsSync(path), false);
});

// Services under the activator, which keeps their fd store.

for (const mode of MODES) {
  test(`serve({ fdStore }) binds on the first start, and gets the same TCP socket back after a SIGKILL, a connection made meanwhile included${mode.label}`, async () => {
    const log = eventLog();
    const endpoint = "http://127.0.0.1:0";
    const activation = await activate(service(endpoint), {
      listen: [],
      notify: true,
      restart: "on-failure",
      env: { FD_STORE_ENDPOINT: endpoint, ...mode.env },
      onEvent: log.onEvent,
    });
    try {
      await activation.ready;
      const first = activation.pid!;
      await log.until(
        (event) => event.message === 'stored fd "web"',
        "the socket stored",
      );
      const target = targetFrom(log.events);
      const served = await get(target);
      assert.deepEqual(served, {
        pid: first,
        source: "bound",
        fd: null,
        env: { LISTEN_FDS: null, LISTEN_FDNAMES: null },
      });
      const inode = listeningInode(target);
      assert.equal(fdsOf(first, inode).length, 1);
      // The store: the activator's own copy, in this process.
      assert.equal(fdsOf("self", inode).length, 1);

      process.kill(first, "SIGKILL");
      await log.until(byPid("stopped", first), "the first child to die");
      // No process serves now: the connection waits in the backlog.
      const meanwhile = get(target);
      const second = await within(meanwhile, "the answer of the next child");
      await log.until(byPid("ready", second.pid), "the second child");
      assert.notEqual(second.pid, first);
      assert.deepEqual(second, {
        pid: second.pid,
        source: "systemd",
        fd: 3,
        env: { LISTEN_FDS: "1", LISTEN_FDNAMES: "web" },
      });
      assert.equal(listeningInode(target), inode);
      assert.deepEqual(fdsOf(second.pid, inode), [3]);
    } finally {
      await activation.stop();
    }
  });
}

test("serve({ fdStore }) on a unix socket takes only the fd named for it, comes back after a SIGKILL at the same path, and binds afresh once the store is gone", async () => {
  const path = fresh("web.sock");
  const endpoint = `unix://${path}`;
  const target = { socketPath: path };
  const start = async () => {
    const log = eventLog();
    // A socket of a socket unit in front of the stored one: the single
    // passed socket, named "api", is not the service's "web".
    const activation = await activate(service(endpoint), {
      listen: ["http://127.0.0.1:0"],
      names: ["api"],
      notify: true,
      restart: "on-failure",
      env: { FD_STORE_ENDPOINT: endpoint },
      onEvent: log.onEvent,
    });
    await activation.ready;
    await log.until(
      (event) => event.message === 'stored fd "web"',
      "the socket stored",
    );
    return { log, activation };
  };

  let { log, activation } = await start();
  let inode: number;
  try {
    const first = await get(target);
    assert.deepEqual(first, {
      pid: activation.pid,
      source: "bound",
      fd: null,
      env: { LISTEN_FDS: "1", LISTEN_FDNAMES: "api" },
    });
    assert.equal(lstatSync(path).mode & 0o777, 0o660);
    inode = listeningInode(target);
    process.kill(first.pid, "SIGKILL");
    await log.until(byPid("stopped", first.pid), "the first child to die");
    const second = await within(get(target), "the next child");
    assert.deepEqual(second, {
      pid: second.pid,
      source: "systemd",
      fd: 4,
      env: { LISTEN_FDS: "2", LISTEN_FDNAMES: "api:web" },
    });
    assert.equal(listeningInode(target), inode);
    assert.deepEqual(fdsOf(second.pid, inode), [4]);
  } finally {
    await activation.stop();
  }
  // Stopped, the store is closed, as systemd closes it on a stop: the path
  // stays, a socket nobody listens on, until the next start replaces it.
  assert.equal(lstatSync(path).isSocket(), true);
  assert.equal(await connects(target), false);
  ({ log, activation } = await start());
  try {
    assert.equal((await get(target)).source, "bound");
    assert.notEqual(listeningInode(target), inode);
  } finally {
    await activation.stop();
  }
});

test("socket-activate needs a socket to listen on unless --notify lets the command keep its own, and --on-demand always needs one", async () => {
  for (
    const [args, message] of [
      [["--", "true"], /or --notify for a command that keeps its sockets/],
      [
        ["--notify", "--on-demand", "--", "true"],
        /--on-demand waits on --listen or --config sockets/,
      ],
    ] as const
  ) {
    const cli = startCli(args);
    assert.equal(await cli.exited, 2);
    assert.match(cli.stderr(), message);
  }
  await assert.rejects(
    activate(["true"], { listen: [], notify: true, onDemand: true }),
    {
      name: "TypeError",
      message: "onDemand needs a socket to wait on: listen is empty",
    },
  );
});

const RESTARTS = 10;
const CLIENTS = 4;
// Requests answered between two restarts, so that each child serves for a
// while, alone and beside the next one.
const BETWEEN = 30;

test(
  `socket-activate --notify with no socket restarts a serve({ fdStore }) service ${RESTARTS} times on SIGHUP under a stream of new connections: not one fails, and the socket stays the same`,
  {
    timeout: 180_000,
  },
  async () => {
    const endpoint = "http://127.0.0.1:0";
    const cli = startCli([
      "--notify",
      "-E",
      `FD_STORE_ENDPOINT=${endpoint}`,
      "--",
      ...service(endpoint),
    ]);
    let clients: ClientLoop<Served> | undefined;
    try {
      assert.match(
        await cli.event(/^started pid/),
        /^started pid \d+ with no fds$/,
      );
      await cli.event(/^stored fd "web"$/);
      const said = await cli.event(/: STATUS=Listening on /);
      const target: Target = { port: Number(/:(\d+)$/.exec(said)![1]) };
      let old = pidOf(await cli.event(/^ready pid/));
      const inode = listeningInode(target);
      // The store: the activator's copy.
      assert.equal(fdsOf(cli.child.pid!, inode).length, 1);
      // A new connection for each request (no agent).
      clients = clientLoop(CLIENTS, () => get(target));
      await clients.after(BETWEEN);
      for (let round = 0; round < RESTARTS; round++) {
        process.kill(cli.child.pid!, "SIGHUP");
        await cli.event(/^started pid \d+ with web=fd 3$/);
        const next = pidOf(await cli.event(/^ready pid/));
        await cli.event(new RegExp(`^stopped pid ${old} \\(exit 0\\)$`));
        // The new child serves now, alone.
        await clients.answered((served) => served.pid === next, `pid ${next}`);
        assert.equal(listeningInode(target), inode);
        old = next;
        await clients.after(BETWEEN);
      }
    } finally {
      await clients?.stop();
      if (cli.child.exitCode === null && cli.child.signalCode === null) {
        process.kill(cli.child.pid!, "SIGTERM");
      }
      await cli.exited;
    }
    assert.deepEqual(
      clients.failures,
      [],
      `${clients.answers.length} requests answered`,
    );
    // The first answer of each child.
    const servedBy = new Map<number, Served>();
    for (const served of clients.answers) {
      if (!servedBy.has(served.pid)) servedBy.set(served.pid, served);
    }
    assert.equal(servedBy.size, RESTARTS + 1);
    const children = [...servedBy.values()];
    assert.equal(children[0]!.source, "bound");
    for (const child of children.slice(1)) {
      assert.deepEqual([child.source, child.fd, child.env.LISTEN_FDNAMES], [
        "systemd",
        3,
        "web",
      ]);
    }
    assert.equal(
      cli.events().filter((line) => line.startsWith("stopped")).length,
      RESTARTS + 1,
    );
  },
);
