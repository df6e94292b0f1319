// What a passed fd that is not a socket is: libsystemd's sd_is_fifo() and
// sd_is_special(), for the fds of ListenFIFO= and ListenSpecial=
// (systemd.socket(5)).

import { describeErrno, EBADF, ENOENT, ENOTDIR } from "./_errno.ts";
import { type FdStat, fstatFd } from "./_sys.common.ts";
import { sys } from "./_sys.deno.ts";
import { ActivationError } from "./errors.ts";
import {
  O_CLOEXEC,
  O_PATH,
  S_IFCHR,
  S_IFIFO,
  S_IFMT,
  S_IFREG,
} from "./_linux.ts";

function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) {
    throw new RangeError(`An fd is a non-negative integer, not ${fd}`);
  }
}

/** @internal fstat() of `fd`; STAT_FAILED (EBADF) when it is not open. */
export function statPassedFd(fd: number, where = `Fd ${fd}`): FdStat {
  const stat = fstatFd(sys.libc(), fd);
  if (stat === undefined) {
    throw new ActivationError("STAT_FAILED", `${where} is not open`, {
      errno: EBADF,
    });
  }
  return stat;
}

/** @internal Whether the file type of `stat` is `type` (S_IFIFO, …). */
export function isType(stat: FdStat, type: number): boolean {
  return (stat.mode & S_IFMT) === type;
}

// stat() of the path, as libsystemd does it: a path that does not exist
// (ENOENT, ENOTDIR) is simply another file; other failures are errors. It
// opens the path with O_PATH (following symlinks, as stat() does) and
// fstat()s that: node:fs would need Deno's --allow-all for a device path.
function statPath(path: string, fd: number): FdStat | undefined {
  const libc = sys.libc();
  const bytes = new TextEncoder().encode(path);
  const cPath = new Uint8Array(bytes.length + 1);
  cPath.set(bytes);
  const handle = libc.open(cPath, O_PATH | O_CLOEXEC);
  if (handle < 0) {
    const errno = libc.errno();
    if (errno === ENOENT || errno === ENOTDIR) return undefined;
    throw new ActivationError(
      "STAT_FAILED",
      `Cannot compare fd ${fd} with ${path}: ${describeErrno(errno)}`,
      { errno },
    );
  }
  try {
    return fstatFd(libc, handle);
  } finally {
    libc.close(handle);
  }
}

/**
 * Tells whether `fd` is a FIFO, and with `path`, the FIFO at that path:
 * libsystemd's `sd_is_fifo()`, for the fds of `ListenFIFO=`.
 *
 * Needs `--allow-ffi` on Deno (the path too is examined through the system
 * calls); on Node it loads koffi.
 *
 * @param fd The fd, for example one returned by {@linkcode listenFds}.
 * @param path A path to compare with (followed if it is a symlink): `fd`
 * must be the same FIFO. A path that does not exist gives `false`.
 * @returns Whether it is a FIFO (an anonymous pipe is one too), and the one
 * at `path`.
 * @throws {ActivationError} `STAT_FAILED` for an fd that is not open (errno
 * EBADF) or a path that cannot be examined (EACCES, ELOOP, …);
 * `FFI_UNAVAILABLE` without the system calls.
 * @throws {RangeError} For an fd that is not a non-negative integer.
 *
 * @tags allow-ffi
 *
 * @example Checking the FIFO of ListenFIFO=/run/app/control
 * ```ts ignore
 * import { isFifo } from "@socket-activation/socket-activation";
 *
 * if (!isFifo(3, "/run/app/control")) throw new Error("fd 3 is not the FIFO");
 * ```
 */
export function isFifo(fd: number, path?: string): boolean {
  checkFd(fd);
  const stat = statPassedFd(fd);
  if (!isType(stat, S_IFIFO)) return false;
  if (path === undefined) return true;
  const other = statPath(path, fd);
  return other !== undefined && other.dev === stat.dev &&
    other.ino === stat.ino;
}

/**
 * Tells whether `fd` is a special file as `ListenSpecial=` opens them (a
 * regular file, such as one in `/proc` or `/sys`, or a character device,
 * such as `/dev/kmsg`), and with `path`, that file: libsystemd's
 * `sd_is_special()`.
 *
 * Needs `--allow-ffi` on Deno (the path too is examined through the system
 * calls); on Node it loads koffi.
 *
 * @param fd The fd, for example one returned by {@linkcode listenFds}.
 * @param path A path to compare with (followed if it is a symlink): the
 * same regular file, or a character device file for the same device. A path
 * that does not exist gives `false`.
 * @returns Whether it is a regular file or a character device, and the one
 * at `path`.
 * @throws {ActivationError} `STAT_FAILED` for an fd that is not open (errno
 * EBADF) or a path that cannot be examined (EACCES, ELOOP, …);
 * `FFI_UNAVAILABLE` without the system calls.
 * @throws {RangeError} For an fd that is not a non-negative integer.
 *
 * @tags allow-ffi
 *
 * @example Checking the file of ListenSpecial=/dev/kmsg
 * ```ts ignore
 * import { isSpecial } from "@socket-activation/socket-activation";
 *
 * if (!isSpecial(3, "/dev/kmsg")) throw new Error("fd 3 is not /dev/kmsg");
 * ```
 */
export function isSpecial(fd: number, path?: string): boolean {
  checkFd(fd);
  const stat = statPassedFd(fd);
  const regular = isType(stat, S_IFREG);
  if (!regular && !isType(stat, S_IFCHR)) return false;
  if (path === undefined) return true;
  const other = statPath(path, fd);
  if (other === undefined) return false;
  if (regular) {
    return isType(other, S_IFREG) && other.dev === stat.dev &&
      other.ino === stat.ino;
  }
  return isType(other, S_IFCHR) && other.rdev === stat.rdev;
}
