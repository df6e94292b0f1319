// listenFds() against libsystemd's sd_listen_fds_with_names() on Deno, both
// called in this process on the same fds. Run it through scripts/bench.ts,
// which starts `deno bench` with pipes at fds 3..258 (as a service manager
// passes sockets: without close-on-exec); this file only sets LISTEN_PID,
// LISTEN_FDS and LISTEN_FDNAMES, which both arms read from the environment.

import process from "node:process";
import { listenFds } from "../tests/_lib.ts";
import { clearCloexec } from "../tests/_native.common.ts";
import { native } from "../tests/_native.deno.ts";

/** The fd counts measured; the driver passes the largest. */
export const COUNTS = [1, 16, 256] as const;
const MAX = COUNTS[COUNTS.length - 1]!;
const NAMES = Array.from({ length: MAX }, (_, index) => `socket${index}`);

// Only what the driver set up is a fair field: fds the runtime opened for
// itself would also be found, but would not be sockets a manager passed.
for (let fd = 3; fd < 3 + MAX; fd++) {
  let target = "";
  try {
    target = Deno.readLinkSync(`/proc/self/fd/${fd}`);
  } catch {
    // Reported below.
  }
  if (!target.startsWith("pipe:")) {
    throw new Error(
      `fd ${fd} is not a passed pipe (${
        target || "closed"
      }): run this through scripts/bench.ts`,
    );
  }
}
if (!native.libsystemdAvailable()) {
  throw new Error("libsystemd.so.0 is not available");
}

let current = 0;
// Switching counts writes the environment once per bench, not per call: the
// check that skips it costs both arms the same.
function useCount(count: number): void {
  if (current === count) return;
  process.env.LISTEN_PID = String(Deno.pid);
  process.env.LISTEN_FDS = String(count);
  process.env.LISTEN_FDNAMES = NAMES.slice(0, count).join(":");
  current = count;
}

function clearFlags(count: number): void {
  for (let fd = 3; fd < 3 + count; fd++) clearCloexec(native, fd);
}

// Both arms must do the same work, or the ratio means nothing: check that
// they find the same fds and names, from cleared and from set flags.
for (const count of COUNTS) {
  useCount(count);
  for (let round = 0; round < 2; round++) {
    if (round === 0) clearFlags(count);
    const ours = listenFds();
    if (round === 0) clearFlags(count);
    const theirs = native.sdListenFdsWithNames(false);
    const same = theirs.result === ours.length &&
      ours.every(({ fd, name }, index) =>
        fd === 3 + index && name === theirs.names?.[index]
      );
    if (!same) {
      throw new Error(
        `listenFds() and libsystemd disagree with ${count} fds: ${
          JSON.stringify({ ours: ours.slice(0, 3), theirs })
        }`,
      );
    }
  }
}

// deno bench runs each bench as one block; on a shared machine a burst of
// load can then hit one arm only. So every group is registered ROUNDS times,
// the rounds one after the other, and scripts/bench.ts takes each arm's
// median over the rounds.
export const ROUNDS = 3;

for (let round = 1; round <= ROUNDS; round++) {
  for (const count of COUNTS) register(count, ` (round ${round})`);
}

function register(count: number, round: string): void {
  // (a) Steady state: the flags are already set, so each call reads the
  // environment and does one F_GETFD per fd.
  Deno.bench({
    name: "libsystemd",
    group: `steady, ${count} fds${round}`,
    baseline: true,
    fn() {
      useCount(count);
      native.sdListenFdsWithNames(false);
    },
  });
  Deno.bench({
    name: "listenFds()",
    group: `steady, ${count} fds${round}`,
    fn() {
      useCount(count);
      listenFds();
    },
  });
  // (b) Fresh: FD_CLOEXEC cleared before each call, so each call also does
  // one F_SETFD per fd, as on the first call after exec. b.start()/b.end()
  // cannot leave the clearing out here: deno bench ignores them when an
  // iteration averages under 10 µs, as with 1 fd. So every arm of the group
  // times clearing + call, and the "clearing only" arm measures what to
  // subtract (scripts/bench.ts reports the ratio of the differences).
  Deno.bench({
    name: "libsystemd",
    group: `fresh, ${count} fds${round}`,
    baseline: true,
    fn() {
      useCount(count);
      clearFlags(count);
      native.sdListenFdsWithNames(false);
    },
  });
  Deno.bench({
    name: "listenFds()",
    group: `fresh, ${count} fds${round}`,
    fn() {
      useCount(count);
      clearFlags(count);
      listenFds();
    },
  });
  Deno.bench({
    name: "clearing only",
    group: `fresh, ${count} fds${round}`,
    fn() {
      useCount(count);
      clearFlags(count);
    },
  });
}
