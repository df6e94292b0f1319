// A fetch-style HTTP/1.1 server on the listener the library resolves (SPEC
// section 4: a passed systemd socket first, else the endpoint bound here).
// Deno's own serve() cannot take an fd, so the listener is a node:http
// server in both runtimes; on Deno, its TCP connections are handed to Deno's
// own HTTP engine when that is reachable (src/_http_native.deno.ts), the rest
// is answered by node:http (src/_http_node.ts).

import { createServer, type Server } from "node:http";
import { Server as NetServer, type Socket } from "node:net";
import process from "node:process";
import { Connections } from "./_http_connections.ts";
import {
  errorResponder,
  type Handler,
  type ServeContext,
} from "./_http_handler.ts";
import { nativeHttp } from "./_http_native.deno.ts";
import { type NativeEngine, nativeEngine } from "./_http_native_engine.ts";
import { handleFd, nodeHttpEngine } from "./_http_node.ts";
import { type Endpoint, formatEndpoint } from "./endpoint.ts";
import { ActivationError } from "./errors.ts";
import { type ListenedOn, listenOn, type ListenOptions } from "./listen.ts";

/** The seed's limit when it is on without a number (SPEC section 4). */
const DEFAULT_PER_UID_LIMIT = 10;

/** How long a shutdown waits for a new connection's first request. */
const DEFAULT_SHUTDOWN_GRACE_MS = 5000;

/**
 * Internal, for the tests: set to `1`, serve() takes the paths that use no
 * runtime internal (node:http on Deno too, and response bodies read through
 * their stream), so that the same tests cover both.
 */
const FALLBACK_VARIABLE = "SOCKET_ACTIVATION_SERVE_FALLBACK";

/** A fetch-style request handler. */
export type ServeHandler = (request: Request) => Response | Promise<Response>;

/** Options of {@linkcode serve}. */
export interface ServeOptions extends ListenOptions {
  /**
   * Where to listen: an {@linkcode Endpoint} or its URI (`http://host:port`,
   * `unix:///path`, `fd://3`, `fd://name`). A socket passed by systemd is
   * preferred, as {@linkcode listen} does.
   */
  endpoint: Endpoint | string;
  /**
   * Aborting it shuts the server down gracefully, as
   * {@linkcode HttpServer.shutdown} does.
   */
  signal?: AbortSignal;
  /**
   * During a shutdown, how long a connection accepted before it but that
   * has not brought its first request yet is waited for, in milliseconds
   * (Go's http.Server waits 5 s too). Default: `5000`.
   */
  shutdownGraceMs?: number;
  /**
   * Unix sockets only: the most requests one peer uid (`SO_PEERCRED`) may
   * have in progress at once; the next one gets `503 Service Unavailable`
   * without reaching the handler. `true` means 10. Off by default.
   *
   * It needs the accepted connections' fds, which Node and Deno 2.9 expose
   * for unix sockets, and the system calls (`--allow-ffi` on Deno, koffi on
   * Node).
   */
  perUidLimit?: number | boolean;
  /**
   * Turns an error thrown by the handler into the response to send. By
   * default the error is printed with `console.error` and the response is
   * `500 Internal Server Error`.
   */
  onError?(error: unknown): Response | Promise<Response>;
}

/** A running {@linkcode serve} server. */
export interface HttpServer {
  /**
   * The listening node:http server. Its events and settings (timeouts)
   * apply to the connections node:http answers: all of them on Node, and on
   * Deno those of unix sockets (see `engine`).
   */
  readonly server: Server;
  /**
   * What answers the HTTP requests: `deno` for Deno's own HTTP engine (the
   * one behind Deno's own `serve()`, on TCP sockets), `node:http` otherwise.
   */
  readonly engine: "deno" | "node:http";
  /**
   * Where it listens. A bound TCP endpoint carries the real port (port 0
   * asks for any free one); a passed socket is given by its fd.
   */
  readonly endpoint: Endpoint;
  /** `systemd` for a passed socket, `bound` for one bound here. */
  readonly source: "systemd" | "bound";
  /** The passed socket's fd, for `source: "systemd"`. */
  readonly fd: number | undefined;
  /** The passed socket's name (`FileDescriptorName=`), if it has one. */
  readonly name: string | undefined;
  /**
   * Settles once the server is shut down: no longer listening, every
   * request answered and every connection closed.
   */
  readonly finished: Promise<void>;
  /**
   * Shuts the server down gracefully: stops accepting connections, lets the
   * requests in progress finish (their responses say `Connection: close`
   * when not yet sent), closes idle keep-alive connections at once, and
   * waits up to `shutdownGraceMs` for the first request of a connection
   * that has not sent one yet, which is answered with `Connection: close`.
   *
   * @returns {@linkcode HttpServer.finished}.
   */
  shutdown(): Promise<void>;
}

function perUidLimitOf(value: number | boolean | undefined): number {
  if (value === undefined || value === false) return 0;
  if (value === true) return DEFAULT_PER_UID_LIMIT;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Invalid perUidLimit: expected a positive integer or a boolean, got ${value}`,
    );
  }
  return value;
}

function graceOf(value: number | undefined): number {
  if (value === undefined) return DEFAULT_SHUTDOWN_GRACE_MS;
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `Invalid shutdownGraceMs: expected a number of milliseconds from 0, got ${value}`,
    );
  }
  return value;
}

function fallbackForced(): boolean {
  try {
    return process.env[FALLBACK_VARIABLE] === "1";
  } catch {
    // Deno without --allow-env: serve() then fails on LISTEN_* anyway.
    return false;
  }
}

/** Throws UNSUPPORTED unless the per-uid limit can work on `server`. */
function checkPerUidSupport(server: Server, listened: ListenedOn): void {
  const where = formatEndpoint(listened.endpoint);
  // SO_PEERCRED exists for unix sockets only.
  if (listened.family !== "unix") {
    throw new ActivationError(
      "UNSUPPORTED",
      `Cannot limit requests per uid on ${where}: it is an ${
        listened.family === "ipv4" ? "IPv4" : "IPv6"
      } socket, and SO_PEERCRED needs a unix socket`,
    );
  }
  if (handleFd(server) === undefined) {
    throw new ActivationError(
      "UNSUPPORTED",
      `Cannot limit requests per uid on ${where}: ` +
        "this runtime does not expose the fds of node:net sockets",
    );
  }
}

/** The listener's own address, for requests that name no host. */
function localAddress(
  listened: ListenedOn,
): { hostname: string; port: number } | undefined {
  if (listened.endpoint.kind === "http") {
    return { hostname: listened.endpoint.host, port: listened.endpoint.port };
  }
  const address = listened.socket?.address;
  if (address?.family === "ipv4" || address?.family === "ipv6") {
    return { hostname: address.host, port: address.port };
  }
  return undefined;
}

/**
 * Sets net.Server's `pauseOnConnect` after construction (node:http's
 * constructor does not pass it on): both runtimes read the property on each
 * accepted connection. `false` when the server has no such property.
 */
function setPauseOnConnect(server: Server, pause: boolean): boolean {
  const fields = server as unknown as { pauseOnConnect?: unknown };
  if (typeof fields.pauseOnConnect !== "boolean") return false;
  fields.pauseOnConnect = pause;
  return true;
}

/**
 * The one `connection` listener node:http's server registers for itself, to
 * be set aside when Deno's engine takes the connections; `undefined` if
 * there is not exactly one.
 */
function httpConnectionListener(
  server: Server,
): ((socket: Socket) => void) | undefined {
  const listeners = server.listeners("connection");
  return listeners.length === 1
    ? listeners[0] as (socket: Socket) => void
    : undefined;
}

/**
 * Serves HTTP/1.1 with a fetch-style handler on the socket systemd passed
 * or on the endpoint, bound here. The listener is chosen as
 * {@linkcode listen} chooses it. Request and response bodies stream with
 * backpressure; `request.signal` aborts when the client goes away before the
 * response is sent. A handler that returns a Response (not a promise) whose
 * body is a string, bytes or nothing has it written at once.
 *
 * It runs on `node:http` in both runtimes, except that on Deno a TCP
 * socket's connections are answered by Deno's own HTTP engine (the one
 * behind Deno's own `serve()`), reached through a Deno internal when this Deno has
 * it (see `engine` on the result).
 *
 * On Deno it needs `--allow-env` (and `--allow-ffi` for a passed socket or
 * the per-uid limit), plus `--allow-net` to bind a TCP port itself, or
 * `--allow-read --allow-write --allow-net` to bind a unix socket itself.
 *
 * @param options Where to listen, the shutdown signal and grace, and the
 * limits.
 * @param handler Answers each request; an error it throws becomes
 * `options.onError`'s response (500 by default).
 * @returns The running server, once it listens.
 * @throws {ActivationError} What {@linkcode listen} throws, and
 * `UNSUPPORTED` when `perUidLimit` is asked for on a socket that is not a
 * unix socket or whose fd the runtime does not expose.
 * @throws {RangeError} For a `perUidLimit` that is not a positive integer,
 * or a negative `shutdownGraceMs`.
 * @throws {DOMException} `options.signal`'s reason when it is already
 * aborted.
 *
 * @tags allow-env, allow-ffi, allow-net
 *
 * @example Serving on `fd://web` when activated, else on a port
 * ```ts ignore
 * import process from "node:process";
 * import { serve } from "@socket-activation/socket-activation";
 *
 * const controller = new AbortController();
 * process.on("SIGTERM", () => controller.abort());
 * const server = await serve(
 *   { endpoint: "http://127.0.0.1:8080", name: "web", signal: controller.signal },
 *   (request) => new Response(`Hello from ${new URL(request.url).pathname}\n`),
 * );
 * await server.finished;
 * ```
 */
export async function serve(
  options: ServeOptions,
  handler: ServeHandler,
): Promise<HttpServer> {
  if (typeof handler !== "function") {
    throw new TypeError("Invalid handler: expected a function");
  }
  const perUidLimit = perUidLimitOf(options.perUidLimit);
  const graceMs = graceOf(options.shutdownGraceMs);
  options.signal?.throwIfAborted();
  const publicOnly = fallbackForced();

  const connections = new Connections();
  const context: ServeContext = {
    handler: handler as Handler,
    onError: errorResponder(options.onError),
    connections,
    perUidLimit,
    publicOnly,
    fallbackHost: "localhost",
  };
  const server = createServer();
  const native = publicOnly || perUidLimit > 0 ? undefined : nativeHttp();
  // Deno's engine must get the connection before anything reads from it.
  const httpListener = native && setPauseOnConnect(server, true)
    ? httpConnectionListener(server)
    : undefined;
  const node = nodeHttpEngine(server, context);
  let engine: NativeEngine | undefined;
  server.on("connection", (socket: Socket) => {
    if (engine !== undefined) {
      if (engine.accept(socket)) return;
      httpListener!.call(server, socket);
    }
    node.accept(socket);
  });

  const listened = await listenOn(server, options.endpoint, options);
  if (perUidLimit > 0) {
    try {
      checkPerUidSupport(server, listened);
    } catch (error) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw error;
    }
  }
  const local = localAddress(listened);
  if (local !== undefined) {
    const { hostname, port } = local;
    context.fallbackHost = hostname.includes(":")
      ? `[${hostname}]:${port}`
      : `${hostname}:${port}`;
  }
  // Deno's engine takes TCP connections only: a unix socket's handle does
  // not give its stream away. The one connection of an Accept=yes unit is
  // not accepted by the server, so it stays with node:http too.
  const listening = listened.socket?.listening !== false;
  if (
    native !== undefined && httpListener !== undefined &&
    local !== undefined && listening
  ) {
    server.removeListener("connection", httpListener);
    engine = nativeEngine(native, context, local);
  } else if (httpListener !== undefined) {
    setPauseOnConnect(server, false);
  }

  function shutdown(): Promise<void> {
    if (!connections.closing) {
      options.signal?.removeEventListener("abort", shutdown);
      // net's close(), not node:http's: that one would also close the
      // connections that have not brought their first request yet.
      connections.shutdown(
        (closed) => NetServer.prototype.close.call(server, () => closed()),
        graceMs,
      );
    }
    return connections.finished;
  }
  options.signal?.addEventListener("abort", shutdown, { once: true });
  // The server of an Accept=yes unit closes by itself once its one
  // connection ends (listenOn()): that ends the service as a shutdown does.
  server.once("close", shutdown);

  return {
    server,
    engine: engine === undefined ? "node:http" : "deno",
    endpoint: listened.endpoint,
    source: listened.source,
    fd: listened.fd,
    name: listened.name,
    finished: connections.finished,
    shutdown,
  };
}
