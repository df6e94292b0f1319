// LISTEN_PIDFDID (systemd 259 and later): the pidfd inode id that makes
// LISTEN_PID unambiguous across pid reuse. libsystemd 252 on our machines
// predates it, so the oracle here is systemd's sd_listen_fds(): safe_atou64()
// for the syntax, then, where pidfds live on pidfs (they do on the kernels we
// run), a mismatch with our own id means "not for us". The launcher computes
// the right id ($PIDFDID) with os.pidfd_open() and fstat() on the exec'd
// process.
//
// Not covered: a kernel without pidfs, where libsystemd (and the library)
// skip the comparison; every kernel we test on has pidfs.

import assert from "node:assert/strict";
import { test } from "node:test";
import { launch } from "./_launch.ts";
import { fixtureCommand, runtime } from "./_runtime.ts";
import { LISTEN_VARIABLES } from "./_env.ts";
import { EINVAL, ERANGE } from "./_errno.ts";

const ALL = LISTEN_VARIABLES;
const PASSED = [
  { fd: 3, name: "web" },
  { fd: 4, name: "admin" },
];

interface Outcome {
  fds?: { fd: number; name: string }[];
  error?: { code: string; errno: number | undefined; message: string };
  env: string[];
  cloexec: number[];
}

async function run(
  env: Record<string, string | null>,
  unset = false,
): Promise<Outcome> {
  const child = await launch({
    argv: [...fixtureCommand("pidfdid"), ...(unset ? ["unset"] : [])],
    fds: ["pipe", "pipe"],
    env: {
      LISTEN_PID: "$PID",
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "web:admin",
      ...env,
    },
  });
  const line = await child.nextLine().catch((error: Error) => {
    throw new Error(`${error.message}\n${child.stderr()}`);
  });
  assert.equal(await child.exited, 0, child.stderr());
  return JSON.parse(line) as Outcome;
}

function assertInvalid(outcome: Outcome, errno: number): void {
  const message = JSON.stringify(outcome);
  assert.equal(outcome.fds, undefined, message);
  assert.equal(outcome.error?.code, "INVALID_LISTEN_PIDFDID", message);
  assert.equal(outcome.error?.errno, errno, message);
  assert.match(outcome.error?.message ?? "", /LISTEN_PIDFDID/);
}

test("listenFds() returns the fds when LISTEN_PIDFDID is this process's pidfd id", async () => {
  const outcome = await run({ LISTEN_PIDFDID: "$PIDFDID" });
  assert.deepEqual(outcome.fds, PASSED, JSON.stringify(outcome));
  assert.deepEqual(outcome.env, ALL);
  assert.deepEqual(outcome.cloexec, [3, 4]);
});

test("listenFds() accepts LISTEN_PIDFDID with leading whitespace, as safe_atou64() does", async () => {
  const outcome = await run({ LISTEN_PIDFDID: " \t$PIDFDID" });
  assert.deepEqual(outcome.fds, PASSED, JSON.stringify(outcome));
});

test("listenFds() returns [] when LISTEN_PIDFDID is another process's pidfd id", async () => {
  const ids = ["1", "$PIDFDID0", "0"];
  const outcomes = await Promise.all(
    ids.map((id) => run({ LISTEN_PIDFDID: id })),
  );
  for (const [index, outcome] of outcomes.entries()) {
    const message = `${ids[index]}: ${JSON.stringify(outcome)}`;
    assert.deepEqual(outcome.fds, [], message);
    assert.deepEqual(outcome.env, ALL, message);
    // Fds that are not ours are left alone. (Node itself makes every
    // inherited fd close-on-exec at start-up, so only Deno can show it.)
    if (runtime === "deno") assert.deepEqual(outcome.cloexec, [], message);
  }
});

test("listenFds() rejects a LISTEN_PIDFDID that is not a number with EINVAL", async () => {
  const ids = ["abc", "", "$PIDFDID ", "1x", "0x"];
  const outcomes = await Promise.all(
    ids.map((id) => run({ LISTEN_PIDFDID: id })),
  );
  for (const outcome of outcomes) assertInvalid(outcome, EINVAL);
});

test("listenFds() rejects a negative or too large LISTEN_PIDFDID with ERANGE", async () => {
  const ids = ["-1", "18446744073709551616"];
  const outcomes = await Promise.all(
    ids.map((id) => run({ LISTEN_PIDFDID: id })),
  );
  for (const outcome of outcomes) assertInvalid(outcome, ERANGE);
});

test("listenFds() checks LISTEN_PIDFDID before LISTEN_FDS", async () => {
  const [invalid, other] = await Promise.all([
    run({ LISTEN_PIDFDID: "abc", LISTEN_FDS: null }),
    run({ LISTEN_PIDFDID: "1", LISTEN_FDS: "abc" }),
  ]);
  assertInvalid(invalid, EINVAL);
  assert.deepEqual(other.fds, [], JSON.stringify(other));
});

test("listenFds() ignores an invalid LISTEN_PIDFDID when LISTEN_PID is another process", async () => {
  const outcome = await run({ LISTEN_PID: "1", LISTEN_PIDFDID: "abc" });
  assert.deepEqual(outcome.fds, [], JSON.stringify(outcome));
});

test("listenFds({ unsetEnv: true }) removes LISTEN_PIDFDID too, on success and on error", async () => {
  const [found, failed, other] = await Promise.all([
    run({ LISTEN_PIDFDID: "$PIDFDID" }, true),
    run({ LISTEN_PIDFDID: "-1" }, true),
    run({ LISTEN_PIDFDID: "1" }, true),
  ]);
  assert.deepEqual(found.fds, PASSED, JSON.stringify(found));
  assert.deepEqual(found.env, []);
  assert.equal(failed.error?.code, "INVALID_LISTEN_PIDFDID");
  assert.deepEqual(failed.env, []);
  assert.deepEqual(other.fds, []);
  assert.deepEqual(other.env, []);
});
