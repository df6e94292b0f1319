// The numbers of the Linux ABI that the system calls take: one place for
// them, as the kernel and glibc headers give them for x86-64 and aarch64
// (the asm-generic values). tests/linux_deno_test.ts compiles a program with
// the system's headers and checks every one. The errno values are in
// _errno.ts, with their names.

// <sys/socket.h>
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_SNDBUF = 7;
export const SO_PASSCRED = 16;
export const SO_PEERCRED = 17;
export const SO_ACCEPTCONN = 30;
export const SO_SNDBUFFORCE = 32;
export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;
export const MSG_PEEK = 0x2;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** The most fds one SCM_RIGHTS message carries (the kernel's limit). */
export const SCM_MAX_FD = 253;

// <sys/un.h>: sun_path holds 108 bytes, so a path has at most 107 and its
// terminating NUL.
export const SUN_PATH_SIZE = 108;
export const SUN_PATH_MAX = SUN_PATH_SIZE - 1;

// <fcntl.h>
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_ACCMODE = 3;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_DUPFD_CLOEXEC = 1030;
export const FD_CLOEXEC = 1;
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;

// <sys/stat.h>
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFREG = 0o100000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

// <poll.h>: struct pollfd is an int and two shorts.
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const POLLFD_SIZE = 8;

// <spawn.h>, <sys/wait.h>, <signal.h>, <time.h>, <sys/syscall.h>
export const POSIX_SPAWN_SETPGROUP = 0x02;
export const POSIX_SPAWN_SETSIGDEF = 0x04;
export const POSIX_SPAWN_SETSIGMASK = 0x08;
export const P_PIDFD = 3;
export const WNOHANG = 1;
export const WEXITED = 4;
export const CLD_EXITED = 1;
export const CLOCK_MONOTONIC = 1;
export const SYS_PIDFD_OPEN = 434;
