// The service side of systemd's watchdog (WatchdogSec=): sd_watchdog_enabled()
// as libsystemd 252 reads WATCHDOG_USEC and WATCHDOG_PID, and a pinger.

import process from "node:process";
import { setInterval } from "node:timers";
import { readEnv, unsetEnv } from "./_env.ts";
import { describeErrno, EINVAL } from "./_errno.ts";
import { parsePid, parseUint64 } from "./_parse_int.ts";
import { ActivationError } from "./errors.ts";
import { notify } from "./notify.ts";

/** Options of {@linkcode watchdogEnabled}. */
export interface WatchdogEnabledOptions {
  /**
   * Remove `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment
   * afterwards, whatever the outcome. Default: `false`.
   */
  unsetEnv?: boolean;
}

// timestamp_is_set(): neither 0 nor USEC_INFINITY.
const USEC_INFINITY = (1n << 64n) - 1n;

/** @internal The pure part of sd_watchdog_enabled(): microseconds or undefined. */
export function resolveWatchdogEnv(
  env: {
    WATCHDOG_USEC?: string | undefined;
    WATCHDOG_PID?: string | undefined;
  },
  pid: number,
): bigint | undefined {
  if (env.WATCHDOG_USEC === undefined) return undefined;
  const usec = parseUint64(env.WATCHDOG_USEC);
  if (!usec.ok || usec.value === 0n || usec.value === USEC_INFINITY) {
    const errno = usec.ok ? EINVAL : usec.errno;
    throw new ActivationError(
      "INVALID_WATCHDOG_USEC",
      `Invalid WATCHDOG_USEC ${
        JSON.stringify(env.WATCHDOG_USEC)
      }: not a number of microseconds between 1 and 2^64-2, ${
        describeErrno(errno)
      }`,
      { errno },
    );
  }
  if (env.WATCHDOG_PID !== undefined) {
    const watchdogPid = parsePid(env.WATCHDOG_PID);
    if (!watchdogPid.ok) {
      throw new ActivationError(
        "INVALID_WATCHDOG_PID",
        `Invalid WATCHDOG_PID ${
          JSON.stringify(env.WATCHDOG_PID)
        }: not a positive process id, ${describeErrno(watchdogPid.errno)}`,
        { errno: watchdogPid.errno },
      );
    }
    // Meant for another process: the watchdog is not ours to feed.
    if (watchdogPid.value !== BigInt(pid)) return undefined;
  }
  return usec.value;
}

/**
 * Tells whether the service manager expects watchdog pings from this
 * process, and how often: `sd_watchdog_enabled()`. It reads
 * `WATCHDOG_USEC` (set by `WatchdogSec=`) and `WATCHDOG_PID` with
 * libsystemd's rules.
 *
 * @param options Whether to unset the two variables afterwards.
 * @returns The watchdog interval in microseconds, or `undefined` when the
 * watchdog is off or meant for another process. Ping at least every half
 * interval ({@linkcode startWatchdog} does).
 * @throws {ActivationError} `INVALID_WATCHDOG_USEC` (also for 0 and
 * infinity) or `INVALID_WATCHDOG_PID`, with libsystemd's errno.
 *
 * @tags allow-env
 *
 * @example
 * ```ts ignore
 * import { watchdogEnabled } from "@socket-activation/socket-activation";
 *
 * const usec = watchdogEnabled();
 * if (usec !== undefined) console.log(`ping every ${Number(usec) / 2e6} s`);
 * ```
 */
export function watchdogEnabled(
  options: WatchdogEnabledOptions = {},
): bigint | undefined {
  try {
    return resolveWatchdogEnv({
      WATCHDOG_USEC: readEnv("WATCHDOG_USEC"),
      WATCHDOG_PID: readEnv("WATCHDOG_PID"),
    }, process.pid);
  } finally {
    if (options.unsetEnv) {
      unsetEnv("WATCHDOG_USEC");
      unsetEnv("WATCHDOG_PID");
    }
  }
}

/** Options of {@linkcode startWatchdog}. */
export interface StartWatchdogOptions extends WatchdogEnabledOptions {
  /**
   * Called with the error of each ping that cannot be sent. The ping is
   * skipped and the pinger goes on at the same interval, so it resumes by
   * itself once the manager reads again (a full queue is `NOTIFY_FAILED`
   * with errno EAGAIN); call `stop()` here to give up instead. Default:
   * print the error on standard error.
   */
  onError?: (error: unknown) => void;
}

/** A running watchdog pinger. */
export interface Watchdog {
  /** The interval systemd expects, in microseconds. */
  readonly intervalUsec: bigint;
  /** The time between pings, in milliseconds: half the interval. */
  readonly pingEveryMs: number;
  /** Stops pinging. */
  stop(): void;
}

/**
 * Feeds systemd's watchdog: when {@linkcode watchdogEnabled} says it is on,
 * sends `WATCHDOG=1` every half interval. The timer is unref'd: it never
 * keeps the process alive by itself, and a process that stops doing its
 * work while the event loop runs on is still pinged, so also ping from
 * your work loop where a stuck loop must be caught.
 *
 * A ping never waits and never throws into the event loop: one that cannot
 * be sent (the manager's queue is full, or `NOTIFY_SOCKET` is gone) is
 * skipped and reported to `options.onError`, and the next one goes out on
 * time.
 *
 * @param options Whether to unset the watchdog variables, and what to do
 * when a ping fails.
 * @returns The pinger, or `undefined` when the watchdog is off.
 * @throws {ActivationError} As {@linkcode watchdogEnabled}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example
 * ```ts ignore
 * import { startWatchdog } from "@socket-activation/socket-activation";
 *
 * const watchdog = startWatchdog();
 * // … on shutdown:
 * watchdog?.stop();
 * ```
 */
export function startWatchdog(
  options: StartWatchdogOptions = {},
): Watchdog | undefined {
  const intervalUsec = watchdogEnabled(options);
  if (intervalUsec === undefined) return undefined;
  const pingEveryMs = Math.max(1, Number(intervalUsec / 2n) / 1000);
  const onError = options.onError ??
    ((error: unknown) => console.error("Watchdog ping failed:", error));
  const timer = setInterval(() => {
    try {
      notify("WATCHDOG=1");
    } catch (error) {
      // A skipped ping: the manager may read again before the next one.
      onError(error);
    }
  }, Math.min(pingEveryMs, 2 ** 31 - 1));
  timer.unref();
  return { intervalUsec, pingEveryMs, stop: () => clearInterval(timer) };
}
