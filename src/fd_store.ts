// The service side of the fd store (sd_notify(3), "FDSTORE=1",
// "FDSTOREREMOVE=1"; systemd.service(5), FileDescriptorStoreMax=): fds a
// service hands to the manager under a name, and gets back on its next
// start after the passed sockets, named in LISTEN_FDNAMES.

import { fdNameProblem } from "./endpoint.ts";
import { notify, type NotifyOptions, notifyWithFds } from "./notify.ts";

/** Options of {@linkcode storeFds}. */
export interface StoreFdsOptions extends NotifyOptions {
  /**
   * Let the manager drop the fds once they hang up (POLLHUP or POLLERR),
   * as it does by default. `false` sends `FDPOLL=0`: the fds stay stored
   * until removed or the service stops, for fds that may report a hang-up
   * while still worth keeping (a pipe whose writer is gone). Default:
   * `true`.
   */
  poll?: boolean;
}

/**
 * @internal `name`, checked as systemd's fdname_is_valid() does.
 *
 * @throws {TypeError} For a name that is not a string.
 * @throws {RangeError} For an invalid name, saying why.
 */
export function checkFdName(name: string): string {
  if (typeof name !== "string") {
    throw new TypeError(`An fd name is a string, not ${typeof name}`);
  }
  const problem = fdNameProblem(name);
  if (problem !== undefined) {
    throw new RangeError(
      `Invalid fd name ${JSON.stringify(name)}: it ${problem}`,
    );
  }
  return name;
}

/**
 * Hands fds to the service manager's fd store under `name` (`FDSTORE=1`,
 * `FDNAME=`, and `FDPOLL=0` when `poll` is `false`), so that they survive a
 * restart of the service: systemd passes them to the next process it starts
 * for this service, after the sockets of its socket units, with `name` in
 * `LISTEN_FDNAMES`, where {@linkcode listenFds} finds them. The manager
 * keeps its own copy: this process may close its fds afterwards.
 *
 * systemd keeps them only with `FileDescriptorStoreMax=` above 0 in the
 * service unit (it closes them otherwise), at most that many, and the same
 * open file only once. They stay across
 * `systemctl restart`, an automatic restart (`Restart=`) and a crash; they
 * are closed when they hang up (unless `poll` is `false`), when removed
 * with {@linkcode removeStoredFds}, and when the service stops for good
 * (`systemctl stop`, or it fails and is not restarted), unless
 * `FileDescriptorStorePreserve=yes` (systemd 254 and later).
 *
 * On Deno, it needs `--allow-env` and `--allow-ffi`.
 *
 * @param name The name to store them under: 1 to 255 printable ASCII
 * characters without `:`, as `FileDescriptorName=`. Several fds may share
 * one name.
 * @param fds The fds, at most 253 (the kernel's limit for one message).
 * @param options `poll`, and {@linkcode notify}'s options.
 * @returns `true` when sent, `false` when `NOTIFY_SOCKET` is not set (no
 * service manager listens, so nothing is stored: a program run by hand).
 * @throws {RangeError} For an invalid name, an empty array, or an fd or pid
 * that is not a non-negative integer.
 * @throws {TypeError} For a name that is not a string, or fds that are not
 * an array.
 * @throws {ActivationError} As {@linkcode notifyWithFds}: `NOTIFY_FAILED`
 * with EBADF for a closed fd, E2BIG for more than 253 fds, EAGAIN when the
 * manager's queue is full; `INVALID_NOTIFY_SOCKET`.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Keeping a memory file with the service's state across restarts
 * ```ts ignore
 * import { openSync } from "node:fs";
 * import { listenFds, storeFds } from "@socket-activation/socket-activation";
 *
 * const kept = listenFds().find((fd) => fd.name === "state");
 * if (kept === undefined) {
 *   const fd = openSync("/run/app/state", "a+");
 *   storeFds("state", [fd]);
 * }
 * ```
 */
export function storeFds(
  name: string,
  fds: readonly number[],
  options: StoreFdsOptions = {},
): boolean {
  checkFdName(name);
  if (!Array.isArray(fds)) {
    throw new TypeError(`The fds to store are an array, not ${typeof fds}`);
  }
  if (fds.length === 0) {
    throw new RangeError(
      `Cannot store fds under ${JSON.stringify(name)}: the array is empty`,
    );
  }
  const { poll = true, ...notifyOptions } = options;
  const state = `FDSTORE=1\nFDNAME=${name}${poll ? "" : "\nFDPOLL=0"}`;
  return notifyWithFds(state, fds, notifyOptions);
}

/**
 * Asks the service manager to close every fd it stores for this service
 * under `name` (`FDSTOREREMOVE=1`, `FDNAME=`): the next process started will
 * not get them. Removing a name nothing is stored under does nothing.
 *
 * A service has no need to call this on SIGTERM: it cannot tell a stop
 * from a restart, and systemd empties the store itself when the service
 * stops for good. Call it when what is stored no longer serves (the
 * configuration moved the socket elsewhere, the state was discarded).
 *
 * On Deno, it needs `--allow-env` and `--allow-ffi`.
 *
 * @param name The name the fds were stored under.
 * @param options {@linkcode notify}'s options.
 * @returns `true` when sent, `false` when `NOTIFY_SOCKET` is not set.
 * @throws {RangeError} For an invalid name (it could name nothing stored).
 * @throws {TypeError} For a name that is not a string.
 * @throws {ActivationError} As {@linkcode notify}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Discarding a stored state
 * ```ts ignore
 * import { removeStoredFds } from "@socket-activation/socket-activation";
 *
 * removeStoredFds("state");
 * ```
 */
export function removeStoredFds(
  name: string,
  options: NotifyOptions = {},
): boolean {
  checkFdName(name);
  return notify(`FDSTOREREMOVE=1\nFDNAME=${name}`, options);
}
