// Test-only system calls on Deno: clearing FD_CLOEXEC to set up a case, and
// the real libsystemd as the oracle. The npm build swaps in _native.node.ts.

import {
  cString,
  type Native,
  type SdListenResult,
  type SdWatchdogResult,
} from "./_native.common.ts";

const LIBC = {
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  free: { parameters: ["pointer"], result: "void" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const LIBSYSTEMD = {
  sd_listen_fds_with_names: { parameters: ["i32", "buffer"], result: "i32" },
  sd_notify: { parameters: ["i32", "buffer"], result: "i32" },
  sd_pid_notify_with_fds: {
    parameters: ["i32", "i32", "buffer", "buffer", "u32"],
    result: "i32",
  },
  sd_watchdog_enabled: { parameters: ["i32", "buffer"], result: "i32" },
  sd_is_fifo: { parameters: ["i32", "buffer"], result: "i32" },
  sd_is_special: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

let libc: Deno.DynamicLibrary<typeof LIBC>["symbols"] | undefined;
let libsystemd:
  | Deno.DynamicLibrary<typeof LIBSYSTEMD>["symbols"]
  | null
  | undefined;

function c() {
  return libc ??= Deno.dlopen("libc.so.6", LIBC).symbols;
}

function systemd() {
  if (libsystemd === undefined) {
    try {
      libsystemd = Deno.dlopen("libsystemd.so.0", LIBSYSTEMD).symbols;
    } catch {
      libsystemd = null;
    }
  }
  return libsystemd;
}

function errno(): number {
  return new Deno.UnsafePointerView(c().__errno_location()!).getInt32();
}

function fcntl(fd: number, cmd: number, arg: number): number {
  const result = c().fcntl(fd, cmd, arg);
  return result < 0 ? -errno() : result;
}

function close(fd: number): number {
  return c().close(fd) < 0 ? -errno() : 0;
}

function sdListenFdsWithNames(unset: boolean): SdListenResult {
  const lib = systemd();
  if (!lib) throw new Error("libsystemd.so.0 is not available");
  const out = new BigUint64Array(1);
  const result = lib.sd_listen_fds_with_names(unset ? 1 : 0, out);
  if (result <= 0 || out[0] === 0n) return { result, names: undefined };
  const array = Deno.UnsafePointer.create(out[0]!)!;
  const view = new Deno.UnsafePointerView(array);
  const names: string[] = [];
  for (let i = 0; i < result; i++) {
    const entry = Deno.UnsafePointer.create(view.getBigUint64(i * 8))!;
    names.push(Deno.UnsafePointerView.getCString(entry));
    c().free(entry);
  }
  c().free(array);
  return { result, names };
}

function lib() {
  const symbols = systemd();
  if (!symbols) throw new Error("libsystemd.so.0 is not available");
  return symbols;
}

function sdNotify(unset: boolean, state: string): number {
  return lib().sd_notify(unset ? 1 : 0, cString(state));
}

function sdPidNotifyWithFds(
  pid: number,
  unset: boolean,
  state: string,
  fds: readonly number[],
): number {
  return lib().sd_pid_notify_with_fds(
    pid,
    unset ? 1 : 0,
    cString(state),
    // A non-null pointer even for no fds, as a C caller would pass.
    new Int32Array(fds.length > 0 ? fds : [-1]),
    fds.length,
  );
}

function sdWatchdogEnabled(unset: boolean): SdWatchdogResult {
  const out = new BigUint64Array(1);
  const result = lib().sd_watchdog_enabled(unset ? 1 : 0, out);
  return { result, usec: result > 0 ? out[0] : undefined };
}

function open(path: string, flags: number): number {
  const fd = c().open(cString(path), flags);
  return fd < 0 ? -errno() : fd;
}

// A NULL path when there is none, as a C caller would pass.
function optionalPath(path: string | undefined): Uint8Array | null {
  return path === undefined ? null : cString(path);
}

/** The test-only system calls, for Deno. */
export const native: Native = {
  fcntl,
  close,
  libsystemdAvailable: () => systemd() !== null,
  sdListenFdsWithNames,
  sdNotify,
  sdPidNotifyWithFds,
  sdWatchdogEnabled,
  open,
  sdIsFifo: (fd, path) => lib().sd_is_fifo(fd, optionalPath(path)),
  sdIsSpecial: (fd, path) => lib().sd_is_special(fd, optionalPath(path)),
};
