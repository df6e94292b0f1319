// The config section: parseConfig() against smol-toml's parse() over size
// and nesting (bench.ts), on Deno in the runner's process and on Node
// against the built package.

import { join } from "node:path";
import { compileNodeHarness, lastJsonLine } from "../_node_harness.ts";
import type { BenchContext, Section } from "../_section.ts";
import { capture } from "../_util.ts";
import {
  type ConfigBenchResult,
  renderConfigSection,
  runConfigBench,
} from "./bench.ts";

async function run(context: BenchContext): Promise<ConfigBenchResult[]> {
  context.log("  Deno");
  const deno = runConfigBench();
  context.log("  Node");
  await compileNodeHarness(context.appDir, [
    "scripts/bench/config/node_bench.ts",
    "scripts/bench/config/bench.ts",
  ]);
  const node = lastJsonLine<ConfigBenchResult>(
    await capture(context.nodePath, [
      join(context.appDir, "scripts/bench/config/node_bench.js"),
    ]),
  );
  return [deno, node];
}

/** The section: parseConfig() over document size and nesting. */
export const configSection: Section<ConfigBenchResult[]> = {
  id: "config",
  title: "parseConfig() against smol-toml's parse(), over size and nesting",
  run,
  render: renderConfigSection,
};
