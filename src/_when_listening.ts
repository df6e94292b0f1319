// Starting a node:net server's listen() or a node:dgram socket's bind() as a
// promise: resolved on "listening", rejected with the "error" emitted
// instead, or with what the call itself throws (Deno refuses a socket it has
// no permission for inside the call).

import type { EventEmitter } from "node:events";

/** Calls `start` and resolves once `emitter` listens. */
export function whenListening(
  emitter: EventEmitter,
  start: () => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    function onError(error: Error): void {
      emitter.off("listening", onListening);
      reject(error);
    }
    function onListening(): void {
      emitter.off("error", onError);
      resolve();
    }
    emitter.once("error", onError);
    emitter.once("listening", onListening);
    try {
      start();
    } catch (error) {
      emitter.off("error", onError);
      emitter.off("listening", onListening);
      reject(error);
    }
  });
}
