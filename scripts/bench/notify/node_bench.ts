// notify("WATCHDOG=1") against libsystemd's sd_notify(0, "WATCHDOG=1") on
// Node, both called in this process, to the same draining receiver
// (_receiver.ts). Node has no `deno bench`, so this times the arms itself
// with process.hrtime.bigint(), as ../listen_fds/node_bench.ts does. The
// section compiles it (with what it imports, _lib pointing at the built
// package) and runs it; it prints one JSON line: the median ns per call of
// each arm.

import process from "node:process";
import { notify } from "../../../tests/_lib.ts";
import { native } from "../../../tests/_native.node.ts";
import { type ArmResult, timeArms, type TimingPlan } from "../_timing.ts";
import { checkArmsAgree, deliver, startDrain, STATE } from "./_receiver.ts";

// 9 rounds of 60 ms per arm, after 200 ms of warm-up.
const PLAN: TimingPlan = {
  rounds: 9,
  roundNs: 60_000_000,
  warmUpNs: 200_000_000n,
};

/** One arm's result: the median of its rounds, and the rounds. */
export type NotifyArmResult = ArmResult;

/** What this harness prints. */
export interface NodeNotifyResult {
  libsystemd: NotifyArmResult;
  notify: NotifyArmResult;
  /** Datagrams sent during the whole run (warm-up included). */
  sent: number;
  /** Datagrams the receiver read: as many, or some went missing. */
  received: number;
}

function theirs(): void {
  if (native.sdNotify(false, STATE) !== 1) throw new Error("not sent");
}

function ours(): void {
  deliver(notify);
}

let sent = 0;

/** ns per call over `iterations` back-to-back calls. */
function time(call: () => void, iterations: number): number {
  sent += iterations;
  const start = process.hrtime.bigint();
  for (let index = 0; index < iterations; index++) call();
  return Number(process.hrtime.bigint() - start) / iterations;
}

async function main(): Promise<void> {
  if (!native.libsystemdAvailable()) {
    throw new Error("libsystemd.so.0 is not available");
  }
  await checkArmsAgree({ native, notify });
  const drain = await startDrain();
  process.env.NOTIFY_SOCKET = drain.address;
  const arms = timeArms({ libsystemd: theirs, notify: ours }, time, PLAN);
  delete process.env.NOTIFY_SOCKET;
  const received = await drain.stop();
  const result: NodeNotifyResult = { ...arms, sent, received };
  console.log(JSON.stringify(result));
}

await main();
