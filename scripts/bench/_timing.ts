// The timing loop of the Node harnesses (listen_fds/node_bench.ts,
// notify/node_bench.ts), which have no `deno bench`, and the median that the
// harnesses and the reports take. Runtime-neutral (node:process only): it is
// compiled for Node with the harnesses.

import process from "node:process";

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
