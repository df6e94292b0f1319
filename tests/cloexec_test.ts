// Close-on-exec as the kernel reports it (/proc/self/fdinfo) in a real process
// with real fds at 3, 4, …, and what a child started afterwards inherits.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { LaunchFd } from "./_launch.ts";
import { runtime } from "./_runtime.ts";
import {
  heldByChild,
  runProbe,
  socketTargets,
} from "./fixtures/probe_launch.ts";

const TCP: LaunchFd = { type: "tcp" };

test("listenFds() makes every passed fd close-on-exec, sockets and pipes", async () => {
  const report = await runProbe(
    { inspect: 3, call: "listenFds" },
    {
      fds: [TCP, "pipe", TCP],
      env: { LISTEN_PID: "$PID", LISTEN_FDS: "3" },
    },
  );
  assert.equal(report.error, undefined);
  assert.deepEqual(report.result, [
    { fd: 3, name: "unknown" },
    { fd: 4, name: "unknown" },
    { fd: 5, name: "unknown" },
  ]);
  assert.match(report.targets[1]!, /^pipe:/);
  // Deno leaves inherited fds as they came; Node's libuv marks them at
  // start-up (SPEC section 5).
  const expected = runtime === "deno" ? false : true;
  assert.deepEqual(report.before, [expected, expected, expected]);
  assert.deepEqual(report.after, [true, true, true]);
});

test("listenFds() leaves fds past LISTEN_FDS as they were", async () => {
  const report = await runProbe(
    { inspect: 3, call: "listenFds" },
    { fds: [TCP, TCP, TCP], env: { LISTEN_PID: "$PID", LISTEN_FDS: "2" } },
  );
  assert.equal(report.error, undefined);
  assert.deepEqual(report.after.slice(0, 2), [true, true]);
  assert.equal(report.after[2], report.before[2]);
  if (runtime === "deno") assert.equal(report.after[2], false);
});

test("a child started after listenFds() holds none of the passed sockets", async () => {
  const report = await runProbe(
    { inspect: 2, call: "listenFds", child: true },
    { fds: [TCP, TCP], env: { LISTEN_PID: "$PID", LISTEN_FDS: "2" } },
  );
  assert.equal(report.error, undefined);
  const sockets = socketTargets(report);
  assert.equal(sockets.length, 2);
  assert.deepEqual(heldByChild(report, sockets), []);
});

test("a child started without listenFds() inherits the sockets on Deno, not on Node", async () => {
  // The control for the test above: it shows the child's fds are read right
  // and that, on Deno, only the library stands between the child and fd 3.
  const report = await runProbe(
    { inspect: 2, child: true },
    { fds: [TCP, TCP], env: { LISTEN_PID: "$PID", LISTEN_FDS: "2" } },
  );
  const sockets = socketTargets(report);
  assert.equal(sockets.length, 2);
  if (runtime === "deno") {
    assert.deepEqual(report.before, [false, false]);
    assert.deepEqual(heldByChild(report, sockets), sockets);
  } else {
    assert.deepEqual(report.before, [true, true]);
    assert.deepEqual(heldByChild(report, sockets), []);
  }
});

test("getSystemdSocket() makes every passed fd close-on-exec, not only the one returned", async () => {
  const report = await runProbe(
    { inspect: 3, call: "getSystemdSocket", name: "b", child: true },
    {
      fds: [TCP, TCP, TCP],
      env: { LISTEN_PID: "$PID", LISTEN_FDS: "3", LISTEN_FDNAMES: "a:b:c" },
    },
  );
  assert.equal(report.error, undefined);
  assert.equal(report.result, 4);
  assert.deepEqual(report.after, [true, true, true]);
  assert.deepEqual(heldByChild(report, socketTargets(report)), []);
});
