// listen(): the seed's precedence (SPEC section 4) with real sockets. Passed
// sockets come from tests/_launch.ts or the real systemd-socket-activate and
// are served by tests/fixtures/listen_echo.ts in this runtime; the rules for
// binding a socket here run in this process, which systemd did not activate.

import assert from "node:assert/strict";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  activate,
  type Activated,
  freePort,
  stop,
  within,
} from "./_activator.ts";
import { close, echo, ping, staleSocket, type Target } from "./_echo.ts";
import { launch, type LaunchFd } from "./_launch.ts";
import { ActivationError, listen } from "./_lib.ts";
import { fixtureCommand } from "./_runtime.ts";

const DENO_FLAGS = [
  "--allow-env",
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-net",
];

const root = mkdtempSync(join(tmpdir(), "listen-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
/** A fresh empty folder for one test. */
function folder(): string {
  const path = join(root, String(folders++));
  mkdirSync(path);
  return path;
}

/** Whether something accepts connections at `target` (false: refused). */
function accepts(target: Target): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = "path" in target
      ? connect({ path: target.path })
      : connect({ host: target.host ?? "127.0.0.1", port: target.port });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED" || error.code === "ENOENT") {
        resolve(false);
      } else reject(error);
    });
  });
}

interface Event {
  event: string;
  address?: unknown;
  code?: string;
  errno?: number;
  message?: string;
  name?: string;
  /** The LISTEN_* variables the fixture still has. */
  listenEnv?: string[];
}

interface Echo {
  pid: number;
  fds: { kind: string; port?: number; path?: string }[];
  event: Event;
  /** Sends SIGTERM, waits for the "closed" event and the exit. */
  stop(): Promise<void>;
}

/** Runs the echo fixture on `uri` with `fds` passed as systemd would. */
async function launchEcho(
  uri: string,
  fds: readonly LaunchFd[],
  options: { names?: string; listenOptions?: object } = {},
): Promise<Echo> {
  const env: Record<string, string> = fds.length === 0 ? {} : {
    LISTEN_PID: "$PID",
    LISTEN_FDS: String(fds.length),
  };
  if (options.names !== undefined) env.LISTEN_FDNAMES = options.names;
  const launched = await launch({
    argv: [
      ...fixtureCommand("listen_echo", { denoFlags: DENO_FLAGS }),
      uri,
      JSON.stringify(options.listenOptions ?? {}),
    ],
    fds,
    env,
  });
  const line = await within(launched.nextLine(), "the fixture").catch(
    (error: Error) => {
      launched.child.kill();
      throw new Error(`${error.message}\n${launched.stderr()}`);
    },
  );
  const event = JSON.parse(line) as Event;
  if (event.event !== "listening") {
    assert.equal(await launched.exited, 0, launched.stderr());
  }
  return {
    pid: launched.pid,
    fds: launched.fds,
    event,
    async stop() {
      if (event.event !== "listening") return;
      launched.child.kill("SIGTERM");
      const closed = JSON.parse(
        await within(launched.nextLine(), "the fixture to close"),
      ) as Event;
      assert.equal(closed.event, "closed");
      // Not its status: Deno's child_process reports any child it sent a
      // signal to as killed by it, even one that exited 0.
      await launched.exited;
    },
  };
}

/** Asserts that the fixture failed with `code` and `message`. */
function assertError(echo: Echo, code: string, message: string): void {
  assert.deepEqual(
    {
      event: echo.event.event,
      code: echo.event.code,
      message: echo.event.message,
    },
    { event: "error", code, message },
  );
}

// --- A passed socket is preferred -------------------------------------------

test("listen() serves on the one TCP socket passed, not on the configured port", async () => {
  const configured = await freePort();
  const echo = await launchEcho(`http://127.0.0.1:${configured}`, [{
    type: "tcp",
  }]);
  try {
    const port = echo.fds[0]!.port!;
    assert.equal(echo.event.event, "listening", echo.event.message);
    assert.equal(await ping({ port }), `${echo.pid} ping`);
    assert.equal(await accepts({ port: configured }), false);
  } finally {
    await echo.stop();
  }
});

test("listen() serves on the one unix socket passed, whatever its name, and binds no path", async () => {
  const dir = folder();
  const passed = join(dir, "passed.sock");
  const configured = join(dir, "configured.sock");
  const echo = await launchEcho(
    `unix://${configured}`,
    [{ type: "unix", path: passed }],
    { names: "other", listenOptions: { name: "web" } },
  );
  try {
    assert.equal(echo.event.event, "listening", echo.event.message);
    assert.equal(await ping({ path: passed }), `${echo.pid} ping`);
    assert.equal(existsSync(configured), false);
  } finally {
    await echo.stop();
  }
});

test("listen() picks the passed socket named by options.name among several", async () => {
  const echo = await launchEcho(
    "http://127.0.0.1:1",
    [{ type: "tcp" }, { type: "tcp" }, { type: "tcp" }],
    { names: "admin:web:web", listenOptions: { name: "web" } },
  );
  try {
    const port = echo.fds[1]!.port!;
    assert.deepEqual(
      (echo.event.address as { port: number } | undefined)?.port,
      port,
    );
    assert.equal(await ping({ port }), `${echo.pid} ping`);
  } finally {
    await echo.stop();
  }
});

test("listen() binds the configured endpoint when several sockets are passed and no name is given", async () => {
  const configured = await freePort();
  const echo = await launchEcho(
    `http://127.0.0.1:${configured}`,
    [{ type: "tcp" }, { type: "tcp" }],
    { names: "a:b" },
  );
  try {
    assert.equal(await ping({ port: configured }), `${echo.pid} ping`);
  } finally {
    await echo.stop();
  }
});

test("listen() fails with NAME_NOT_FOUND when options.name is not among several named sockets", async () => {
  const echo = await launchEcho(
    "http://127.0.0.1:1",
    [{ type: "tcp" }, { type: "tcp" }],
    { names: "a:b", listenOptions: { name: "web" } },
  );
  assert.equal(echo.event.code, "NAME_NOT_FOUND");
});

// --- fd:// endpoints --------------------------------------------------------

test("listen() serves fd://N when N is inside the passed range", async () => {
  const echo = await launchEcho("fd://4", [
    { type: "tcp" },
    { type: "tcp", host: "::1" },
  ]);
  try {
    const port = echo.fds[1]!.port!;
    assert.deepEqual(echo.event.address, {
      address: "::1",
      family: "IPv6",
      port,
    });
    assert.equal(await ping({ host: "::1", port }), `${echo.pid} ping`);
  } finally {
    await echo.stop();
  }
});

test("listen() fails with FD_NOT_PASSED for fd://N outside the passed range", async () => {
  const echo = await launchEcho("fd://7", [{ type: "tcp" }, { type: "tcp" }]);
  assertError(
    echo,
    "FD_NOT_PASSED",
    "Cannot listen on fd://7: fd 7 is not among the 2 fds systemd passed (3-4)",
  );
  const one = await launchEcho("fd://4", [{ type: "tcp" }]);
  assertError(
    one,
    "FD_NOT_PASSED",
    "Cannot listen on fd://4: fd 4 is not among the 1 fd systemd passed (3)",
  );
});

test("listen() serves fd://name on the first passed fd with that name", async () => {
  const dir = folder();
  const echo = await launchEcho("fd://web", [
    { type: "tcp" },
    { type: "unix", path: join(dir, "web.sock") },
    { type: "tcp" },
  ], { names: "admin:web:web" });
  try {
    assert.equal(echo.event.event, "listening", echo.event.message);
    assert.equal(
      await ping({ path: join(dir, "web.sock") }),
      `${echo.pid} ping`,
    );
  } finally {
    await echo.stop();
  }
});

test("listen() fails with NAME_NOT_FOUND naming fd://name and the passed names", async () => {
  const echo = await launchEcho("fd://web", [{ type: "tcp" }, {
    type: "tcp",
  }], { names: "admin:metrics" });
  assertError(
    echo,
    "NAME_NOT_FOUND",
    'Cannot listen on fd://web: no passed fd is named "web"; the names are "admin", "metrics"',
  );
});

test("listen() fails clearly for fd:// endpoints when nothing was passed", async () => {
  await assert.rejects(listen("fd://3"), {
    name: "ActivationError",
    code: "FD_NOT_PASSED",
    message: "Cannot listen on fd://3: systemd passed no fds to this process",
  });
  await assert.rejects(listen("fd://web"), {
    name: "ActivationError",
    code: "NAME_NOT_FOUND",
    message: "Cannot listen on fd://web: systemd passed no fds to this process",
  });
});

// --- A passed fd is checked before use --------------------------------------

test("listen() refuses a passed UDP socket with UNSUITABLE_SOCKET describing it", async () => {
  const echo = await launchEcho("fd://3", [{ type: "udp" }]);
  assertError(
    echo,
    "UNSUITABLE_SOCKET",
    `Cannot listen on fd://3: fd 3 is a dgram ipv4 socket on 127.0.0.1:${
      echo.fds[0]!.port
    }, not a stream socket; listenDatagram() serves datagram sockets`,
  );
});

test("listen() refuses a passed unix socket that is not listening, also when preferred over the endpoint", async () => {
  const dir = folder();
  const path = join(dir, "bound.sock");
  const configured = join(dir, "configured.sock");
  const echo = await launchEcho(`unix://${configured}`, [{
    type: "unix",
    path,
    listen: false,
  }]);
  assertError(
    echo,
    "UNSUITABLE_SOCKET",
    `Cannot listen on unix://${configured} through the socket systemd passed: fd 3 is an unconnected stream unix socket at ${path}, neither listening nor connected`,
  );
  assert.equal(existsSync(configured), false);
});

test("listen() refuses a passed pipe with NOT_A_SOCKET saying what it is", async () => {
  const echo = await launchEcho("fd://3", ["pipe"]);
  assertError(
    echo,
    "NOT_A_SOCKET",
    "Cannot listen on fd://3: fd 3 is not a socket: it is a FIFO or pipe",
  );
});

test("Closing a server on a passed unix socket never unlinks its path", async () => {
  const dir = folder();
  const path = join(dir, "passed.sock");
  const echo = await launchEcho(`unix://${path}`, [{ type: "unix", path }]);
  assert.equal(echo.event.event, "listening", echo.event.message);
  const before = lstatSync(path);
  assert.equal(await ping({ path }), `${echo.pid} ping`);
  await echo.stop();
  const afterClose = lstatSync(path);
  assert.ok(afterClose.isSocket());
  assert.equal(afterClose.ino, before.ino);
});

// --- Under the real systemd-socket-activate ---------------------------------

/**
 * Starts the echo fixture on `uri` under systemd-socket-activate listening
 * on `listenOn`; resolves once its sockets are open (the first connection
 * then starts the fixture).
 */
function activateEcho(
  listenOn: readonly string[],
  uri: string,
  options: { names?: readonly string[]; listenOptions?: object } = {},
): Promise<Activated> {
  return activate(
    [
      ...fixtureCommand("listen_echo", { denoFlags: DENO_FLAGS }),
      uri,
      JSON.stringify(options.listenOptions ?? {}),
    ],
    { listen: listenOn, names: options.names },
  );
}

/** The fixture's next event. */
async function nextEvent(activated: Activated): Promise<Event> {
  return JSON.parse(await within(activated.nextLine(), "the fixture")) as Event;
}

test("listen() under systemd-socket-activate serves the named TCP socket, not the configured port", async () => {
  const [first, second, configured] = [
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const activated = await activateEcho(
    [`127.0.0.1:${first}`, `127.0.0.1:${second}`],
    `http://127.0.0.1:${configured}`,
    { names: ["admin", "web"], listenOptions: { name: "web" } },
  );
  try {
    // The first connection starts the fixture; its answer proves who serves.
    const answer = ping({ port: second });
    const event = await nextEvent(activated);
    assert.equal(event.event, "listening", event.message);
    assert.match(await answer, /^\d+ ping$/);
    assert.deepEqual((event.address as { port: number }).port, second);
    assert.equal(await accepts({ port: configured }), false);
  } finally {
    await stop(activated, "SIGTERM");
  }
});

test("listen() under systemd-socket-activate serves the passed unix socket and leaves it in place", async () => {
  const dir = folder();
  const passed = join(dir, "passed.sock");
  const configured = join(dir, "configured.sock");
  const activated = await activateEcho([passed], `unix://${configured}`);
  try {
    const answer = ping({ path: passed });
    const event = await nextEvent(activated);
    assert.equal(event.event, "listening", event.message);
    assert.match(await answer, /^\d+ ping$/);
    assert.equal(existsSync(configured), false);
    activated.child.kill("SIGTERM");
    assert.equal((await nextEvent(activated)).event, "closed");
  } finally {
    await stop(activated, "SIGTERM");
  }
  assert.ok(lstatSync(passed).isSocket());
});

// --- Binding a unix socket here ---------------------------------------------

test("listen() binds a unix socket with mode 0660 by default and leaves no temporary folder", async () => {
  const dir = folder();
  const path = join(dir, "app.sock");
  const server = echo(await listen(`unix://${path}`));
  try {
    const stats = lstatSync(path);
    assert.ok(stats.isSocket());
    assert.equal(stats.mode & 0o7777, 0o660);
    assert.deepEqual(readdirSync(dir), ["app.sock"]);
    assert.equal(await ping({ path }), "here ping");
  } finally {
    await close(server);
  }
});

test("listen() binds a unix socket with the mode asked for", async () => {
  for (const mode of [0o600, 0o666, 0o000]) {
    const dir = folder();
    const path = join(dir, "app.sock");
    const server = await listen(`unix://${path}`, { mode });
    try {
      assert.equal(lstatSync(path).mode & 0o7777, mode);
      assert.deepEqual(readdirSync(dir), ["app.sock"]);
    } finally {
      await close(server);
    }
  }
  await assert.rejects(
    listen(`unix://${folder()}/a.sock`, { mode: 0o1777 }),
    RangeError,
  );
});

test("Closing a server removes the unix socket it bound, but not what replaced it", async () => {
  const dir = folder();
  const path = join(dir, "app.sock");
  await close(await listen(`unix://${path}`));
  assert.equal(existsSync(path), false);

  const server = await listen(`unix://${path}`);
  rmSync(path);
  writeFileSync(path, "someone else's");
  await close(server);
  assert.equal(readFileSync(path, "utf8"), "someone else's");
});

test("listen() removes a stale unix socket and binds in its place", async () => {
  const dir = folder();
  const path = join(dir, "app.sock");
  await staleSocket(path);
  const before = lstatSync(path).ino;
  const server = echo(await listen(`unix://${path}`));
  try {
    assert.notEqual(lstatSync(path).ino, before);
    assert.equal(await ping({ path }), "here ping");
  } finally {
    await close(server);
  }
});

test("listen() refuses a live unix socket with ADDRESS_IN_USE and leaves it serving", async () => {
  const dir = folder();
  const path = join(dir, "app.sock");
  const live = echo(await listen(`unix://${path}`));
  try {
    await assert.rejects(listen(`unix://${path}`), {
      name: "ActivationError",
      code: "ADDRESS_IN_USE",
      message:
        `Cannot listen on unix://${path}: a server already listens on ${path}`,
    });
    assert.equal(await ping({ path }), "here ping");
  } finally {
    await close(live);
  }
});

test("listen() leaves a file, a directory or a symlink at the socket path untouched, with PATH_NOT_SOCKET", async () => {
  const dir = folder();
  const file = join(dir, "file.sock");
  writeFileSync(file, "data");
  const directory = join(dir, "dir.sock");
  mkdirSync(directory);
  writeFileSync(join(directory, "inside"), "kept");
  const stale = join(dir, "stale.sock");
  await staleSocket(stale);
  const link = join(dir, "link.sock");
  symlinkSync(stale, link);
  const cases: [string, string][] = [
    [file, "a regular file"],
    [directory, "a directory"],
    [link, "a symbolic link"],
  ];
  for (const [path, what] of cases) {
    await assert.rejects(listen(`unix://${path}`), {
      name: "ActivationError",
      code: "PATH_NOT_SOCKET",
      message:
        `Cannot listen on unix://${path}: ${path} is ${what}, not a stale socket; it is left untouched`,
    });
  }
  assert.equal(readFileSync(file, "utf8"), "data");
  assert.equal(readFileSync(join(directory, "inside"), "utf8"), "kept");
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.ok(lstatSync(stale).isSocket());
  assert.deepEqual(readdirSync(dir).sort(), [
    "dir.sock",
    "file.sock",
    "link.sock",
    "stale.sock",
  ]);
});

test("listen() creates no parent folders unless createParents is set", async () => {
  const dir = folder();
  const path = join(dir, "a", "b", "app.sock");
  await assert.rejects(listen(`unix://${path}`), (error: unknown) => {
    assert.ok(error instanceof ActivationError);
    assert.equal(error.code, "LISTEN_FAILED");
    assert.equal(error.errno, 2);
    assert.match(
      error.message,
      /the folder .*\/a\/b does not exist \(createParents makes it\)/,
    );
    return true;
  });
  assert.deepEqual(readdirSync(dir), []);
  const server = await listen(`unix://${path}`, { createParents: true });
  try {
    assert.ok(lstatSync(path).isSocket());
    assert.equal(statSync(join(dir, "a")).isDirectory(), true);
  } finally {
    await close(server);
  }
});

// Paths whose temporary path would not fit in sun_path, tmpfs, another user,
// a kill inside the bind and racing binds: tests/listen_bind_test.ts.

// --- Binding TCP here -------------------------------------------------------

test("listen() binds TCP on the configured host and port, IPv6 without brackets", async () => {
  for (
    const [uri, family] of [
      ["http://127.0.0.1:0", "IPv4"],
      ["http://[::1]:0", "IPv6"],
      ["http://localhost:0", undefined],
    ] as const
  ) {
    const server = echo(await listen(uri));
    try {
      const address = server.address();
      assert.ok(address !== null && typeof address === "object");
      if (family !== undefined) assert.equal(address.family, family);
      assert.ok(address.port > 0);
      assert.equal(
        await ping({ host: address.address, port: address.port }),
        "here ping",
      );
    } finally {
      await close(server);
    }
  }
});

test("listen() refuses to bind TCP under unixOnly, and binds unix sockets", async () => {
  await assert.rejects(listen("http://127.0.0.1:0", { unixOnly: true }), {
    name: "ActivationError",
    code: "TCP_NOT_ALLOWED",
    message:
      "Cannot listen on http://127.0.0.1:0: unixOnly forbids binding TCP, and systemd passed no socket",
  });
  const path = join(folder(), "app.sock");
  await close(await listen(`unix://${path}`, { unixOnly: true }));
});

test("listen() fails with ADDRESS_IN_USE on a TCP port in use", async () => {
  const server = await listen("http://127.0.0.1:0");
  try {
    const { port } = server.address() as { port: number };
    await assert.rejects(listen(`http://127.0.0.1:${port}`), {
      code: "ADDRESS_IN_USE",
    });
  } finally {
    await close(server);
  }
});

test("listen() runs under unixOnly on the passed TCP socket", async () => {
  const echo = await launchEcho("http://127.0.0.1:1", [{ type: "tcp" }], {
    listenOptions: { unixOnly: true },
  });
  try {
    assert.equal(await ping({ port: echo.fds[0]!.port! }), `${echo.pid} ping`);
  } finally {
    await echo.stop();
  }
});

// --- The seed's connector cases ---------------------------------------------

test("listen() takes the seed's endpoints and rejects ftp://", async () => {
  await assert.rejects(listen("ftp://127.0.0.1"), {
    name: "ActivationError",
    code: "INVALID_ENDPOINT",
  });
  // unix:///run/aziot/keyd.sock, without its folder: nothing is created.
  if (!existsSync("/run/aziot")) {
    await assert.rejects(listen("unix:///run/aziot/keyd.sock"), {
      code: "LISTEN_FAILED",
    });
    assert.equal(existsSync("/run/aziot"), false);
  }
});

test("listen() with unsetEnv removes the LISTEN_* variables once the socket is chosen, errors included", async () => {
  const kept = await launchEcho("fd://3", [{ type: "tcp" }], {
    names: "web",
  });
  try {
    assert.equal(kept.event.event, "listening", kept.event.message);
    assert.deepEqual(kept.event.listenEnv, [
      "LISTEN_FDNAMES",
      "LISTEN_FDS",
      "LISTEN_PID",
    ]);
  } finally {
    await kept.stop();
  }
  const unset = await launchEcho("fd://web", [{ type: "tcp" }], {
    names: "web",
    listenOptions: { unsetEnv: true },
  });
  try {
    assert.equal(unset.event.event, "listening", unset.event.message);
    assert.deepEqual(unset.event.listenEnv, []);
  } finally {
    await unset.stop();
  }
  const failed = await launchEcho("fd://7", [{ type: "tcp" }], {
    listenOptions: { unsetEnv: true },
  });
  assert.equal(failed.event.event, "error");
  assert.equal(failed.event.code, "FD_NOT_PASSED");
  assert.deepEqual(failed.event.listenEnv, []);
});
