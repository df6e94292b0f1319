// What the serve() tests share: the two ways serve() can run (its default
// paths, and the fallback paths that use no runtime internal, forced with
// SOCKET_ACTIVATION_SERVE_FALLBACK=1), an HTTP client that reads whole
// answers, and starting tests/fixtures/serve_*.ts on passed sockets.

import assert from "node:assert/strict";
import {
  type Agent,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request as httpRequest,
  type RequestOptions,
} from "node:http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type HttpServer, serve, type ServeOptions } from "./_lib.ts";
import { launch, type LaunchFd } from "./_launch.ts";
import { fixtureCommand, runtime } from "./_runtime.ts";

/** The variable that makes serve() take its fallback paths. */
export const FALLBACK_VARIABLE = "SOCKET_ACTIVATION_SERVE_FALLBACK";

/** One way for serve() to run, and what it means for the test names. */
export interface ServeMode {
  /** Appended to the test names. */
  readonly label: string;
  /** What a child process needs to run serve() this way. */
  readonly env: Readonly<Record<string, string>>;
  /** The engine a TCP listener gets this way on this runtime. */
  readonly tcpEngine: "deno" | "node:http";
}

/**
 * Every serve() test runs in both: the default paths (on Deno, its own HTTP
 * engine for TCP; on Node, undici's body source) and the fallback ones
 * (node:http and public APIs only).
 */
export const MODES: readonly ServeMode[] = [
  {
    label: "",
    env: {},
    tcpEngine: runtime === "deno" ? "deno" : "node:http",
  },
  {
    label: " (fallback paths)",
    env: { [FALLBACK_VARIABLE]: "1" },
    tcpEngine: "node:http",
  },
];

/** serve() in this process, the way `mode` says. */
export function serveIn(
  mode: ServeMode,
  options: ServeOptions,
  handler: (request: Request) => Response | Promise<Response>,
): Promise<HttpServer> {
  const saved = process.env[FALLBACK_VARIABLE];
  if (mode.env[FALLBACK_VARIABLE] === undefined) {
    delete process.env[FALLBACK_VARIABLE];
  } else process.env[FALLBACK_VARIABLE] = mode.env[FALLBACK_VARIABLE];
  try {
    // serve() reads the variable before its first await.
    return serve(options, handler);
  } finally {
    if (saved === undefined) delete process.env[FALLBACK_VARIABLE];
    else process.env[FALLBACK_VARIABLE] = saved;
  }
}

/** A test waits on events; this only turns a hang into a failure. */
export const DEADLINE = { timeout: 20_000 };

/** Where a client connects. */
export type Target = { port: number } | { socketPath: string };

/** A whole HTTP answer. */
export interface Answer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What to ask. */
export interface Ask {
  method?: string;
  path?: string;
  headers?: RequestOptions["headers"];
  body?: string;
  agent?: Agent | false;
}

/** Where a server listens, as a client target. */
export function targetOf(server: HttpServer): Target {
  const { endpoint } = server;
  if (endpoint.kind === "http") return { port: endpoint.port };
  if (endpoint.kind === "unix") return { socketPath: endpoint.path };
  throw new Error(`Not a bound endpoint: ${JSON.stringify(endpoint)}`);
}

/** The node:http options to reach `target`. */
export function connection(target: Target): RequestOptions {
  return "port" in target
    ? { host: "127.0.0.1", port: target.port }
    : { socketPath: target.socketPath };
}

/** Reads a response body to its end, as text. */
export function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => body += chunk);
    response.on("end", () => resolve(body));
    response.on("error", reject);
  });
}

/** One request, its whole answer. */
export function ask(target: Target, options: Ask = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({
      ...connection(target),
      method: options.method ?? "GET",
      path: options.path ?? "/",
      agent: options.agent ?? false,
      ...(options.headers === undefined ? {} : { headers: options.headers }),
    }, (response) => {
      readAll(response).then((body) =>
        resolve({
          status: response.statusCode!,
          statusText: response.statusMessage!,
          headers: response.headers,
          body,
        }), reject);
    });
    outgoing.on("error", reject);
    outgoing.end(options.body);
  });
}

/** A promise and its resolver, to wait on an event. */
export function signal<T = void>(): {
  promise: Promise<T>;
  resolve(value: T): void;
} {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/** A new temporary folder. */
export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "serve-"));
}

/** Options of {@linkcode startFixture}. */
export interface FixtureStart {
  /** The fixture's name in tests/fixtures/. */
  name: string;
  /** The socket passed as fd 3, named `web`. */
  fd: LaunchFd;
  mode: ServeMode;
  env?: Record<string, string>;
  /** V8 flags for the fixture (`--expose-gc`). */
  v8Flags?: readonly string[];
}

/** A serve() fixture started on a passed socket, and its JSON events. */
export async function startFixture(options: FixtureStart) {
  let argv = fixtureCommand(options.name);
  const v8 = options.v8Flags ?? [];
  if (v8.length > 0) {
    argv = runtime === "node"
      ? [argv[0], ...v8, ...argv.slice(1)]
      : [argv[0], argv[1]!, `--v8-flags=${v8.join(",")}`, ...argv.slice(2)];
  }
  const launched = await launch({
    argv,
    fds: [options.fd],
    env: {
      LISTEN_PID: "$PID",
      LISTEN_FDS: "1",
      LISTEN_FDNAMES: "web",
      [FALLBACK_VARIABLE]: null,
      ...options.mode.env,
      ...options.env,
    },
  });
  const event = async () => {
    const line = await launched.nextLine().catch((error: Error) => {
      throw new Error(`${error.message}\n${launched.stderr()}`);
    });
    return JSON.parse(line) as Record<string, unknown>;
  };
  /** Sends SIGTERM; the fixture must print `finished` and exit 0. */
  const terminate = async () => {
    // process.kill(), not child.kill(): Deno's child_process then reports the
    // signal as the exit status even when the process exits 0.
    process.kill(launched.pid, "SIGTERM");
    assert.deepEqual(await event(), { event: "finished" });
    assert.equal(await launched.exited, 0, launched.stderr());
  };
  return { launched, event, terminate };
}
