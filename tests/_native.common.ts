// The interface of the test-only system calls (_native.deno.ts, _native.node.ts).

/** What libsystemd's sd_listen_fds_with_names() returned. */
export interface SdListenResult {
  /** The fd count, 0, or a negative errno. */
  readonly result: number;
  /** The names it returned (only when `result` > 0). */
  readonly names: readonly string[] | undefined;
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
