// Node only: Node's libuv makes inherited fds close-on-exec at start-up, so
// listenFds() should load no native code; koffi is the fallback for an fd that
// lacks the flag anyway (an embedder may turn that start-up step off).

import assert from "node:assert/strict";
import { test } from "node:test";
import type { LaunchFd } from "./_launch.ts";
import {
  heldByChild,
  runProbe,
  socketTargets,
} from "./fixtures/probe_launch.ts";

const TCP: LaunchFd = { type: "tcp" };
const ACTIVATED = { LISTEN_PID: "$PID", LISTEN_FDS: "2" };

test("listenFds() on Node loads no native code when the fds are already close-on-exec", async () => {
  const report = await runProbe(
    { inspect: 2, call: "listenFds", maps: true, child: true },
    { fds: [TCP, TCP], env: ACTIVATED },
  );
  assert.equal(report.error, undefined);
  assert.equal(report.koffi, false);
  assert.deepEqual(report.before, [true, true]);
  assert.deepEqual(report.after, [true, true]);
  assert.deepEqual(heldByChild(report, socketTargets(report)), []);
});

test("getSystemdSocket() on Node loads no native code either", async () => {
  const report = await runProbe(
    { call: "getSystemdSocket", name: "b", maps: true },
    { fds: [TCP, TCP], env: { ...ACTIVATED, LISTEN_FDNAMES: "a:b" } },
  );
  assert.equal(report.error, undefined);
  assert.equal(report.result, 4);
  assert.equal(report.koffi, false);
});

test("listenFds() on Node sets FD_CLOEXEC through koffi on an fd that lacks it", async () => {
  const report = await runProbe(
    {
      inspect: 2,
      clearCloexec: [4],
      call: "listenFds",
      maps: true,
      child: true,
    },
    { fds: [TCP, TCP], env: ACTIVATED },
  );
  assert.equal(report.error, undefined);
  assert.deepEqual(report.before, [true, false]);
  assert.deepEqual(report.after, [true, true]);
  assert.equal(report.koffi, true);
  assert.deepEqual(heldByChild(report, socketTargets(report)), []);
});

test("on Node, a child inherits a passed fd whose flag was cleared and no one set it", async () => {
  // The control for the test above: without listenFds(), the cleared fd
  // reaches the child, so that test can fail.
  const report = await runProbe(
    { inspect: 2, clearCloexec: [4], child: true },
    { fds: [TCP, TCP], env: ACTIVATED },
  );
  const sockets = socketTargets(report);
  assert.equal(sockets.length, 2);
  assert.deepEqual(report.after, [true, false]);
  assert.deepEqual(heldByChild(report, sockets), [sockets[1]]);
});
