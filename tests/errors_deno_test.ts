// Deno's permissions: without --allow-ffi or --allow-env, an activated process
// gets an ActivationError that names the missing flag, not a bare NotCapable.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { LaunchFd } from "./_launch.ts";
import { runProbe } from "./fixtures/probe_launch.ts";

const TCP: LaunchFd = { type: "tcp" };
const ACTIVATED = { LISTEN_PID: "$PID", LISTEN_FDS: "2" };
const CALLS = ["listenFds", "getSystemdSocket"] as const;

for (const call of CALLS) {
  test(`${call}() fails with FFI_UNAVAILABLE naming --allow-ffi when run without it`, async () => {
    const report = await runProbe(
      { call },
      { fds: [TCP, TCP], env: ACTIVATED, denoFlags: ["--allow-env"] },
    );
    assert.equal(report.error?.name, "ActivationError");
    assert.equal(report.error?.code, "FFI_UNAVAILABLE");
    assert.match(report.error?.message ?? "", /--allow-ffi/);
  });

  test(`${call}() fails with ENV_UNAVAILABLE naming --allow-env when run without it`, async () => {
    const report = await runProbe(
      { call },
      { fds: [TCP, TCP], env: ACTIVATED, denoFlags: ["--allow-ffi"] },
    );
    assert.equal(report.error?.name, "ActivationError");
    assert.equal(report.error?.code, "ENV_UNAVAILABLE");
    assert.match(report.error?.message ?? "", /--allow-env/);
  });
}

test("listenFds() names the variable --allow-env does not cover", async () => {
  // LISTEN_PIDFDID is read too, so allowing only three of the four fails.
  const report = await runProbe(
    { call: "listenFds" },
    {
      fds: [TCP, TCP],
      env: ACTIVATED,
      denoFlags: [
        "--allow-env=LISTEN_PID,LISTEN_FDS,LISTEN_FDNAMES",
        "--allow-ffi",
      ],
    },
  );
  assert.equal(report.error?.code, "ENV_UNAVAILABLE");
  assert.match(report.error?.message ?? "", /LISTEN_PIDFDID/);
  assert.match(report.error?.message ?? "", /--allow-env/);
});

test("listenFds() without --allow-ffi still unsets the variables when asked", async () => {
  const report = await runProbe(
    { call: "listenFds", unsetEnv: true, env: true },
    { fds: [TCP, TCP], env: ACTIVATED, denoFlags: ["--allow-env"] },
  );
  assert.equal(report.error?.code, "FFI_UNAVAILABLE");
  assert.deepEqual(report.env, {
    LISTEN_PID: null,
    LISTEN_PIDFDID: null,
    LISTEN_FDS: null,
    LISTEN_FDNAMES: null,
  });
});

test("listenFds() with all four variables allowed and --allow-ffi needs nothing else", async () => {
  // The control for the tests above: these flags are enough.
  const report = await runProbe(
    { call: "listenFds" },
    {
      fds: [TCP, TCP],
      env: ACTIVATED,
      denoFlags: [
        "--allow-env=LISTEN_PID,LISTEN_PIDFDID,LISTEN_FDS,LISTEN_FDNAMES",
        "--allow-ffi",
      ],
    },
  );
  assert.equal(report.error, undefined);
  assert.deepEqual(report.result, [
    { fd: 3, name: "unknown" },
    { fd: 4, name: "unknown" },
  ]);
});
