// The service side of sd_notify(3): one datagram to the socket named by
// NOTIFY_SOCKET, sent through the FFI layer (Node has no unix datagram
// sockets, Deno cannot pass fds), as libsystemd 252's
// sd_pid_notify_with_fds() does it, with one difference: the send never
// waits. libsystemd blocks while the manager's queue is full, which costs a
// C service one thread; in JavaScript it would freeze the event loop, and
// with it every server, timer and the watchdog pinger. So the datagram goes
// with MSG_DONTWAIT, and a full queue is NOTIFY_FAILED with EAGAIN.

import process from "node:process";
import {
  describeErrno,
  E2BIG,
  EAGAIN,
  EINVAL,
  ENAMETOOLONG,
  ETIMEDOUT,
} from "./_errno.ts";
import { readEnv, unsetEnv } from "./_env.ts";
import type { Libc } from "./_sys.common.ts";
import { sys } from "./_sys.deno.ts";
import { ActivationError } from "./errors.ts";
import {
  AF_UNIX,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  O_CLOEXEC,
  POLLFD_SIZE,
  SCM_CREDENTIALS,
  SCM_MAX_FD,
  SCM_RIGHTS,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOL_SOCKET,
  SUN_PATH_MAX,
} from "./_linux.ts";
import { unixSockaddr } from "./_sockaddr.ts";

/** Options of {@linkcode notify} and the functions built on it. */
export interface NotifyOptions {
  /**
   * Remove `NOTIFY_SOCKET` from the environment afterwards, whatever the
   * outcome, so that child processes do not notify in this service's name.
   * Default: `false`.
   */
  unsetEnv?: boolean;
  /**
   * Send in the name of this process (`sd_pid_notify()`): the credentials
   * carry it, which needs privileges unless it is this process. Default:
   * this process.
   */
  pid?: number;
}

// libsystemd's SNDBUF_SIZE: room for a state of several MiB.
const SNDBUF_SIZE = 8 * 1024 * 1024;

/**
 * sockaddr_un_set_path(): an absolute path or an `@abstract` name, at least
 * two characters, that fits sun_path with a NUL after it.
 */
function notifyAddress(value: string): Uint8Array {
  const bytes = new TextEncoder().encode(value);
  const shaped = bytes.length >= 2 && (value[0] === "/" || value[0] === "@") &&
    !bytes.includes(0);
  const fits = bytes.length <= SUN_PATH_MAX;
  if (!shaped || !fits) {
    // A path too long for sun_path is ENAMETOOLONG, as libsystemd says it:
    // it might be reached another way; everything else is EINVAL.
    const errno = shaped && value[0] === "/" ? ENAMETOOLONG : EINVAL;
    throw new ActivationError(
      "INVALID_NOTIFY_SOCKET",
      `Invalid NOTIFY_SOCKET ${
        JSON.stringify(value)
      }: not an absolute path or @abstract name of 2 to ${SUN_PATH_MAX} bytes, ${
        describeErrno(errno)
      }`,
      { errno },
    );
  }
  return unixSockaddr(value);
}

const align8 = (length: number) => (length + 7) & ~7;

/** SCM_RIGHTS with `fds`, then SCM_CREDENTIALS if `credentials` is given. */
function controlMessages(
  fds: readonly number[],
  credentials: readonly [number, number, number] | undefined,
): Uint8Array {
  // struct cmsghdr on LP64: size_t cmsg_len, int level, int type, data.
  const rights = fds.length > 0 ? 16 + align8(4 * fds.length) : 0;
  const ucred = credentials ? 16 + align8(12) : 0;
  const control = new Uint8Array(rights + ucred);
  const view = new DataView(control.buffer);
  if (rights > 0) {
    view.setBigUint64(0, BigInt(16 + 4 * fds.length), true);
    view.setInt32(8, SOL_SOCKET, true);
    view.setInt32(12, SCM_RIGHTS, true);
    fds.forEach((fd, index) => view.setInt32(16 + 4 * index, fd, true));
  }
  if (credentials) {
    view.setBigUint64(rights, BigInt(16 + 12), true);
    view.setInt32(rights + 8, SOL_SOCKET, true);
    view.setInt32(rights + 12, SCM_CREDENTIALS, true);
    credentials.forEach((id, index) =>
      view.setUint32(rights + 16 + 4 * index, id, true)
    );
  }
  return control;
}

function notifyFailed(call: string, errno: number): ActivationError {
  // A full queue: the manager is not reading (stuck, or flooded by other
  // services); sending again later may work.
  const why = errno === EAGAIN ? ", its queue is full (it is not reading)" : "";
  return new ActivationError(
    "NOTIFY_FAILED",
    `Cannot notify the service manager: ${call} failed with ${
      describeErrno(errno)
    }${why}`,
    { errno },
  );
}

// SNDBUF_SIZE as setsockopt() takes it, and room for what getsockopt()
// returns: made once, as every notify() raises the buffer.
const SNDBUF_VALUE = new Uint8Array(new Int32Array([SNDBUF_SIZE]).buffer);
const optionInt = new Int32Array(1);
const optionValue = new Uint8Array(optionInt.buffer);
const optionLength = new Uint32Array(1);

/** SO_SNDBUF as getsockopt() reads it (twice what was set), or -1. */
function sendBufferSize(libc: Libc, fd: number): number {
  optionLength[0] = 4;
  const result = libc.getsockopt(
    fd,
    SOL_SOCKET,
    SO_SNDBUF,
    optionValue,
    optionLength,
  );
  return result < 0 || optionLength[0] !== 4 ? -1 : optionInt[0]!;
}

/**
 * Raises the socket's send buffer to 8 MiB, so that a state of a few MiB
 * fits in one datagram, with the four calls libsystemd 252's
 * fd_inc_sndbuf() makes (seen with strace around sd_notify(), and compared
 * in tests/notify_differential_test.ts): read SO_SNDBUF; unless it is
 * already twice the size (the kernel doubles what it is given), set
 * SO_SNDBUF, which the kernel caps at net.core.wmem_max; read it again; if
 * still short, SO_SNDBUFFORCE, which ignores the cap for a process with
 * CAP_NET_ADMIN and fails with EPERM otherwise. As there, failures are
 * ignored: the send tells whether the state fits.
 */
function raiseSendBuffer(libc: Libc, fd: number): void {
  if (sendBufferSize(libc, fd) >= 2 * SNDBUF_SIZE) return;
  if (libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, SNDBUF_VALUE) < 0) return;
  if (sendBufferSize(libc, fd) >= 2 * SNDBUF_SIZE) return;
  libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, SNDBUF_VALUE);
}

/**
 * Sends `state` with `fds` to NOTIFY_SOCKET: `sd_pid_notify_with_fds()`.
 * Returns false when NOTIFY_SOCKET is not set.
 */
function send(
  state: string,
  fds: readonly number[],
  options: NotifyOptions,
): boolean {
  for (const fd of fds) {
    if (!Number.isInteger(fd) || fd < 0) {
      throw new RangeError(`An fd is a non-negative integer, not ${fd}`);
    }
  }
  if (
    options.pid !== undefined &&
    (!Number.isInteger(options.pid) || options.pid < 0)
  ) {
    throw new RangeError(`A pid is a non-negative integer, not ${options.pid}`);
  }
  if (fds.length > SCM_MAX_FD) {
    throw new ActivationError(
      "NOTIFY_FAILED",
      `Cannot send ${fds.length} fds in one notification: the kernel takes at most ${SCM_MAX_FD}, ${
        describeErrno(E2BIG)
      }`,
      { errno: E2BIG },
    );
  }
  try {
    const socketPath = readEnv("NOTIFY_SOCKET");
    if (socketPath === undefined) return false;
    const address = notifyAddress(socketPath);
    const libc = sys.libc();
    const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw notifyFailed("socket()", libc.errno());
    try {
      raiseSendBuffer(libc, fd);
      const pid = options.pid ?? 0;
      // Credentials go along only when they say something the kernel would
      // not: another pid, or real ids that differ from the effective ones.
      const sendCredentials = (pid !== 0 && pid !== process.pid) ||
        libc.getuid() !== libc.geteuid() || libc.getgid() !== libc.getegid();
      // libsystemd sends the state as a C string: up to its first NUL.
      const end = state.indexOf("\0");
      const data = new TextEncoder().encode(
        end < 0 ? state : state.slice(0, end),
      );
      const credentials = sendCredentials
        ? [pid || process.pid, libc.getuid(), libc.getgid()] as const
        : undefined;
      let result = libc.sendmsg(fd, {
        address,
        data,
        control: controlMessages(fds, credentials),
      }, MSG_NOSIGNAL | MSG_DONTWAIT);
      // Without the privilege to speak for another pid, send as ourselves.
      if (result < 0 && sendCredentials) {
        result = libc.sendmsg(fd, {
          address,
          data,
          control: controlMessages(fds, undefined),
        }, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      if (result < 0) throw notifyFailed("sendmsg()", libc.errno());
      return true;
    } finally {
      libc.close(fd);
    }
  } finally {
    if (options.unsetEnv) unsetEnv("NOTIFY_SOCKET");
  }
}

/**
 * Tells the service manager about the service's state: `sd_notify()`. The
 * state is one or more `KEY=VALUE` lines (`READY=1`, `STATUS=…`; see
 * sd_notify(3)), sent as one datagram to the socket in `NOTIFY_SOCKET`.
 * As libsystemd does, the send buffer is raised to 8 MiB first, so a state
 * of a few MiB fits.
 *
 * It never waits: where libsystemd blocks until the manager reads (which
 * would freeze the event loop, timers and servers included), a full queue
 * (the manager is stuck or flooded) fails at once with `NOTIFY_FAILED` and
 * errno EAGAIN, and nothing is sent. Try again later if the state matters
 * (`READY=1`); {@linkcode startWatchdog} skips the ping and goes on.
 *
 * Needs `--allow-env` and `--allow-ffi` on Deno (no `--unstable-net`); on
 * Node it loads koffi when `NOTIFY_SOCKET` is set.
 *
 * @param state The assignments, separated by newlines.
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name to send.
 * @returns `true` when sent, `false` when `NOTIFY_SOCKET` is not set (not
 * started by a service manager that listens).
 * @throws {ActivationError} `INVALID_NOTIFY_SOCKET` for a `NOTIFY_SOCKET`
 * that is not an absolute path or `@abstract` name (EINVAL, or ENAMETOOLONG
 * for a path too long for a socket address, as libsystemd says),
 * `NOTIFY_FAILED` with the errno when the datagram cannot be sent: EAGAIN
 * for a full queue, EMSGSIZE for a state larger than the send buffer,
 * ENOENT or ECONNREFUSED where nothing listens.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Ready, with a status line
 * ```ts ignore
 * import { notify } from "@socket-activation/socket-activation";
 *
 * notify("READY=1\nSTATUS=Serving on fd 3");
 * ```
 *
 * @example Retrying READY=1 while the manager's queue is full
 * ```ts ignore
 * import { ActivationError, ready } from "@socket-activation/socket-activation";
 *
 * function tellReady(): void {
 *   try {
 *     ready();
 *   } catch (error) {
 *     if (!(error instanceof ActivationError) || error.errno !== 11) throw error;
 *     setTimeout(tellReady, 100); // EAGAIN: the manager is not reading yet
 *   }
 * }
 * tellReady();
 * ```
 */
export function notify(state: string, options: NotifyOptions = {}): boolean {
  return send(state, [], options);
}

/**
 * Sends a state together with fds: `sd_pid_notify_with_fds()`. With
 * `FDSTORE=1` (and `FDNAME=`), systemd keeps the fds in the service's fd
 * store and passes them back on the next start, so connections can survive
 * a restart (`FileDescriptorStoreMax=` in the service unit).
 *
 * @param state The assignments, for example `"FDSTORE=1\nFDNAME=db"`.
 * @param fds The fds to send, at most 253 (the kernel's limit).
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name to send.
 * @returns `true` when sent, `false` when `NOTIFY_SOCKET` is not set.
 * @throws {ActivationError} `NOTIFY_FAILED` with E2BIG for more than 253
 * fds, or with the errno of the send (EBADF for a closed fd), and
 * `INVALID_NOTIFY_SOCKET`.
 * @throws {RangeError} For an fd or pid that is not a non-negative integer.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Keeping a connection in the fd store
 * ```ts ignore
 * import { notifyWithFds } from "@socket-activation/socket-activation";
 *
 * const fd = 7; // an fd this service wants back after a restart
 * notifyWithFds("FDSTORE=1\nFDNAME=upstream", [fd]);
 * ```
 */
export function notifyWithFds(
  state: string,
  fds: readonly number[],
  options: NotifyOptions = {},
): boolean {
  return send(state, fds, options);
}

/** Options of {@linkcode notifyBarrier}. */
export interface NotifyBarrierOptions {
  /** Remove `NOTIFY_SOCKET` from the environment afterwards. */
  unsetEnv?: boolean;
}

/**
 * Waits until the service manager has handled every notification sent
 * before it: `sd_notify_barrier()`. It sends `BARRIER=1` with the write end
 * of a pipe, which the manager closes once it has read everything before.
 *
 * @param timeoutMs How long to wait, in milliseconds.
 * @param options Whether to unset `NOTIFY_SOCKET`.
 * @returns `true` once the manager has caught up, `false` when
 * `NOTIFY_SOCKET` is not set.
 * @throws {ActivationError} `NOTIFY_TIMEOUT` (ETIMEDOUT) when the manager
 * does not close the pipe in time, and the errors of {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Making sure systemd saw READY=1 before going on
 * ```ts ignore
 * import { notify, notifyBarrier } from "@socket-activation/socket-activation";
 *
 * notify("READY=1");
 * await notifyBarrier(5000);
 * ```
 */
export async function notifyBarrier(
  timeoutMs: number,
  options: NotifyBarrierOptions = {},
): Promise<boolean> {
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new RangeError(
      `A timeout is a non-negative number of ms, not ${timeoutMs}`,
    );
  }
  const libc = sys.libc();
  const pipe = new Int32Array(2);
  if (libc.pipe2(pipe, O_CLOEXEC) < 0) {
    throw notifyFailed("pipe2()", libc.errno());
  }
  const [readEnd, writeEnd] = [pipe[0]!, pipe[1]!];
  let writeOpen = true;
  try {
    const sent = send("BARRIER=1", [writeEnd], options);
    if (!sent) return false;
    libc.close(writeEnd);
    writeOpen = false;
    // POLLHUP needs no asking: poll() reports it once the manager closes
    // the last write end.
    const pollfd = new Uint8Array(POLLFD_SIZE);
    new DataView(pollfd.buffer).setInt32(0, readEnd, true);
    const ready = await libc.pollAsync(pollfd, 1, Math.ceil(timeoutMs));
    if (ready < 0) throw notifyFailed("poll()", EINVAL);
    if (ready === 0) {
      throw new ActivationError(
        "NOTIFY_TIMEOUT",
        `The service manager did not answer BARRIER=1 within ${timeoutMs} ms: ${
          describeErrno(ETIMEDOUT)
        }`,
        { errno: ETIMEDOUT },
      );
    }
    return true;
  } finally {
    if (writeOpen) libc.close(writeEnd);
    libc.close(readEnd);
  }
}

function assignment(key: string, value: string | number): string {
  const text = String(value);
  if (text.includes("\n")) {
    throw new TypeError(
      `${key} cannot hold a newline: ${JSON.stringify(text)}`,
    );
  }
  return `${key}=${text}`;
}

function nonNegativeInteger(key: string, value: number | bigint): string {
  if (
    typeof value === "bigint"
      ? value < 0n
      : !Number.isSafeInteger(value) || value < 0
  ) {
    throw new RangeError(`${key} is a non-negative integer, not ${value}`);
  }
  return assignment(key, String(value));
}

/**
 * Tells the service manager that start-up is finished (`READY=1`), for
 * `Type=notify` services.
 *
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name.
 * @returns Whether it was sent (`false` without `NOTIFY_SOCKET`).
 * @throws {ActivationError} As {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example
 * ```ts ignore
 * import { ready } from "@socket-activation/socket-activation";
 *
 * ready();
 * ```
 */
export function ready(options: NotifyOptions = {}): boolean {
  return notify("READY=1", options);
}

/**
 * Tells the service manager that the service reloads its configuration
 * (`RELOADING=1`), with `MONOTONIC_USEC=` as `Type=notify-reload` requires
 * (systemd 253 and later). Send {@linkcode ready} when done, or let
 * `onReload()` do the whole exchange on SIGHUP.
 *
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name.
 * @returns Whether it was sent.
 * @throws {ActivationError} As {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example
 * ```ts ignore
 * import { ready, reloading } from "@socket-activation/socket-activation";
 *
 * reloading();
 * // … read the configuration again …
 * ready();
 * ```
 */
export function reloading(options: NotifyOptions = {}): boolean {
  return notify(reloadingState(), options);
}

/**
 * @internal The state that starts a reload, with the clock read now:
 * `RELOADING=1` and `MONOTONIC_USEC=`, which `Type=notify-reload` requires
 * (sd_notify(3)).
 */
export function reloadingState(): string {
  return `RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}`;
}

// CLOCK_MONOTONIC in microseconds, as systemd compares MONOTONIC_USEC with
// its own clock.
function monotonicUsec(): bigint {
  const CLOCK_MONOTONIC = 1;
  const timespec = new BigInt64Array(2);
  const libc = sys.libc();
  if (libc.clockGettime(CLOCK_MONOTONIC, timespec) < 0) {
    throw notifyFailed("clock_gettime()", libc.errno());
  }
  return timespec[0]! * 1_000_000n + timespec[1]! / 1000n;
}

/**
 * Tells the service manager that the service is shutting down
 * (`STOPPING=1`).
 *
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name.
 * @returns Whether it was sent.
 * @throws {ActivationError} As {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example
 * ```ts ignore
 * import { stopping } from "@socket-activation/socket-activation";
 *
 * stopping();
 * ```
 */
export function stopping(options: NotifyOptions = {}): boolean {
  return notify("STOPPING=1", options);
}

/**
 * Sets the status line `systemctl status` shows (`STATUS=`).
 *
 * @param text One line of text.
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name.
 * @returns Whether it was sent.
 * @throws {TypeError} When `text` holds a newline (it would start another
 * assignment): nothing is sent.
 * @throws {ActivationError} As {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example
 * ```ts ignore
 * import { status } from "@socket-activation/socket-activation";
 *
 * status("Serving 12 clients");
 * ```
 */
export function status(text: string, options: NotifyOptions = {}): boolean {
  return notify(assignment("STATUS", text), options);
}

/**
 * Reports the errno of a failure (`ERRNO=`), shown by `systemctl status`.
 *
 * @param value The errno, a non-negative integer.
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name.
 * @returns Whether it was sent.
 * @throws {RangeError} For a value that is not a non-negative integer.
 * @throws {ActivationError} As {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example
 * ```ts ignore
 * import { errno } from "@socket-activation/socket-activation";
 *
 * errno(2); // ENOENT
 * ```
 */
export function errno(value: number, options: NotifyOptions = {}): boolean {
  return notify(nonNegativeInteger("ERRNO", value), options);
}

/**
 * Tells the service manager which process is the service's main process
 * (`MAINPID=`), for a service that forks.
 *
 * @param pid The main process's pid.
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name.
 * @returns Whether it was sent.
 * @throws {RangeError} For a pid that is not a non-negative integer.
 * @throws {ActivationError} As {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example
 * ```ts ignore
 * import { mainPid } from "@socket-activation/socket-activation";
 *
 * mainPid(4242);
 * ```
 */
export function mainPid(pid: number, options: NotifyOptions = {}): boolean {
  return notify(nonNegativeInteger("MAINPID", pid), options);
}

/**
 * Asks for more time to start, reload or stop (`EXTEND_TIMEOUT_USEC=`):
 * the running timeout is extended to at least `usec` from now.
 *
 * @param usec Microseconds.
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name.
 * @returns Whether it was sent.
 * @throws {RangeError} For a value that is not a non-negative integer.
 * @throws {ActivationError} As {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Ten more seconds
 * ```ts ignore
 * import { extendTimeout } from "@socket-activation/socket-activation";
 *
 * extendTimeout(10_000_000);
 * ```
 */
export function extendTimeout(
  usec: number | bigint,
  options: NotifyOptions = {},
): boolean {
  return notify(nonNegativeInteger("EXTEND_TIMEOUT_USEC", usec), options);
}

/**
 * Feeds the watchdog once (`WATCHDOG=1`); see {@linkcode startWatchdog} to
 * do it on a timer.
 *
 * @param options Whether to unset `NOTIFY_SOCKET`, and in whose name.
 * @returns Whether it was sent.
 * @throws {ActivationError} As {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example
 * ```ts ignore
 * import { watchdogPing } from "@socket-activation/socket-activation";
 *
 * watchdogPing();
 * ```
 */
export function watchdogPing(options: NotifyOptions = {}): boolean {
  return notify("WATCHDOG=1", options);
}
