// Reading fd state from /proc, the kernel's own account, so that tests never
// rely on the library to check itself.

import { readFileSync, readlinkSync } from "node:fs";

// O_CLOEXEC as /proc/self/fdinfo/N reports FD_CLOEXEC in its octal "flags:".
const O_CLOEXEC = 0o2000000;

/** The "flags:" of `/proc/PID/fdinfo/FD`, or `undefined` for a closed fd. */
export function fdFlags(
  fd: number,
  pid: number | "self" = "self",
): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
  } catch (error) {
    // Only a missing entry means a closed fd; anything else (Deno without
    // read permission for /proc) must not pass for one.
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw error;
  }
  const match = /^flags:\s*([0-7]+)$/m.exec(text);
  if (match === null) throw new Error(`No flags in /proc/${pid}/fdinfo/${fd}`);
  return parseInt(match[1]!, 8);
}

/** Whether `fd` of process `pid` is open and close-on-exec, as the kernel says. */
export function isCloexec(
  fd: number,
  pid: number | "self" = "self",
): boolean | undefined {
  const flags = fdFlags(fd, pid);
  return flags === undefined ? undefined : (flags & O_CLOEXEC) !== 0;
}

/** What `fd` points at (`socket:[123]`, `pipe:[4]`, a path), or undefined. */
export function fdTarget(
  fd: number,
  pid: number | "self" = "self",
): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw error;
  }
}
