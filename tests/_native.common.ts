// The interface of the test-only system calls (_native.deno.ts, _native.node.ts).

/** What libsystemd's sd_listen_fds_with_names() returned. */
export interface SdListenResult {
  /** The fd count, 0, or a negative errno. */
  readonly result: number;
  /** The names it returned (only when `result` > 0). */
  readonly names: readonly string[] | undefined;
}

/** What libsystemd's sd_watchdog_enabled() returned. */
export interface SdWatchdogResult {
  /** 1, 0, or a negative errno. */
  readonly result: number;
  /** The interval it wrote (only when `result` is 1). */
  readonly usec: bigint | undefined;
}

/** Test-only access to libc and libsystemd. */
export interface Native {
  /** fcntl(fd, cmd, arg): the result, or the negative errno. */
  fcntl(fd: number, cmd: number, arg: number): number;
  /**
   * close(fd): 0, or the negative errno. Deno's node:fs cannot close an fd it
   * did not open, and a test needs a hole inside the passed range.
   */
  close(fd: number): number;
  /** Whether libsystemd.so.0 can be loaded. */
  libsystemdAvailable(): boolean;
  /** The real sd_listen_fds_with_names(unset, &names). */
  sdListenFdsWithNames(unset: boolean): SdListenResult;
  /**
   * The real sd_notify(unset, state): 1, 0, or a negative errno. `state` is
   * passed as UTF-8 with a NUL after it (so C stops at an embedded NUL).
   */
  sdNotify(unset: boolean, state: string): number;
  /**
   * The real sd_pid_notify_with_fds(pid, unset, state, fds, n): 1, 0, or a
   * negative errno.
   */
  sdPidNotifyWithFds(
    pid: number,
    unset: boolean,
    state: string,
    fds: readonly number[],
  ): number;
  /** The real sd_watchdog_enabled(unset, &usec). */
  sdWatchdogEnabled(unset: boolean): SdWatchdogResult;
  /** open(path, flags): a real fd, or the negative errno. */
  open(path: string, flags: number): number;
  /** The real sd_is_fifo(fd, path): 1, 0, or a negative errno. */
  sdIsFifo(fd: number, path: string | undefined): number;
  /** The real sd_is_special(fd, path): 1, 0, or a negative errno. */
  sdIsSpecial(fd: number, path: string | undefined): number;
}

/** `text` as a NUL-terminated UTF-8 C string. */
export function cString(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const string = new Uint8Array(bytes.length + 1);
  string.set(bytes);
  return string;
}

export const F_GETFD = 1;
export const F_SETFD = 2;
export const FD_CLOEXEC = 1;

/** Clears FD_CLOEXEC on `fd` through `native`, to set up a test case. */
export function clearCloexec(native: Native, fd: number): void {
  const flags = native.fcntl(fd, F_GETFD, 0);
  if (flags < 0) {
    throw new Error(`fcntl(${fd}, F_GETFD) failed: errno ${-flags}`);
  }
  const result = native.fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  if (result < 0) {
    throw new Error(`fcntl(${fd}, F_SETFD) failed: errno ${-result}`);
  }
}
