// Starts a fixture under the real systemd-socket-activate, as a user would
// run a socket-activated service without systemd, or a program by hand, and
// the small helpers the tests (and scripts/demo.ts) that do so share: a
// deadline guard, a free TCP port, SIGTERM and an HTTP GET.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { type Agent, type IncomingHttpHeaders, request } from "node:http";
import { createServer } from "node:net";
import process from "node:process";
import { lineReader } from "./_launch.ts";
import type { ActivatorEvent } from "./_lib.ts";

export const SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate";
// Generous: a child starts in well under a second; this only turns a hang
// into a failure that says where it hung.
export const DEADLINE_MS = 10_000;

/** Rejects with a message naming `what` if `promise` takes too long. */
export async function within<T>(
  promise: Promise<T>,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out waiting for ${what}`)),
      DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A TCP port on 127.0.0.1 free right now: bind port 0, read it, close.
 * systemd-socket-activate refuses port 0, so a test picks one this way.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address !== null && typeof address === "object");
  return address.port;
}

/** How to run systemd-socket-activate. */
export interface ActivateOptions {
  /** Its `-l` arguments (ADDR:PORT or a unix path): fds 3, 4, … in order. */
  listen: readonly string[];
  /** The fd names (`--fdname=a:b:…`). */
  names?: readonly string[] | undefined;
  /** Variables for the child, besides NO_COLOR=1 and this DENO_DIR. */
  env?: Readonly<Record<string, string>> | undefined;
  /** `--accept`: one child per connection, on the connected socket. */
  accept?: boolean | undefined;
  /** `--inetd`: the connection on stdin and stdout, no LISTEN_* variables. */
  inetd?: boolean | undefined;
  /** The socket type: `--datagram` or `--seqpacket` (stream by default). */
  type?: "datagram" | "seqpacket" | undefined;
  /** The working folder (this process's by default). */
  cwd?: string | undefined;
}

/** systemd-socket-activate, and the child it starts once connected to. */
export interface Activated {
  /** systemd-socket-activate, which execs the child in its own process. */
  child: ChildProcess;
  /** The next line the child prints on stdout. */
  nextLine(): Promise<string>;
  /** Everything printed on stdout so far, for failure messages. */
  stdout(): string;
  /** Everything printed on stderr so far (its own lines and the child's). */
  stderr(): string;
  /** Waits for the exit: the code, or the signal name. */
  exited: Promise<number | string>;
}

/**
 * Starts `argv` under systemd-socket-activate and resolves once every
 * socket is open. It starts the child only on the first connection, so a
 * test connects next; that connection is what starts the child.
 */
export async function activate(
  argv: readonly string[],
  options: ActivateOptions,
): Promise<Activated> {
  const args: string[] = [];
  if (options.accept) args.push("--accept");
  if (options.type !== undefined) args.push(`--${options.type}`);
  if (options.inetd) args.push("--inetd");
  for (const address of options.listen) args.push("-l", address);
  if (options.names) args.push(`--fdname=${options.names.join(":")}`);
  // systemd-socket-activate keeps only TERM, PATH, USER and HOME.
  const env: Record<string, string> = { NO_COLOR: "1", ...options.env };
  if (process.env.DENO_DIR) env.DENO_DIR = process.env.DENO_DIR;
  for (const [key, value] of Object.entries(env)) {
    args.push("-E", `${key}=${value}`);
  }
  args.push(...argv);

  const child = spawn(SOCKET_ACTIVATE, args, {
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const decoder = new TextDecoder();
  child.stdout!.on(
    "data",
    (chunk: Uint8Array) => stdout += decoder.decode(chunk, { stream: true }),
  );
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
  );
  // It prints "Listening on ADDR as FD." once per socket, before it waits.
  const listening = new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      const count = stderr.match(/^Listening on .* as \d+\.$/gm)?.length ?? 0;
      if (count === options.listen.length) resolve();
    });
    void exited.then((status) =>
      reject(
        new Error(`${SOCKET_ACTIVATE} exited (${status}) early:\n${stderr}`),
      )
    );
  });
  const lines = lineReader(child);
  const activated: Activated = {
    child,
    nextLine: () => lines.next(),
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
  };
  try {
    await within(listening, `${SOCKET_ACTIVATE} to listen`);
  } catch (error) {
    await stop(activated);
    throw error;
  }
  return activated;
}

/**
 * Sends `signal` (SIGKILL by default) if the process still runs, and waits
 * for its exit (of an Activated, or of a program from launch()). After child.kill(), Deno's node:child_process reports the
 * exit as killed by that signal even when the child caught it and exited
 * 0: a test that checks the exit status sends SIGTERM with process.kill().
 */
export async function stop(
  running: { child: ChildProcess; exited: Promise<unknown> },
  signal: NodeJS.Signals = "SIGKILL",
): Promise<void> {
  if (running.child.exitCode === null && running.child.signalCode === null) {
    running.child.kill(signal);
  }
  await running.exited;
}

/**
 * Resolves with the exit code of an instance systemd-socket-activate
 * --accept started, from its "Child PID died with code N" line on stderr
 * (the instances are its children, not this process's).
 */
export function instanceExit(
  activated: Activated,
  pid: number,
): Promise<number> {
  const pattern = new RegExp(`^Child ${pid} died with code (\\d+)$`, "m");
  return within(
    new Promise((resolve) => {
      const check = () => {
        const match = pattern.exec(activated.stderr());
        if (match === null) return;
        activated.child.stderr!.off("data", check);
        resolve(Number(match[1]));
      };
      activated.child.stderr!.on("data", check);
      check();
    }),
    `the exit of instance ${pid}:\n${activated.stderr()}`,
  );
}

/** A program started by hand, its output kept for failure messages. */
export interface Running {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves once the output has a line matching `pattern`. */
  line(pattern: RegExp): Promise<void>;
  /** The exit code, or the signal that ended it. */
  readonly exited: Promise<number | string>;
}

/** Starts `argv` in `cwd` with this environment and NO_COLOR=1. */
export function start(argv: readonly string[], cwd: string): Running {
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let output = "";
  const waiters: { pattern: RegExp; resolve(): void }[] = [];
  function collect(chunk: string): void {
    output += chunk;
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(output)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
  child.stdout!.setEncoding("utf8").on("data", collect);
  child.stderr!.setEncoding("utf8").on("data", collect);
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
  );
  return {
    child,
    output: () => output,
    line(pattern) {
      const seen = new Promise<void>((resolve) => {
        if (pattern.test(output)) resolve();
        else waiters.push({ pattern, resolve });
      });
      return within(
        Promise.race([
          seen,
          exited.then((status) => {
            throw new Error(`${argv[0]} exited (${status}) early:\n${output}`);
          }),
        ]),
        `${pattern} from ${argv[0]}:\n${output}`,
      );
    },
    exited,
  };
}

/**
 * SIGTERM through process.kill() if the process still runs: after
 * child.kill(), Deno 2.9's node:child_process reports the exit as killed by
 * the signal even when the program caught it and exited with 0.
 */
export function terminate(running: { readonly child: ChildProcess }): void {
  const { child } = running;
  if (child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid!, "SIGTERM");
  }
}

/** Where to send a request: a TCP port on 127.0.0.1, or a unix socket. */
export type Target = { port: number } | { socketPath: string };

/** An HTTP answer, read to the end. */
export interface Answer {
  status: number | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * GET `path` on `target` over a fresh connection, or through `agent` (to
 * keep the connection alive).
 */
export function httpGet(
  target: Target,
  path: string,
  headers: Readonly<Record<string, string>> = {},
  agent: Agent | false = false,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        ...("port" in target
          ? { host: "127.0.0.1", port: target.port }
          : { socketPath: target.socketPath }),
        path,
        agent,
        headers,
      },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => body += chunk);
        response.on(
          "end",
          () =>
            resolve({
              status: response.statusCode,
              headers: response.headers,
              body,
            }),
        );
        response.on("error", reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.end();
  });
}

/**
 * Collects the events of the library's activate() (its `onEvent`), and
 * resolves `until()` once one matches, or at once if one already did.
 */
export function eventLog() {
  const events: ActivatorEvent[] = [];
  const waiters: { match(event: ActivatorEvent): boolean; resolve(): void }[] =
    [];
  return {
    events,
    onEvent(event: ActivatorEvent) {
      events.push(event);
      for (const waiter of [...waiters]) {
        if (waiter.match(event)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    },
    until(match: (event: ActivatorEvent) => boolean, what: string) {
      if (events.some(match)) return Promise.resolve();
      return within(
        new Promise<void>((resolve) => waiters.push({ match, resolve })),
        what,
      );
    },
  };
}
