// Restarts under socket-activate: the time from SIGHUP to the new child's
// `READY=1`, against the child's own cold start (its spawn to its
// `READY=1`), measured in the same run. The child is the serve() service of
// the tests (`tests/fixtures/activated.ts`), on Deno, and on Node from the
// npm build when `npm/` holds one; socket-activate runs on Deno, through
// the `./cli` export. The section (section.ts) runs it:
//
//   deno run -A scripts/bench/main.ts --no-build --only restart

import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startCli } from "../../../tests/_socket_activate.ts";
import { median, spread } from "../_util.ts";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const NODE_CHILD = `${ROOT}npm/test_esm/fixtures/activated.js`;

/** Options of {@linkcode runRestartBench}. */
export interface RestartBenchOptions {
  /** Activators started per child runtime. Default: 10. */
  rounds?: number | undefined;
  /** SIGHUPs per activator. Default: 3. */
  restarts?: number | undefined;
}

/** What one child runtime measured, in ms. */
export interface RestartArm {
  /** `Deno` or `Node`. */
  runtime: string;
  /** Each activator's first child: spawn to READY=1, as the activator timed it. */
  coldStartMs: number[];
  /** Each SIGHUP to the new child's READY=1 line, as this process saw it. */
  restartMs: number[];
  /** The restarted children's own spawn to READY=1, as the activator timed it. */
  restartedStartMs: number[];
}

/** The result of {@linkcode runRestartBench}. */
export interface RestartBenchResult {
  rounds: number;
  restarts: number;
  arms: RestartArm[];
  /** Why an arm did not run, if one did not. */
  skipped: string[];
}

function childCommand(runtime: string): string[] {
  return runtime === "Deno"
    ? [
      process.execPath,
      "run",
      "--allow-all",
      `${ROOT}tests/fixtures/activated.ts`,
    ]
    : ["node", NODE_CHILD];
}

function readyMs(line: string): number {
  return Number(/\((\d+) ms after start\)$/.exec(line)![1]);
}

async function round(
  arm: RestartArm,
  restarts: number,
  record: boolean,
): Promise<void> {
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--fdname",
    "web",
    "--notify",
    "--",
    ...childCommand(arm.runtime),
  ]);
  try {
    const first = await cli.event(/^ready pid/);
    if (record) arm.coldStartMs.push(readyMs(first));
    for (let index = 0; index < restarts; index++) {
      const started = performance.now();
      process.kill(cli.child.pid!, "SIGHUP");
      const ready = await cli.event(/^ready pid/);
      const elapsed = performance.now() - started;
      // The old child is gone before the next SIGHUP.
      await cli.event(/^stopped pid/);
      if (record) {
        arm.restartMs.push(elapsed);
        arm.restartedStartMs.push(readyMs(ready));
      }
    }
  } finally {
    process.kill(cli.child.pid!, "SIGTERM");
    await cli.exited;
  }
}

/**
 * Runs the benchmark: per round, one activator per child runtime (the
 * order alternating), its first child's cold start, then `restarts`
 * SIGHUPs. One discarded warm-up round per runtime first.
 *
 * @param options Rounds and restarts per round.
 * @returns The times of each arm.
 */
export async function runRestartBench(
  options: RestartBenchOptions = {},
): Promise<RestartBenchResult> {
  const rounds = options.rounds ?? 10;
  const restarts = options.restarts ?? 3;
  const skipped: string[] = [];
  const arms: RestartArm[] = [];
  for (const runtime of ["Deno", "Node"]) {
    if (runtime === "Node" && !existsSync(NODE_CHILD)) {
      skipped.push(
        `Node: no npm build in npm/ (run \`deno task build:npm\` first)`,
      );
      continue;
    }
    arms.push({
      runtime,
      coldStartMs: [],
      restartMs: [],
      restartedStartMs: [],
    });
  }
  for (const arm of arms) await round(arm, 1, false);
  for (let index = 0; index < rounds; index++) {
    const order = index % 2 === 0 ? arms : [...arms].reverse();
    for (const arm of order) await round(arm, restarts, true);
  }
  return { rounds, restarts, arms, skipped };
}

/**
 * The BENCHMARKS.md section for a result.
 *
 * @param result What {@linkcode runRestartBench} measured.
 * @returns Markdown, from its `##` heading on.
 */
export function renderRestartSection(result: RestartBenchResult): string {
  const rows = result.arms.map((arm) => {
    const ratio = median(arm.restartMs) / median(arm.coldStartMs);
    const overhead = median(
      arm.restartMs.map((ms, index) => ms - arm.restartedStartMs[index]!),
    );
    return `| ${arm.runtime} | ${spread(arm.coldStartMs, 1)} | ${
      spread(arm.restartMs, 1)
    } | **${ratio.toFixed(2)}** | ${
      overhead.toFixed(1)
    } | ${arm.restartMs.length} |`;
  });
  return [
    "## Restarts: SIGHUP to the new child's READY=1",
    "",
    "`socket-activate -l 127.0.0.1:0 --fdname web --notify -- CHILD` (on Deno,",
    "through the `./cli` export), where CHILD is the serve() service of the tests",
    "(`tests/fixtures/activated.ts`: `serve()` on `fd://web`, then `ready()`), on",
    "Deno or, from the npm build, on Node. Per round and runtime, one activator:",
    "the **cold start** is its first child's time from spawn to `READY=1`, as the",
    "activator times it; then " + result.restarts +
    " SIGHUPs, one after the other once the old",
    "child has exited, each **restart** timed by the benchmark from `kill(SIGHUP)`",
    "to reading the activator's `ready` line for the new child. A restart cannot",
    "be faster than the new child's own start, which it includes; the",
    "**overhead** column is the median of each restart less that child's own",
    "spawn-to-`READY=1` time: the signal, the spawn and the notification's way",
    "back. One discarded warm-up round per runtime, then " + result.rounds +
    " rounds, the runtimes'",
    "order alternating. Times in ms: median (min–max).",
    "",
    "| child | cold start (ms) | restart (ms) | ratio restart / cold start | overhead (ms) | restarts |",
    "| ----- | --------------: | -----------: | -------------------------: | ------------: | -------: |",
    ...rows,
    ...result.skipped.map((reason) => `\nNot measured: ${reason}.`),
    "",
  ].join("\n");
}
