// isFifo() and isSpecial() against the real libsystemd's sd_is_fifo() and
// sd_is_special(): every pair of an fd of each file type (FIFO, regular file,
// character and block device, directory, socket, symlink, closed) and a
// path (none, the same file, another, through a symlink, missing, not a
// directory, a symlink loop, too long) must give the same answer, or the
// same errno as an ActivationError.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { native } from "./_native.deno.ts";
import { ActivationError, isFifo, isSpecial } from "./_lib.ts";

const O_RDONLY = 0;
const O_RDWR = 2;
const O_NONBLOCK = 0o4000;
const O_DIRECTORY = 0o200000;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;

const root = mkdtempSync(join(tmpdir(), "fd-kind-test-"));
const opened: number[] = [];
after(() => {
  for (const fd of opened) native.close(fd);
  rmSync(root, { recursive: true, force: true });
});

function path(name: string): string {
  return join(root, name);
}

function open(file: string, flags: number): number {
  const fd = native.open(file, flags | O_CLOEXEC);
  assert.ok(fd >= 0, `open(${file}) failed: errno ${-fd}`);
  opened.push(fd);
  return fd;
}

/** The files of the test, and an fd on each, opened as systemd would. */
async function makeFiles(): Promise<{
  fds: Record<string, number>;
  paths: (string | undefined)[];
}> {
  execFileSync("mkfifo", [path("fifo"), path("other.fifo")]);
  writeFileSync(path("file"), "data\n");
  writeFileSync(path("other.file"), "other\n");
  linkSync(path("file"), path("hard.link"));
  symlinkSync(path("file"), path("file.symlink"));
  symlinkSync(path("fifo"), path("fifo.symlink"));
  symlinkSync("/dev/null", path("null.symlink"));
  symlinkSync(path("loop.b"), path("loop.a"));
  symlinkSync(path("loop.a"), path("loop.b"));
  mkdirSync(path("dir"));
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path("sock"), resolve));
  after(() => server.close());
  const fds: Record<string, number> = {
    // ListenFIFO= opens the FIFO read-write and non-blocking.
    fifo: open(path("fifo"), O_RDWR | O_NONBLOCK),
    "other fifo": open(path("other.fifo"), O_RDWR | O_NONBLOCK),
    file: open(path("file"), O_RDONLY | O_NONBLOCK),
    "/dev/null": open("/dev/null", O_RDONLY | O_NONBLOCK),
    "/dev/zero": open("/dev/zero", O_RDONLY | O_NONBLOCK),
    directory: open(path("dir"), O_RDONLY | O_DIRECTORY),
    // O_PATH: the inode without opening it (a socket cannot be opened).
    socket: open(path("sock"), O_PATH),
    symlink: open(path("file.symlink"), O_PATH | O_NOFOLLOW),
    // An fd number nothing has open.
    closed: 1000,
  };
  if (existsSync("/dev/loop0")) {
    fds["block device"] = open("/dev/loop0", O_PATH);
  }
  const paths = [
    undefined,
    path("fifo"),
    path("other.fifo"),
    path("fifo.symlink"),
    path("file"),
    path("other.file"),
    path("hard.link"),
    path("file.symlink"),
    "/dev/null",
    "/dev/zero",
    path("null.symlink"),
    path("dir"),
    path("sock"),
    "/dev/loop0",
    path("missing"),
    path("file") + "/below",
    path("loop.a"),
    "/" + "x".repeat(5000),
    "",
  ];
  return { fds, paths };
}

/** What our function gives, in libsystemd's terms: 1, 0 or -errno. */
function ours(check: () => boolean): number {
  try {
    return check() ? 1 : 0;
  } catch (error) {
    assert.ok(error instanceof ActivationError, String(error));
    assert.equal(error.code, "STAT_FAILED", error.message);
    assert.ok(error.errno !== undefined, error.message);
    return -error.errno;
  }
}

test(
  "isFifo() and isSpecial() agree with libsystemd's sd_is_fifo() and sd_is_special() on every kind of fd and path",
  { skip: native.libsystemdAvailable() ? false : "no libsystemd.so.0" },
  async () => {
    const { fds, paths } = await makeFiles();
    const outcomes = new Map<string, number>();
    for (const [kind, fd] of Object.entries(fds)) {
      for (const path of paths) {
        const where = `fd ${fd} (${kind}), path ${JSON.stringify(path)}`;
        const fifo = native.sdIsFifo(fd, path);
        assert.equal(ours(() => isFifo(fd, path)), fifo, `isFifo: ${where}`);
        const special = native.sdIsSpecial(fd, path);
        assert.equal(
          ours(() => isSpecial(fd, path)),
          special,
          `isSpecial: ${where}`,
        );
        for (const [name, result] of [["fifo", fifo], ["special", special]]) {
          const key = `${name} ${result}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        }
      }
    }
    // Every outcome was met: true, false, EBADF, ELOOP, ENAMETOOLONG.
    for (const key of ["fifo 1", "fifo 0", "special 1", "special 0"]) {
      assert.ok(outcomes.has(key), `no case gave ${key}`);
    }
    for (const errno of [9, 36, 40]) {
      assert.ok(outcomes.has(`fifo -${errno}`), `no case gave -${errno}`);
    }
  },
);

test("isFifo() and isSpecial() refuse an fd that is not a non-negative integer", () => {
  for (const fd of [-1, 1.5, Number.NaN]) {
    assert.throws(() => isFifo(fd), RangeError);
    assert.throws(() => isSpecial(fd), RangeError);
  }
});

test("isFifo() names the closed fd in its STAT_FAILED error", () => {
  assert.throws(() => isFifo(1000), {
    name: "ActivationError",
    code: "STAT_FAILED",
    errno: 9,
    message: "Fd 1000 is not open",
  });
});
