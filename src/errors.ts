/**
 * The stable codes of {@linkcode ActivationError}.
 *
 * - `INVALID_LISTEN_PID`, `INVALID_LISTEN_PIDFDID`, `INVALID_LISTEN_FDS`,
 *   `INVALID_LISTEN_FDNAMES`: a variable does not parse as libsystemd reads it.
 * - `NAME_COUNT_MISMATCH`: `LISTEN_FDNAMES` has a different number of names
 *   than `LISTEN_FDS` announces.
 * - `NAME_NOT_FOUND`: the socket name asked for is not in `LISTEN_FDNAMES`.
 * - `CLOEXEC_FAILED`: a passed fd could not be made close-on-exec.
 * - `NOT_A_SOCKET`: an fd that should be a socket is closed or something else.
 * - `STAT_FAILED`: an fd or path could not be examined (`isFifo()`,
 *   `isSpecial()`, `readPassedFile()`): a closed fd (EBADF), a path that
 *   cannot be reached (EACCES, ELOOP, …).
 * - `INVALID_ENDPOINT`: an endpoint URI that cannot be parsed or formatted.
 * - `FD_NOT_PASSED`: an `fd://N` endpoint names an fd that systemd did not
 *   pass.
 * - `UNSUITABLE_SOCKET`: a passed socket is not of the kind asked for (a
 *   datagram socket where a stream socket is needed, one neither listening
 *   nor connected, a socket where a FIFO is needed).
 * - `PATH_NOT_SOCKET`: a unix socket path holds a file, a folder or a
 *   symlink, left untouched.
 * - `ADDRESS_IN_USE`: a server already listens on that address.
 * - `TCP_NOT_ALLOWED`: `unixOnly` forbids binding TCP and systemd passed no
 *   socket.
 * - `LISTEN_FAILED`, `CONNECT_FAILED`: a system call to listen or connect
 *   failed (the errno and cause tell which).
 * - `INVALID_CONFIG`: a TOML configuration that does not parse or does not
 *   follow the schema (the message gives the key path and the line).
 * - `CONFIG_UNREADABLE`: a configuration file that cannot be read (missing,
 *   not permitted, Deno without `--allow-read`).
 * - `INVALID_NOTIFY_SOCKET`: `NOTIFY_SOCKET` is not an absolute path or
 *   `@abstract` name.
 * - `NOTIFY_FAILED`: a notification could not be sent (the errno says why).
 * - `NOTIFY_TIMEOUT`: the service manager did not answer a barrier in time.
 * - `INVALID_WATCHDOG_USEC`, `INVALID_WATCHDOG_PID`: a watchdog variable does
 *   not parse as libsystemd reads it.
 * - `FFI_UNAVAILABLE`: the system calls cannot be reached (Deno without
 *   `--allow-ffi`, or koffi missing on Node).
 * - `ENV_UNAVAILABLE`: the variables cannot be read (Deno without
 *   `--allow-env`).
 * - `UNSUPPORTED`: a feature asked for that this socket or runtime cannot
 *   give (the per-uid request limit of `serve()` on a socket that is not a
 *   unix socket; a kind of socket neither runtime can use, such as
 *   SOCK_SEQPACKET or netlink, named in the message).
 * - `SPAWN_FAILED`: a child process could not be started (no such program,
 *   or a system call failed).
 */
export type ActivationErrorCode =
  | "INVALID_LISTEN_PID"
  | "INVALID_LISTEN_PIDFDID"
  | "INVALID_LISTEN_FDS"
  | "INVALID_LISTEN_FDNAMES"
  | "NAME_COUNT_MISMATCH"
  | "NAME_NOT_FOUND"
  | "CLOEXEC_FAILED"
  | "NOT_A_SOCKET"
  | "STAT_FAILED"
  | "INVALID_ENDPOINT"
  | "FD_NOT_PASSED"
  | "UNSUITABLE_SOCKET"
  | "PATH_NOT_SOCKET"
  | "ADDRESS_IN_USE"
  | "TCP_NOT_ALLOWED"
  | "LISTEN_FAILED"
  | "CONNECT_FAILED"
  | "INVALID_CONFIG"
  | "CONFIG_UNREADABLE"
  | "INVALID_NOTIFY_SOCKET"
  | "NOTIFY_FAILED"
  | "NOTIFY_TIMEOUT"
  | "INVALID_WATCHDOG_USEC"
  | "INVALID_WATCHDOG_PID"
  | "FFI_UNAVAILABLE"
  | "ENV_UNAVAILABLE"
  | "UNSUPPORTED"
  | "SPAWN_FAILED";

/** Options of the {@linkcode ActivationError} constructor. */
export interface ActivationErrorOptions {
  /** The C errno libsystemd would return, negated, in the same case. */
  errno?: number;
  /** The lower-level failure, if any. */
  cause?: unknown;
}

/**
 * The one error this library throws for callers to catch: a socket-activation
 * environment that libsystemd would reject, or a system call that failed.
 *
 * @example Telling a bad environment from a missing name
 * ```ts
 * import { ActivationError, getSystemdSocket } from "@socket-activation/socket-activation";
 *
 * try {
 *   getSystemdSocket("web");
 * } catch (error) {
 *   if (error instanceof ActivationError && error.code === "NAME_NOT_FOUND") {
 *     console.error(error.message);
 *   }
 * }
 * ```
 */
export class ActivationError extends Error {
  /** What went wrong, as a stable string to test against. */
  readonly code: ActivationErrorCode;
  /**
   * The C errno behind the failure (`22` for EINVAL, `9` for EBADF, …): the
   * value libsystemd would return negated, or the errno of the system call.
   * `undefined` where libsystemd has no such case.
   */
  readonly errno: number | undefined;

  /**
   * Makes an error with a code, a message and optionally an errno and cause.
   *
   * @param code The stable code.
   * @param message What happened, naming the variable, value or fd.
   * @param options The errno and the cause.
   */
  constructor(
    code: ActivationErrorCode,
    message: string,
    options: ActivationErrorOptions = {},
  ) {
    super(
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "ActivationError";
    this.code = code;
    this.errno = options.errno;
  }
}
