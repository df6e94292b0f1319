// serve() on the runtime's own HTTP engine (Deno's: src/_http_native.deno.ts),
// one accepted TCP connection at a time. The engine reads the requests,
// calls the handler and writes the responses; this adds what serve() promises
// on top: the graceful shutdown (src/_http_connections.ts) and `finished`.

import type { Socket } from "node:net";
import type { Connection } from "./_http_connections.ts";
import type { Handler, ServeContext } from "./_http_handler.ts";
import type { NativeHttp, NativeServed } from "./_http_native_types.ts";

/** A response that says `Connection: close`, for the shutdown. */
function closing(response: Response): Response {
  try {
    response.headers.set("connection", "close");
    return response;
  } catch {
    // Immutable headers (Response.redirect(), Response.error()): a copy.
    const copy = new Response(response.body, response);
    copy.headers.set("connection", "close");
    return copy;
  }
}

class NativeConnection implements Connection {
  requests = 0;
  served: NativeServed | undefined;
  #shut = false;

  drain(): void {
    this.shutdown();
  }

  close(): void {
    this.shutdown();
  }

  /** The engine closes it when idle, else after the request in progress. */
  shutdown(): void {
    if (this.#shut || this.served === undefined) return;
    this.#shut = true;
    void Promise.resolve(this.served.shutdown()).catch(() => {});
  }
}

/** The runtime engine's side of a serve() server. */
export interface NativeEngine {
  /**
   * Serves a connection accepted paused; `false` when the engine cannot take
   * it (the caller then gives it to node:http).
   */
  accept(socket: Socket): boolean;
}

/**
 * Serves each accepted connection with `native`, calling the context's
 * handler; `local` is the listener's address (the host of a request URL
 * without a Host header).
 */
export function nativeEngine(
  native: NativeHttp,
  context: ServeContext,
  local: { hostname: string; port: number },
): NativeEngine {
  const { connections, onError } = context;
  const handler: Handler = context.handler;

  /**
   * Under shutdown: the connection closes after this response, which says
   * so (the engine already does when the request asked for it).
   */
  function final(
    connection: NativeConnection,
    response: Response,
    request: Request | undefined,
  ): Response {
    if (!connections.closing) return response;
    connection.shutdown();
    const asked = request?.headers.get("connection") ?? "";
    return /(?:^|,)\s*close\s*(?:,|$)/i.test(asked)
      ? response
      : closing(response);
  }

  function answer(
    connection: NativeConnection,
    request: Request | undefined,
  ): Response | Promise<Response> {
    connection.requests++;
    let result: Response | Promise<Response>;
    try {
      result = handler(request as Request);
    } catch (error) {
      result = onError(error);
    }
    if (result instanceof Response) return final(connection, result, request);
    if (typeof (result as Partial<Promise<Response>>)?.then !== "function") {
      // The engine makes what is not a Response an error for onError.
      return result;
    }
    connections.started();
    return result.then(
      (response) => {
        connections.settled();
        return response instanceof Response
          ? final(connection, response, request)
          : response;
      },
      (error: unknown) => {
        connections.settled();
        return Promise.resolve(onError(error)).then((response) =>
          final(connection, response, request)
        );
      },
    );
  }

  return {
    accept(socket) {
      const connection = new NativeConnection();
      // A handler that takes no request keeps that shape: the engine then
      // makes no Request object at all, as Deno's own serve() does.
      const dispatch = handler.length === 0
        ? () => answer(connection, undefined)
        : (request: Request) => answer(connection, request);
      const served = native.serve(socket, local, dispatch, onError);
      if (served === undefined) return false;
      connection.served = served;
      connections.add(connection);
      const gone = () => connections.delete(connection);
      served.finished.then(gone, gone);
      return true;
    },
  };
}
