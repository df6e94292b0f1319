// The fd store, as systemd keeps it for a service with
// FileDescriptorStoreMax= (sd_notify(3), "FDSTORE=1"): fds a service hands
// over with FDSTORE=1 and FDNAME=, kept across its restarts, removed with
// FDSTOREREMOVE=1 or when they hang up (POLLHUP/POLLERR) unless sent with
// FDPOLL=0. What a notification carries besides is closed, BARRIER=1's pipe
// included, once the notification is handled.

import type { RawNotification } from "./_notify_socket.ts";
import type { Reactor } from "./_reactor.ts";
import { sys } from "./_sys.deno.ts";
import { fdNameProblem } from "./endpoint.ts";
import { F_GETFL, O_ACCMODE, POLLERR, POLLHUP, POLLNVAL } from "./_linux.ts";

/** An fd in the store. */
export interface StoredFd {
  /** Its name (`FDNAME=`; `stored` by default, as systemd names it). */
  readonly name: string;
  /** The fd in this process (close-on-exec). */
  readonly fd: number;
}

/** What the store did with a notification's fds. */
export type FdStoreChange =
  | { readonly action: "stored"; readonly name: string; readonly fd: number }
  | {
    readonly action: "removed";
    readonly name: string;
    readonly fd: number;
    readonly reason: "FDSTOREREMOVE=1" | "POLLHUP" | "POLLERR";
  }
  | {
    readonly action: "refused";
    readonly name: string;
    readonly reason: string;
  }
  | { readonly action: "warning"; readonly message: string };

/** The fd store of one service. */
export interface FdStore {
  /** Applies a notification's FDSTORE=1 / FDSTOREREMOVE=1 to its fds. */
  handle(message: RawNotification): void;
  /** What is stored, in the order it came. */
  entries(): readonly StoredFd[];
  /** Closes every stored fd. */
  close(): void;
}

const DEFAULT_NAME = "stored";

/**
 * Makes a store of at most `max` fds. Hung-up fds are found with `reactor`;
 * every change goes to `onChange`.
 */
export function createFdStore(
  reactor: Reactor,
  max: number,
  onChange: (change: FdStoreChange) => void,
): FdStore {
  const libc = sys.libc();
  const stored: { entry: StoredFd; unwatch: () => void }[] = [];

  // systemd's same_fd(): the same open file, read and written the same way
  // (both ends of a pipe share an inode).
  function identity(fd: number): string {
    const stat = new Uint8Array(256);
    if (libc.fstat(fd, stat) < 0) return `fd ${fd}`;
    const view = new DataView(stat.buffer);
    return `${view.getBigUint64(0, true)}:${view.getBigUint64(8, true)}:${
      libc.fcntl(fd, F_GETFL, 0) & O_ACCMODE
    }`;
  }

  function remove(
    item: (typeof stored)[number],
    reason: "FDSTOREREMOVE=1" | "POLLHUP" | "POLLERR",
  ): void {
    stored.splice(stored.indexOf(item), 1);
    item.unwatch();
    libc.close(item.entry.fd);
    onChange({ action: "removed", ...item.entry, reason });
  }

  function add(fd: number, name: string, poll: boolean): boolean {
    const same = identity(fd);
    if (stored.some((item) => identity(item.entry.fd) === same)) return false;
    if (stored.length >= max) {
      onChange({
        action: "refused",
        name,
        reason: `the store is full (${max} fds)`,
      });
      return false;
    }
    const entry = { name, fd };
    const item = { entry, unwatch: () => {} };
    if (poll) {
      // Events 0: poll() reports only POLLHUP, POLLERR and POLLNVAL.
      item.unwatch = reactor.watch(fd, 0, (revents) => {
        if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
          remove(item, revents & POLLHUP ? "POLLHUP" : "POLLERR");
        }
      });
    }
    stored.push(item);
    onChange({ action: "stored", name, fd });
    return true;
  }

  return {
    handle({ fields, fds }) {
      const name = fields.FDNAME;
      const validName = name !== undefined && fdNameProblem(name) === undefined;
      if (fields.FDSTOREREMOVE === "1") {
        if (!validName) {
          onChange({
            action: "warning",
            message: "FDSTOREREMOVE=1 without a valid FDNAME= is ignored",
          });
        } else {
          for (
            const item of stored.filter((item) => item.entry.name === name)
          ) {
            remove(item, "FDSTOREREMOVE=1");
          }
        }
      }
      const kept = new Set<number>();
      if (fields.FDSTORE === "1") {
        if (name !== undefined && !validName) {
          onChange({
            action: "warning",
            message: `FDNAME=${JSON.stringify(name)} ${
              fdNameProblem(name)
            }: the fds are stored as "${DEFAULT_NAME}"`,
          });
        }
        for (const fd of fds) {
          if (add(fd, validName ? name : DEFAULT_NAME, fields.FDPOLL !== "0")) {
            kept.add(fd);
          }
        }
      }
      for (const fd of fds) if (!kept.has(fd)) libc.close(fd);
    },
    entries: () => stored.map((item) => item.entry),
    close() {
      for (const item of stored.splice(0)) {
        item.unwatch();
        libc.close(item.entry.fd);
      }
    },
  };
}
