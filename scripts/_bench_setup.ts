// The setup that the listenFds()-against-libsystemd harnesses share
// (scripts/bench_listen_fds_deno.ts under `deno bench`, and
// scripts/bench_listen_fds_node.ts compiled for Node), the median that they
// and scripts/bench.ts take, and the timing loop of both Node harnesses
// (timeArms(), also for scripts/bench_notify_node.ts). Runtime-neutral: node:fs and node:process
// only, and the caller passes its `native` and `listenFds`, because the Node
// compile (scripts/_bench_listen_fds.ts) erases types but does not swap
// `.deno.ts` for `.node.ts` as the npm build does.

import { readlinkSync } from "node:fs";
import process from "node:process";
import { clearCloexec, type Native } from "../tests/_native.common.ts";

/** The fd counts measured. */
export const COUNTS = [1, 16, 256] as const;

/** The largest count: scripts/bench.ts passes pipes at fds 3..(3 + MAX - 1). */
export const MAX: number = COUNTS[COUNTS.length - 1]!;

const NAMES = Array.from({ length: MAX }, (_, index) => `socket${index}`);

/** The two arms a harness compares, from its own runtime's modules. */
export interface Arms {
  /** The runtime's libc and libsystemd bindings (`tests/_native.*.ts`). */
  native: Native;
  /** This library's `listenFds()` (`tests/_lib.ts`, or the built package). */
  listenFds: () => readonly { readonly fd: number; readonly name: string }[];
}

/**
 * Throws unless fds 3..(3 + MAX - 1) are pipes, as scripts/bench.ts passes
 * them.
 */
export function checkPassedPipes(): void {
  // Only what the driver set up is a fair field: fds the runtime opened for
  // itself would also be found, but would not be sockets a manager passed.
  for (let fd = 3; fd < 3 + MAX; fd++) {
    let target = "";
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // Reported below.
    }
    if (!target.startsWith("pipe:")) {
      throw new Error(
        `fd ${fd} is not a passed pipe (${
          target || "closed"
        }): run this through scripts/bench.ts`,
      );
    }
  }
}

let current = 0;

/**
 * Sets LISTEN_PID (this process), LISTEN_FDS (`count`) and LISTEN_FDNAMES
 * (that many names), which both arms read from the environment.
 */
export function useCount(count: number): void {
  // Switching counts writes the environment once per bench, not per call:
  // the check that skips it costs both arms the same.
  if (current === count) return;
  process.env.LISTEN_PID = String(process.pid);
  process.env.LISTEN_FDS = String(count);
  process.env.LISTEN_FDNAMES = NAMES.slice(0, count).join(":");
  current = count;
}

/** Clears FD_CLOEXEC on fds 3..(3 + count - 1). */
export function clearFlags(native: Native, count: number): void {
  for (let fd = 3; fd < 3 + count; fd++) clearCloexec(native, fd);
}

/**
 * Throws unless both arms find the same fds and names with `count` fds, from
 * cleared and from set flags. Call `useCount(count)` first.
 */
export function checkArmsAgree(count: number, arms: Arms): void {
  // Both arms must do the same work, or the ratio means nothing.
  const { native, listenFds } = arms;
  for (let round = 0; round < 2; round++) {
    if (round === 0) clearFlags(native, count);
    const ours = listenFds();
    if (round === 0) clearFlags(native, count);
    const theirs = native.sdListenFdsWithNames(false);
    const same = theirs.result === ours.length &&
      ours.every(({ fd, name }, index) =>
        fd === 3 + index && name === theirs.names?.[index]
      );
    if (!same) {
      throw new Error(
        `listenFds() and libsystemd disagree with ${count} fds: ${
          JSON.stringify({ ours: ours.slice(0, 3), theirs })
        }`,
      );
    }
  }
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[middle]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** One arm's result on Node: the median of its rounds, and the rounds. */
export interface ArmResult {
  medianNs: number;
  roundsNs: number[];
  iterations: number;
}

/** How the Node harnesses time their arms. */
export interface TimingPlan {
  /** Rounds per arm; the arms alternate within each round. */
  rounds: number;
  /** Wall time each arm gets per round, to pick an iteration count. */
  roundNs: number;
  /** Warm-up time per arm, before the rounds. */
  warmUpNs: bigint;
}

/**
 * Times each arm with `time` (ns per call over that many calls), as the
 * Node harnesses do, having no `deno bench`: a warm-up until the JIT has
 * settled (and koffi is loaded), then rounds sized from the slower arm so
 * both run the same iteration count, the arms' order swapped every round
 * so that a slow stretch of the shared machine hits both.
 */
export function timeArms<K extends string>(
  arms: Record<K, () => void>,
  time: (call: () => void, iterations: number) => number,
  plan: TimingPlan,
): Record<K, ArmResult> {
  const names = Object.keys(arms) as K[];
  let slowest = 0;
  for (const name of names) {
    const start = process.hrtime.bigint();
    let calls = 0;
    while (process.hrtime.bigint() - start < plan.warmUpNs) {
      time(arms[name], 10);
      calls += 10;
    }
    // The whole warm-up's mean: one short sample can hit a load spike.
    slowest = Math.max(
      slowest,
      Number(process.hrtime.bigint() - start) / calls,
    );
  }
  const iterations = Math.max(20, Math.round(plan.roundNs / slowest));
  const rounds = names.map((): number[] => []);
  for (let round = 0; round < plan.rounds; round++) {
    const order = names.map((_, index) => index);
    if (round % 2) order.reverse();
    for (const index of order) {
      rounds[index]!.push(time(arms[names[index]!], iterations));
    }
  }
  const result = {} as Record<K, ArmResult>;
  names.forEach((name, index) => {
    result[name] = {
      medianNs: median(rounds[index]!),
      roundsNs: rounds[index]!,
      iterations,
    };
  });
  return result;
}
