// notify("WATCHDOG=1") against libsystemd's sd_notify(0, "WATCHDOG=1") on
// Deno, both called in this process, to the same receiver (a Python process
// that drains an abstract unix datagram socket; _receiver.ts). Run it through
// scripts/bench/main.ts (the notify section, `deno bench --json`), or alone:
//
//   deno bench --allow-env --allow-ffi --allow-read --allow-run scripts/bench/notify/deno_bench.ts

import process from "node:process";
import { notify } from "../../../tests/_lib.ts";
import { native } from "../../../tests/_native.deno.ts";
import { checkArmsAgree, deliver, startDrain, STATE } from "./_receiver.ts";

if (!native.libsystemdAvailable()) {
  throw new Error("libsystemd.so.0 is not available");
}
await checkArmsAgree({ native, notify });

// The drain ends when this process does (its stdin closes).
const drain = await startDrain();
process.env.NOTIFY_SOCKET = drain.address;

// As in ../listen_fds/deno_bench.ts: every group is registered ROUNDS
// times, one round after the other, and the section takes each arm's
// median over the rounds, so that a burst of load does not hit one arm only.
export const ROUNDS = 3;

for (let round = 1; round <= ROUNDS; round++) {
  const group = `notify (round ${round})`;
  Deno.bench({
    name: "libsystemd",
    group,
    baseline: true,
    fn() {
      if (native.sdNotify(false, STATE) !== 1) throw new Error("not sent");
    },
  });
  Deno.bench({
    name: "notify()",
    group,
    fn() {
      deliver(notify);
    },
  });
}
