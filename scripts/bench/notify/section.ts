// notify("WATCHDOG=1") against libsystemd's sd_notify(): `deno bench` on
// deno_bench.ts, and Node on node_bench.ts compiled against the built
// package in the bench's app.

import { join } from "node:path";
import {
  type DenoBenchReport,
  denoMean,
  denoRounds,
  us,
} from "../_deno_bench.ts";
import { compileNodeHarness, lastJsonLine } from "../_node_harness.ts";
import type { BenchContext, Section } from "../_section.ts";
import { capture, here } from "../_util.ts";
import type { NodeNotifyResult } from "./node_bench.ts";

/** What the section measured. */
export interface NotifyResult {
  deno: DenoBenchReport;
  node: NodeNotifyResult;
}

// The Node harness and what it imports, for compileNodeHarness().
const NODE_SOURCES = [
  "scripts/bench/notify/node_bench.ts",
  "scripts/bench/notify/_receiver.ts",
  "scripts/bench/_timing.ts",
  "tests/_native.common.ts",
  "tests/_native.node.ts",
  "tests/_receiver.ts",
  "tests/_launch.ts",
];

async function run(context: BenchContext): Promise<NotifyResult> {
  context.log("  Deno (deno bench)");
  const deno = JSON.parse(
    await capture(Deno.execPath(), [
      "bench",
      "--no-prompt",
      "--allow-env",
      "--allow-ffi",
      "--allow-read",
      "--allow-run",
      "--json",
      here(import.meta.url, "./deno_bench.ts"),
    ]),
  ) as DenoBenchReport;
  context.log("  Node");
  await compileNodeHarness(context.appDir, NODE_SOURCES);
  const node = lastJsonLine<NodeNotifyResult>(
    await capture(context.nodePath, [
      join(context.appDir, "scripts/bench/notify/node_bench.js"),
    ]),
  );
  return { deno, node };
}

function ratio(value: number): string {
  return value.toFixed(2);
}

function render({ deno, node }: NotifyResult): string {
  const denoTheirs = denoMean(deno, "notify", "libsystemd");
  const denoOurs = denoMean(deno, "notify", "notify()");
  const nodeTheirs = node.libsystemd.medianNs;
  const nodeOurs = node.notify.medianNs;
  return `## notify() against libsystemd

The cost of one \`notify("WATCHDOG=1")\` (what a watchdog ping sends) against
libsystemd's \`sd_notify(0, "WATCHDOG=1")\` called through the runtime's FFI
(\`tests/_native.*.ts\`) in the same process, to the same receiver:
\`NOTIFY_SOCKET\` names an abstract unix datagram socket that a Python process
(\`scripts/bench/notify/_receiver.ts\`) drains on a thread of its own, so that
the sends seldom find the queue full (\`net.unix.max_dgram_qlen\` is often
10). When the drain falls behind anyway, libsystemd's blocking send waits for
it, and \`notify()\`, which never waits, fails with EAGAIN and is sent again
at once, so both arms time a delivered datagram. Both make the same eleven
system calls (strace; checked by \`tests/notify_differential_test.ts\`):
\`socket()\`, four to raise the socket's send buffer to 8 MiB
(\`getsockopt\`/\`setsockopt\` of \`SO_SNDBUF\`, then
\`SO_SNDBUFFORCE\`), \`getuid()\`, \`geteuid()\`, \`getgid()\`,
\`getegid()\`, \`sendmsg()\`, \`close()\`; but the library crosses the
FFI boundary once per system call, libsystemd once per \`sd_notify()\`. Before timing, a reporting receiver
(\`tests/_receiver.ts\`) checks that both arms deliver the same bytes and
credentials.

- **Deno**: \`deno bench --json scripts/bench/notify/deno_bench.ts\`, started
  by the runner; the group is registered ${
    denoRounds(deno)
  } times, and the table shows each arm's median over the rounds of the mean
  time per call.
- **Node**: \`scripts/bench/notify/node_bench.ts\`, compiled and run like the
  listenFds() harness above, against the built package (\`notify()\` loads
  koffi on its first call): ${node.notify.roundsNs.length} rounds of ${node.notify.iterations} calls per
  arm, alternating, after a warm-up; the median round. The receiver read
  ${node.received} of the ${node.sent} datagrams sent.

| runtime | libsystemd (µs/call) | notify() (µs/call) | ratio notify() / libsystemd |
| --- | ---: | ---: | ---: |
| Deno | ${us(denoTheirs)} | ${us(denoOurs)} | **${
    ratio(denoOurs / denoTheirs)
  }** |
| Node | ${us(nodeTheirs)} | ${us(nodeOurs)} | **${
    ratio(nodeOurs / nodeTheirs)
  }** |
`;
}

/** The section: notify() against sd_notify(). */
export const notifySection: Section<NotifyResult> = {
  id: "notify",
  title: "notify() against libsystemd's sd_notify()",
  run,
  render,
};
