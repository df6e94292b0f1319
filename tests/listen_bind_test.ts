// Binding a unix socket in place (issue 7): the private folder is made beside
// the socket, so a user who owns only the socket's folder can bind, tmpfs
// mount points work, every path that fits sun_path binds, and what a process
// killed inside the bind leaves is removed by the next listen() of the same
// path, and nothing else. Processes are stopped inside the bind with the
// fixture's pause (tests/fixtures/_pause_bind.ts), never with a sleep.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { within } from "./_activator.ts";
import { close, echo, ping, staleSocket } from "./_echo.ts";
import { lineReader } from "./_launch.ts";
import { ActivationError, listen } from "./_lib.ts";
import { fixtureCommand, runtime } from "./_runtime.ts";

const DENO_FLAGS = [
  "--allow-env",
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-net",
];
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

const root = mkdtempSync(join(tmpdir(), "listen-bind-test-"));
// Searchable by the unprivileged user of the tests that switch to it.
chmodSync(root, 0o755);
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
/** A fresh empty folder for one test. */
function folder(): string {
  const path = join(root, String(folders++));
  mkdirSync(path);
  return path;
}

/**
 * A socket path of exactly `bytes` bytes, in a folder of its own, itself
 * alone in a fresh folder (to see that nothing is made outside it).
 */
function pathOfLength(bytes: number, name = "app.sock"): string {
  const outer = folder();
  const dir = join(outer, "d".repeat(bytes - outer.length - name.length - 2));
  mkdirSync(dir);
  const path = join(dir, name);
  assert.equal(Buffer.byteLength(path), bytes);
  return path;
}

/** The names in `dir`, sorted. */
function entries(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** The private folders of socket `name` in `dir`. */
function privateFolders(dir: string, name = "app.sock"): string[] {
  return entries(dir).filter((entry) =>
    new RegExp(`^\\.${name.replaceAll(".", "\\.")}-[A-Za-z0-9]{6}$`).test(
      entry,
    )
  );
}

interface Event {
  event: string;
  at?: string;
  folder?: string;
  code?: string;
  message?: string;
}

/** The echo fixture in a child process. */
interface Fixture {
  readonly child: ChildProcess;
  /** Its next JSON line. */
  next(): Promise<Event>;
  /** Lets a paused fixture go on. */
  resume(): void;
  /** Resolves with the exit code or signal. */
  readonly exited: Promise<number | string>;
  stderr(): string;
}

/**
 * Runs tests/fixtures/listen_echo.ts on `uri`, stopping at `pause` if given;
 * `prefix` runs it through another program (setpriv).
 */
function startFixture(
  uri: string,
  options: {
    pause?: "before-bind" | "after-bind";
    prefix?: readonly string[];
    env?: Record<string, string>;
    command?: readonly string[];
  } = {},
): Fixture {
  const command = options.command ??
    fixtureCommand("listen_echo", { denoFlags: DENO_FLAGS });
  const fifo = join(folder(), "resume");
  if (options.pause !== undefined) {
    const made = spawnSync("mkfifo", [fifo], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
  }
  const argv = [
    ...options.prefix ?? [],
    ...command,
    uri,
    "{}",
    ...options.pause === undefined ? [] : [options.pause, fifo],
  ];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ...options.env },
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on(
    "data",
    (chunk: string) => stderr += chunk,
  );
  const lines = lineReader(child);
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
  );
  return {
    child,
    async next() {
      const line = await within(lines.next(), "the fixture").catch(
        (error: Error) => {
          throw new Error(`${error.message}\n${stderr}`);
        },
      );
      return JSON.parse(line) as Event;
    },
    // The paused fixture waits in open(): this open() meets it.
    resume: () => writeFileSync(fifo, "go"),
    exited,
    stderr: () => stderr,
  };
}

/** Kills a fixture with SIGKILL and waits for it to be gone. */
async function kill(fixture: Fixture): Promise<void> {
  fixture.child.kill("SIGKILL");
  await within(fixture.exited, "the killed fixture to exit");
}

/** Stops a listening fixture with SIGTERM once it reported "closed". */
async function stop(fixture: Fixture): Promise<void> {
  process.kill(fixture.child.pid!, "SIGTERM");
  assert.equal((await fixture.next()).event, "closed");
  await fixture.exited;
}

// --- Paths up to 107 bytes ---------------------------------------------------

test("listen() binds socket paths up to 107 bytes, also where .NAME-XXXXXX/s beside it would not fit", async () => {
  // 97 bytes: the temporary path takes 107. From 98 on, it would not fit
  // in sun_path and is bound through /proc/self/fd.
  for (const bytes of [97, 98, 106, 107]) {
    const path = pathOfLength(bytes);
    const dir = dirname(path);
    const server = echo(await listen(`unix://${path}`, { mode: 0o600 }));
    try {
      const stats = lstatSync(path);
      assert.ok(stats.isSocket());
      assert.equal(stats.mode & 0o7777, 0o600, `${bytes} bytes`);
      assert.deepEqual(entries(dir), ["app.sock"], `${bytes} bytes`);
      assert.deepEqual(entries(dirname(dir)), [basename(dir)]);
      assert.equal(await ping({ path }), "here ping");
    } finally {
      await close(server);
    }
    assert.deepEqual(entries(dir), [], `${bytes} bytes, after close`);
  }
});

test("listen() of a 107-byte path with a one-byte name binds, and a 108-byte path is INVALID_ENDPOINT", async () => {
  const path = pathOfLength(107, "a");
  const server = await listen(`unix://${path}`);
  try {
    assert.equal(lstatSync(path).mode & 0o7777, 0o660);
    assert.deepEqual(entries(dirname(path)), ["a"]);
    assert.deepEqual(entries(dirname(dirname(path))), [
      basename(dirname(path)),
    ]);
  } finally {
    await close(server);
  }
  await assert.rejects(listen(`unix://${path}x`), {
    code: "INVALID_ENDPOINT",
  });
});

// --- tmpfs mount points -------------------------------------------------------

test("listen() binds on a tmpfs mount point: /dev/shm", async (t) => {
  if (!existsSync("/dev/shm") || !statSync("/dev/shm").isDirectory()) {
    t.skip("no /dev/shm here");
    return;
  }
  const name = `${basename(folder())}-${process.pid}.sock`;
  const path = join("/dev/shm", name);
  const server = echo(await listen(`unix://${path}`));
  try {
    assert.ok(lstatSync(path).isSocket());
    assert.equal(await ping({ path }), "here ping");
    assert.deepEqual(privateFolders("/dev/shm", name), []);
  } finally {
    await close(server);
  }
  assert.equal(existsSync(path), false);
});

test("listen() binds at the top of a freshly mounted tmpfs", async (t) => {
  const mountPoint = folder();
  const mounted = spawnSync(
    "mount",
    ["-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", mountPoint],
    { encoding: "utf8" },
  );
  if (mounted.status !== 0) {
    t.skip(`cannot mount a tmpfs here: ${mounted.stderr || mounted.error}`);
    return;
  }
  try {
    const path = join(mountPoint, "app.sock");
    const server = echo(await listen(`unix://${path}`, { mode: 0o640 }));
    try {
      assert.equal(lstatSync(path).mode & 0o7777, 0o640);
      assert.equal(await ping({ path }), "here ping");
      assert.deepEqual(entries(mountPoint), ["app.sock"]);
    } finally {
      await close(server);
    }
  } finally {
    const unmounted = spawnSync("umount", [mountPoint], { encoding: "utf8" });
    assert.equal(unmounted.status, 0, unmounted.stderr);
  }
});

// --- A user who owns only the socket's folder -------------------------------

/**
 * Gives `to` the content of file `from`, readable (and executable, if it is)
 * by any user: a hard link when the file already is and the filesystem
 * allows, a copy with the bits added otherwise, never a change to `from`.
 */
function readableFile(from: string, to: string): void {
  const mode = statSync(from).mode;
  const executable = (mode & 0o100) !== 0;
  const wanted = executable ? 0o005 : 0o004;
  if ((mode & wanted) === wanted) {
    try {
      linkSync(from, to);
      return;
    } catch {
      // Another filesystem: copied below.
    }
  }
  copyFileSync(from, to);
  chmodSync(to, executable ? 0o755 : 0o644);
}

/** A copy of the tree `from` at `to` that any user can read. */
function readableTree(
  from: string,
  to: string,
  skip: readonly string[] = [],
): void {
  mkdirSync(to, { mode: 0o755 });
  chmodSync(to, 0o755);
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (skip.includes(entry.name)) continue;
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) readableTree(source, target);
    else if (entry.isFile()) readableFile(source, target);
  }
}

/** The closest folder above `path` that holds `marker`. */
function above(path: string, marker: string): string {
  let dir = dirname(path);
  while (!existsSync(join(dir, marker))) {
    assert.notEqual(dirname(dir), dir, `no ${marker} above ${path}`);
    dir = dirname(dir);
  }
  return dir;
}

/** How to run the echo fixture as uid 65534, set up once. */
interface OtherUser {
  readonly prefix: readonly string[];
  readonly command: readonly string[];
  readonly env: Record<string, string>;
}
let otherUser: OtherUser | undefined;

/**
 * The echo fixture as uid 65534, from a copy of the sources (Deno) or of the
 * npm build (Node) that this user can read wherever the checkout lives: a
 * copy of Deno's executable and cache too, which live under /root here.
 */
function asOtherUser(
  t: { skip(message: string): void },
): OtherUser | undefined {
  if (!isRoot) {
    t.skip("switching to another user needs root");
    return undefined;
  }
  if (!existsSync("/usr/bin/setpriv")) {
    t.skip("no setpriv (util-linux) here");
    return undefined;
  }
  if (otherUser !== undefined) return otherUser;
  const kit = folder();
  const [program, ...args] = fixtureCommand("listen_echo", {
    denoFlags: DENO_FLAGS,
  });
  const fixture = args.at(-1)!;
  const project = above(
    fixture,
    runtime === "deno" ? "deno.json" : "package.json",
  );
  const copy = join(kit, "project");
  readableTree(project, copy, [".git", "npm", ".stage"]);
  const command = [
    ...args.slice(0, -1),
    join(copy, fixture.slice(project.length)),
  ];
  const env: Record<string, string> = {};
  if (runtime === "deno") {
    const deno = join(kit, "deno");
    readableFile(program, deno);
    const info = spawnSync(program, ["info", "--json"], { encoding: "utf8" });
    const denoDir = (JSON.parse(info.stdout) as { denoDir: string }).denoDir;
    // Read-only is enough: the cache has what the lock file names.
    readableTree(denoDir, join(kit, "deno_dir"));
    env.DENO_DIR = join(kit, "deno_dir");
    env.HOME = "/nonexistent";
    command.unshift(deno);
  } else {
    command.unshift(program);
  }
  otherUser = {
    prefix: [
      "/usr/bin/setpriv",
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
    ],
    command,
    env,
  };
  return otherUser;
}

test("listen() as a user who owns only the socket's folder, under a root-owned parent, binds there and nowhere else", async (t) => {
  const user = asOtherUser(t);
  if (user === undefined) return;
  const parent = folder(); // root's, 0755
  const own = join(parent, "app");
  mkdirSync(own, { mode: 0o755 });
  chownSync(own, NOBODY, NOBODY);
  const path = join(own, "app.sock");
  const fixture = startFixture(`unix://${path}`, user);
  const event = await fixture.next();
  try {
    assert.equal(event.event, "listening", event.message ?? fixture.stderr());
    const stats = lstatSync(path);
    assert.ok(stats.isSocket());
    assert.equal(stats.uid, NOBODY);
    assert.equal(stats.mode & 0o7777, 0o660);
    assert.deepEqual(entries(own), ["app.sock"]);
    assert.deepEqual(entries(parent), ["app"]);
    assert.match(await ping({ path }), /^\d+ ping$/);
  } finally {
    if (event.event === "listening") await stop(fixture);
  }
  assert.deepEqual(entries(own), []);
});

test("listen() as that user in the root-owned folder fails with EACCES naming the private folder it tried", async (t) => {
  const user = asOtherUser(t);
  if (user === undefined) return;
  const parent = folder();
  const path = join(parent, "app.sock");
  const fixture = startFixture(`unix://${path}`, user);
  const event = await fixture.next();
  assert.equal(event.event, "error", fixture.stderr());
  assert.equal(event.code, "LISTEN_FAILED");
  assert.equal(
    event.message,
    `Cannot listen on unix://${path}: cannot create the private folder ${parent}/.app.sock-XXXXXX: EACCES`,
  );
  await fixture.exited;
  assert.deepEqual(entries(parent), []);
});

// --- Killed inside the bind ---------------------------------------------------

for (
  const [pause, left] of [
    ["after-bind", "its private folder holding a socket nobody listens on"],
    ["before-bind", "its empty private folder"],
  ] as const
) {
  test(`listen() removes what a process killed inside the bind left (${left})`, async () => {
    for (const path of [join(folder(), "app.sock"), pathOfLength(107)]) {
      const dir = dirname(path);
      const fixture = startFixture(`unix://${path}`, {
        pause,
        // Deno binds through /proc/self/fd, for a path this long, only
        // with --allow-all (listen_deno_test.ts).
        command: fixtureCommand("listen_echo", {
          denoFlags: Buffer.byteLength(path) > 97
            ? ["--allow-all"]
            : DENO_FLAGS,
        }),
      });
      const event = await fixture.next();
      assert.equal(
        event.event,
        "paused",
        `${event.message ?? ""}${fixture.stderr()}`,
      );
      await kill(fixture);
      // Killed inside the bind: the socket is not in place, and the
      // private folder is left.
      assert.deepEqual(entries(dir), [basename(event.folder!)]);
      assert.deepEqual(
        readdirSync(event.folder!),
        pause === "after-bind" ? ["s"] : [],
        path,
      );
      const server = echo(await listen(`unix://${path}`));
      try {
        assert.deepEqual(entries(dir), ["app.sock"]);
        assert.equal(await ping({ path }), "here ping");
      } finally {
        await close(server);
      }
    }
  });
}

test("listen() leaves alone what only looks like a leftover", async () => {
  const dir = folder();
  const path = join(dir, "app.sock");
  const elsewhere = folder();
  const live = createServer();
  // [name, how to make it, kept]
  const cases: [string, (path: string) => void | Promise<void>, boolean][] = [
    [".app.sock-empty1", (p) => mkdirSync(p, { mode: 0o700 }), false],
    [".app.sock-stale1", async (p) => {
      mkdirSync(p, { mode: 0o700 });
      await staleSocket(join(p, "s"));
    }, false],
    [".app.sock-open01", (p) => mkdirSync(p, { mode: 0o755 }), true],
    [".app.sock-file01", (p) => {
      mkdirSync(p, { mode: 0o700 });
      writeFileSync(join(p, "s"), "a file");
    }, true],
    [".app.sock-more01", async (p) => {
      mkdirSync(p, { mode: 0o700 });
      await staleSocket(join(p, "s"));
      writeFileSync(join(p, "x"), "and more");
    }, true],
    [".app.sock-live01", async (p) => {
      mkdirSync(p, { mode: 0o700 });
      await new Promise<void>((resolve) => live.listen(join(p, "s"), resolve));
    }, true],
    [".app.sock-link01", (p) => {
      const target = join(elsewhere, "target");
      mkdirSync(target, { mode: 0o700 });
      symlinkSync(target, p);
    }, true],
    [".web.sock-empty1", (p) => mkdirSync(p, { mode: 0o700 }), true],
    [".app.sock-short", (p) => mkdirSync(p, { mode: 0o700 }), true],
    [".app.sock-x", (p) => mkdirSync(p, { mode: 0o700 }), true],
  ];
  if (isRoot) {
    cases.push([".app.sock-other1", (p) => {
      mkdirSync(p, { mode: 0o700 });
      chownSync(p, NOBODY, NOBODY);
    }, true]);
  }
  for (const [name, make] of cases) await make(join(dir, name));
  const server = await listen(`unix://${path}`);
  try {
    const kept = cases.filter(([, , keep]) => keep).map(([name]) => name);
    assert.deepEqual(entries(dir), [...kept, "app.sock"].sort());
    assert.deepEqual(readdirSync(join(elsewhere, "target")), []);
    assert.equal(
      readdirSync(join(dir, ".app.sock-file01")).length,
      1,
    );
  } finally {
    await close(server);
    await close(live);
  }
});

// --- Racing binds -------------------------------------------------------------

test("Two listen() calls racing on one path in one process: one binds, the other fails with ADDRESS_IN_USE", async () => {
  for (let round = 0; round < 10; round++) {
    const dir = folder();
    const path = join(dir, "app.sock");
    const results = await Promise.allSettled([
      listen(`unix://${path}`),
      listen(`unix://${path}`),
    ]);
    const servers = results.flatMap((result) =>
      result.status === "fulfilled" ? [result.value] : []
    );
    const errors = results.flatMap((result) =>
      result.status === "rejected" ? [result.reason] : []
    );
    try {
      assert.equal(servers.length, 1);
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof ActivationError, String(errors[0]));
      assert.equal(errors[0].code, "ADDRESS_IN_USE");
      assert.deepEqual(entries(dir), ["app.sock"]);
    } finally {
      for (const server of servers) await close(server);
    }
  }
});

test("A bind stopped with its socket listening in its private folder loses to a listen() meanwhile, with ADDRESS_IN_USE, and leaves nothing", async () => {
  const dir = folder();
  const path = join(dir, "app.sock");
  const fixture = startFixture(`unix://${path}`, { pause: "after-bind" });
  const paused = await fixture.next();
  assert.equal(paused.event, "paused", fixture.stderr());
  const winner = echo(await listen(`unix://${path}`));
  try {
    // The other's folder holds a live socket: a bind in progress, kept.
    assert.deepEqual(entries(dir), [basename(paused.folder!), "app.sock"]);
    fixture.resume();
    const event = await fixture.next();
    assert.equal(event.code, "ADDRESS_IN_USE", event.message);
    assert.equal(
      event.message,
      `Cannot listen on unix://${path}: ${path} appeared while the socket was being made: EEXIST`,
    );
    assert.equal(await fixture.exited, 0);
    assert.deepEqual(entries(dir), ["app.sock"]);
    assert.equal(await ping({ path }), "here ping");
  } finally {
    await close(winner);
  }
});

test("A bind whose empty private folder another listen() took for a leftover starts over, and loses with ADDRESS_IN_USE", async () => {
  const dir = folder();
  const path = join(dir, "app.sock");
  const fixture = startFixture(`unix://${path}`, { pause: "before-bind" });
  const paused = await fixture.next();
  assert.equal(paused.event, "paused", fixture.stderr());
  const winner = echo(await listen(`unix://${path}`));
  try {
    // Empty, ours, 0700: indistinguishable from a leftover, so removed.
    assert.deepEqual(entries(dir), ["app.sock"]);
    fixture.resume();
    const event = await fixture.next();
    assert.equal(event.code, "ADDRESS_IN_USE", event.message);
    assert.equal(await fixture.exited, 0);
    assert.deepEqual(entries(dir), ["app.sock"]);
    assert.equal(await ping({ path }), "here ping");
  } finally {
    await close(winner);
  }
});
