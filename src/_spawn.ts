// Starting a child with fds at 3, 4, … as a service manager does (SPEC
// section 6), and waiting for its exit. One mechanism on both runtimes:
// posix_spawn() through the FFI layer. Deno's node:child_process refuses
// numeric fds and Deno's Command cannot place fds; Node's child_process could,
// but then the two runtimes would start children in two ways, with two sets
// of bugs. glibc's posix_spawn() forks with CLONE_VFORK, which is safe in a
// multi-threaded process, and its file actions place the fds, close every
// other fd (closefrom, glibc 2.34) and reset the signals in the child.

import { accessSync, constants as fsConstants } from "node:fs";
import { constants as osConstants } from "node:os";
import { delimiter, resolve } from "node:path";
import { describeErrno } from "./_errno.ts";
import type { Reactor } from "./_reactor.ts";
import { SIGSET_SIZE, SPAWN_BUFFER_SIZE } from "./_sys.common.ts";
import { sys } from "./_sys.deno.ts";
import { ActivationError } from "./errors.ts";
import {
  CLD_EXITED,
  F_DUPFD_CLOEXEC,
  O_RDONLY,
  O_WRONLY,
  P_PIDFD,
  POLLIN,
  POSIX_SPAWN_SETPGROUP,
  POSIX_SPAWN_SETSIGDEF,
  POSIX_SPAWN_SETSIGMASK,
  WEXITED,
  WNOHANG,
} from "./_linux.ts";

/** Where a child's stdout or stderr goes. */
export type Output = "inherit" | "ignore";

/** What to start. */
export interface SpawnRequest {
  /** The program (a path) and its arguments, argv[0] included. */
  readonly argv: readonly string[];
  /** The whole environment, as `NAME=value` strings. */
  readonly env: readonly string[];
  /** The fds to pass, placed at 3, 4, … in this order. */
  readonly fds: readonly number[];
  /** The working folder; this process's by default. */
  readonly cwd?: string | undefined;
  readonly stdout: Output;
  readonly stderr: Output;
}

/** A started child: its pid and a pidfd to wait on. */
export interface SpawnedChild {
  readonly pid: number;
  readonly pidfd: number;
}

/** How a child ended: an exit code, or the signal that killed it. */
export interface ChildExit {
  /** Its pid. */
  readonly pid: number;
  /** The exit code, or `null` when a signal killed it. */
  readonly code: number | null;
  /** The name of the signal that killed it (`"SIGKILL"`), or `null`. */
  readonly signal: string | null;
}

function spawnError(argv: readonly string[], detail: string, errno?: number) {
  return new ActivationError(
    "SPAWN_FAILED",
    `Cannot start ${JSON.stringify(argv[0])}: ${detail}`,
    errno === undefined ? {} : { errno },
  );
}

/**
 * Where `name` is found as `execvp()` finds it in a child working in
 * `cwd`: itself when it holds a slash, else the first executable file of
 * that name in `path`.
 */
export function findProgram(
  name: string,
  path: string,
  cwd = ".",
): string | undefined {
  const candidates = name.includes("/")
    ? [resolve(cwd, name)]
    : path.split(delimiter).map((folder) => resolve(cwd, folder, name));
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Starts `request.argv` with the fds at 3, 4, …, stdin on /dev/null, in a
 * process group of its own, with default signal handling and no blocked
 * signal, and no other fd of this process.
 */
export function spawnChild(request: SpawnRequest): SpawnedChild {
  const libc = sys.libc();
  const first = 3 + request.fds.length;
  // A source fd inside 3…first-1 could be overwritten by an earlier dup2
  // before its own turn: move such fds above the range first.
  const moved: number[] = [];
  const sources = request.fds.map((fd) => {
    if (fd >= first) return fd;
    const copy = libc.fcntl(fd, F_DUPFD_CLOEXEC, first);
    if (copy < 0) {
      throw spawnError(
        request.argv,
        `cannot duplicate fd ${fd}: ${describeErrno(libc.errno())}`,
      );
    }
    moved.push(copy);
    return copy;
  });
  const actions = new Uint8Array(SPAWN_BUFFER_SIZE);
  const attributes = new Uint8Array(SPAWN_BUFFER_SIZE);
  libc.spawnFileActionsInit(actions);
  libc.spawnAttrInit(attributes);
  try {
    const steps: [string, number][] = [];
    if (request.cwd !== undefined) {
      steps.push([
        `chdir ${request.cwd}`,
        libc.spawnFileActionsAddChdir(actions, request.cwd),
      ]);
    }
    steps.push([
      "stdin",
      libc.spawnFileActionsAddOpen(actions, 0, "/dev/null", O_RDONLY, 0),
    ]);
    for (const [fd, output] of [[1, request.stdout], [2, request.stderr]]) {
      // dup2() of an fd onto itself clears its close-on-exec flag (glibc
      // 2.29): Node marks its own stdio close-on-exec.
      steps.push([
        `fd ${fd}`,
        output === "inherit"
          ? libc.spawnFileActionsAddDup2(actions, fd as number, fd as number)
          : libc.spawnFileActionsAddOpen(
            actions,
            fd as number,
            "/dev/null",
            O_WRONLY,
            0,
          ),
      ]);
    }
    sources.forEach((fd, index) =>
      steps.push([
        `fd ${fd}`,
        libc.spawnFileActionsAddDup2(actions, fd, 3 + index),
      ])
    );
    // Nothing else of this process's reaches the child, close-on-exec or
    // not (fds this process inherited without the flag included).
    steps.push([
      "closefrom",
      libc.spawnFileActionsAddCloseFrom(actions, first),
    ]);
    const noSignals = new Uint8Array(SIGSET_SIZE);
    // Signals 1 to 64 back to their default action: ignored ones would stay
    // ignored across exec (Node ignores SIGPIPE).
    const allSignals = new Uint8Array(SIGSET_SIZE);
    allSignals.fill(0xff, 0, 8);
    steps.push(
      [
        "flags",
        libc.spawnAttrSetFlags(
          attributes,
          POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
            POSIX_SPAWN_SETSIGMASK,
        ),
      ],
      ["pgroup", libc.spawnAttrSetPgroup(attributes, 0)],
      ["sigmask", libc.spawnAttrSetSigMask(attributes, noSignals)],
      ["sigdefault", libc.spawnAttrSetSigDefault(attributes, allSignals)],
    );
    for (const [what, result] of steps) {
      if (result !== 0) {
        throw spawnError(
          request.argv,
          `cannot prepare ${what}: ${describeErrno(result)}`,
          result,
        );
      }
    }
    const pid = new Int32Array(1);
    const result = libc.posixSpawn(
      pid,
      request.argv[0]!,
      actions,
      attributes,
      request.argv,
      request.env,
    );
    if (result !== 0) {
      throw spawnError(
        request.argv,
        `posix_spawn() failed with ${describeErrno(result)}`,
        result,
      );
    }
    // The child cannot be reaped by anyone else, so its pid is still its
    // own here, a zombie at worst.
    const pidfd = libc.pidfdOpen(pid[0]!);
    if (pidfd < 0) {
      const errno = libc.errno();
      libc.kill(pid[0]!, osConstants.signals.SIGKILL);
      throw spawnError(
        request.argv,
        `pidfd_open() failed with ${
          describeErrno(errno)
        } (Linux 5.3 or later is needed)`,
        errno,
      );
    }
    return { pid: pid[0]!, pidfd };
  } finally {
    libc.spawnFileActionsDestroy(actions);
    libc.spawnAttrDestroy(attributes);
    moved.forEach((fd) => libc.close(fd));
  }
}

// The first name of each number: SIGABRT, not its alias SIGIOT.
const SIGNAL_NAMES = new Map<number, string>();
for (const [name, number] of Object.entries(osConstants.signals)) {
  if (!SIGNAL_NAMES.has(number)) SIGNAL_NAMES.set(number, name);
}

/**
 * Waits for the child to exit, with its pidfd in `reactor`, then reaps it
 * and closes the pidfd.
 */
export function waitForExit(
  reactor: Reactor,
  child: SpawnedChild,
): Promise<ChildExit> {
  const libc = sys.libc();
  return new Promise((resolve) => {
    const info = new Uint8Array(128);
    const view = new DataView(info.buffer);
    const unwatch = reactor.watch(child.pidfd, POLLIN, () => {
      // siginfo_t on 64-bit Linux: si_code at 8, si_pid at 16, si_status
      // at 24. si_pid stays 0 while the child runs (WNOHANG).
      info.fill(0);
      if (libc.waitid(P_PIDFD, child.pidfd, info, WEXITED | WNOHANG) < 0) {
        return;
      }
      if (view.getInt32(16, true) === 0) return;
      unwatch();
      libc.close(child.pidfd);
      const status = view.getInt32(24, true);
      const exited = view.getInt32(8, true) === CLD_EXITED;
      resolve({
        pid: child.pid,
        code: exited ? status : null,
        signal: exited ? null : SIGNAL_NAMES.get(status) ?? `signal ${status}`,
      });
    });
  });
}

/**
 * Sends `signal` to the child's process group (its own and what it
 * started, as systemd's KillMode=control-group does). Only while the child
 * is not reaped: until then its pid and group id cannot be reused.
 */
export function signalGroup(pid: number, signal: string): void {
  const number = (osConstants.signals as Record<string, number | undefined>)[
    signal
  ];
  if (number === undefined) throw new RangeError(`Unknown signal ${signal}`);
  const libc = sys.libc();
  // A group that is gone (ESRCH) is no error: the child exits anyway.
  if (libc.kill(-pid, number) < 0) libc.kill(pid, number);
}
