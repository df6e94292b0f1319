// The system calls for Node, through koffi. Node already makes inherited fds
// close-on-exec at start-up (libuv's uv_disable_stdio_inheritance()), so each
// fd's flags are first read from /proc/self/fdinfo: koffi, a native module,
// is loaded only for an fd that still lacks the flag (an embedder may have
// turned that start-up step off) or to read the pidfd id.

import { closeSync, openSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import { EBADF } from "./_errno.ts";
import {
  fcntlSetCloexec,
  ffiUnavailable,
  type Libc,
  type Sys,
} from "./_sys.common.ts";
import { O_CLOEXEC, SYS_PIDFD_OPEN } from "./_linux.ts";

type KoffiFunction = (...args: unknown[]) => unknown;
interface KoffiAsync {
  async(...args: unknown[]): void;
}
interface Koffi {
  load(path: string): {
    func(signature: string): KoffiFunction & KoffiAsync;
    func(
      name: string,
      result: string,
      parameters: unknown[],
    ): KoffiFunction & KoffiAsync;
  };
  errno(): number;
  struct(name: string, members: Record<string, unknown>): unknown;
  pointer(type: unknown): unknown;
  inout(type: unknown): unknown;
}

let libc: Libc | undefined;

/** struct msghdr's members, as koffi reads (and writes back) them. */
interface MessageHeader {
  msg_name: Uint8Array | null;
  msg_namelen: number;
  msg_iov: { iov_base: Uint8Array; iov_len: number }[];
  msg_iovlen: number;
  msg_control: Uint8Array | null;
  msg_controllen: number;
  msg_flags: number;
}

function messageHeader(
  name: Uint8Array,
  data: Uint8Array,
  control: Uint8Array,
): MessageHeader {
  return {
    msg_name: name.length > 0 ? name : null,
    msg_namelen: name.length,
    msg_iov: [{ iov_base: data, iov_len: data.length }],
    msg_iovlen: 1,
    msg_control: control.length > 0 ? control : null,
    msg_controllen: control.length,
    msg_flags: 0,
  };
}

function open(): Libc {
  return libc ??= load();
}

function load(): Libc {
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)("koffi") as Koffi;
  } catch (error) {
    throw ffiUnavailable(`cannot load koffi: ${String(error)}`, error);
  }
  let lib: ReturnType<Koffi["load"]>;
  try {
    lib = koffi.load("libc.so.6");
  } catch (error) {
    throw ffiUnavailable(String(error), error);
  }
  const fcntl = lib.func("int fcntl(int fd, int cmd, ...)");
  const syscall = lib.func("long syscall(long number, ...)");
  const fstat = lib.func("int fstat(int fd, _Out_ uint8_t *buf)");
  // Variadic too: without O_CREAT, no mode follows.
  const openCall = lib.func("int open(const uint8_t *path, int flags)");
  const fstatfs = lib.func("int fstatfs(int fd, _Out_ uint8_t *buf)");
  const close = lib.func("int close(int fd)");
  const getsockname = lib.func(
    "int getsockname(int fd, void *addr, void *len)",
  );
  const getpeername = lib.func(
    "int getpeername(int fd, void *addr, void *len)",
  );
  const getsockopt = lib.func(
    "int getsockopt(int fd, int level, int name, void *value, void *len)",
  );
  // struct iovec and struct msghdr, named so as not to clash with the types
  // of another koffi user in the same process.
  const iovec = koffi.struct("socket_activation_iovec", {
    iov_base: "void *",
    iov_len: "size_t",
  });
  const msghdr = koffi.struct("socket_activation_msghdr", {
    msg_name: "void *",
    msg_namelen: "uint32_t",
    msg_iov: koffi.pointer(iovec),
    msg_iovlen: "size_t",
    msg_control: "void *",
    msg_controllen: "size_t",
    msg_flags: "int",
  });
  const sendmsg = lib.func("sendmsg", "long", [
    "int",
    koffi.pointer(msghdr),
    "int",
  ]);
  // The kernel writes the lengths and flags back into the header.
  const recvmsg = lib.func("recvmsg", "long", [
    "int",
    koffi.inout(koffi.pointer(msghdr)),
    "int",
  ]);
  const socket = lib.func("int socket(int domain, int type, int protocol)");
  const bind = lib.func("int bind(int fd, void *addr, uint32_t len)");
  const listen = lib.func("int listen(int fd, int backlog)");
  const setsockopt = lib.func(
    "int setsockopt(int fd, int level, int name, void *value, uint32_t len)",
  );
  const getuid = lib.func("uint32_t getuid()");
  const geteuid = lib.func("uint32_t geteuid()");
  const getgid = lib.func("uint32_t getgid()");
  const getegid = lib.func("uint32_t getegid()");
  const clockGettime = lib.func("int clock_gettime(int clock, void *ts)");
  const pipe2 = lib.func("int pipe2(void *fds, int flags)");
  const read = lib.func("long read(int fd, void *buf, unsigned long count)");
  const poll = lib.func(
    "int poll(void *fds, unsigned long count, int timeout)",
  );
  const fchmod = lib.func("int fchmod(int fd, uint32_t mode)");
  const fchmodat = lib.func(
    "int fchmodat(int dirfd, const char *path, uint32_t mode, int flags)",
  );
  const write = lib.func("long write(int fd, void *buffer, size_t count)");
  const kill = lib.func("int kill(int pid, int signal)");
  const waitid = lib.func(
    "int waitid(int type, int id, void *info, int options)",
  );
  const spawnFileActions = (name: string, ...parameters: string[]) =>
    lib.func(
      `int posix_spawn_file_actions_${name}(void *actions${
        parameters.map((parameter) => `, ${parameter}`).join("")
      })`,
    );
  const actionsInit = spawnFileActions("init");
  const actionsDestroy = spawnFileActions("destroy");
  const addDup2 = spawnFileActions("adddup2", "int fd", "int newfd");
  const addOpen = spawnFileActions(
    "addopen",
    "int fd",
    "const char *path",
    "int flags",
    "uint32_t mode",
  );
  const addChdir = spawnFileActions("addchdir_np", "const char *path");
  const addCloseFrom = spawnFileActions("addclosefrom_np", "int from");
  const spawnAttr = (name: string, ...parameters: string[]) =>
    lib.func(
      `int posix_spawnattr_${name}(void *attributes${
        parameters.map((parameter) => `, ${parameter}`).join("")
      })`,
    );
  const attrInit = spawnAttr("init");
  const attrDestroy = spawnAttr("destroy");
  const setFlags = spawnAttr("setflags", "short flags");
  const setPgroup = spawnAttr("setpgroup", "int pgroup");
  const setSigMask = spawnAttr("setsigmask", "void *set");
  const setSigDefault = spawnAttr("setsigdefault", "void *set");
  // koffi passes a JS array of strings (null-terminated here) as char *[].
  const posixSpawn = lib.func(
    "int posix_spawn(_Out_ int *pid, const char *path, void *actions, " +
      "void *attributes, const char **argv, const char **envp)",
  );
  return {
    fcntl: (fd, cmd, arg) => fcntl(fd, cmd, "int", arg) as number,
    errno: () => koffi.errno(),
    socket: (domain, type, protocol) =>
      socket(domain, type, protocol) as number,
    bind: (fd, address) => bind(fd, address, address.length) as number,
    listen: (fd, backlog) => listen(fd, backlog) as number,
    setsockopt: (fd, level, name, value) =>
      setsockopt(fd, level, name, value, value.length) as number,
    sendmsg: (fd, { address, data, control }, flags) =>
      Number(sendmsg(fd, messageHeader(address, data, control), flags)),
    recvmsg(fd, message, flags) {
      const header = messageHeader(
        message.address,
        message.data,
        message.control,
      );
      const result = Number(recvmsg(fd, header, flags));
      message.addressLength = header.msg_namelen;
      message.controlLength = header.msg_controllen;
      message.flags = header.msg_flags;
      return result;
    },
    getuid: () => getuid() as number,
    geteuid: () => geteuid() as number,
    getgid: () => getgid() as number,
    getegid: () => getegid() as number,
    clockGettime: (clock, timespec) => clockGettime(clock, timespec) as number,
    pipe2: (fds, flags) => pipe2(fds, flags) as number,
    read: (fd, buffer) => Number(read(fd, buffer, buffer.length)),
    pollAsync: (pollfds, count, timeoutMs) =>
      new Promise((resolve, reject) =>
        poll.async(
          pollfds,
          count,
          timeoutMs,
          (error: unknown, result: number) =>
            error ? reject(error) : resolve(result),
        )
      ),
    fchmod: (fd, mode) => fchmod(fd, mode) as number,
    fchmodat: (dirFd, path, mode, flags) =>
      fchmodat(dirFd, path, mode, flags) as number,
    write: (fd, buffer) => Number(write(fd, buffer, buffer.length)),
    kill: (pid, signal) => kill(pid, signal) as number,
    waitid: (type, id, info, options) =>
      waitid(type, id, info, options) as number,
    spawnFileActionsInit: (actions) => actionsInit(actions) as number,
    spawnFileActionsDestroy: (actions) => actionsDestroy(actions) as number,
    spawnFileActionsAddDup2: (actions, fd, newFd) =>
      addDup2(actions, fd, newFd) as number,
    spawnFileActionsAddOpen: (actions, fd, path, flags, mode) =>
      addOpen(actions, fd, path, flags, mode) as number,
    spawnFileActionsAddChdir: (actions, path) =>
      addChdir(actions, path) as number,
    spawnFileActionsAddCloseFrom: (actions, from) =>
      addCloseFrom(actions, from) as number,
    spawnAttrInit: (attributes) => attrInit(attributes) as number,
    spawnAttrDestroy: (attributes) => attrDestroy(attributes) as number,
    spawnAttrSetFlags: (attributes, flags) =>
      setFlags(attributes, flags) as number,
    spawnAttrSetPgroup: (attributes, pgroup) =>
      setPgroup(attributes, pgroup) as number,
    spawnAttrSetSigMask: (attributes, set) =>
      setSigMask(attributes, set) as number,
    spawnAttrSetSigDefault: (attributes, set) =>
      setSigDefault(attributes, set) as number,
    posixSpawn: (pid, path, actions, attributes, argv, env) =>
      posixSpawn(
        pid,
        path,
        actions,
        attributes,
        [...argv, null],
        [...env, null],
      ) as number,
    pidfdOpen: (pid) =>
      Number(syscall(SYS_PIDFD_OPEN, "int", pid, "unsigned int", 0)),
    fstat: (fd, buffer) => fstat(fd, buffer) as number,
    open: (path, flags) => openCall(path, flags) as number,
    fstatfs: (fd, buffer) => fstatfs(fd, buffer) as number,
    close: (fd) => close(fd) as number,
    getsockname: (fd, address, length) =>
      getsockname(fd, address, length) as number,
    getpeername: (fd, address, length) =>
      getpeername(fd, address, length) as number,
    getsockopt: (fd, level, name, value, length) =>
      getsockopt(fd, level, name, value, length) as number,
  };
}

// /proc/self/fdinfo/N shows FD_CLOEXEC as O_CLOEXEC in its octal "flags:".
const fdinfo = new Uint8Array(512);
const decoder = new TextDecoder();

/** The flag as read; "closed" for no such fd; undefined without /proc. */
function readCloexec(fd: number): boolean | "closed" | undefined {
  let handle: number;
  try {
    handle = openSync(`/proc/self/fdinfo/${fd}`, "r");
  } catch (error) {
    if ((error as { code?: unknown }).code !== "ENOENT") return undefined;
    try {
      closeSync(openSync("/proc/self/fdinfo", "r"));
    } catch {
      return undefined;
    }
    return "closed";
  }
  let length: number;
  try {
    length = readSync(handle, fdinfo, 0, fdinfo.length, 0);
  } finally {
    closeSync(handle);
  }
  const match = /^flags:\s*([0-7]+)$/m.exec(
    decoder.decode(fdinfo.subarray(0, length)),
  );
  if (match === null) return undefined;
  return (parseInt(match[1]!, 8) & O_CLOEXEC) !== 0;
}

/** The system calls, for Node. */
export const sys: Sys = {
  libc: open,
  mayBindTcp: () => true,
  setCloexec(fd) {
    // Once koffi is loaded, fcntl is cheaper than reading /proc.
    if (libc !== undefined) return fcntlSetCloexec(libc, fd);
    const cloexec = readCloexec(fd);
    if (cloexec === true) return 0;
    if (cloexec === "closed") return EBADF;
    return fcntlSetCloexec(open(), fd);
  },
};
