import { constants } from "node:os";

// The errno values of Linux (asm-generic/errno-base.h, the same on x86-64 and
// aarch64) that this library returns, and names for the ones it may report.
export const EBADF = 9;
export const EINVAL = 22;
export const ERANGE = 34;

const DESCRIPTIONS: Readonly<Record<number, string>> = {
  1: "EPERM (operation not permitted)",
  2: "ENOENT (no such file or directory)",
  7: "E2BIG (argument list too long)",
  [EBADF]: "EBADF (bad file descriptor)",
  12: "ENOMEM (out of memory)",
  11: "EAGAIN (resource temporarily unavailable)",
  13: "EACCES (permission denied)",
  21: "EISDIR (is a directory)",
  [EINVAL]: "EINVAL (invalid argument)",
  24: "EMFILE (too many open files)",
  [ERANGE]: "ERANGE (result out of range)",
  20: "ENOTDIR (not a directory)",
  36: "ENAMETOOLONG (file name too long)",
  38: "ENOSYS (function not implemented)",
  40: "ELOOP (too many levels of symbolic links)",
  88: "ENOTSOCK (not a socket)",
  98: "EADDRINUSE (address already in use)",
  110: "ETIMEDOUT (timed out)",
  111: "ECONNREFUSED (connection refused)",
};

/** Names an errno for a message: `EBADF (bad file descriptor)`. */
export function describeErrno(errno: number): string {
  return DESCRIPTIONS[errno] ?? `errno ${errno}`;
}

let errnoNames: Map<number, string> | undefined;

/** An Error shaped as Node's system errors: `code`, `errno`, `syscall`. */
export function systemCallError(
  syscall: string,
  errno: number,
  detail = "",
): Error {
  errnoNames ??= new Map(
    Object.entries(constants.errno).map(([name, value]) => [value, name]),
  );
  const code = errnoNames.get(errno) ?? `errno ${errno}`;
  return Object.assign(new Error(`${syscall} ${code}${detail}`), {
    code,
    errno: -errno,
    syscall,
  });
}
