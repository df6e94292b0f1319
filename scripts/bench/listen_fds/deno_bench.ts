// listenFds() against libsystemd's sd_listen_fds_with_names() on Deno, both
// called in this process on the same fds. Run it through scripts/bench/main.ts
// (the listen-fds section), which starts `deno bench` with pipes at fds
// 3..258 (as a service manager passes sockets: without close-on-exec); this
// file only sets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (useCount() in
// _setup.ts), which both arms read from the environment.

import { listenFds } from "../../../tests/_lib.ts";
import { native } from "../../../tests/_native.deno.ts";
import {
  checkArmsAgree,
  checkPassedPipes,
  clearFlags,
  COUNTS,
  useCount,
} from "./_setup.ts";

checkPassedPipes();
if (!native.libsystemdAvailable()) {
  throw new Error("libsystemd.so.0 is not available");
}

for (const count of COUNTS) {
  useCount(count);
  checkArmsAgree(count, { native, listenFds });
}

// deno bench runs each bench as one block; on a shared machine a burst of
// load can then hit one arm only. So every group is registered ROUNDS times,
// the rounds one after the other, and the section takes each arm's
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
  // subtract (the section reports the ratio of the differences).
  Deno.bench({
    name: "libsystemd",
    group: `fresh, ${count} fds${round}`,
    baseline: true,
    fn() {
      useCount(count);
      clearFlags(native, count);
      native.sdListenFdsWithNames(false);
    },
  });
  Deno.bench({
    name: "listenFds()",
    group: `fresh, ${count} fds${round}`,
    fn() {
      useCount(count);
      clearFlags(native, count);
      listenFds();
    },
  });
  Deno.bench({
    name: "clearing only",
    group: `fresh, ${count} fds${round}`,
    fn() {
      useCount(count);
      clearFlags(native, count);
    },
  });
}
