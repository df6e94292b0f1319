// The setup that the listenFds()-against-libsystemd harnesses share
// (deno_bench.ts under `deno bench`, and node_bench.ts compiled for Node).
// Runtime-neutral: node:fs and node:process only, and the caller passes its
// `native` and `listenFds`, because the Node compile
// (scripts/bench/_node_harness.ts) erases types but does not swap `.deno.ts`
// for `.node.ts` as the npm build does.

import { readlinkSync } from "node:fs";
import process from "node:process";
import { clearCloexec, type Native } from "../../../tests/_native.common.ts";

/** The fd counts measured. */
export const COUNTS = [1, 16, 256] as const;

/** The largest count: the section passes pipes at fds 3..(3 + MAX - 1). */
export const MAX: number = COUNTS[COUNTS.length - 1]!;

const NAMES = Array.from({ length: MAX }, (_, index) => `socket${index}`);

/** The two arms a harness compares, from its own runtime's modules. */
export interface Arms {
  /** The runtime's libc and libsystemd bindings (`tests/_native.*.ts`). */
  native: Native;
  /** This library's `listenFds()` (`tests/_lib.ts`, or the built package). */
  listenFds: () => readonly { readonly fd: number; readonly name: string }[];
}

/**
 * Throws unless fds 3..(3 + MAX - 1) are pipes, as the section passes
 * them.
 */
export function checkPassedPipes(): void {
  // Only what the driver set up is a fair field: fds the runtime opened for
  // itself would also be found, but would not be sockets a manager passed.
  for (let fd = 3; fd < 3 + MAX; fd++) {
    let target = "";
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // Reported below.
    }
    if (!target.startsWith("pipe:")) {
      throw new Error(
        `fd ${fd} is not a passed pipe (${
          target || "closed"
        }): run this through scripts/bench/main.ts`,
      );
    }
  }
}

let current = 0;

/**
 * Sets LISTEN_PID (this process), LISTEN_FDS (`count`) and LISTEN_FDNAMES
 * (that many names), which both arms read from the environment.
 */
export function useCount(count: number): void {
  // Switching counts writes the environment once per bench, not per call:
  // the check that skips it costs both arms the same.
  if (current === count) return;
  process.env.LISTEN_PID = String(process.pid);
  process.env.LISTEN_FDS = String(count);
  process.env.LISTEN_FDNAMES = NAMES.slice(0, count).join(":");
  current = count;
}

/** Clears FD_CLOEXEC on fds 3..(3 + count - 1). */
export function clearFlags(native: Native, count: number): void {
  for (let fd = 3; fd < 3 + count; fd++) clearCloexec(native, fd);
}

/**
 * Throws unless both arms find the same fds and names with `count` fds, from
 * cleared and from set flags. Call `useCount(count)` first.
 */
export function checkArmsAgree(count: number, arms: Arms): void {
  // Both arms must do the same work, or the ratio means nothing.
  const { native, listenFds } = arms;
  for (let round = 0; round < 2; round++) {
    if (round === 0) clearFlags(native, count);
    const ours = listenFds();
    if (round === 0) clearFlags(native, count);
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
