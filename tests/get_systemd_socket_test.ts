// The seed's getSystemdSocket() cases (SPEC section 3), each in a real process
// with real sockets at fds 3, 4, … and the variables a manager would set.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { LaunchFd } from "./_launch.ts";
import { runtime } from "./_runtime.ts";
import { type ProbeReport, runProbe } from "./fixtures/probe_launch.ts";

const TCP: LaunchFd = { type: "tcp" };

function sockets(count: number): LaunchFd[] {
  return Array.from({ length: count }, () => TCP);
}

async function getSystemdSocket(
  count: number,
  env: Record<string, string>,
  name?: string,
): Promise<ProbeReport> {
  return await runProbe(
    {
      inspect: count,
      call: "getSystemdSocket",
      ...(name === undefined ? {} : { name }),
    },
    { fds: sockets(count), env },
  );
}

function assertReturned(report: ProbeReport, expected: number | null): void {
  assert.equal(report.error, undefined, JSON.stringify(report.error));
  assert.equal(report.result, expected);
}

// Every passed fd is made close-on-exec, whatever is returned; on Deno they
// start without the flag, so this checks the library did it.
function assertAllCloexec(report: ProbeReport): void {
  assert.deepEqual(report.after, report.after.map(() => true));
  if (runtime === "deno") {
    assert.deepEqual(report.before, report.before.map(() => false));
  }
}

test("getSystemdSocket() returns undefined when the process was not activated", async () => {
  const report = await getSystemdSocket(2, {}, "web");
  assertReturned(report, null);
  // Not activated: the fds are not the library's to touch.
  if (runtime === "deno") assert.deepEqual(report.after, [false, false]);
});

test("getSystemdSocket() returns undefined when LISTEN_PID is another process", async () => {
  const report = await getSystemdSocket(
    1,
    { LISTEN_PID: "1", LISTEN_FDS: "1" },
    "web",
  );
  assertReturned(report, null);
  if (runtime === "deno") assert.deepEqual(report.after, [false]);
});

test("getSystemdSocket() returns undefined for LISTEN_FDS=0, without an error", async () => {
  const report = await getSystemdSocket(
    1,
    { LISTEN_PID: "$PID", LISTEN_FDS: "0" },
    "web",
  );
  assertReturned(report, null);
});

test("getSystemdSocket() returns fd 3 for a single fd, whatever the name asked", async () => {
  for (const name of [undefined, "web", "other"]) {
    const report = await getSystemdSocket(
      1,
      { LISTEN_PID: "$PID", LISTEN_FDS: "1", LISTEN_FDNAMES: "web" },
      name,
    );
    assertReturned(report, 3);
    assertAllCloexec(report);
  }
});

test("getSystemdSocket() returns fd 3 for a single fd without LISTEN_FDNAMES", async () => {
  const report = await getSystemdSocket(
    1,
    { LISTEN_PID: "$PID", LISTEN_FDS: "1" },
    "web",
  );
  assertReturned(report, 3);
  assertAllCloexec(report);
});

test("getSystemdSocket() returns fd 3 for a single fd even when the names do not match its count", async () => {
  // The seed returns before it looks at the names; listenFds() would fail.
  const report = await getSystemdSocket(
    1,
    { LISTEN_PID: "$PID", LISTEN_FDS: "1", LISTEN_FDNAMES: "web:admin" },
    "admin",
  );
  assertReturned(report, 3);
});

test("getSystemdSocket() returns undefined for several fds and no name", async () => {
  const report = await getSystemdSocket(
    2,
    { LISTEN_PID: "$PID", LISTEN_FDS: "2", LISTEN_FDNAMES: "web:admin" },
  );
  assertReturned(report, null);
  assertAllCloexec(report);
});

test("getSystemdSocket() returns undefined for several fds, a name and no LISTEN_FDNAMES", async () => {
  const report = await getSystemdSocket(
    2,
    { LISTEN_PID: "$PID", LISTEN_FDS: "2" },
    "web",
  );
  assertReturned(report, null);
  assertAllCloexec(report);
});

test("getSystemdSocket() fails with NAME_COUNT_MISMATCH when names and fds differ in number", async () => {
  const report = await getSystemdSocket(
    3,
    { LISTEN_PID: "$PID", LISTEN_FDS: "3", LISTEN_FDNAMES: "web:admin" },
    "web",
  );
  assert.equal(report.error?.name, "ActivationError");
  assert.equal(report.error?.code, "NAME_COUNT_MISMATCH");
  assert.match(report.error?.message ?? "", /\b3 fds\b.*\b2 names\b/);
  assertAllCloexec(report);
});

test("getSystemdSocket() returns 3 + the index of the first fd with the name", async () => {
  const env = {
    LISTEN_PID: "$PID",
    LISTEN_FDS: "4",
    LISTEN_FDNAMES: "admin:web:metrics:web",
  };
  const web = await getSystemdSocket(4, env, "web");
  assertReturned(web, 4);
  assertAllCloexec(web);
  const metrics = await getSystemdSocket(4, env, "metrics");
  assertReturned(metrics, 5);
  const admin = await getSystemdSocket(4, env, "admin");
  assertReturned(admin, 3);
});

test("getSystemdSocket() matches names after unescaping, and the empty name", async () => {
  const env = {
    LISTEN_PID: "$PID",
    LISTEN_FDS: "3",
    LISTEN_FDNAMES: "a\\:b::c",
  };
  assertReturned(await getSystemdSocket(3, env, "a:b"), 3);
  assertReturned(await getSystemdSocket(3, env, ""), 4);
});

test("getSystemdSocket() fails with NAME_NOT_FOUND naming the missing name", async () => {
  const report = await getSystemdSocket(
    2,
    { LISTEN_PID: "$PID", LISTEN_FDS: "2", LISTEN_FDNAMES: "web:admin" },
    "metrics",
  );
  assert.equal(report.error?.name, "ActivationError");
  assert.equal(report.error?.code, "NAME_NOT_FOUND");
  assert.match(report.error?.message ?? "", /metrics/);
  assertAllCloexec(report);
});
