// listenFds() against libsystemd's sd_listen_fds_with_names() on Node, both
// called in this process on the same fds. Node has no `deno bench`, so this
// times the arms itself with process.hrtime.bigint(). scripts/bench.ts
// compiles this file (with the test helpers it imports, _lib pointing at the
// built package in npm/) and starts it with pipes at fds 3..258; it prints
// one JSON line: median ns per call for each scenario, count and arm.

import process from "node:process";
import { listenFds } from "../tests/_lib.ts";
import { F_SETFD, FD_CLOEXEC } from "../tests/_native.common.ts";
import { native } from "../tests/_native.node.ts";
import {
  checkArmsAgree,
  checkPassedPipes,
  clearFlags,
  COUNTS,
  median,
  useCount,
} from "./_bench_setup.ts";

// Rounds per arm; the arms alternate within each round so that a slow
// stretch of the shared machine hits both.
const ROUNDS = 7;
// Wall time each arm gets per round, to pick an iteration count.
const ROUND_NS = 40_000_000n;
// Warm-up time per arm, before the rounds.
const WARM_UP_NS = 150_000_000n;

/** One arm's result: the median of its rounds, and the rounds. */
export interface ArmResult {
  medianNs: number;
  roundsNs: number[];
  iterations: number;
}

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
  const arms = { libsystemd: theirs, listenFds: ours };
  // Warm-up until the JIT has settled (and koffi is loaded), then size the
  // rounds from the slower arm so both run the same iteration count.
  let slowest = 0;
  for (const call of Object.values(arms)) {
    const start = process.hrtime.bigint();
    let calls = 0;
    while (process.hrtime.bigint() - start < WARM_UP_NS) {
      time(call, 10);
      calls += 10;
    }
    // The whole warm-up's mean: one short sample can hit a load spike.
    slowest = Math.max(
      slowest,
      Number(process.hrtime.bigint() - start) / calls,
    );
  }
  const iterations = Math.max(20, Math.round(Number(ROUND_NS) / slowest));
  const rounds: Record<keyof typeof arms, number[]> = {
    libsystemd: [],
    listenFds: [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ["listenFds", "libsystemd"] as const : [
      "libsystemd",
      "listenFds",
    ] as const;
    for (const arm of order) rounds[arm].push(time(arms[arm], iterations));
  }
  return {
    libsystemd: {
      medianNs: median(rounds.libsystemd),
      roundsNs: rounds.libsystemd,
      iterations,
    },
    listenFds: {
      medianNs: median(rounds.listenFds),
      roundsNs: rounds.listenFds,
      iterations,
    },
  };
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
