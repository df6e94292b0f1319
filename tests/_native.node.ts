// Test-only system calls on Node, through koffi: clearing FD_CLOEXEC to set up
// a case, and the real libsystemd as the oracle.

import { createRequire } from "node:module";
import {
  cString,
  type Native,
  type SdListenResult,
  type SdWatchdogResult,
} from "./_native.common.ts";

type KoffiFunction = (...args: unknown[]) => unknown;
interface Koffi {
  load(path: string): { func(signature: string): KoffiFunction };
  errno(): number;
  decode(pointer: unknown, type: unknown): unknown;
  array(type: string, length: number, hint: "Array"): unknown;
}

const koffi = createRequire(import.meta.url)("koffi") as Koffi;
const libc = koffi.load("libc.so.6");
const fcntlCall = libc.func("int fcntl(int fd, int cmd, ...)");
const free = libc.func("void free(void *ptr)");
const closeCall = libc.func("int close(int fd)");
const openCall = libc.func("int open(const uint8_t *path, int flags)");

interface Libsystemd {
  listen: KoffiFunction;
  notify: KoffiFunction;
  pidNotifyWithFds: KoffiFunction;
  watchdogEnabled: KoffiFunction;
  isFifo: KoffiFunction;
  isSpecial: KoffiFunction;
}

let libsystemd: Libsystemd | null | undefined;

function load(): Libsystemd | null {
  if (libsystemd === undefined) {
    try {
      const lib = koffi.load("libsystemd.so.0");
      libsystemd = {
        listen: lib.func(
          "int sd_listen_fds_with_names(int unset, _Out_ void **names)",
        ),
        // The strings go as bytes (a NUL-terminated Uint8Array), as on Deno.
        notify: lib.func("int sd_notify(int unset, const uint8_t *state)"),
        pidNotifyWithFds: lib.func(
          "int sd_pid_notify_with_fds(int pid, int unset, const uint8_t *state, const int *fds, unsigned int n)",
        ),
        watchdogEnabled: lib.func(
          "int sd_watchdog_enabled(int unset, _Out_ uint64_t *usec)",
        ),
        isFifo: lib.func("int sd_is_fifo(int fd, const uint8_t *path)"),
        isSpecial: lib.func("int sd_is_special(int fd, const uint8_t *path)"),
      };
    } catch {
      libsystemd = null;
    }
  }
  return libsystemd;
}

function systemd(): Libsystemd {
  const lib = load();
  if (!lib) throw new Error("libsystemd.so.0 is not available");
  return lib;
}

function fcntl(fd: number, cmd: number, arg: number): number {
  const result = fcntlCall(fd, cmd, "int", arg) as number;
  return result < 0 ? -koffi.errno() : result;
}

function close(fd: number): number {
  return (closeCall(fd) as number) < 0 ? -koffi.errno() : 0;
}

function sdListenFdsWithNames(unset: boolean): SdListenResult {
  const out: unknown[] = [null];
  const result = systemd().listen(unset ? 1 : 0, out) as number;
  if (result <= 0 || out[0] === null) return { result, names: undefined };
  const pointers = koffi.decode(
    out[0],
    koffi.array("void *", result, "Array"),
  ) as unknown[];
  const names = koffi.decode(
    out[0],
    koffi.array("char *", result, "Array"),
  ) as string[];
  for (const pointer of pointers) free(pointer);
  free(out[0]);
  return { result, names };
}

function sdNotify(unset: boolean, state: string): number {
  return systemd().notify(unset ? 1 : 0, cString(state)) as number;
}

function sdPidNotifyWithFds(
  pid: number,
  unset: boolean,
  state: string,
  fds: readonly number[],
): number {
  return systemd().pidNotifyWithFds(
    pid,
    unset ? 1 : 0,
    cString(state),
    // A non-null pointer even for no fds, as a C caller would pass.
    new Int32Array(fds.length > 0 ? fds : [-1]),
    fds.length,
  ) as number;
}

function sdWatchdogEnabled(unset: boolean): SdWatchdogResult {
  const out = new BigUint64Array(1);
  const result = systemd().watchdogEnabled(unset ? 1 : 0, out) as number;
  return { result, usec: result > 0 ? out[0] : undefined };
}

function open(path: string, flags: number): number {
  const fd = openCall(cString(path), flags) as number;
  return fd < 0 ? -koffi.errno() : fd;
}

// A NULL path when there is none, as a C caller would pass.
function optionalPath(path: string | undefined): Uint8Array | null {
  return path === undefined ? null : cString(path);
}

/** The test-only system calls, for Node. */
export const native: Native = {
  fcntl,
  close,
  libsystemdAvailable: () => load() !== null,
  sdListenFdsWithNames,
  sdNotify,
  sdPidNotifyWithFds,
  sdWatchdogEnabled,
  open,
  sdIsFifo: (fd, path) => systemd().isFifo(fd, optionalPath(path)) as number,
  sdIsSpecial: (fd, path) =>
    systemd().isSpecial(fd, optionalPath(path)) as number,
};
