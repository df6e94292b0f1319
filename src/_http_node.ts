// serve() on node:http: each request becomes a lazy Request
// (src/_http_request.ts) for the handler, whose Response is written back
// (src/_http_response.ts), at once when the handler returns one and its body
// is known in full. Per connection it counts the requests in progress, for
// the graceful shutdown (src/_http_connections.ts) and the per-uid limit.

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { sys } from "./_sys.deno.ts";
import { readFdInfo } from "./_sys.common.ts";
import type { Connection } from "./_http_connections.ts";
import {
  callHandler,
  plainResponse,
  type ServeContext,
} from "./_http_handler.ts";
import { lazyRequestClass } from "./_http_request.ts";
import { staticBodyReader, writeResponse } from "./_http_response.ts";

/** @internal The fd behind a node:net handle (Pipe handles carry it). */
export function handleFd(owner: Server | Socket): number | undefined {
  const handle = (owner as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
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

/** Closes a connection with no request in progress, its last bytes sent. */
function closeIdle(socket: Socket): void {
  if (socket.writableLength > 0) socket.end();
  else socket.destroy();
}

class NodeConnection implements Connection {
  requests = 0;
  /** Requests whose response is not yet ended. */
  active = 0;
  readonly socket: Socket;
  readonly uid: number | undefined;

  constructor(socket: Socket, uid: number | undefined) {
    this.socket = socket;
    this.uid = uid;
  }

  drain(): void {
    if (this.active === 0) closeIdle(this.socket);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** node:http's side of a serve() server. */
export interface NodeHttpEngine {
  /** Takes an accepted connection (node:http already parses it). */
  accept(socket: Socket): void;
}

/**
 * Answers `server`'s requests with the context's handler; the caller hands
 * each connection to `accept()` after node:http's own connection listener.
 */
export function nodeHttpEngine(
  server: Server,
  context: ServeContext,
): NodeHttpEngine {
  const { connections, perUidLimit } = context;
  const RequestClass = lazyRequestClass();
  const staticBody = staticBodyReader(context.publicOnly);
  const sockets = new Map<Socket, NodeConnection>();
  const requestsPerUid = new Map<number, number>();

  function countUid(uid: number, out: ServerResponse): boolean {
    const count = requestsPerUid.get(uid) ?? 0;
    if (count >= perUidLimit) return false;
    requestsPerUid.set(uid, count + 1);
    out.once("close", () => {
      const left = (requestsPerUid.get(uid) ?? 1) - 1;
      if (left === 0) requestsPerUid.delete(uid);
      else requestsPerUid.set(uid, left);
    });
    return true;
  }

  function onRequest(message: IncomingMessage, out: ServerResponse): void {
    const connection = sockets.get(message.socket);
    if (connection !== undefined) {
      connection.requests++;
      connection.active++;
    }
    const head = message.method === "HEAD";

    function ended(): void {
      if (connection === undefined) return;
      connection.active--;
      // A response whose head went out before the shutdown could not say
      // Connection: close; its connection closes now.
      if (connections.closing && connection.active === 0) {
        closeIdle(connection.socket);
      }
    }

    function respond(response: Response): void {
      let pending: Promise<void> | undefined;
      try {
        pending = writeResponse(
          response,
          out,
          head,
          connections.closing,
          staticBody,
        );
      } catch (error) {
        // A body already read or locked: nothing of it was sent yet, unless
        // node:http itself refused the head.
        console.error(error);
        try {
          if (out.headersSent) throw error;
          // node:http keeps a status message it refused.
          out.statusMessage = "";
          writeResponse(
            plainResponse(500, "Internal Server Error"),
            out,
            head,
            true,
            staticBody,
          );
        } catch {
          out.destroy();
        }
      }
      if (pending === undefined) ended();
      else void pending.then(ended);
    }

    if (connection?.uid !== undefined && !countUid(connection.uid, out)) {
      respond(
        plainResponse(503, "Too many requests in progress for this user"),
      );
      return;
    }
    // The absolute form is checked now, so that a bad target is a 400, not
    // a handler error; the origin form (what clients send) always makes a URL.
    const target = message.url;
    let url: string | undefined;
    if (target !== undefined && !target.startsWith("/")) {
      try {
        url = new URL(target).href;
      } catch {
        respond(plainResponse(400, "Bad Request"));
        return;
      }
    }
    const request = new RequestClass({
      message,
      out,
      url,
      fallbackHost: context.fallbackHost,
    });
    const result = callHandler(context, request);
    if (result instanceof Response) {
      respond(result);
      return;
    }
    connections.started();
    void result.then((response) => {
      connections.settled();
      respond(response);
    });
  }

  server.on("request", onRequest);

  return {
    accept(socket) {
      let uid: number | undefined;
      if (perUidLimit > 0) {
        uid = peerUid(socket);
        if (uid === undefined) {
          // Fail closed: a connection whose peer is unknown cannot be counted.
          socket.destroy();
          return;
        }
      }
      const connection = new NodeConnection(socket, uid);
      sockets.set(socket, connection);
      connections.add(connection);
      socket.once("close", () => {
        sockets.delete(socket);
        connections.delete(connection);
      });
      // Accepted paused in case Deno's engine would take it.
      if (socket.isPaused()) socket.resume();
    },
  };
}
