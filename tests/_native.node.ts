// Test-only system calls on Node, through koffi: clearing FD_CLOEXEC to set up
// a case, and the real libsystemd as the oracle.

import { createRequire } from "node:module";
import type { Native, SdListenResult } from "./_native.common.ts";

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

let listen: KoffiFunction | null | undefined;

function systemd(): KoffiFunction | null {
  if (listen === undefined) {
    try {
      listen = koffi.load("libsystemd.so.0").func(
        "int sd_listen_fds_with_names(int unset, _Out_ void **names)",
      );
    } catch {
      listen = null;
    }
  }
  return listen;
}

function fcntl(fd: number, cmd: number, arg: number): number {
  const result = fcntlCall(fd, cmd, "int", arg) as number;
  return result < 0 ? -koffi.errno() : result;
}

function close(fd: number): number {
  return (closeCall(fd) as number) < 0 ? -koffi.errno() : 0;
}

function sdListenFdsWithNames(unset: boolean): SdListenResult {
  const call = systemd();
  if (!call) throw new Error("libsystemd.so.0 is not available");
  const out: unknown[] = [null];
  const result = call(unset ? 1 : 0, out) as number;
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

/** The test-only system calls, for Node. */
export const native: Native = {
  fcntl,
  close,
  libsystemdAvailable: () => systemd() !== null,
  sdListenFdsWithNames,
};
