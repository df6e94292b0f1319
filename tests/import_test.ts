// Importing the library has no side effects: it reads no variable, needs no
// Deno permission and loads no native code; and a process that was not
// activated gets [] without FFI (STYLE.md, "open FFI libraries lazily").

import assert from "node:assert/strict";
import { test } from "node:test";
import { launch, type LaunchFd } from "./_launch.ts";
import { fixtureCommand, runtime } from "./_runtime.ts";
import type { ImportReport } from "./fixtures/probe_import.ts";
import { runProbe } from "./fixtures/probe_launch.ts";

const TCP: LaunchFd = { type: "tcp" };

// Runs tests/fixtures/probe_import.ts with no Deno permission at all, with
// variables that would activate it, so that reading them would matter.
async function importProbe(call: boolean): Promise<ImportReport> {
  const launched = await launch({
    argv: [
      ...fixtureCommand("probe_import", { denoFlags: [] }),
      JSON.stringify({ call }),
    ],
    fds: [TCP],
    env: { LISTEN_PID: "$PID", LISTEN_FDS: "1" },
  });
  const line = await launched.nextLine().catch(async (error: Error) => {
    await launched.exited;
    throw new Error(`${error.message}: ${launched.stderr()}`);
  });
  assert.equal(await launched.exited, 0, launched.stderr());
  return JSON.parse(line) as ImportReport;
}

test("importing the library reads no variable, needs no permission and loads no native code", async () => {
  const report = await importProbe(false);
  for (const name of ["ActivationError", "getSystemdSocket", "listenFds"]) {
    assert.ok(report.exports.includes(name), name);
  }
  // On Deno, the probe ran with no permission: any read would have thrown.
  if (runtime === "node") {
    assert.deepEqual(report.reads, []);
    assert.equal(report.koffi, false);
  }
});

test("the import probe sees a variable read when listenFds() is called", async () => {
  // The control for the test above: the same probe, calling the library.
  const report = await importProbe(true);
  if (runtime === "deno") {
    assert.equal(report.error?.code, "ENV_UNAVAILABLE");
  } else {
    assert.equal(report.error, undefined);
    assert.deepEqual(report.result, [{ fd: 3, name: "unknown" }]);
    assert.ok(report.reads?.includes("LISTEN_PID"), String(report.reads));
  }
});

for (
  const [title, env] of [
    ["no variables", {}],
    ["LISTEN_PID for another process", { LISTEN_PID: "1", LISTEN_FDS: "1" }],
    ["no LISTEN_FDS", { LISTEN_PID: "$PID" }],
  ] as const
) {
  test(`listenFds() returns [] with ${title}, without --allow-ffi or native code`, async () => {
    const report = await runProbe(
      { call: "listenFds", maps: true },
      { fds: [TCP], env, denoFlags: ["--allow-env"] },
    );
    assert.equal(report.error, undefined, JSON.stringify(report.error));
    assert.deepEqual(report.result, []);
    if (runtime === "node") assert.equal(report.koffi, false);
  });
}

test("getSystemdSocket() returns undefined without activation, without --allow-ffi", async () => {
  const report = await runProbe(
    { call: "getSystemdSocket", name: "web" },
    { fds: [TCP], env: {}, denoFlags: ["--allow-env"] },
  );
  assert.equal(report.error, undefined, JSON.stringify(report.error));
  assert.equal(report.result, null);
});
