// The system calls through Deno.dlopen. libc is opened on first need and kept,
// so importing the library loads nothing and needs no permission.

import {
  fcntlSetCloexec,
  ffiUnavailable,
  type Libc,
  once,
  type Sys,
} from "./_sys.common.ts";
import { SYS_PIDFD_OPEN } from "./_linux.ts";

const SYMBOLS = {
  // fcntl() and syscall() are variadic; on Linux x86-64 and aarch64 a fixed
  // signature passes the extra arguments the same way.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  syscall: { parameters: ["i64", "i64", "i64"], result: "i64" },
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  // open() is variadic too: without O_CREAT, no mode follows.
  open: { parameters: ["buffer", "i32"], result: "i32" },
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  setsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "u32"],
    result: "i32",
  },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i64" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i64" },
  getuid: { parameters: [], result: "u32" },
  geteuid: { parameters: [], result: "u32" },
  getgid: { parameters: [], result: "u32" },
  getegid: { parameters: [], result: "u32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  // On a thread of its own, so that waiting does not block the event loop.
  poll: {
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  __errno_location: { parameters: [], result: "pointer" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  fchmodat: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  waitid: { parameters: ["i32", "i32", "buffer", "i32"], result: "i32" },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_adddup2: {
    parameters: ["buffer", "i32", "i32"],
    result: "i32",
  },
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  posix_spawn_file_actions_addchdir_np: {
    parameters: ["buffer", "buffer"],
    result: "i32",
  },
  posix_spawn_file_actions_addclosefrom_np: {
    parameters: ["buffer", "i32"],
    result: "i32",
  },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setpgroup: { parameters: ["buffer", "i32"], result: "i32" },
  posix_spawnattr_setsigmask: {
    parameters: ["buffer", "buffer"],
    result: "i32",
  },
  posix_spawnattr_setsigdefault: {
    parameters: ["buffer", "buffer"],
    result: "i32",
  },
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
} as const;

const encoder = new TextEncoder();

// A NUL-terminated C string.
function cString(text: string): Uint8Array {
  return encoder.encode(text + "\0");
}

// A NULL-terminated array of C strings (char *const []). The strings are
// returned too: they must live as long as the call.
function cStringArray(texts: readonly string[]): [BigUint64Array, unknown] {
  const strings = texts.map(cString);
  const pointers = new BigUint64Array(strings.length + 1);
  strings.forEach((string, index) => pointers[index] = address(string));
  return [pointers, strings];
}

// The address of a buffer's memory, for a struct that points at it.
function address(buffer: ArrayBufferView): bigint {
  if (buffer.byteLength === 0) return 0n;
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

// struct msghdr of LP64 Linux (x86-64 and aarch64): name, namelen at 8, iov
// at 16, iovlen at 24, control at 32, controllen at 40, flags at 48. The
// iovec it points at is returned too: it must live as long as the call.
function messageHeader(
  name: Uint8Array,
  data: Uint8Array,
  control: Uint8Array,
): [DataView, BigUint64Array] {
  const iovec = new BigUint64Array([address(data), BigInt(data.length)]);
  const header = new DataView(new ArrayBuffer(56));
  header.setBigUint64(0, address(name), true);
  header.setUint32(8, name.length, true);
  header.setBigUint64(16, address(iovec), true);
  header.setBigUint64(24, 1n, true);
  header.setBigUint64(32, address(control), true);
  header.setBigUint64(40, BigInt(control.length), true);
  return [header, iovec];
}

const open = once((): Libc => {
  let symbols: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
  try {
    symbols = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch (error) {
    throw ffiUnavailable(
      error instanceof Deno.errors.NotCapable
        ? "run Deno with --allow-ffi"
        : String(error),
      error,
    );
  }
  return {
    fcntl: symbols.fcntl,
    pidfdOpen: (pid) =>
      Number(symbols.syscall(BigInt(SYS_PIDFD_OPEN), BigInt(pid), 0n)),
    fstat: symbols.fstat,
    open: symbols.open,
    fstatfs: symbols.fstatfs,
    close: symbols.close,
    getsockname: symbols.getsockname,
    getpeername: symbols.getpeername,
    getsockopt: symbols.getsockopt,
    errno: () =>
      new Deno.UnsafePointerView(symbols.__errno_location()!).getInt32(),
    socket: symbols.socket,
    bind: (fd, name) => symbols.bind(fd, name, name.length),
    listen: symbols.listen,
    setsockopt: (fd, level, name, value) =>
      symbols.setsockopt(fd, level, name, value, value.length),
    sendmsg(fd, { address: name, data, control }, flags) {
      const [header, iovec] = messageHeader(name, data, control);
      const result = Number(symbols.sendmsg(fd, header, flags));
      void iovec; // kept reachable until the call returns
      return result;
    },
    recvmsg(fd, message, flags) {
      const [header, iovec] = messageHeader(
        message.address,
        message.data,
        message.control,
      );
      const result = Number(symbols.recvmsg(fd, header, flags));
      void iovec; // kept reachable until the call returns
      message.addressLength = header.getUint32(8, true);
      message.controlLength = Number(header.getBigUint64(40, true));
      message.flags = header.getInt32(48, true);
      return result;
    },
    getuid: symbols.getuid,
    geteuid: symbols.geteuid,
    getgid: symbols.getgid,
    getegid: symbols.getegid,
    clockGettime: symbols.clock_gettime,
    pipe2: symbols.pipe2,
    read: (fd, buffer) =>
      Number(symbols.read(fd, buffer, BigInt(buffer.length))),
    pollAsync: (pollfds, count, timeoutMs) =>
      symbols.poll(pollfds, BigInt(count), timeoutMs),
    fchmod: symbols.fchmod,
    fchmodat: (dirFd, path, mode, flags) =>
      symbols.fchmodat(dirFd, cString(path), mode, flags),
    write: (fd, buffer) =>
      Number(symbols.write(fd, buffer, BigInt(buffer.length))),
    kill: symbols.kill,
    waitid: symbols.waitid,
    spawnFileActionsInit: symbols.posix_spawn_file_actions_init,
    spawnFileActionsDestroy: symbols.posix_spawn_file_actions_destroy,
    spawnFileActionsAddDup2: symbols.posix_spawn_file_actions_adddup2,
    spawnFileActionsAddOpen: (actions, fd, path, flags, mode) =>
      symbols.posix_spawn_file_actions_addopen(
        actions,
        fd,
        cString(path),
        flags,
        mode,
      ),
    spawnFileActionsAddChdir: (actions, path) =>
      symbols.posix_spawn_file_actions_addchdir_np(actions, cString(path)),
    spawnFileActionsAddCloseFrom:
      symbols.posix_spawn_file_actions_addclosefrom_np,
    spawnAttrInit: symbols.posix_spawnattr_init,
    spawnAttrDestroy: symbols.posix_spawnattr_destroy,
    spawnAttrSetFlags: symbols.posix_spawnattr_setflags,
    spawnAttrSetPgroup: symbols.posix_spawnattr_setpgroup,
    spawnAttrSetSigMask: symbols.posix_spawnattr_setsigmask,
    spawnAttrSetSigDefault: symbols.posix_spawnattr_setsigdefault,
    posixSpawn(pid, path, actions, attributes, argv, env) {
      const [argvPointers, argvStrings] = cStringArray(argv);
      const [envPointers, envStrings] = cStringArray(env);
      const result = symbols.posix_spawn(
        pid,
        cString(path),
        actions,
        attributes,
        argvPointers,
        envPointers,
      );
      void argvStrings; // kept reachable until the call returns
      void envStrings;
      return result;
    },
  };
});

/** The system calls, for Deno. */
export const sys: Sys = {
  libc: open,
  setCloexec: (fd) => fcntlSetCloexec(open(), fd),
  mayBindTcp: (host, port) =>
    Deno.permissions.requestSync({
      name: "net",
      host: `${host.includes(":") ? `[${host}]` : host}:${port}`,
    }).state === "granted",
};
