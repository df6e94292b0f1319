// Runs the notify()-against-libsystemd benchmarks: `deno bench` on
// scripts/bench_notify_deno.ts, and Node on scripts/bench_notify_node.ts
// compiled against the built package in the app scripts/_bench_app.ts made.

import { fileURLToPath } from "node:url";
import type { DenoBenchReport } from "./_bench_listen_fds.ts";
import { compileNodeHarness, lastJsonLine } from "./_bench_node.ts";
import type { NodeNotifyResult } from "./bench_notify_node.ts";

export type { NodeNotifyResult } from "./bench_notify_node.ts";

function path(relative: string): string {
  return fileURLToPath(new URL(relative, import.meta.url));
}

async function output(program: string, args: string[]): Promise<string> {
  const result = await new Deno.Command(program, {
    args,
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(result.stdout);
  if (!result.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed:\n${text}${
        new TextDecoder().decode(result.stderr)
      }`,
    );
  }
  return text;
}

/** `deno bench --json` on the Deno notify bench. */
export async function runDenoNotifyBench(): Promise<DenoBenchReport> {
  return JSON.parse(
    await output(Deno.execPath(), [
      "bench",
      "--no-prompt",
      "--allow-env",
      "--allow-ffi",
      "--allow-read",
      "--allow-run",
      "--json",
      path("./bench_notify_deno.ts"),
    ]),
  ) as DenoBenchReport;
}

// The Node harness and what it imports, for compileNodeHarness().
const NODE_SOURCES = [
  "scripts/bench_notify_node.ts",
  "scripts/bench_notify_receiver.ts",
  "scripts/_bench_setup.ts",
  "tests/_native.common.ts",
  "tests/_native.node.ts",
  "tests/_receiver.ts",
  "tests/_launch.ts",
];

/**
 * Compiles the Node harness into the app made by `stageApp()` and runs it
 * with Node there, against the package installed in it.
 */
export async function runNodeNotifyBench(
  nodePath: string,
  dir: string,
): Promise<NodeNotifyResult> {
  await compileNodeHarness(dir, NODE_SOURCES);
  const text = await output(nodePath, [`${dir}/scripts/bench_notify_node.js`]);
  return lastJsonLine<NodeNotifyResult>(text);
}
