/**
 * The `socket-activate` command: runs a program as systemd runs a
 * socket-activated service, without systemd, and restarts it on the same
 * sockets without refusing or resetting a connection. It only reads its
 * arguments and prints events: the work is {@linkcode activate}'s.
 *
 * ```sh
 * deno run -A jsr:@socket-activation/socket-activation/cli -l 8080 --fdname web --notify --watch src -- deno run -A server.ts
 * ```
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import {
  activate,
  type Activation,
  ActivationError,
  type ChildExit,
  type ListenSpec,
  loadConfig,
  type RestartPolicy,
} from "../mod.ts";
import { constants } from "node:os";

const NAME = "socket-activate";

const USAGE = `Usage: ${NAME} [OPTIONS...] [--] COMMAND [ARGS...]

Opens listening sockets once and runs COMMAND with them as systemd runs a
socket-activated service: at fd 3, 4, … with LISTEN_FDS, LISTEN_FDNAMES and
LISTEN_PID. Restarts COMMAND on the same sockets, so that no connection is
refused or reset: with --notify, the old process is stopped only once the new
one said READY=1.

Options:
  -l, --listen ADDRESS        Listen on ADDRESS (repeatable): 8080,
                              127.0.0.1:8080, [::1]:8080, /path, @abstract,
                              http://HOST:PORT or unix:///path
      --fdname NAME[:NAME...] Name the --listen sockets, in order (one name
                              names them all)
      --config FILE           Listen on every [listen] entry of the
                              library's TOML file, named by its key
  -E, --setenv VAR[=VALUE]    Set VAR for COMMAND (repeatable); COMMAND gets
                              this environment too
      --on-demand             Start COMMAND on the first connection
      --notify                Give COMMAND a NOTIFY_SOCKET and wait for its
                              READY=1; keep its fd store (FDSTORE=1)
      --watchdog DURATION     Restart COMMAND when it sends no WATCHDOG=1 for
                              DURATION (with --notify)
      --restart POLICY        Restart COMMAND when it exits: no (default),
                              on-failure or always
      --stop-timeout DURATION SIGKILL this long after SIGTERM (default 10s)
      --start-timeout DURATION
                              Give up on a READY=1 this late (default 90s)
      --watch PATH            Restart COMMAND when a file under PATH
                              changes (repeatable)
  -h, --help                  Show this help

DURATION is systemd's: 500ms, 30s, 2min, 1h 30min; a plain number is seconds.
SIGHUP restarts COMMAND; SIGINT and SIGTERM are passed on to it, and
${NAME} exits with its status once the sockets are closed.

Examples:
  ${NAME} -l 8080 --fdname web --notify --watch src -- node server.mjs
  ${NAME} -l 8080 --fdname web --notify --watch src -- \\
    deno run --allow-env --allow-ffi --allow-read server.ts
  ${NAME} --config app.toml --notify --restart on-failure -- node server.mjs app.toml
  ${NAME} -l /run/app/web.sock --fdname web --on-demand -- node server.mjs
  ${NAME} --notify --restart on-failure -- node server.mjs   # fd store only
  kill -HUP $(pgrep -f ${NAME})   # restart without a refused connection
`;

const OPTIONS = {
  listen: { type: "string", short: "l", multiple: true },
  fdname: { type: "string" },
  config: { type: "string" },
  setenv: { type: "string", short: "E", multiple: true },
  "on-demand": { type: "boolean" },
  notify: { type: "boolean" },
  watchdog: { type: "string" },
  restart: { type: "string" },
  "stop-timeout": { type: "string" },
  "start-timeout": { type: "string" },
  watch: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

/** A mistake in the arguments: one line on stderr, exit status 2. */
class UsageError extends Error {}

/**
 * The options before COMMAND, and COMMAND: options end at `--` or at the
 * first argument that is neither an option nor an option's value, so that
 * COMMAND's own options are left to it (as getopt's "+" does).
 */
function splitCommand(args: readonly string[]): [string[], string[]] {
  const takesValue = new Set<string>();
  for (const [name, option] of Object.entries(OPTIONS)) {
    if (option.type !== "string") continue;
    takesValue.add(`--${name}`);
    if ("short" in option) takesValue.add(`-${option.short}`);
  }
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    if (arg === "--") return [args.slice(0, index), args.slice(index + 1)];
    if (!arg.startsWith("-") || arg === "-") {
      return [args.slice(0, index), args.slice(index)];
    }
    if (takesValue.has(arg)) index++;
  }
  return [[...args], []];
}

const UNITS: Readonly<Record<string, number>> = {
  us: 0.001,
  usec: 0.001,
  ms: 1,
  msec: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
};

/** systemd's time spans (systemd.time(7)) in milliseconds. */
function parseDuration(option: string, text: string): number {
  let total = 0;
  let rest = text.trim();
  if (rest === "") throw new UsageError(`--${option} needs a duration`);
  while (rest !== "") {
    const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)\s*/.exec(rest);
    const unit = match === null ? undefined : UNITS[match[2] || "s"];
    if (match === null || unit === undefined) {
      throw new UsageError(
        `--${option} ${
          JSON.stringify(text)
        } is not a duration such as 500ms, 30s or 2min`,
      );
    }
    total += Number(match[1]) * unit;
    rest = rest.slice(match[0].length);
  }
  if (total <= 0) throw new UsageError(`--${option} must be longer than 0`);
  return total;
}

function parseSetenv(assignments: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const assignment of assignments) {
    const equals = assignment.indexOf("=");
    const name = equals < 0 ? assignment : assignment.slice(0, equals);
    if (name === "") {
      throw new UsageError(
        `--setenv ${JSON.stringify(assignment)} has no variable name`,
      );
    }
    // VAR alone passes this process's value, as systemd-socket-activate's
    // -E does (the child gets this environment anyway).
    const value = equals < 0 ? process.env[name] : assignment.slice(equals + 1);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

interface Plan {
  command: string[];
  listen: (string | ListenSpec)[];
  names: string[] | undefined;
  env: Record<string, string>;
  notify: boolean;
  onDemand: boolean;
  watchdogMs: number | undefined;
  restart: RestartPolicy;
  stopTimeoutMs: number | undefined;
  startTimeoutMs: number | undefined;
  watch: string[];
}

async function plan(args: readonly string[]): Promise<Plan | "help"> {
  const [optionArgs, command] = splitCommand(args);
  let values;
  try {
    ({ values } = parseArgs({
      args: optionArgs,
      options: OPTIONS,
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    // parseArgs says it in one sentence, then how to quote an argument.
    throw new UsageError(String((error as Error).message).split(". ")[0]);
  }
  if (values.help) return "help";
  if (command.length === 0) {
    throw new UsageError("No COMMAND to run (see --help)");
  }
  const restart = values.restart ?? "no";
  if (!["no", "on-failure", "always"].includes(restart)) {
    throw new UsageError(
      `--restart ${
        JSON.stringify(restart)
      } is not a policy: no, on-failure or always`,
    );
  }
  if (values.watchdog !== undefined && !values.notify) {
    throw new UsageError(
      "--watchdog needs --notify: the command pings it with WATCHDOG=1",
    );
  }
  const listen: (string | ListenSpec)[] = [...values.listen ?? []];
  if (values.config !== undefined) {
    const config = await loadConfig(values.config);
    for (const [key, entry] of Object.entries(config.listen)) {
      listen.push({
        endpoint: entry.endpoint,
        name: entry.name ?? key,
        mode: entry.mode,
      });
    }
  }
  // With --notify, a command without sockets may keep its own in its fd
  // store (FDSTORE=1): the next one gets them back.
  if (listen.length === 0 && (!values.notify || values["on-demand"])) {
    throw new UsageError(
      values["on-demand"]
        ? "Nothing to listen on: --on-demand waits on --listen or --config sockets"
        : "Nothing to listen on: give --listen or --config, or --notify for a command that keeps its sockets in its fd store",
    );
  }
  const duration = (option: string, text: string | undefined) =>
    text === undefined ? undefined : parseDuration(option, text);
  return {
    command,
    listen,
    names: values.fdname?.split(":"),
    env: parseSetenv(values.setenv ?? []),
    notify: values.notify ?? false,
    onDemand: values["on-demand"] ?? false,
    watchdogMs: duration("watchdog", values.watchdog),
    restart: restart as RestartPolicy,
    stopTimeoutMs: duration("stop-timeout", values["stop-timeout"]),
    startTimeoutMs: duration("start-timeout", values["start-timeout"]),
    watch: values.watch ?? [],
  };
}

function print(line: string): void {
  process.stderr.write(`${NAME}: ${line}\n`);
}

/** The shell's status for an exit: the code, or 128 + the signal number. */
function exitStatus(exit: ChildExit | undefined): number {
  if (exit === undefined) return 0;
  if (exit.code !== null) return exit.code;
  const signals = constants.signals as Record<string, number | undefined>;
  return 128 + (signals[exit.signal ?? ""] ?? 0);
}

async function main(args: readonly string[]): Promise<number> {
  let settings: Plan | "help";
  try {
    settings = await plan(args);
  } catch (error) {
    if (error instanceof UsageError) {
      print(error.message);
      return 2;
    }
    if (error instanceof ActivationError) {
      print(error.message);
      return 1;
    }
    throw error;
  }
  if (settings === "help") {
    process.stdout.write(USAGE);
    return 0;
  }

  // Signals are taken from the start: one that came before the first
  // child runs is applied once it does.
  let activation: Activation | undefined;
  let pending: (() => void)[] = [];
  function whenRunning(action: (running: Activation) => void): () => void {
    return () => {
      if (activation === undefined) pending.push(() => action(activation!));
      else action(activation);
    };
  }
  const handlers = {
    SIGHUP: whenRunning((running) => running.restart("SIGHUP").catch(() => {})),
    SIGINT: whenRunning((running) => void running.stop("SIGINT")),
    SIGTERM: whenRunning((running) => void running.stop("SIGTERM")),
  };
  for (const [signal, handler] of Object.entries(handlers)) {
    process.on(signal, handler);
  }
  try {
    try {
      activation = await activate(settings.command, {
        listen: settings.listen,
        names: settings.names,
        env: settings.env,
        notify: settings.notify,
        onDemand: settings.onDemand,
        watchdogMs: settings.watchdogMs,
        restart: settings.restart,
        stopTimeoutMs: settings.stopTimeoutMs,
        startTimeoutMs: settings.startTimeoutMs,
        watch: settings.watch,
        onEvent: (event) => print(event.message),
      });
    } catch (error) {
      if (error instanceof ActivationError) {
        print(error.message);
        // A --listen value that does not parse is a usage error.
        return error.code === "INVALID_ENDPOINT" ? 2 : 1;
      }
      if (error instanceof RangeError || error instanceof TypeError) {
        print(error.message);
        return 2;
      }
      throw error;
    }
    for (const action of pending) action();
    pending = [];
    return exitStatus(await activation.finished);
  } finally {
    for (const [signal, handler] of Object.entries(handlers)) {
      process.off(signal, handler);
    }
  }
}

process.exit(await main(process.argv.slice(2)));
