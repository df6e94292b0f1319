// The pure resolver: what libsystemd's sd_listen_fds_with_names() decides from
// the environment, without doing any I/O (SPEC section 2).

import { describeErrno, EINVAL } from "./_errno.ts";
import { parseInt32, parsePid, parseUint64 } from "./_parse_int.ts";
import { splitFdNames } from "./_split_names.ts";
import { ActivationError } from "./errors.ts";

/** The first fd passed by the service manager: `SD_LISTEN_FDS_START`. */
export const SD_LISTEN_FDS_START = 3;

// sd_listen_fds() refuses counts that would overflow past INT_MAX.
const MAX_LISTEN_FDS = 2 ** 31 - 1 - SD_LISTEN_FDS_START;

/** The four variables of the socket-activation protocol, as read. */
export interface ListenEnv {
  /** The pid the variables are meant for. */
  readonly LISTEN_PID?: string | undefined;
  /** The inode id of that process's pidfd (systemd 259 and later). */
  readonly LISTEN_PIDFDID?: string | undefined;
  /** How many fds were passed, from fd 3 on. */
  readonly LISTEN_FDS?: string | undefined;
  /** Colon-separated names, one per fd. */
  readonly LISTEN_FDNAMES?: string | undefined;
}

/** Options of {@linkcode parseListenEnv}. */
export interface ParseListenEnvOptions {
  /**
   * Returns the inode id of this process's pidfd, or `undefined` where the
   * kernel gives pidfds no id of their own (no pidfs). Called only when
   * `LISTEN_PIDFDID` is set and valid; without it, the variable is parsed
   * but not compared.
   */
  pidfdId?: () => bigint | undefined;
}

/** What the environment announces. */
export interface ListenPlan {
  /** How many fds were passed (0: the variables are not for this process). */
  readonly count: number;
  /**
   * The names from `LISTEN_FDNAMES`, or `undefined` when it is not set. Their
   * number may differ from `count`: libsystemd reports that only after
   * making the fds close-on-exec.
   */
  readonly names: readonly string[] | undefined;
}

/** The internal form of the options, for `getSystemdSocket()`. */
export interface ResolveOptions extends ParseListenEnvOptions {
  /** Take `LISTEN_FDS` = 0 as "no socket" instead of an error. */
  zeroFdsIsNone?: boolean;
}

const NONE: ListenPlan = { count: 0, names: undefined };

function invalid(
  code:
    | "INVALID_LISTEN_PID"
    | "INVALID_LISTEN_PIDFDID"
    | "INVALID_LISTEN_FDS"
    | "INVALID_LISTEN_FDNAMES",
  value: string,
  reason: string,
  errno: number,
): ActivationError {
  const variable = code.slice("INVALID_".length);
  return new ActivationError(
    code,
    `Invalid ${variable} ${JSON.stringify(value)}: ${reason}, ${
      describeErrno(errno)
    }`,
    { errno },
  );
}

/** @internal The resolver behind {@linkcode parseListenEnv}. */
export function resolveListenEnv(
  env: ListenEnv,
  pid: number,
  options: ResolveOptions = {},
): ListenPlan {
  // Names are split before anything else, so a bad LISTEN_FDNAMES is an
  // error even when the variables are for another process.
  let names: string[] | undefined;
  if (env.LISTEN_FDNAMES !== undefined) {
    names = splitFdNames(env.LISTEN_FDNAMES);
    if (names === undefined) {
      throw invalid(
        "INVALID_LISTEN_FDNAMES",
        env.LISTEN_FDNAMES,
        "ends with a lone backslash",
        EINVAL,
      );
    }
  }

  if (env.LISTEN_PID === undefined) return NONE;
  const listenPid = parsePid(env.LISTEN_PID);
  if (!listenPid.ok) {
    throw invalid(
      "INVALID_LISTEN_PID",
      env.LISTEN_PID,
      "not a positive process id",
      listenPid.errno,
    );
  }
  if (listenPid.value !== BigInt(pid)) return NONE;

  if (env.LISTEN_PIDFDID !== undefined) {
    const listenPidfdId = parseUint64(env.LISTEN_PIDFDID);
    if (!listenPidfdId.ok) {
      throw invalid(
        "INVALID_LISTEN_PIDFDID",
        env.LISTEN_PIDFDID,
        "not an unsigned 64-bit integer",
        listenPidfdId.errno,
      );
    }
    // Where pidfds have no inode id of their own, libsystemd skips the check.
    const own = options.pidfdId?.();
    if (own !== undefined && own !== listenPidfdId.value) return NONE;
  }

  if (env.LISTEN_FDS === undefined) return NONE;
  const count = parseInt32(env.LISTEN_FDS);
  if (!count.ok) {
    throw invalid(
      "INVALID_LISTEN_FDS",
      env.LISTEN_FDS,
      "not an integer",
      count.errno,
    );
  }
  if (count.value === 0n && options.zeroFdsIsNone) return NONE;
  if (count.value <= 0n || count.value > BigInt(MAX_LISTEN_FDS)) {
    throw invalid(
      "INVALID_LISTEN_FDS",
      env.LISTEN_FDS,
      `not between 1 and ${MAX_LISTEN_FDS}`,
      EINVAL,
    );
  }
  return { count: Number(count.value), names };
}

/**
 * Decides, from a snapshot of the environment, what the service manager
 * passed to the process `pid`, exactly as libsystemd's
 * `sd_listen_fds_with_names()` parses it: the same number syntax (C's
 * `strtol` with base 0, plus `0b` and `0o`), the same escapes in names and
 * the same errors. It does no I/O: it neither touches the fds nor reads or
 * changes the environment. Most services want {@linkcode listenFds} instead.
 *
 * @param env The four variables, for example copied from `process.env`.
 * @param pid The process they should be meant for, usually this one's.
 * @param options How to check `LISTEN_PIDFDID`.
 * @returns The fd count (0 when the variables are absent or for another
 * process) and the names as written in `LISTEN_FDNAMES`, if set.
 * @throws {ActivationError} `INVALID_LISTEN_FDNAMES`, `INVALID_LISTEN_PID`,
 * `INVALID_LISTEN_PIDFDID` or `INVALID_LISTEN_FDS` where libsystemd returns
 * an error, with its errno.
 *
 * @example Reading a made-up environment
 * ```ts
 * import { parseListenEnv } from "@socket-activation/socket-activation";
 *
 * const plan = parseListenEnv(
 *   { LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "web:admin" },
 *   42,
 * );
 * console.log(plan.count, plan.names); // 2 [ "web", "admin" ]
 * ```
 */
export function parseListenEnv(
  env: ListenEnv,
  pid: number,
  options: ParseListenEnvOptions = {},
): ListenPlan {
  return resolveListenEnv(
    env,
    pid,
    options.pidfdId ? { pidfdId: options.pidfdId } : {},
  );
}
