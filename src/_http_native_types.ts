// What serve() needs from a runtime's own HTTP engine, for one accepted
// connection (src/_http_native.deno.ts; Node has none).

import type { Socket } from "node:net";

/** A handler as the engine calls it. */
export type NativeHandler = (
  request: Request,
) => Response | Promise<Response>;

/** Turns a handler's error into the response to send. */
export type NativeOnError = (error: unknown) => Response | Promise<Response>;

/** HTTP served on one connection. */
export interface NativeServed {
  /** Settles once the connection is closed. */
  readonly finished: Promise<void>;
  /**
   * Closes the connection when it is idle, else once the request in
   * progress is answered.
   */
  shutdown(): Promise<void> | void;
}

/** A runtime's HTTP engine. */
export interface NativeHttp {
  /**
   * Serves HTTP on `socket`, which was accepted paused, taking its
   * connection over from node:net; `undefined` when it cannot (the socket
   * is then left as it was).
   */
  serve(
    socket: Socket,
    local: { hostname: string; port: number },
    handler: NativeHandler,
    onError: NativeOnError,
  ): NativeServed | undefined;
}
