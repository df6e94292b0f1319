// The system calls through Deno.dlopen. libc is opened on first need and kept,
// so importing the library loads nothing and needs no permission.

import {
  fcntlSetCloexec,
  ffiUnavailable,
  type Libc,
  once,
  readFdInfo,
  readPidfdId,
  type Sys,
  SYS_PIDFD_OPEN,
} from "./_sys.common.ts";

const SYMBOLS = {
  // fcntl() and syscall() are variadic; on Linux x86-64 and aarch64 a fixed
  // signature passes the extra arguments the same way.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  syscall: { parameters: ["i64", "i64", "i64"], result: "i64" },
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
} as const;

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
    fstatfs: symbols.fstatfs,
    close: symbols.close,
    getsockname: symbols.getsockname,
    getsockopt: symbols.getsockopt,
  };
});

/** The system calls, for Deno. */
export const sys: Sys = {
  setCloexec: (fd) => fcntlSetCloexec(open(), fd),
  pidfdId: once(() => readPidfdId(open(), Deno.pid)),
  describeFd: (fd) => readFdInfo(open(), fd),
};
