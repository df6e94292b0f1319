// The one way the benchmarks start a server: as a process of its own,
// pinned to the servers' CPU, either bound to its port itself or exec'd by
// systemd-socket-activate on its first connection (activated: the socket is
// passed as fd 3). A server prints one JSON line once it listens, saying
// where ({ source, endpoint }); startServer() checks it against how the
// server was started.

import { freePort } from "./_util.ts";

/** The activator the benchmarks start servers under. */
export const ACTIVATOR = "/usr/bin/systemd-socket-activate";

/** The CPU of the servers and the CPU of the load generators. */
export const SERVER_CPU = 0;
export const LOAD_CPU = 1;

/** Whether the machine has the two CPUs that pinning needs. */
export function canPin(): boolean {
  return navigator.hardwareConcurrency >= 2;
}

/** `argv` run on CPU `cpu` when `pin`, else as it is. */
export function pinned(
  pin: boolean,
  cpu: number,
  argv: readonly string[],
): string[] {
  return pin ? ["taskset", "-c", String(cpu), ...argv] : [...argv];
}

/** A process started by spawn(). */
export interface Spawned {
  readonly child: Deno.ChildProcess;
  /** Its stdout and stderr so far. */
  output(): string;
  /** Its stdout so far. */
  stdout(): string;
  /** Resolves once the output matches `pattern`; rejects if it exits first. */
  waitFor(pattern: RegExp, what: string): Promise<void>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/**
 * Starts `argv` (pinned to `cpu` when `pin`; `env` added to this
 * environment), reading its stdout and stderr to the end so that it never
 * blocks on a full pipe.
 */
export function spawn(
  argv: readonly string[],
  options: { pin: boolean; cpu: number; env?: Record<string, string> },
): Spawned {
  const command = pinned(options.pin, options.cpu, argv);
  const child = new Deno.Command(command[0]!, {
    args: command.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.env === undefined ? {} : { env: options.env }),
  }).spawn();
  let stdout = "";
  let stderr = "";
  const waiters: { pattern: RegExp; resolve(): void }[] = [];
  function check(): void {
    const all = stdout + stderr;
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(all)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
  const read = async (
    stream: ReadableStream<Uint8Array>,
    append: (text: string) => void,
  ) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      append(decoder.decode(chunk, { stream: true }));
      check();
    }
  };
  void read(child.stdout, (text) => stdout += text);
  void read(child.stderr, (text) => stderr += text);
  const output = () => stdout + stderr;
  return {
    child,
    output,
    stdout: () => stdout,
    waitFor(pattern, what) {
      const seen = new Promise<void>((resolve) => {
        waiters.push({ pattern, resolve });
        check();
      });
      const exited = child.status.then((status) => {
        throw new Error(
          `${argv[0]} exited (${status.code}) before ${what}:\n${output()}`,
        );
      });
      exited.catch(() => {});
      return Promise.race([seen, exited]);
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
    },
  };
}

/** How to start one server. */
export interface ServerStart {
  /** The server's argv; its last argument is the port. */
  readonly argv: readonly string[];
  /** Exec'd by systemd-socket-activate on the port, rather than bound. */
  readonly activated: boolean;
  /** Variables for the server (besides this environment). */
  readonly env?: Readonly<Record<string, string>>;
}

/** A server started by startServer(). */
export interface RunningServer extends Spawned {
  readonly port: number;
  /** The JSON line it printed once listening. */
  readonly ready: Record<string, unknown>;
}

/**
 * Starts a server on a free port (pinned to the servers' CPU when `pin`)
 * and resolves once it listens where it is meant to: on the passed fd 3 for
 * an activated one, on the port for a bound one.
 */
export async function startServer(
  start: ServerStart,
  pin: boolean,
): Promise<RunningServer> {
  const port = freePort();
  const argv = [...start.argv, String(port)];
  let spawned: Spawned;
  if (start.activated) {
    // systemd-socket-activate keeps only a few variables: pass ours.
    const env = { ...start.env };
    const denoDir = Deno.env.get("DENO_DIR");
    if (denoDir !== undefined) env.DENO_DIR = denoDir;
    const flags = Object.entries(env).flatMap(([key, value]) => [
      "-E",
      `${key}=${value}`,
    ]);
    spawned = spawn(
      [ACTIVATOR, "-l", `127.0.0.1:${port}`, ...flags, "--", ...argv],
      { pin, cpu: SERVER_CPU },
    );
    await spawned.waitFor(/Listening on/, "listening");
    // It execs the server on the first connection.
    const trigger = await Deno.connect({ hostname: "127.0.0.1", port });
    await spawned.waitFor(/^\{.*\}$/m, "its ready line").finally(() =>
      trigger.close()
    );
  } else {
    spawned = spawn(argv, {
      pin,
      cpu: SERVER_CPU,
      ...(start.env === undefined ? {} : { env: { ...start.env } }),
    });
    await spawned.waitFor(/^\{.*\}$/m, "its ready line");
  }
  const ready = JSON.parse(
    spawned.stdout().split("\n").find((line) => line.startsWith("{"))!,
  ) as Record<string, unknown>;
  const expected = start.activated
    ? { source: "systemd", endpoint: "fd://3" }
    : { source: "bound", endpoint: `http://127.0.0.1:${port}` };
  if (
    ready.source !== expected.source || ready.endpoint !== expected.endpoint
  ) {
    await spawned.stop();
    throw new Error(
      `${argv.join(" ")} listens on ${JSON.stringify(ready)}, expected ${
        JSON.stringify(expected)
      }`,
    );
  }
  return { ...spawned, port, ready };
}
