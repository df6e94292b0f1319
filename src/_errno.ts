// The errno values of Linux (asm-generic/errno-base.h and errno.h, the same on
// x86-64 and aarch64) that this library reports or reacts to.
export const EPERM = 1;
export const ENOENT = 2;
export const EBADF = 9;
export const ENOMEM = 12;
export const EINVAL = 22;
export const EMFILE = 24;
export const ERANGE = 34;
export const ENOSYS = 38;
export const EOPNOTSUPP = 95;

const DESCRIPTIONS: Readonly<Record<number, string>> = {
  [EPERM]: "EPERM (operation not permitted)",
  [ENOENT]: "ENOENT (no such file or directory)",
  [EBADF]: "EBADF (bad file descriptor)",
  [ENOMEM]: "ENOMEM (out of memory)",
  [EINVAL]: "EINVAL (invalid argument)",
  [EMFILE]: "EMFILE (too many open files)",
  [ERANGE]: "ERANGE (result out of range)",
  [ENOSYS]: "ENOSYS (function not implemented)",
  [EOPNOTSUPP]: "EOPNOTSUPP (operation not supported)",
};

/** Names an errno for a message: `EBADF (bad file descriptor)`. */
export function describeErrno(errno: number): string {
  return DESCRIPTIONS[errno] ?? `errno ${errno}`;
}
