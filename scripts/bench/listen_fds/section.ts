// listenFds() against libsystemd's sd_listen_fds_with_names(), on Deno
// (`deno bench` on deno_bench.ts) and on Node (node_bench.ts compiled against
// the built package), each in a process that has pipes at fds 3..258
// (without close-on-exec, as a service manager passes sockets).

import { join } from "node:path";
import { launch } from "../../../tests/_launch.ts";
import {
  type DenoBenchReport,
  denoMean,
  denoRounds,
  us,
} from "../_deno_bench.ts";
import { compileNodeHarness, lastJsonLine } from "../_node_harness.ts";
import type { BenchContext, Section } from "../_section.ts";
import { here } from "../_util.ts";
import { COUNTS, MAX } from "./_setup.ts";
import type { NodeBenchResult } from "./node_bench.ts";

/** What the section measured. */
export interface ListenFdsResult {
  deno: DenoBenchReport;
  node: NodeBenchResult;
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

// The Node harness and what it imports (its setup, the timing loop, the
// test helpers), for compileNodeHarness().
const NODE_SOURCES = [
  "scripts/bench/listen_fds/node_bench.ts",
  "scripts/bench/listen_fds/_setup.ts",
  "scripts/bench/_timing.ts",
  "tests/_native.common.ts",
  "tests/_native.node.ts",
];

async function run(context: BenchContext): Promise<ListenFdsResult> {
  context.log("  Deno (deno bench)");
  const deno = JSON.parse(
    await runWithPipes([
      Deno.execPath(),
      "bench",
      "--no-prompt",
      "--allow-env",
      "--allow-ffi",
      "--allow-read=/proc",
      "--json",
      here(import.meta.url, "./deno_bench.ts"),
    ]),
  ) as DenoBenchReport;
  context.log("  Node");
  await compileNodeHarness(context.appDir, NODE_SOURCES);
  const node = lastJsonLine<NodeBenchResult>(
    await runWithPipes([
      context.nodePath,
      join(context.appDir, "scripts/bench/listen_fds/node_bench.js"),
    ]),
  );
  return { deno, node };
}

function ratio(value: number): string {
  return value.toFixed(2);
}

function denoTable(report: DenoBenchReport): string {
  const rows = [
    "| scenario | fds | libsystemd (µs/call) | listenFds() (µs/call) | ratio listenFds() / libsystemd |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  for (const scenario of ["steady", "fresh"]) {
    for (const count of COUNTS) {
      const group = `${scenario}, ${count} fds`;
      let theirs = denoMean(report, group, "libsystemd");
      let ours = denoMean(report, group, "listenFds()");
      let note = "";
      if (scenario === "fresh") {
        const clearing = denoMean(report, group, "clearing only");
        note = ` (gross ${us(theirs)} / ${us(ours)}, clearing ${us(clearing)})`;
        theirs -= clearing;
        ours -= clearing;
      }
      rows.push(
        `| ${scenario} | ${count} | ${us(theirs)} | ${us(ours)}${note} | **${
          ratio(ours / theirs)
        }** |`,
      );
    }
  }
  return rows.join("\n");
}

function nodeTable(result: NodeBenchResult): string {
  const rows = [
    "| scenario | fds | libsystemd (µs/call) | listenFds() (µs/call) | ratio listenFds() / libsystemd | iterations × rounds |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const scenario of ["steady", "fresh"] as const) {
    for (const count of COUNTS) {
      const arms = result[scenario][count]!;
      rows.push(
        `| ${scenario} | ${count} | ${us(arms.libsystemd.medianNs)} | ${
          us(arms.listenFds.medianNs)
        } | **${
          ratio(arms.listenFds.medianNs / arms.libsystemd.medianNs)
        }** | ${arms.listenFds.iterations} × ${arms.listenFds.roundsNs.length} |`,
      );
    }
  }
  return rows.join("\n");
}

function render(result: ListenFdsResult): string {
  return `## listenFds() against libsystemd

Both arms run in one process that was started with pipes at fds 3..258,
without close-on-exec, as a service manager passes sockets (the test
launcher \`tests/_launch.ts\` places them). \`LISTEN_PID\` is the process's
own pid, \`LISTEN_FDS\` the count, \`LISTEN_FDNAMES\` that many names. Before
timing, each count is checked: both arms must return the same fds and names.

- **libsystemd** (baseline): the real \`sd_listen_fds_with_names(0, &names)\`
  of libsystemd.so.0 through the runtime's FFI (\`tests/_native.*.ts\`),
  including what a JavaScript caller must do with its result: read each name
  into a string, \`free()\` each name and the array.
- **listenFds()**: this library, \`listenFds()\` with default options; on
  Node the built package (\`npm/esm/mod.js\`).
- **steady**: the flags are already set (after the first call, or on Node
  after start-up, which marks inherited fds close-on-exec): libsystemd does
  one \`F_GETFD\` per fd; the library does the same on Deno, and on Node reads
  \`/proc/self/fdinfo/N\` per fd, so that koffi is never loaded.
- **fresh**: \`FD_CLOEXEC\` is cleared on every fd before each call, so each
  call also sets it, as the first call after exec does (on Node this loads
  koffi once, then calls \`fcntl\` for each fd after reading its fdinfo).

### Deno (\`deno bench\`)

\`deno bench --json scripts/bench/listen_fds/deno_bench.ts\`, started by the
runner. Each group is registered ${
    denoRounds(result.deno)
  } times, the rounds one after the other,
so that a burst of load on the shared machine does not hit one arm only; the
table shows, for each arm, the median over the rounds of the mean time per call
that \`deno bench\` reports. In the
fresh rows every arm times clearing + call (\`deno bench\` ignores
\`b.start()\`/\`b.end()\` when an iteration takes under 10 µs, as with 1 fd),
so a third arm times the clearing alone, and the table shows each arm minus
the clearing (the gross means are in parentheses).

${denoTable(result.deno)}

### Node (hrtime harness)

\`scripts/bench/listen_fds/node_bench.ts\`, compiled by the runner (TypeScript
erased) with the test helpers it imports, and run with Node in the bench's
throwaway app, where the built package is installed as
\`node_modules/socket-activation\` with koffi beside it, as in a user's app
(\`scripts/bench/_app.ts\`). Each arm is warmed up, then timed in ${
    result.node.steady[1]!.listenFds.roundsNs.length
  } rounds of the same iteration count (sized
so that a round of the slower arm takes about 40 ms), the two arms
alternating within each round; the table shows the median round. Steady
rounds time the loop as a whole; fresh rounds clear the flags before each
call and time each call alone with \`process.hrtime.bigint()\`, summing.

${nodeTable(result.node)}
`;
}

/** The section: listenFds() against sd_listen_fds_with_names(). */
export const listenFdsSection: Section<ListenFdsResult> = {
  id: "listen-fds",
  title: "listenFds() against libsystemd's sd_listen_fds_with_names()",
  run,
  render,
};
