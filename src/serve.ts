// A fetch-style HTTP/1.1 server on the listener the library resolves (SPEC
// section 4: a passed systemd socket first, else the endpoint bound here).
// It runs on node:http in both runtimes, since Deno's own serve() cannot take
// an fd.

import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import { toRequest, writeResponse } from "./_http_adapter.ts";
import { sys } from "./_sys.deno.ts";
import { readFdInfo } from "./_sys.common.ts";
import { type Endpoint, formatEndpoint } from "./endpoint.ts";
import { ActivationError } from "./errors.ts";
import { type ListenedOn, listenOn, type ListenOptions } from "./listen.ts";

/** The seed's limit when it is on without a number (SPEC section 4). */
const DEFAULT_PER_UID_LIMIT = 10;

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
  /** The node:http server, for its events and settings (timeouts). */
  readonly server: Server;
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
   * when not yet sent), closes idle keep-alive connections at once and the
   * others after their response.
   *
   * @returns {@linkcode HttpServer.finished}.
   */
  shutdown(): Promise<void>;
}

interface Connection {
  /** Requests in progress on it (node:http serves one at a time). */
  active: number;
  /** The peer's uid, when the per-uid limit is on. */
  uid: number | undefined;
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

// The fd behind a node:net handle: Node's and Deno's Pipe handles both carry
// it (Deno's TCP handles do not).
function handleFd(owner: Server | Socket): number | undefined {
  const handle = (owner as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
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

/** The uid at the other end of a unix socket connection, if it can be read. */
function peerUid(socket: Socket): number | undefined {
  const fd = handleFd(socket);
  if (fd === undefined) return undefined;
  try {
    const raw = readFdInfo(sys.libc(), fd);
    return raw.open && raw.socket ? raw.peer?.uid : undefined;
  } catch {
    return undefined;
  }
}

async function defaultOnError(error: unknown): Promise<Response> {
  console.error(error);
  return await Promise.resolve(
    new Response("Internal Server Error\n", {
      status: 500,
      headers: { "content-type": "text/plain; charset=utf-8" },
    }),
  );
}

function plainResponse(status: number, text: string): Response {
  return new Response(text + "\n", {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      connection: "close",
    },
  });
}

/**
 * Serves HTTP/1.1 with a fetch-style handler on the socket systemd passed
 * or on the endpoint, bound here, through `node:http` on Deno and Node
 * alike. Request and response bodies stream with backpressure;
 * `request.signal` aborts when the client goes away before the response is
 * sent. The listener is chosen as {@linkcode listen} chooses it.
 *
 * On Deno it needs `--allow-env` (and `--allow-ffi` for a passed socket or
 * the per-uid limit), plus `--allow-net` to bind a TCP port itself, or
 * `--allow-read --allow-write --allow-net` to bind a unix socket itself.
 *
 * @param options Where to listen, the shutdown signal and the limits.
 * @param handler Answers each request; an error it throws becomes
 * `options.onError`'s response (500 by default).
 * @returns The running server, once it listens.
 * @throws {ActivationError} What {@linkcode listen} throws, and
 * `UNSUPPORTED` when `perUidLimit` is asked for on a socket that is not a
 * unix socket or whose fd the runtime does not expose.
 * @throws {RangeError} For a `perUidLimit` that is not a positive integer.
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
  const limit = perUidLimitOf(options.perUidLimit);
  options.signal?.throwIfAborted();
  const onError = options.onError ?? defaultOnError;

  const connections = new Map<Socket, Connection>();
  const requestsPerUid = new Map<number, number>();
  const handlers = new Set<Promise<void>>();
  let closing = false;
  let fallbackHost = "localhost";

  async function answer(
    message: IncomingMessage,
    out: ServerResponse,
    connection: Connection | undefined,
  ): Promise<void> {
    const method = message.method ?? "GET";
    if (connection?.uid !== undefined) {
      const count = requestsPerUid.get(connection.uid) ?? 0;
      if (count >= limit) {
        await writeResponse(
          plainResponse(503, "Too many requests in progress for this user"),
          out,
          method,
        );
        return;
      }
      requestsPerUid.set(connection.uid, count + 1);
      const uid = connection.uid;
      out.once("close", () => {
        const left = (requestsPerUid.get(uid) ?? 1) - 1;
        if (left === 0) requestsPerUid.delete(uid);
        else requestsPerUid.set(uid, left);
      });
    }
    const aborter = new AbortController();
    out.once("close", () => {
      if (!out.writableFinished) aborter.abort();
    });
    let request: Request;
    try {
      request = toRequest(message, fallbackHost, aborter.signal);
    } catch {
      await writeResponse(plainResponse(400, "Bad Request"), out, method);
      return;
    }
    let response: Response;
    try {
      response = await handler(request);
      if (!(response instanceof Response)) {
        throw new TypeError(
          "The handler returned something else than a Response",
        );
      }
    } catch (error) {
      try {
        response = await onError(error);
      } catch (inner) {
        console.error(inner);
        response = plainResponse(500, "Internal Server Error");
      }
    }
    if (closing) out.setHeader("connection", "close");
    await writeResponse(response, out, method);
  }

  const server = createServer((message, out) => {
    const socket = message.socket;
    const connection = connections.get(socket);
    if (connection !== undefined) connection.active++;
    if (closing && !out.headersSent) out.setHeader("connection", "close");
    const task = answer(message, out, connection).catch((error) => {
      out.destroy(error instanceof Error ? error : new Error(String(error)));
    });
    handlers.add(task);
    out.once("close", () => {
      if (connection !== undefined) connection.active--;
      // After the last response of a connection during shutdown: close it
      // once the response is flushed (end() writes what is queued first).
      if (closing && connection?.active === 0) socket.end();
    });
    task.finally(() => handlers.delete(task));
  });

  server.on("connection", (socket: Socket) => {
    const connection: Connection = { active: 0, uid: undefined };
    if (limit > 0) {
      connection.uid = peerUid(socket);
      if (connection.uid === undefined) {
        // Fail closed: a connection whose peer is unknown cannot be counted.
        socket.destroy();
        return;
      }
    }
    connections.set(socket, connection);
    socket.once("close", () => connections.delete(socket));
  });

  const listened = await listenOn(server, options.endpoint, options);
  if (limit > 0) {
    try {
      checkPerUidSupport(server, listened);
    } catch (error) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw error;
    }
  }
  if (listened.endpoint.kind === "http") {
    const { host, port } = listened.endpoint;
    fallbackHost = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  }

  let finish: () => void;
  const finished = new Promise<void>((resolve) => finish = resolve);
  // On shutdown(), or by itself once the one connection of an Accept=yes
  // unit ends (listenOn()).
  server.once("close", () => {
    // The listener and every connection are closed; a handler may still
    // run when its client went away.
    void Promise.allSettled([...handlers]).then(() => finish());
  });
  function shutdown(): Promise<void> {
    if (closing) return finished;
    closing = true;
    options.signal?.removeEventListener("abort", shutdown);
    server.close();
    for (const [socket, connection] of connections) {
      if (connection.active === 0) socket.destroy();
    }
    return finished;
  }
  options.signal?.addEventListener("abort", shutdown, { once: true });

  return {
    server,
    endpoint: listened.endpoint,
    source: listened.source,
    fd: listened.fd,
    name: listened.name,
    finished,
    shutdown,
  };
}
