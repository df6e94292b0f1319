// listenFds() against libsystemd's sd_listen_fds_with_names() on Node, both
// called in this process on the same fds. Node has no `deno bench`, so this
// times the arms itself with process.hrtime.bigint(). The section
// (section.ts) compiles this file (with the test helpers it imports, _lib
// pointing at the built package) and starts it with pipes at fds 3..258; it
// prints one JSON line: median ns per call for each scenario, count and arm.

import process from "node:process";
import { listenFds } from "../../../tests/_lib.ts";
import { F_SETFD, FD_CLOEXEC } from "../../../tests/_native.common.ts";
import { native } from "../../../tests/_native.node.ts";
import {
  checkArmsAgree,
  checkPassedPipes,
  clearFlags,
  COUNTS,
  useCount,
} from "./_setup.ts";
import { type ArmResult, timeArms, type TimingPlan } from "../_timing.ts";

export type { ArmResult } from "../_timing.ts";

// 7 rounds of 40 ms per arm, after 150 ms of warm-up.
const PLAN: TimingPlan = {
  rounds: 7,
  roundNs: 40_000_000,
  warmUpNs: 150_000_000n,
};

/** What this harness prints, keyed by scenario, then count, then arm. */
export type NodeBenchResult = Record<
  "steady" | "fresh",
  Record<string, { libsystemd: ArmResult; listenFds: ArmResult }>
>;

checkPassedPipes();

function ours(): void {
  listenFds();
}

function theirs(): void {
  native.sdListenFdsWithNames(false);
}

/** ns per call over `iterations` back-to-back calls. */
function timeSteady(call: () => void, iterations: number): number {
  const start = process.hrtime.bigint();
  for (let index = 0; index < iterations; index++) call();
  return Number(process.hrtime.bigint() - start) / iterations;
}

/**
 * ns per call with the flags cleared before each call: only the call is
 * timed (the clearing cannot be paused out of a loop timing on Node), so each
 * call is timed alone and the times summed. Both arms pay the same two
 * hrtime reads per call.
 */
function timeFresh(
  count: number,
  call: () => void,
  iterations: number,
): number {
  let total = 0n;
  for (let index = 0; index < iterations; index++) {
    clearFlags(native, count);
    const start = process.hrtime.bigint();
    call();
    total += process.hrtime.bigint() - start;
  }
  return Number(total) / iterations;
}

function measure(
  scenario: "steady" | "fresh",
  count: number,
): { libsystemd: ArmResult; listenFds: ArmResult } {
  const time = (call: () => void, iterations: number) =>
    scenario === "steady"
      ? timeSteady(call, iterations)
      : timeFresh(count, call, iterations);
  return timeArms({ libsystemd: theirs, listenFds: ours }, time, PLAN);
}

const result: NodeBenchResult = { steady: {}, fresh: {} };
for (const count of COUNTS) {
  useCount(count);
  checkArmsAgree(count, { native, listenFds });
  for (const scenario of ["steady", "fresh"] as const) {
    if (scenario === "steady") {
      // Steady state as Node leaves it: flags set, as at start-up.
      for (let fd = 3; fd < 3 + count; fd++) {
        native.fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
    result[scenario][count] = measure(scenario, count);
  }
}
console.log(JSON.stringify(result));
