// Type=notify-reload (systemd 253 and later): systemd sends SIGHUP and waits
// for RELOADING=1 with MONOTONIC_USEC, then READY=1 once the service runs on
// its new configuration (sd_notify(3), "RELOADING=1"; systemd.service(5),
// "Type=notify-reload").

import process from "node:process";
import { EINVAL, errnoNumber } from "./_errno.ts";
import { notify, reloadingState } from "./notify.ts";

/** What {@linkcode onReload} runs on each reload. */
export type ReloadHandler = () => void | Promise<void>;

/** Options of {@linkcode onReload}. */
export interface OnReloadOptions {
  /**
   * Called with the handler's error when a reload fails (after the service
   * manager was told), and with each notification that could not be sent.
   * Default: print the error on standard error.
   */
  onError?: (error: unknown) => void;
}

// What systemd shows of a failed reload: one line, short enough that the
// manager keeps it (it ignores an overly long STATUS=).
const STATUS_MAX_CHARACTERS = 1024;

/** The errno to report for `error`: its own if it has one, else EINVAL. */
function errnoOf(error: unknown): number {
  const { errno, code } = (error ?? {}) as { errno?: unknown; code?: unknown };
  // ActivationError's errno is positive, Node's negative (-2 for ENOENT).
  if (typeof errno === "number" && Number.isInteger(errno) && errno !== 0) {
    return Math.abs(errno);
  }
  const named = typeof code === "string" ? errnoNumber(code) : undefined;
  // No errno to tell: EINVAL, a configuration the service refused, which
  // is what a failed reload usually is.
  return named ?? EINVAL;
}

/** `STATUS=`, `ERRNO=` and `READY=1` for a reload that failed with `error`. */
function failedState(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // One line: a newline would start another assignment, a NUL end the state.
  let line = message.replace(/\s*[\r\n\0]+\s*/g, " ").trim();
  if (line.length > STATUS_MAX_CHARACTERS) {
    line = `${line.slice(0, STATUS_MAX_CHARACTERS - 1)}…`;
  }
  return `STATUS=Reload failed: ${line}\nERRNO=${errnoOf(error)}\nREADY=1`;
}

/**
 * Reloads on systemd's signal, for `Type=notify-reload` services: installs
 * a SIGHUP listener that sends `RELOADING=1` with `MONOTONIC_USEC=` (the
 * CLOCK_MONOTONIC time in µs, read when the signal is handled), runs
 * `handler`, then sends `READY=1`. When the handler throws or rejects, the
 * service keeps running on its old configuration: the datagram that ends
 * the reload says so with `STATUS=Reload failed: <message>` and `ERRNO=`
 * (the error's `errno` or `code`, else EINVAL) before `READY=1`.
 *
 * A SIGHUP that arrives while a reload runs is not lost and does not start
 * a second reload at the same time: any number of them make one more
 * reload, once the running one has sent `READY=1`.
 *
 * Nothing is ever thrown into the event loop: the handler's error and a
 * notification that cannot be sent go to `options.onError`. Without
 * `NOTIFY_SOCKET` (started by hand), SIGHUP still runs the handler.
 *
 * @param handler Reads the configuration again and applies it; may return
 * a promise.
 * @param options Where errors go.
 * @returns A function that removes the listener (SIGHUP then has its
 * default effect again unless something else listens). A reload that is
 * running finishes and sends `READY=1`; one waiting for it is dropped.
 * @throws {TypeError} When `handler` is not a function.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Reloading a configuration file
 * ```ts ignore
 * import { loadConfig, onReload } from "@socket-activation/socket-activation";
 *
 * let config = await loadConfig("app.toml");
 * const stopReloading = onReload(async () => {
 *   config = await loadConfig("app.toml"); // a throw keeps the old one
 * });
 * // … on shutdown:
 * stopReloading();
 * ```
 */
export function onReload(
  handler: ReloadHandler,
  options: OnReloadOptions = {},
): () => void {
  if (typeof handler !== "function") {
    throw new TypeError(`A reload handler is a function, not ${handler}`);
  }
  const onError = options.onError ??
    ((error: unknown) => console.error("Reload failed:", error));
  let running = false;
  let again = false;
  let disposed = false;

  function tell(state: string): void {
    try {
      notify(state);
    } catch (error) {
      onError(error);
    }
  }

  async function reload(): Promise<void> {
    running = true;
    try {
      do {
        again = false;
        tell(reloadingState());
        let failure: { error: unknown } | undefined;
        try {
          await handler();
        } catch (error) {
          failure = { error };
        }
        // READY=1 first: the manager waits for it whatever onError does.
        tell(failure ? failedState(failure.error) : "READY=1");
        if (failure) onError(failure.error);
      } while (again && !disposed);
    } finally {
      running = false;
    }
  }

  function listener(): void {
    if (running) again = true;
    else void reload();
  }

  process.on("SIGHUP", listener);
  return () => {
    disposed = true;
    process.off("SIGHUP", listener);
  };
}
