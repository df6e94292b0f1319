// A service manager in small, for development and tests (SPEC section 6):
// it opens the listening sockets once, starts the service with them at fd 3,
// 4, … and the LISTEN_* variables systemd sets, listens to its
// notifications, keeps its fd store, and restarts it without closing the
// sockets, so that no connection is refused or reset across a restart.

import { mkdtempSync, rmSync, watch as watchPath } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createFdStore, type FdStoreChange } from "./_fd_store.ts";
import { openNotifySocket, type RawNotification } from "./_notify_socket.ts";
import {
  type ListeningSocket,
  openListeningSocket,
  parseListenAddress,
} from "./_listening_socket.ts";
import { createQueue } from "./_queue.ts";
import { createReactor, type Reactor } from "./_reactor.ts";
import { POLLIN } from "./_linux.ts";
import {
  type ChildExit,
  findProgram,
  signalGroup,
  spawnChild,
  waitForExit,
} from "./_spawn.ts";
import { DEFAULT_SOCKET_MODE, systemError } from "./_unix_socket.ts";
import { type Endpoint, formatEndpoint } from "./endpoint.ts";
import { fdNameProblem } from "./endpoint.ts";
import { ActivationError } from "./errors.ts";
import {
  FD_STORE_MAX,
  type Notification,
  toNotification,
} from "./notify_receiver.ts";

export type { ChildExit };

/** A socket to listen on, with its name and unix file mode. */
export interface ListenSpec {
  /**
   * Where: an endpoint, its URI (`http://127.0.0.1:8080`,
   * `unix:///run/app/web.sock`), or a form of systemd-socket-activate's
   * `--listen` (`8080`, `127.0.0.1:8080`, `[::1]:8080`, `/path`,
   * `@abstract`).
   */
  readonly endpoint: Endpoint | string;
  /** Its name in `LISTEN_FDNAMES`. */
  readonly name?: string | undefined;
  /** The file mode of a unix socket. Default: `0o660`. */
  readonly mode?: number | undefined;
}

/** When to start a child again after it exits by itself. */
export type RestartPolicy = "no" | "on-failure" | "always";

/** Options of {@linkcode activate}. */
export interface ActivateOptions {
  /**
   * The sockets to open, passed at fd 3, 4, … in this order: endpoints,
   * URIs or systemd-socket-activate's address forms, or
   * {@linkcode ListenSpec}s with a name and mode. It may be empty, for a
   * service that keeps its sockets in its fd store (with `notify`): as
   * systemd, the activator then sets no `LISTEN_*` until the store holds
   * something.
   */
  readonly listen: readonly (Endpoint | string | ListenSpec)[];
  /**
   * The names in `LISTEN_FDNAMES` of the sockets that have none of their
   * own (a {@linkcode ListenSpec} may give one), in order, as
   * systemd-socket-activate's `--fdname`: one name for all, or one each.
   * Without any name, `LISTEN_FDNAMES` is not set (unless the fd store
   * holds something), as systemd-socket-activate does.
   */
  readonly names?: readonly string[] | undefined;
  /**
   * Variables for the child, over this process's environment (from which
   * `LISTEN_*`, `NOTIFY_SOCKET` and `WATCHDOG_*` are removed: they were not
   * meant for the child).
   */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /**
   * Give each child a `NOTIFY_SOCKET` of its own and wait for its `READY=1`
   * before calling it ready (systemd's `Type=notify`). Default: `false`,
   * ready once started.
   */
  readonly notify?: boolean | undefined;
  /**
   * `WatchdogSec=` in milliseconds (needs `notify`): a child that sends no
   * `WATCHDOG=1` for this long after `READY=1` gets SIGABRT and is
   * restarted.
   */
  readonly watchdogMs?: number | undefined;
  /** `Restart=`: `no` (default), `on-failure` or `always`. */
  readonly restart?: RestartPolicy | undefined;
  /**
   * `TimeoutStopSec=`: how long a child has to exit after SIGTERM before
   * SIGKILL, in milliseconds. Default: 10 000.
   */
  readonly stopTimeoutMs?: number | undefined;
  /**
   * `TimeoutStartSec=`: how long a child has to say `READY=1` (with
   * `notify`), in milliseconds. Default: 90 000.
   */
  readonly startTimeoutMs?: number | undefined;
  /**
   * Start the child on the first connection instead of at once, as
   * systemd-socket-activate does. Default: `false`.
   */
  readonly onDemand?: boolean | undefined;
  /**
   * Files or folders (watched with their subfolders, but `.git` and
   * `node_modules`) whose changes restart the child.
   */
  readonly watch?: readonly string[] | undefined;
  /** The child's working folder. Default: this process's. */
  readonly cwd?: string | undefined;
  /** Where the child's stdout goes. Default: `"inherit"`. */
  readonly stdout?: "inherit" | "ignore" | undefined;
  /** Where the child's stderr goes. Default: `"inherit"`. */
  readonly stderr?: "inherit" | "ignore" | undefined;
  /** Called for each event, with a one-line description of it. */
  readonly onEvent?: ((event: ActivatorEvent) => void) | undefined;
}

/** What happened, for a log line. */
export interface ActivatorEvent {
  /** The kind of event. */
  readonly type:
    | "listening"
    | "waiting"
    | "started"
    | "ready"
    | "notified"
    | "fdstore"
    | "restarting"
    | "failed"
    | "watchdog"
    | "stopping"
    | "stopped";
  /** The child it is about, if any. */
  readonly pid?: number | undefined;
  /** One line: `started pid 123 with web=fd 3`. */
  readonly message: string;
}

/** A socket the activator listens on. */
export interface ActivatedEndpoint {
  /** Its fd in the child: 3, 4, … */
  readonly fd: number;
  /** Its name in `LISTEN_FDNAMES` (`unknown` when unnamed). */
  readonly name: string;
  /** Where it listens: `127.0.0.1:8080`, `[::]:8080`, `/path`, `@name`. */
  readonly address: string;
  /**
   * The same as an endpoint, with the real port when port 0 was asked for;
   * `undefined` for an abstract socket.
   */
  readonly endpoint: Endpoint | undefined;
}

/** A running {@linkcode activate}. */
export interface Activation {
  /** The pid of the child serving now, `undefined` when none runs. */
  readonly pid: number | undefined;
  /** The listening sockets, in fd order. */
  readonly endpoints: readonly ActivatedEndpoint[];
  /**
   * Settles once a child first said `READY=1` (or started, without
   * `notify`); rejects when the activator ends before that.
   */
  readonly ready: Promise<void>;
  /** Every child's notifications, in order. */
  readonly notifications: AsyncIterable<Notification>;
  /**
   * Settles when the activator has ended (a child exited and nothing
   * restarts it, or {@linkcode Activation.stop}) and cleaned up: the exit
   * of the child that served last, `undefined` if none ran.
   */
  readonly finished: Promise<ChildExit | undefined>;
  /**
   * Starts a new child on the same sockets, and once it is ready (its
   * `READY=1` with `notify`, at once without) stops the one serving now.
   * Resolves once the new child is ready; rejects when it fails first,
   * and the old one keeps serving.
   */
  restart(reason?: string): Promise<void>;
  /**
   * Sends `signal` (SIGTERM by default; SIGKILL after `stopTimeoutMs`) to
   * every child, waits for them, then closes the sockets and removes the
   * unix socket files it made. Resolves as `finished`.
   */
  stop(signal?: string): Promise<ChildExit | undefined>;
}

const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const DEFAULT_START_TIMEOUT_MS = 90_000;
// systemd's RestartSec= default, and a StartLimitBurst= of 5 automatic
// restarts within StartLimitIntervalSec= 10 s.
const RESTART_DELAY_MS = 100;
const RESTART_BURST = 5;
const RESTART_INTERVAL_MS = 10_000;
const WATCH_DEBOUNCE_MS = 100;
const IGNORED_FOLDERS = /(^|\/)(\.git|node_modules)(\/|$)/;
// What the child must not inherit from this process's own environment.
const MANAGER_VARIABLES =
  /^(LISTEN_PID|LISTEN_PIDFDID|LISTEN_FDS|LISTEN_FDNAMES|NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)$/;
// What the activator logs of a notification (READY=1 and the watchdog have
// events of their own; WATCHDOG=1 would be too many lines).
const LOGGED_FIELDS = [
  "RELOADING",
  "STOPPING",
  "STATUS",
  "MAINPID",
  "ERRNO",
  "EXTEND_TIMEOUT_USEC",
];
// systemd's "clean" exit signals for Restart=on-failure.
const CLEAN_SIGNALS = ["SIGHUP", "SIGINT", "SIGTERM", "SIGPIPE"];

interface Deadline {
  extend(ms: number): void;
  cancel(): void;
}

function deadline(ms: number, onExpire: () => void): Deadline {
  let due = performance.now() + ms;
  let timer = setTimeout(onExpire, ms);
  return {
    extend(more) {
      const wanted = performance.now() + more;
      if (wanted <= due) return;
      due = wanted;
      clearTimeout(timer);
      timer = setTimeout(onExpire, more);
    },
    cancel: () => clearTimeout(timer),
  };
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  // A rejection nobody waits for is no unhandled error.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** One started child and what the activator knows of it. */
interface Generation {
  readonly id: number;
  readonly pid: number;
  readonly startedAt: number;
  readonly ready: Deferred<void>;
  isReady: boolean;
  exit: ChildExit | undefined;
  stopSignal: string | undefined;
  /** Why the activator stopped it as failed, if it did. */
  failure: "watchdog" | "timeout" | undefined;
  watchdogMs: number | undefined;
  watchdog: Deadline | undefined;
  startTimer: Deadline | undefined;
  stopTimer: Deadline | undefined;
  closeNotify(): void;
}

/** The pieces of the `--listen` option, normalised. */
interface ListenRequest {
  readonly text: string;
  readonly endpoint: Endpoint | string;
  readonly name: string | undefined;
  readonly mode: number;
}

function describeExit(exit: ChildExit): string {
  return exit.code !== null ? `exit ${exit.code}` : `signal ${exit.signal}`;
}

function checkName(name: string, what: string): string {
  const problem = fdNameProblem(name);
  if (problem !== undefined) {
    throw new RangeError(
      `Invalid ${what} ${JSON.stringify(name)}: it ${problem}`,
    );
  }
  return name;
}

function checkMs(value: number | undefined, what: string): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`${what} is a positive number of ms, not ${value}`);
  }
}

function listenRequests(options: ActivateOptions): ListenRequest[] {
  const specs: ListenSpec[] = options.listen.map((item) =>
    typeof item === "string" || "kind" in item ? { endpoint: item } : item
  );
  const names = options.names ?? [];
  const unnamed = specs.filter((spec) => spec.name === undefined).length;
  if (names.length > 1 && names.length !== unnamed) {
    throw new RangeError(
      `${names.length} names for ${unnamed} sockets: give one name for all, or one per socket`,
    );
  }
  let next = 0;
  return specs.map((spec) => {
    const name = spec.name ??
      (names.length === 1 ? names[0] : names[next++]);
    const mode = spec.mode ?? DEFAULT_SOCKET_MODE;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
      throw new RangeError(
        `A socket mode is an integer from 0 to 0o777, not ${mode}`,
      );
    }
    return {
      text: typeof spec.endpoint === "string"
        ? spec.endpoint
        : formatEndpoint(spec.endpoint),
      endpoint: spec.endpoint,
      name: name === undefined ? undefined : checkName(name, "socket name"),
      mode,
    };
  });
}

async function openSockets(
  requests: readonly ListenRequest[],
): Promise<ListeningSocket[]> {
  const sockets: ListeningSocket[] = [];
  try {
    for (const request of requests) {
      const target = typeof request.endpoint === "string"
        ? parseListenAddress(request.endpoint)
        : parseListenAddress(formatEndpoint(request.endpoint));
      sockets.push(
        await openListeningSocket(target, request.text, request.mode),
      );
    }
    return sockets;
  } catch (error) {
    for (const socket of sockets) socket.close();
    throw error;
  }
}

/**
 * Runs `command` as systemd runs a socket-activated service, without
 * systemd: it opens the sockets once, starts the command with them at fd
 * 3, 4, … and `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID` (the child's
 * own pid), then restarts it on the same sockets when asked (`restart()`,
 * a change under `watch`), when it exits (`restart`), or when it misses
 * its watchdog, without refusing or resetting a connection: the sockets
 * never close, and with `notify` the old child is stopped only once the
 * new one said `READY=1`. This is the engine of the `socket-activate`
 * command, and a test helper: start a service as systemd would and talk
 * to it.
 *
 * The child gets no other fd of this process; its stdin is /dev/null, its
 * stdout and stderr this process's. Each child runs in a process group of
 * its own, and signals go to that group, as systemd's
 * `KillMode=control-group` sends them to the whole service. With
 * `notify`, each child gets a `NOTIFY_SOCKET` of its own, so an old child
 * cannot speak for a new one; `READY=1`, `RELOADING=1`, `STOPPING=1`,
 * `STATUS=`, `MAINPID=`, `ERRNO=`, `WATCHDOG=1`, `WATCHDOG=trigger`,
 * `WATCHDOG_USEC=`, `EXTEND_TIMEOUT_USEC=` and `BARRIER=1` are understood,
 * and fds sent with `FDSTORE=1` (`FDNAME=`, `FDSTOREREMOVE=1`,
 * `FDPOLL=0`) are passed to the next child after the listening sockets,
 * under their names.
 *
 * On Deno it needs `--allow-ffi` (the sockets, the notify socket and the
 * children are made through libc, which is why no `--allow-run` or
 * `--allow-net` is asked), `--allow-env`, `--allow-read` and
 * `--allow-write`: in practice `-A`.
 *
 * @param command The program and its arguments (found in `PATH`).
 * @param options The sockets, their names, the child's environment, and
 * the restart, notify and watchdog settings.
 * @returns The running activator, once the sockets are open and the first
 * child started (unless `onDemand`).
 * @throws {ActivationError} `INVALID_ENDPOINT` for an address that does not
 * parse, `ADDRESS_IN_USE`, `PATH_NOT_SOCKET` or `LISTEN_FAILED` when a
 * socket cannot be opened (nothing is left open then), `SPAWN_FAILED` when
 * the command cannot be found or started.
 * @throws {RangeError} For a bad name, mode, count of names or duration.
 * @throws {TypeError} For an empty command, `watchdogMs` without
 * `notify`, or `onDemand` without a socket.
 *
 * @tags allow-env, allow-ffi, allow-read, allow-write
 *
 * @example A test (node:test) of a server, started as systemd would
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { test } from "node:test";
 * import { activate } from "socket-activation";
 *
 * test("the server answers on its socket, and restarts without a gap", async () => {
 *   const server = await activate(["node", "server.mjs"], {
 *     listen: ["http://127.0.0.1:0"],
 *     names: ["web"],
 *     notify: true,
 *     stdout: "ignore",
 *   });
 *   try {
 *     await server.ready;
 *     const { port } = server.endpoints[0]!.endpoint as { port: number };
 *     assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
 *     await server.restart();
 *     assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
 *   } finally {
 *     await server.stop();
 *   }
 * });
 * ```
 *
 * @example On Deno (`deno test -A`), waiting for a status line
 * ```ts ignore
 * import { test } from "node:test";
 * import { activate } from "jsr:@socket-activation/socket-activation";
 *
 * test("the server reports its status", async () => {
 *   const server = await activate(["deno", "run", "-A", "server.ts"], {
 *     listen: ["unix:///tmp/web.sock"],
 *     notify: true,
 *   });
 *   for await (const message of server.notifications) {
 *     if (message.fields.STATUS?.startsWith("Serving")) break;
 *   }
 *   await server.stop();
 * });
 * ```
 */
export async function activate(
  command: readonly string[],
  options: ActivateOptions,
): Promise<Activation> {
  if (command.length === 0 || command[0] === "") {
    throw new TypeError("Invalid command: it is empty");
  }
  if (options.watchdogMs !== undefined && !options.notify) {
    throw new TypeError(
      "A watchdog needs notify: the child pings it with WATCHDOG=1",
    );
  }
  if (options.onDemand && options.listen.length === 0) {
    throw new TypeError(
      "onDemand needs a socket to wait on: listen is empty",
    );
  }
  checkMs(options.watchdogMs, "watchdogMs");
  checkMs(options.stopTimeoutMs, "stopTimeoutMs");
  checkMs(options.startTimeoutMs, "startTimeoutMs");
  const requests = listenRequests(options);
  const stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const restartPolicy = options.restart ?? "no";
  if (!["no", "on-failure", "always"].includes(restartPolicy)) {
    throw new RangeError(
      `Invalid restart policy ${
        JSON.stringify(restartPolicy)
      }: expected no, on-failure or always`,
    );
  }
  const emit = (type: ActivatorEvent["type"], message: string, pid?: number) =>
    options.onEvent?.({ type, message, ...pid === undefined ? {} : { pid } });

  const baseEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !MANAGER_VARIABLES.test(key)) {
      baseEnv[key] = value;
    }
  }
  Object.assign(baseEnv, options.env);
  const program = command[0]!;
  if (findProgram(program, baseEnv.PATH ?? "", options.cwd) === undefined) {
    throw new ActivationError(
      "SPAWN_FAILED",
      `Cannot start ${JSON.stringify(program)}: ${
        program.includes("/") ? "no such executable" : "not found in PATH"
      }`,
      { errno: 2 },
    );
  }

  const sockets = await openSockets(requests);
  const endpoints: ActivatedEndpoint[] = sockets.map((socket, index) => ({
    fd: 3 + index,
    name: requests[index]!.name ?? "unknown",
    address: socket.address,
    endpoint: socket.endpoint,
  }));
  const namedSockets = requests.some((request) => request.name !== undefined);
  let notifyFolder: string | undefined;
  let reactor: Reactor;
  try {
    if (options.notify) {
      notifyFolder = mkdtempSync(join(tmpdir(), "socket-activate-"));
    }
    reactor = createReactor((error) =>
      emit("failed", `internal error: ${error}`)
    );
  } catch (error) {
    for (const socket of sockets) socket.close();
    if (notifyFolder !== undefined) {
      rmSync(notifyFolder, { recursive: true, force: true });
    }
    throw systemError("LISTEN_FAILED", "Cannot prepare the activator", error);
  }
  for (const endpoint of endpoints) {
    emit(
      "listening",
      `listening on ${endpoint.address} as fd ${endpoint.fd}${
        namedSockets ? ` (${endpoint.name})` : ""
      }`,
    );
  }

  const notifications = createQueue<Notification>(1024, "The activator");
  const store = createFdStore(
    reactor,
    FD_STORE_MAX,
    (change: FdStoreChange) => {
      const what = change.action === "warning"
        ? change.message
        : change.action === "refused"
        ? `refused fd "${change.name}": ${change.reason}`
        : change.action === "stored"
        ? `stored fd "${change.name}"`
        : `removed fd "${change.name}" (${change.reason})`;
      emit("fdstore", what);
    },
  );

  const live = new Set<Generation>();
  let current: Generation | undefined; // serving
  let starting: Generation | undefined; // started, not ready yet
  let generations = 0;
  let closing = false;
  // Whose exit the activator ends with: the child serving when it stops,
  // else the last one that went down with nothing to replace it.
  let main: Generation | undefined;
  let lastExit: ChildExit | undefined;
  const firstReady = deferred<void>();
  const finished = deferred<ChildExit | undefined>();
  const automaticStarts: number[] = [];
  let restartTimer: ReturnType<typeof setTimeout> | undefined;
  let stopWaitingForConnection: (() => void) | undefined;

  function onNotification(generation: Generation, raw: RawNotification): void {
    notifications.push(toNotification(raw));
    store.handle(raw);
    const { fields } = raw;
    const pid = generation.pid;
    for (const key of LOGGED_FIELDS) {
      if (fields[key] !== undefined) {
        emit("notified", `pid ${pid}: ${key}=${fields[key]}`, pid);
      }
    }
    const extendUsec = Number(fields.EXTEND_TIMEOUT_USEC);
    if (extendUsec > 0) {
      generation.startTimer?.extend(extendUsec / 1000);
      generation.stopTimer?.extend(extendUsec / 1000);
    }
    const watchdogUsec = Number(fields.WATCHDOG_USEC);
    if (watchdogUsec > 0) {
      generation.watchdogMs = watchdogUsec / 1000;
      armWatchdog(generation);
    }
    if (fields.READY === "1") becomeReady(generation);
    if (fields.WATCHDOG === "1") armWatchdog(generation);
    if (fields.WATCHDOG === "trigger") fail(generation, "watchdog");
  }

  function becomeReady(generation: Generation): void {
    if (generation.isReady || generation.exit !== undefined) return;
    generation.isReady = true;
    generation.startTimer?.cancel();
    const ms = Math.round(performance.now() - generation.startedAt);
    emit(
      "ready",
      `ready pid ${generation.pid} (${ms} ms after start)`,
      generation.pid,
    );
    armWatchdog(generation);
    generation.ready.resolve();
  }

  function armWatchdog(generation: Generation): void {
    generation.watchdog?.cancel();
    const ms = generation.watchdogMs;
    if (
      ms === undefined || !generation.isReady ||
      generation.stopSignal !== undefined
    ) return;
    generation.watchdog = deadline(ms, () => fail(generation, "watchdog"));
  }

  /** A child that missed its watchdog or its start timeout. */
  function fail(generation: Generation, why: "watchdog" | "timeout"): void {
    if (generation.exit !== undefined || generation.stopSignal !== undefined) {
      return;
    }
    generation.failure = why;
    if (why === "watchdog") {
      emit(
        "watchdog",
        `watchdog timeout: pid ${generation.pid} sent no WATCHDOG=1 in time`,
        generation.pid,
      );
      // systemd's WatchdogSignal= default.
      stopGeneration(generation, "SIGABRT");
    } else {
      emit(
        "failed",
        `pid ${generation.pid} did not say READY=1 within ${startTimeoutMs} ms`,
        generation.pid,
      );
      stopGeneration(generation, "SIGTERM");
    }
  }

  function stopGeneration(generation: Generation, signal: string): void {
    if (generation.exit !== undefined) return;
    emit(
      "stopping",
      `stopping pid ${generation.pid} (${signal})`,
      generation.pid,
    );
    generation.stopSignal = signal;
    generation.watchdog?.cancel();
    signalGroup(generation.pid, signal);
    generation.stopTimer ??= deadline(stopTimeoutMs, () => {
      if (generation.exit !== undefined) return;
      emit(
        "stopping",
        `killing pid ${generation.pid}: still running ${stopTimeoutMs} ms after ${generation.stopSignal}`,
        generation.pid,
      );
      signalGroup(generation.pid, "SIGKILL");
    });
  }

  function childEnv(
    id: number,
    names: readonly string[],
  ): string[] {
    const env: Record<string, string> = { ...baseEnv };
    // As systemd: no LISTEN_* at all without an fd to pass (a service with
    // no socket, and nothing in its fd store yet).
    if (names.length > 0) env.LISTEN_FDS = String(names.length);
    // Named as systemd-socket-activate names them: only when asked to,
    // and always when the fd store adds its named fds.
    if (namedSockets || names.length > sockets.length) {
      env.LISTEN_FDNAMES = names.join(":");
    }
    if (notifyFolder !== undefined) {
      env.NOTIFY_SOCKET = join(notifyFolder, `notify-${id}`);
    }
    if (options.watchdogMs !== undefined) {
      env.WATCHDOG_USEC = String(Math.round(options.watchdogMs * 1000));
    }
    return Object.entries(env).map(([key, value]) => `${key}=${value}`);
  }

  /** Starts a child; throws SPAWN_FAILED. */
  function startGeneration(): Generation {
    const id = ++generations;
    const stored = store.entries();
    const fds = [
      ...sockets.map((socket) => socket.fd),
      ...stored.map((entry) => entry.fd),
    ];
    const names = [
      ...endpoints.map((endpoint) => endpoint.name),
      ...stored.map((entry) => entry.name),
    ];
    const named = namedSockets || stored.length > 0;
    // LISTEN_PID (and WATCHDOG_PID) must be the child's own pid, known
    // only once it runs: a shell sets it and execs the command in place.
    const variables = [
      ...fds.length > 0 ? ["LISTEN_PID"] : [],
      ...options.watchdogMs === undefined ? [] : ["WATCHDOG_PID"],
    ].join(" ");
    const script = `for v in ${variables}; do export "$v=$$"; done; exec "$@"`;
    let closeNotify = () => {};
    const generation: Generation = {
      id,
      pid: 0,
      startedAt: performance.now(),
      ready: deferred<void>(),
      isReady: false,
      exit: undefined,
      stopSignal: undefined,
      failure: undefined,
      watchdogMs: options.watchdogMs,
      watchdog: undefined,
      startTimer: undefined,
      stopTimer: undefined,
      closeNotify: () => closeNotify(),
    };
    if (notifyFolder !== undefined) {
      const path = join(notifyFolder, `notify-${id}`);
      const socket = openNotifySocket(
        path,
        reactor,
        (raw) => onNotification(generation, raw),
      );
      closeNotify = () => {
        socket.close();
        rmSync(path, { force: true });
      };
    }
    let child;
    try {
      child = spawnChild({
        argv: ["/bin/sh", "-c", script, "socket-activate", ...command],
        env: childEnv(id, names),
        fds,
        cwd: options.cwd,
        stdout: options.stdout ?? "inherit",
        stderr: options.stderr ?? "inherit",
      });
    } catch (error) {
      closeNotify();
      throw error;
    }
    (generation as { pid: number }).pid = child.pid;
    live.add(generation);
    emit(
      "started",
      `started pid ${child.pid} with ${
        names.length === 0
          ? "no fds"
          : names.map((name, index) =>
            `${named ? `${name}=` : ""}fd ${3 + index}`
          ).join(", ")
      }`,
      child.pid,
    );
    void waitForExit(reactor, child).then((exit) => onExit(generation, exit));
    if (notifyFolder === undefined) {
      becomeReady(generation);
    } else {
      generation.startTimer = deadline(
        startTimeoutMs,
        () => fail(generation, "timeout"),
      );
    }
    return generation;
  }

  function isFailure(generation: Generation, exit: ChildExit): boolean {
    if (generation.failure !== undefined) return true;
    if (exit.code !== null) return exit.code !== 0;
    return !CLEAN_SIGNALS.includes(exit.signal!);
  }

  function onExit(generation: Generation, exit: ChildExit): void {
    generation.exit = exit;
    live.delete(generation);
    generation.watchdog?.cancel();
    generation.startTimer?.cancel();
    generation.stopTimer?.cancel();
    generation.closeNotify();
    emit(
      "stopped",
      `stopped pid ${exit.pid} (${describeExit(exit)})`,
      exit.pid,
    );
    if (!generation.isReady) {
      generation.ready.reject(
        new Error(
          `pid ${exit.pid} exited (${describeExit(exit)}) before it was ready`,
        ),
      );
    }
    // The service went down: the child serving, or one starting while
    // none serves. An old child stopped after a restart, or a new one
    // that failed while another serves, changes nothing.
    const wentDown = generation === current ||
      (generation === starting && current === undefined);
    if (generation === current) current = undefined;
    if (generation === starting) starting = undefined;
    if (!wentDown) return finishIfDone();
    lastExit = exit;
    if (closing) return finishIfDone();
    // A restart in progress takes over.
    if (starting !== undefined) return;
    const again = generation.failure === "watchdog" ||
      restartPolicy === "always" ||
      (restartPolicy === "on-failure" && isFailure(generation, exit));
    if (!again) return idle();
    if (!mayStartAgain()) return;
    const reason = generation.failure === "watchdog"
      ? `watchdog timeout of pid ${exit.pid}`
      : `pid ${exit.pid} exited (${describeExit(exit)})`;
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      restart(reason).catch(() => {});
    }, RESTART_DELAY_MS);
  }

  /**
   * Counts a start that no one asked for (a restart policy, a connection
   * after a child exited): past StartLimitBurst= within
   * StartLimitIntervalSec=, the activator gives up, as systemd does, and
   * waits for a change to the watched files, or ends.
   */
  function mayStartAgain(): boolean {
    const now = performance.now();
    automaticStarts.push(now);
    while (automaticStarts[0]! < now - RESTART_INTERVAL_MS) {
      automaticStarts.shift();
    }
    if (automaticStarts.length <= RESTART_BURST) return true;
    emit(
      "failed",
      `giving up: ${RESTART_BURST} restarts within ${
        RESTART_INTERVAL_MS / 1000
      } s`,
    );
    if (watchers.length > 0) {
      emit("waiting", "waiting for a change to start again");
    } else {
      void stop();
    }
    return false;
  }

  /** No child runs and none is due: wait for what may start one, or end. */
  function idle(): void {
    if (options.onDemand) return waitForConnection();
    if (watchers.length > 0) {
      emit("waiting", "waiting for a change to start again");
      return;
    }
    void stop();
  }

  function waitForConnection(): void {
    emit("waiting", "waiting for a connection");
    const unwatch = sockets.map((socket) =>
      reactor.watch(socket.fd, POLLIN, () => {
        stopWaitingForConnection?.();
        // A child that left the connection unaccepted is started again
        // and again: that counts.
        if (generations > 0 && !mayStartAgain()) return;
        restart(undefined).catch(() => {});
      })
    );
    stopWaitingForConnection = () => {
      stopWaitingForConnection = undefined;
      unwatch.forEach((remove) => remove());
    };
  }

  /**
   * Starts a child to replace the one serving (if any). Throws
   * SPAWN_FAILED.
   */
  function begin(reason: string | undefined): Generation {
    stopWaitingForConnection?.();
    clearTimeout(restartTimer);
    restartTimer = undefined;
    if (reason !== undefined) emit("restarting", `restarting: ${reason}`);
    // A child still starting has not served yet: the new one replaces it.
    const replaced = starting;
    const generation = startGeneration();
    starting = generation;
    if (replaced !== undefined) stopGeneration(replaced, "SIGTERM");
    return generation;
  }

  /** Once `generation` is ready, it serves and the old child stops. */
  async function settle(generation: Generation): Promise<void> {
    try {
      await generation.ready.promise;
    } catch (error) {
      if (current !== undefined && starting === undefined) {
        emit("failed", `restart failed: pid ${current.pid} keeps serving`);
      }
      throw error;
    }
    // Replaced by a newer restart while it started: that one takes over.
    if (starting !== generation) return;
    starting = undefined;
    const old = current;
    current = generation;
    firstReady.resolve();
    if (old !== undefined) stopGeneration(old, "SIGTERM");
  }

  function restart(reason: string | undefined): Promise<void> {
    if (closing) {
      return Promise.reject(new Error("The activator is stopping"));
    }
    let generation: Generation;
    try {
      generation = begin(reason);
    } catch (error) {
      emit("failed", `cannot start: ${(error as Error).message}`);
      if (current === undefined && starting === undefined) idle();
      return Promise.reject(error);
    }
    return settle(generation);
  }

  const watchers: { close(): void }[] = [];
  function watchChanges(path: string): void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      watchers.push(watchPath(path, { recursive: true }, (_type, name) => {
        const file = name === null ? path : join(path, String(name));
        if (IGNORED_FOLDERS.test(file) || closing) return;
        clearTimeout(timer);
        timer = setTimeout(() => {
          restart(`${file} changed`).catch(() => {});
        }, WATCH_DEBOUNCE_MS);
      }));
    } catch (error) {
      throw systemError("LISTEN_FAILED", `Cannot watch ${path}`, error);
    }
  }

  let cleaned = false;
  function finishIfDone(): void {
    if (!closing || live.size > 0 || cleaned) return;
    cleaned = true;
    for (const watcher of watchers) watcher.close();
    for (const socket of sockets) socket.close();
    store.close();
    notifications.close();
    void reactor.close().then(() => {
      if (notifyFolder !== undefined) {
        rmSync(notifyFolder, { recursive: true, force: true });
      }
      firstReady.reject(
        new Error("The activator ended before a child was ready"),
      );
      finished.resolve(main?.exit ?? lastExit);
    });
  }

  function stop(signal = "SIGTERM"): Promise<ChildExit | undefined> {
    if (!closing) {
      closing = true;
      main = current ?? starting;
      stopWaitingForConnection?.();
      clearTimeout(restartTimer);
    }
    for (const generation of live) stopGeneration(generation, signal);
    finishIfDone();
    return finished.promise;
  }

  try {
    for (const path of options.watch ?? []) watchChanges(path);
    if (options.onDemand) waitForConnection();
    else settle(begin(undefined)).catch(() => {});
  } catch (error) {
    await stop("SIGKILL");
    throw error;
  }

  return {
    get pid() {
      return current?.pid ?? starting?.pid;
    },
    endpoints,
    ready: firstReady.promise,
    notifications: notifications.items,
    finished: finished.promise,
    restart: (reason = "restart()") => restart(reason),
    stop,
  };
}
