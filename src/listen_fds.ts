import { activate, nameCountMismatch } from "./_activate.ts";
import { SD_LISTEN_FDS_START } from "./listen_env.ts";

/** A socket (or other fd) passed by the service manager. */
export interface ListenFd {
  /** The fd number: 3, 4, … */
  readonly fd: number;
  /**
   * Its name from `LISTEN_FDNAMES` (`FileDescriptorName=` in the socket
   * unit), or `"unknown"` when the manager passed no names.
   */
  readonly name: string;
}

/** Options of {@linkcode listenFds} and {@linkcode getSystemdSocket}. */
export interface ListenFdsOptions {
  /**
   * Remove `LISTEN_PID`, `LISTEN_PIDFDID`, `LISTEN_FDS` and `LISTEN_FDNAMES`
   * from the environment, whatever the outcome (errors included), so that
   * child processes do not take them for their own. Default: `false`.
   */
  unsetEnv?: boolean;
}

/**
 * Finds the fds that systemd (or another service manager) passed to this
 * process, as libsystemd's `sd_listen_fds_with_names()` does: reads
 * `LISTEN_PID`, `LISTEN_PIDFDID`, `LISTEN_FDS` and `LISTEN_FDNAMES` with
 * libsystemd's exact syntax, and makes every passed fd close-on-exec so that
 * processes started later do not inherit the sockets.
 *
 * On Deno this needs `--allow-env` and, when fds were passed, `--allow-ffi`.
 * On Node no native code is loaded unless an fd lacks the close-on-exec flag
 * (Node sets it on inherited fds at start-up) or `LISTEN_PIDFDID` is set.
 *
 * @param options Whether to unset the variables afterwards.
 * @returns The passed fds from fd 3 on, with their names; empty when the
 * variables are absent or meant for another process.
 * @throws {ActivationError} `INVALID_LISTEN_PID`, `INVALID_LISTEN_PIDFDID`,
 * `INVALID_LISTEN_FDS` or `INVALID_LISTEN_FDNAMES` for a variable libsystemd
 * rejects; `CLOEXEC_FAILED` naming the first fd that could not be made
 * close-on-exec (the fds before it keep the flag); `NAME_COUNT_MISMATCH` when
 * the names do not match the fds in number; `FFI_UNAVAILABLE` or
 * `ENV_UNAVAILABLE` without the permissions or native module needed.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Listing the passed sockets
 * ```ts ignore
 * import { listenFds } from "@socket-activation/socket-activation";
 *
 * for (const { fd, name } of listenFds({ unsetEnv: true })) {
 *   console.log(`fd ${fd} is ${name}`);
 * }
 * ```
 */
export function listenFds(options: ListenFdsOptions = {}): readonly ListenFd[] {
  const plan = activate(options.unsetEnv ?? false, false);
  if (plan.names !== undefined && plan.names.length !== plan.count) {
    throw nameCountMismatch(plan);
  }
  const fds: ListenFd[] = [];
  for (let index = 0; index < plan.count; index++) {
    fds.push({
      fd: SD_LISTEN_FDS_START + index,
      name: plan.names?.[index] ?? "unknown",
    });
  }
  return fds;
}
