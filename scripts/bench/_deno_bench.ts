// What `deno bench --json` prints, and the per-arm figure the sections take
// from it. The sections whose Deno side runs under `deno bench` register each
// group several times (`NAME (round N)`), the rounds one after the other, so
// that a burst of load on a shared machine does not hit one arm only.

import { median } from "./_util.ts";

/** One `deno bench --json` entry's numbers, in nanoseconds. */
export interface DenoBenchStats {
  n: number;
  min: number;
  max: number;
  avg: number;
  p75: number;
  p99: number;
}

/** A bench of `deno bench --json`. */
export interface DenoBenchEntry {
  group: string;
  name: string;
  baseline: boolean;
  results: { ok?: DenoBenchStats; failed?: unknown }[];
}

/** What `deno bench --json` prints. */
export interface DenoBenchReport {
  runtime: string;
  cpu: string;
  benches: DenoBenchEntry[];
}

/** The group's name without its round: `steady, 1 fds`. */
export function groupOf(entry: DenoBenchEntry): string {
  return entry.group.replace(/ \(round \d+\)$/, "");
}

/**
 * An arm's time per call in ns: the median, over the rounds of the group,
 * of the mean that `deno bench` measured.
 */
export function denoMean(
  report: DenoBenchReport,
  group: string,
  name: string,
): number {
  const means: number[] = [];
  for (const bench of report.benches) {
    if (groupOf(bench) !== group || bench.name !== name) continue;
    const stats = bench.results[0]?.ok;
    if (stats === undefined) throw new Error(`${group}/${name} failed`);
    means.push(stats.avg);
  }
  if (means.length === 0) throw new Error(`No result for ${group}/${name}`);
  return median(means);
}

/** How many times each group ran. */
export function denoRounds(report: DenoBenchReport): number {
  const groups = new Set(report.benches.map((bench) => bench.group));
  const names = new Set(report.benches.map(groupOf));
  return groups.size / names.size;
}

/** Time in µs from ns, with 2 decimals under 10 µs. */
export function us(ns: number): string {
  return (ns / 1000).toFixed(ns < 10_000 ? 2 : 1);
}
