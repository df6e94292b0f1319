// A real NOTIFY_SOCKET for tests: what a service manager listens on, so that
// a test can start a service with it and assert what the service says
// (READY=1, STATUS=, WATCHDOG=1) and what it keeps in the fd store.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFdStore, type StoredFd } from "./_fd_store.ts";
import {
  type NotifySocket,
  openNotifySocket,
  type RawNotification,
} from "./_notify_socket.ts";
import { createQueue } from "./_queue.ts";
import { createReactor } from "./_reactor.ts";
import { systemError } from "./_unix_socket.ts";

/** One notification a service sent (`sd_notify()`), as received. */
export interface Notification {
  /** Its `KEY=VALUE` lines (`{ READY: "1", STATUS: "…" }`); a key given twice keeps the last value. */
  readonly fields: Readonly<Record<string, string>>;
  /** The datagram as text. */
  readonly text: string;
  /** The sender's pid, as the kernel vouches for it (SCM_CREDENTIALS). */
  readonly pid: number;
  /** The sender's uid. */
  readonly uid: number;
  /** The sender's gid. */
  readonly gid: number;
  /**
   * How many fds came with it. Those sent with `FDSTORE=1` are in the fd
   * store; the others (a `BARRIER=1` pipe) are closed once it is handled,
   * as systemd does.
   */
  readonly fdCount: number;
}

/** The store keeps at most this many fds, as FileDescriptorStoreMax= would. */
export const FD_STORE_MAX = 1024;
/** Unread notifications kept; older ones are dropped. */
const QUEUE_LIMIT = 1024;

/** An fd a service keeps in the fd store (`FDSTORE=1`). */
export type { StoredFd };

/** A running {@linkcode createNotifyReceiver}. */
export interface NotifyReceiver {
  /** The socket's path, the value for `NOTIFY_SOCKET`. */
  readonly path: string;
  /** `{ NOTIFY_SOCKET: path }`, to add to a child's environment. */
  readonly env: { readonly NOTIFY_SOCKET: string };
  /** The next notification; rejects once the receiver is closed. */
  next(): Promise<Notification>;
  /** The notifications, in order, until the receiver is closed. */
  readonly messages: AsyncIterable<Notification>;
  /**
   * The fd store now: fds sent with `FDSTORE=1`, named by `FDNAME=`
   * (`stored` by default), less those removed by `FDSTOREREMOVE=1` or
   * hung up (unless sent with `FDPOLL=0`). They belong to the receiver,
   * which closes them on {@linkcode NotifyReceiver.close}.
   */
  readonly fds: readonly StoredFd[];
  /** Stops receiving, closes the stored fds and removes the socket. */
  close(): Promise<void>;
}

/** @internal A notification from what the socket read. */
export function toNotification(raw: RawNotification): Notification {
  return {
    fields: raw.fields,
    text: raw.text,
    pid: raw.pid,
    uid: raw.uid,
    gid: raw.gid,
    fdCount: raw.fds.length,
  };
}

/**
 * Makes a real `NOTIFY_SOCKET` receiver, as a service manager has: a unix
 * datagram socket with `SO_PASSCRED`, in a private temporary folder. Start
 * a service with `receiver.env` in its environment, then assert what it
 * sends. `BARRIER=1` is answered (its pipe closed) once everything before
 * it is received, so a service's `notifyBarrier()` returns; `FDSTORE=1`
 * fds go to `receiver.fds`.
 *
 * On Deno it needs `--allow-ffi`, `--allow-env` (for the temporary folder),
 * `--allow-read` and `--allow-write`.
 *
 * @returns The receiver, listening.
 * @throws {ActivationError} `LISTEN_FAILED` when the socket cannot be made
 * (the temporary folder's path too long for a socket address, for one),
 * `FFI_UNAVAILABLE` without the system calls.
 *
 * @tags allow-env, allow-ffi, allow-read, allow-write
 *
 * @example With node:test, asserting that a service says READY=1
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { spawn } from "node:child_process";
 * import { test } from "node:test";
 * import { createNotifyReceiver } from "socket-activation";
 *
 * test("the service says it is ready", async () => {
 *   const receiver = createNotifyReceiver();
 *   const child = spawn("node", ["server.mjs"], {
 *     env: { ...process.env, ...receiver.env },
 *     stdio: "inherit",
 *   });
 *   try {
 *     for await (const message of receiver.messages) {
 *       if (message.fields.READY === "1") break;
 *     }
 *   } finally {
 *     child.kill();
 *     await receiver.close();
 *   }
 * });
 * ```
 *
 * @example On Deno (`deno test -A`), checking the fd store
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { spawn } from "node:child_process";
 * import { test } from "node:test";
 * import { createNotifyReceiver } from "jsr:@socket-activation/socket-activation";
 *
 * test("the service keeps its state fd", async () => {
 *   const receiver = createNotifyReceiver();
 *   const child = spawn("deno", ["run", "-A", "server.ts"], {
 *     env: { ...process.env, ...receiver.env },
 *   });
 *   try {
 *     while ((await receiver.next()).fields.FDSTORE !== "1");
 *     assert.equal(receiver.fds[0]?.name, "state");
 *   } finally {
 *     child.kill();
 *     await receiver.close();
 *   }
 * });
 * ```
 */
export function createNotifyReceiver(): NotifyReceiver {
  let folder: string;
  try {
    folder = mkdtempSync(join(tmpdir(), "socket-activation-"));
  } catch (error) {
    throw systemError(
      "LISTEN_FAILED",
      `Cannot make a folder for the notify socket in ${tmpdir()}`,
      error,
    );
  }
  const path = join(folder, "notify");
  const queue = createQueue<Notification>(QUEUE_LIMIT, "The notify receiver");
  let socket: NotifySocket | undefined;
  const reactor = createReactor((error) => console.error(error));
  const store = createFdStore(reactor, FD_STORE_MAX, () => {});
  try {
    socket = openNotifySocket(path, reactor, (raw) => {
      queue.push(toNotification(raw));
      store.handle(raw);
    });
  } catch (error) {
    void reactor.close();
    rmSync(folder, { recursive: true, force: true });
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    path,
    env: { NOTIFY_SOCKET: path },
    next: queue.next,
    messages: queue.items,
    get fds() {
      return store.entries();
    },
    close() {
      return closing ??= (async () => {
        socket.close();
        store.close();
        queue.close();
        await reactor.close();
        rmSync(folder, { recursive: true, force: true });
      })();
    },
  };
}
