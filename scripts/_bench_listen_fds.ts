// Runs the listenFds()-against-libsystemd benchmarks in a process that has
// pipes at fds 3..258 (without close-on-exec, as a service manager passes
// sockets): `deno bench` on scripts/bench_listen_fds_deno.ts, and Node on
// scripts/bench_listen_fds_node.ts compiled against the built package.

import { fileURLToPath } from "node:url";
import { launch } from "../tests/_launch.ts";
import type { NodeBenchResult } from "./bench_listen_fds_node.ts";
import { MAX } from "./_bench_setup.ts";
import { compileNodeHarness, lastJsonLine } from "./_bench_node.ts";

export type { NodeBenchResult } from "./bench_listen_fds_node.ts";

function path(relative: string): string {
  return fileURLToPath(new URL(relative, import.meta.url));
}

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

/** Runs `argv` with the pipes passed, and returns its whole stdout. */
async function runWithPipes(argv: string[]): Promise<string> {
  const launched = await launch({
    argv,
    fds: Array.from({ length: MAX }, () => "pipe" as const),
  });
  const lines: string[] = [];
  for (;;) {
    try {
      lines.push(await launched.nextLine());
    } catch {
      break;
    }
  }
  const status = await launched.exited;
  if (status !== 0) {
    throw new Error(
      `${argv.join(" ")} failed (${status}):\n${
        lines.join("\n")
      }\n${launched.stderr()}`,
    );
  }
  return lines.join("\n");
}

/** `deno bench --json` on the Deno bench file. */
export async function runDenoBench(): Promise<DenoBenchReport> {
  const output = await runWithPipes([
    Deno.execPath(),
    "bench",
    "--no-prompt",
    "--allow-env",
    "--allow-ffi",
    "--allow-read=/proc",
    "--json",
    path("./bench_listen_fds_deno.ts"),
  ]);
  return JSON.parse(output) as DenoBenchReport;
}

// The Node harness and what it imports (its setup, the test helpers), for
// compileNodeHarness().
const NODE_SOURCES = [
  "scripts/bench_listen_fds_node.ts",
  "scripts/_bench_setup.ts",
  "tests/_native.common.ts",
  "tests/_native.node.ts",
];

/**
 * Compiles the Node harness into the app made by `stageApp()` and runs it
 * with Node there, against the package installed in it.
 */
export async function runNodeBench(
  nodePath: string,
  dir: string,
): Promise<NodeBenchResult> {
  await compileNodeHarness(dir, NODE_SOURCES);
  const output = await runWithPipes([
    nodePath,
    `${dir}/scripts/bench_listen_fds_node.js`,
  ]);
  return lastJsonLine<NodeBenchResult>(output);
}
