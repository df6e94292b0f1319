// The system calls the library needs, as one interface. `_sys.deno.ts`
// implements it with Deno's dlopen, `_sys.node.ts` with koffi; the npm build
// swaps the first for the second. Everything else is shared.

import process from "node:process";
import { EBADF } from "./_errno.ts";
import { ActivationError } from "./errors.ts";
import {
  F_GETFD,
  F_SETFD,
  FD_CLOEXEC,
  S_IFMT,
  S_IFSOCK,
  SO_ACCEPTCONN,
  SO_PEERCRED,
  SO_TYPE,
  SOL_SOCKET,
} from "./_linux.ts";

// statfs(2) f_type of pidfs (linux/magic.h), whose inodes give each pidfd
// the 64-bit id that LISTEN_PIDFDID carries (Linux 6.9 and later).
const PID_FS_MAGIC = 0x50494446n;
// Big enough for struct stat and struct statfs on x86-64 and aarch64; in
// both, st_ino is the u64 at offset 8 and f_type the long at offset 0.
const STAT_BUFFER_SIZE = 256;
const ST_INO_OFFSET = 8;

/** The libc functions each runtime binds, the same for all of them. */
export interface Libc {
  fcntl(fd: number, cmd: number, arg: number): number;
  /** syscall(SYS_pidfd_open, pid, 0). */
  pidfdOpen(pid: number): number;
  fstat(fd: number, buffer: Uint8Array): number;
  /** open() of a NUL-terminated path, without a mode: an fd, or -1. */
  open(path: Uint8Array, flags: number): number;
  fstatfs(fd: number, buffer: Uint8Array): number;
  close(fd: number): number;
  getsockname(fd: number, address: Uint8Array, length: Uint32Array): number;
  getpeername(fd: number, address: Uint8Array, length: Uint32Array): number;
  getsockopt(
    fd: number,
    level: number,
    name: number,
    value: Uint8Array,
    length: Uint32Array,
  ): number;
  /** The errno left by the last call, where a call's error must be told. */
  errno(): number;
  socket(domain: number, type: number, protocol: number): number;
  /** bind() to a sockaddr cut to its length. */
  bind(fd: number, address: Uint8Array): number;
  listen(fd: number, backlog: number): number;
  setsockopt(
    fd: number,
    level: number,
    name: number,
    value: Uint8Array,
  ): number;
  /** sendmsg() of one datagram; each runtime lays out its msghdr. */
  sendmsg(fd: number, message: Datagram, flags: number): number;
  /**
   * recvmsg() of one datagram into `message`'s buffers; writes back the
   * lengths the kernel filled in and the message flags.
   */
  recvmsg(fd: number, message: Reception, flags: number): number;
  getuid(): number;
  geteuid(): number;
  getgid(): number;
  getegid(): number;
  /** clock_gettime() into a struct timespec (two 64-bit words). */
  clockGettime(clock: number, timespec: BigInt64Array): number;
  /** read() into `buffer`: the byte count, 0 at the end, or -1. */
  read(fd: number, buffer: Uint8Array): number;
  /** pipe2() into two ints. */
  pipe2(fds: Int32Array, flags: number): number;
  /** poll(), run off the main thread so that waiting does not block it. */
  pollAsync(
    pollfds: Uint8Array,
    count: number,
    timeoutMs: number,
  ): Promise<number>;
  fchmod(fd: number, mode: number): number;
  fchmodat(dirFd: number, path: string, mode: number, flags: number): number;
  write(fd: number, buffer: Uint8Array): number;
  kill(pid: number, signal: number): number;
  /** waitid() into a siginfo_t (128 bytes). */
  waitid(idType: number, id: number, info: Uint8Array, options: number): number;
  // posix_spawn() and its file actions and attributes, each in a buffer of
  // SPAWN_BUFFER_SIZE that the matching init() fills. They return 0 or the
  // error number, as posix_spawn(3) does.
  spawnFileActionsInit(actions: Uint8Array): number;
  spawnFileActionsDestroy(actions: Uint8Array): number;
  spawnFileActionsAddDup2(
    actions: Uint8Array,
    fd: number,
    newFd: number,
  ): number;
  spawnFileActionsAddOpen(
    actions: Uint8Array,
    fd: number,
    path: string,
    flags: number,
    mode: number,
  ): number;
  spawnFileActionsAddChdir(actions: Uint8Array, path: string): number;
  /** posix_spawn_file_actions_addclosefrom_np() (glibc 2.34 and later). */
  spawnFileActionsAddCloseFrom(actions: Uint8Array, from: number): number;
  spawnAttrInit(attributes: Uint8Array): number;
  spawnAttrDestroy(attributes: Uint8Array): number;
  spawnAttrSetFlags(attributes: Uint8Array, flags: number): number;
  spawnAttrSetPgroup(attributes: Uint8Array, pgroup: number): number;
  /** posix_spawnattr_setsigmask() with a sigset_t (SIGSET_SIZE bytes). */
  spawnAttrSetSigMask(attributes: Uint8Array, set: Uint8Array): number;
  /** posix_spawnattr_setsigdefault() with a sigset_t. */
  spawnAttrSetSigDefault(attributes: Uint8Array, set: Uint8Array): number;
  /** posix_spawn(): the new pid goes in `pid[0]`. */
  posixSpawn(
    pid: Int32Array,
    path: string,
    actions: Uint8Array,
    attributes: Uint8Array,
    argv: readonly string[],
    env: readonly string[],
  ): number;
}

/**
 * Room for a posix_spawn_file_actions_t (80 bytes in glibc) or a
 * posix_spawnattr_t (336 bytes), with margin.
 */
export const SPAWN_BUFFER_SIZE = 512;
/** glibc's sigset_t: 1024 bits. */
export const SIGSET_SIZE = 128;

/** One datagram to send: destination, payload and control messages. */
export interface Datagram {
  /** A struct sockaddr_un, cut to its length. */
  readonly address: Uint8Array;
  readonly data: Uint8Array;
  /** Control messages (cmsghdr), or empty. */
  readonly control: Uint8Array;
}

/**
 * Room for one received datagram: the sender's address, payload and control
 * messages. recvmsg() sets the three numbers.
 */
export interface Reception {
  /** Room for a struct sockaddr (128 bytes holds any). */
  readonly address: Uint8Array;
  readonly data: Uint8Array;
  /** Room for control messages (cmsghdr), or empty. */
  readonly control: Uint8Array;
  /** How much of `address` the kernel filled. */
  addressLength: number;
  /** How much of `control` the kernel filled. */
  controlLength: number;
  /** msg_flags: MSG_TRUNC, MSG_CTRUNC, … */
  flags: number;
}

/**
 * The system calls behind the library, per runtime: libc, opened on first
 * need, and the one step a runtime does its own way.
 */
export interface Sys {
  /** libc's functions; throws `FFI_UNAVAILABLE` when they cannot be had. */
  libc(): Libc;
  /**
   * Makes `fd` close-on-exec if it is not yet, as sd_listen_fds() does.
   * Returns 0, or the errno of the failed `fcntl` (EBADF for a closed fd).
   */
  setCloexec(fd: number): number;
  /**
   * Whether the runtime lets this process bind TCP `host:port`: Deno asks
   * its net permission (binding without it throws where no caller can catch
   * it); Node has no permissions.
   */
  mayBindTcp(host: string, port: number): boolean;
}

/** What the kernel says of an fd, before interpretation (socket_info.ts). */
export type RawFdInfo =
  | { readonly open: false }
  | { readonly open: true; readonly socket: false; readonly mode: number }
  | {
    readonly open: true;
    readonly socket: true;
    readonly mode: number;
    /** SO_TYPE. */
    readonly type: number;
    /** SO_ACCEPTCONN. */
    readonly listening: boolean;
    /** The sockaddr from getsockname(), cut to its length. */
    readonly address: Uint8Array;
    /** SO_PEERCRED (pid, uid, gid), for a connected unix socket. */
    readonly peer: { pid: number; uid: number; gid: number } | undefined;
  };

/** Turns a failure to reach the system calls into `FFI_UNAVAILABLE`. */
export function ffiUnavailable(
  detail: string,
  cause: unknown,
): ActivationError {
  return new ActivationError(
    "FFI_UNAVAILABLE",
    `Cannot call into libc.so.6: ${detail}`,
    { cause },
  );
}

/**
 * sd_listen_fds()'s loop body: set FD_CLOEXEC unless already set. fcntl(2)
 * fails for F_GETFD and F_SETFD only with EBADF, and that is what this
 * returns: errno, read by a second foreign call, was seen overwritten (EAGAIN)
 * about once in a million calls on Deno, but not with fcntl's own result.
 */
export function fcntlSetCloexec(libc: Libc, fd: number): number {
  const flags = libc.fcntl(fd, F_GETFD, 0);
  if (flags < 0) return EBADF;
  if (flags & FD_CLOEXEC) return 0;
  if (libc.fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) return EBADF;
  return 0;
}

/**
 * The pidfs inode id of a new pidfd for `pid`, as libsystemd's
 * pidfd_get_inode_id() reads it on 64-bit systems, or `undefined` where it
 * cannot be had: sd_listen_fds() skips the LISTEN_PIDFDID comparison on any
 * failure there (no pidfd_open, no pidfs, or another error).
 */
export function readPidfdId(libc: Libc, pid: number): bigint | undefined {
  const pidfd = libc.pidfdOpen(pid);
  if (pidfd < 0) return undefined;
  try {
    const buffer = new Uint8Array(STAT_BUFFER_SIZE);
    const view = new DataView(buffer.buffer);
    if (libc.fstatfs(pidfd, buffer) < 0) return undefined;
    if (view.getBigUint64(0, true) !== PID_FS_MAGIC) return undefined;
    if (libc.fstat(pidfd, buffer) < 0) return undefined;
    return view.getBigUint64(ST_INO_OFFSET, true);
  } finally {
    libc.close(pidfd);
  }
}

// st_mode's offset in struct stat: x86-64 puts st_nlink (8 bytes) before it,
// the generic layout of aarch64 puts it after.
const ST_MODE_OFFSET = process.arch === "arm64" ? 16 : 24;

// st_rdev's offset: after st_gid and a padding int on x86-64, right after
// st_gid in aarch64's generic layout.
const ST_RDEV_OFFSET = process.arch === "arm64" ? 32 : 40;

/** What fstat() says of an fd: its file type and mode, and its identity. */
export interface FdStat {
  /** st_mode: the file type (S_IFMT bits) and permissions. */
  readonly mode: number;
  /** st_dev: the device holding the inode. */
  readonly dev: bigint;
  /** st_ino. */
  readonly ino: bigint;
  /** st_rdev: the device a character or block device file stands for. */
  readonly rdev: bigint;
}

/** fstat(), or `undefined` when it fails (only EBADF for an int fd). */
export function fstatFd(libc: Libc, fd: number): FdStat | undefined {
  const stat = new Uint8Array(STAT_BUFFER_SIZE);
  if (libc.fstat(fd, stat) < 0) return undefined;
  const view = new DataView(stat.buffer);
  return {
    mode: view.getUint32(ST_MODE_OFFSET, true),
    dev: view.getBigUint64(0, true),
    ino: view.getBigUint64(ST_INO_OFFSET, true),
    rdev: view.getBigUint64(ST_RDEV_OFFSET, true),
  };
}

function getInt(libc: Libc, fd: number, name: number, size: number) {
  const value = new Uint8Array(size);
  const length = new Uint32Array([size]);
  if (libc.getsockopt(fd, SOL_SOCKET, name, value, length) < 0) {
    return undefined;
  }
  return new DataView(value.buffer, 0, length[0]);
}

/** fstat(), then for a socket SO_TYPE, SO_ACCEPTCONN, SO_PEERCRED, getsockname(). */
export function readFdInfo(libc: Libc, fd: number): RawFdInfo {
  const stat = new Uint8Array(STAT_BUFFER_SIZE);
  if (libc.fstat(fd, stat) < 0) return { open: false };
  const mode = new DataView(stat.buffer).getUint32(ST_MODE_OFFSET, true);
  if ((mode & S_IFMT) !== S_IFSOCK) return { open: true, socket: false, mode };
  const type = getInt(libc, fd, SO_TYPE, 4)?.getInt32(0, true) ?? -1;
  const listening =
    (getInt(libc, fd, SO_ACCEPTCONN, 4)?.getInt32(0, true) ?? 0) !==
      0;
  const credentials = getInt(libc, fd, SO_PEERCRED, 12);
  const peer = credentials === undefined || credentials.byteLength < 12
    ? undefined
    : {
      pid: credentials.getInt32(0, true),
      uid: credentials.getUint32(4, true),
      gid: credentials.getUint32(8, true),
    };
  // sockaddr_storage is 128 bytes.
  const address = new Uint8Array(128);
  const length = new Uint32Array([address.length]);
  const named = libc.getsockname(fd, address, length) >= 0;
  return {
    open: true,
    socket: true,
    mode,
    type,
    listening,
    address: named
      ? address.slice(0, Math.min(length[0]!, 128))
      : new Uint8Array(),
    peer,
  };
}

/** Calls `read` once, on first need, and keeps its value. */
export function once<T>(read: () => T): () => T {
  let cached: { value: T } | undefined;
  return () => (cached ??= { value: read() }).value;
}
