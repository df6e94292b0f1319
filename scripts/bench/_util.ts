// Small helpers the benchmark runner and its sections share: where the
// repository is, running a command, free ports, and the statistics of the
// reports (medians, ranges, ratios of paired rounds).

import { fileURLToPath } from "node:url";
import { median } from "./_timing.ts";

export { median };

/** The repository root: this file lives in `<root>/scripts/bench/`. */
export const ROOT: string = fileURLToPath(new URL("../..", import.meta.url))
  .replace(/\/$/, "");

/** The path of `relative` beside the module at `base` (its import.meta.url). */
export function here(base: string, relative: string): string {
  return fileURLToPath(new URL(relative, base));
}

/** Runs a command to its end; its stdout, or an error with both outputs. */
export async function capture(
  program: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const output = await new Deno.Command(program, {
    args: [...args],
    cwd: options.cwd ?? ROOT,
    stdin: "null",
    ...(options.env === undefined ? {} : { env: options.env }),
  }).output();
  const decoder = new TextDecoder();
  const stdout = decoder.decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed (${output.code}):\n${stdout}${
        decoder.decode(output.stderr)
      }`,
    );
  }
  return stdout;
}

/**
 * A TCP port on 127.0.0.1 free right now: systemd-socket-activate refuses
 * port 0, so the kernel picks one here.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** `median (min–max)` of `values`, each with `digits` decimals. */
export function spread(values: readonly number[], digits = 0): string {
  const fmt = (value: number) => value.toFixed(digits);
  return `${fmt(median(values))} (${fmt(Math.min(...values))}–${
    fmt(Math.max(...values))
  })`;
}

/**
 * The ratios of paired values, round by round (`ours[i] / theirs[i]`): each
 * pair was measured next to each other in the same round.
 */
export function pairedRatios(
  ours: readonly number[],
  theirs: readonly number[],
): number[] {
  return ours.map((value, index) => value / theirs[index]!);
}

/** A ratio cell: the median of the per-round ratios in bold, and their range. */
export function ratioCell(ratios: readonly number[]): string {
  return `**${median(ratios).toFixed(2)}** (${Math.min(...ratios).toFixed(2)}–${
    Math.max(...ratios).toFixed(2)
  })`;
}
