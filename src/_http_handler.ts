// What both engines share to call a serve() handler: the settings of the
// server and the way an error becomes a response.

import type { Connections } from "./_http_connections.ts";

/** A fetch-style request handler. */
export type Handler = (request: Request) => Response | Promise<Response>;

/** Turns an error into a response; never throws nor rejects. */
export type ErrorResponder = (error: unknown) => Response | Promise<Response>;

/** One serve() server's settings and state, as its engine sees them. */
export interface ServeContext {
  readonly handler: Handler;
  readonly onError: ErrorResponder;
  readonly connections: Connections;
  /** The per-uid limit, or 0 when off (node:http only). */
  readonly perUidLimit: number;
  /** Leave the runtimes' internals alone (the fallback paths, for tests). */
  readonly publicOnly: boolean;
  /** The host of a request URL when the request has no usable Host. */
  fallbackHost: string;
}

/** A short plain-text response that closes the connection. */
export function plainResponse(status: number, text: string): Response {
  return new Response(text + "\n", {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      connection: "close",
    },
  });
}

function notAResponse(): TypeError {
  return new TypeError("The handler returned something else than a Response");
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

/**
 * The error responder for `onError` (the default prints the error and
 * answers 500): an `onError` that fails, or gives something else than a
 * Response, gets its error printed and a plain 500.
 */
export function errorResponder(
  onError: ((error: unknown) => Response | Promise<Response>) | undefined,
): ErrorResponder {
  const given = onError ?? defaultOnError;
  function failed(inner: unknown): Response {
    console.error(inner);
    return plainResponse(500, "Internal Server Error");
  }
  function checked(response: unknown): Response {
    if (!(response instanceof Response)) throw notAResponse();
    return response;
  }
  return (error) => {
    let result: unknown;
    try {
      result = given(error);
    } catch (inner) {
      return failed(inner);
    }
    if (result instanceof Response) return result;
    return Promise.resolve(result).then(checked).catch(failed);
  };
}

/**
 * Calls the handler: its Response as it is when it returns one (the
 * synchronous path), else a promise of the response to send (the handler's,
 * or the error responder's when it throws, rejects or returns something
 * else than a Response).
 */
export function callHandler(
  context: ServeContext,
  request: Request,
): Response | Promise<Response> {
  let result: unknown;
  try {
    result = context.handler(request);
  } catch (error) {
    return context.onError(error);
  }
  if (result instanceof Response) return result;
  if (
    typeof (result as PromiseLike<unknown> | undefined)?.then !== "function"
  ) {
    return context.onError(notAResponse());
  }
  return Promise.resolve(result).then(
    (response) =>
      response instanceof Response ? response : context.onError(notAResponse()),
    context.onError,
  );
}
