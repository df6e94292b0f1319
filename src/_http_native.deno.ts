// Deno's own HTTP server on a connection accepted through node:net: the
// engine behind Deno.serve(), which cannot take a passed fd, reached on each
// accepted TCP connection instead. Both steps rest on Deno internals, used
// only when present and of the expected kind (Deno 2.9): the TCP handle's
// takeStream() gives the connection's resource id, and
// Deno[Deno.internal].serveHttpOnConnection() serves HTTP on it. Anything
// missing, and the caller uses node:http. The Node build has
// _http_native.node.ts instead, which offers nothing.

import type {
  NativeHandler,
  NativeHttp,
  NativeOnError,
  NativeServed,
} from "./_http_native_types.ts";

type ServeHttpOnConnection = (
  conn: unknown,
  signal: AbortSignal | undefined,
  handler: NativeHandler,
  onError: NativeOnError,
  onListen: () => void,
) => NativeServed;

interface Internals {
  serveHttpOnConnection?: unknown;
  core?: { internalRidSymbol?: unknown };
}

function internals(): Internals | undefined {
  const deno = Deno as unknown as Record<symbol, unknown> & {
    internal?: unknown;
  };
  const key = deno.internal;
  return typeof key === "symbol"
    ? deno[key] as Internals | undefined
    : undefined;
}

function noop(): void {}

let found: NativeHttp | null | undefined;

function find(): NativeHttp | null {
  const internal = internals();
  const serveHttpOnConnection = internal?.serveHttpOnConnection;
  const rid = internal?.core?.internalRidSymbol;
  if (typeof serveHttpOnConnection !== "function" || typeof rid !== "symbol") {
    return null;
  }
  const serveOn = serveHttpOnConnection as ServeHttpOnConnection;
  return {
    serve(socket, local, handler, onError) {
      const handle = (socket as unknown as {
        _handle?: { takeStream?: unknown };
      })._handle;
      if (typeof handle?.takeStream !== "function") return undefined;
      const remote = {
        transport: "tcp",
        hostname: socket.remoteAddress ?? "",
        port: socket.remotePort ?? 0,
      };
      let id: unknown;
      try {
        id = (handle.takeStream as () => unknown).call(handle);
      } catch {
        return undefined;
      }
      if (typeof id !== "number") return undefined;
      // The socket no longer owns the connection: destroying it closes
      // nothing but its empty handle, and the listener stops counting it
      // (its close() would otherwise wait for it forever).
      socket.destroy();
      const conn = {
        [rid]: id,
        localAddr: { transport: "tcp", ...local },
        remoteAddr: remote,
      };
      return serveOn(conn, undefined, handler, onError, noop);
    },
  };
}

/**
 * Deno's HTTP engine for accepted node:net TCP connections, or `undefined`
 * when this Deno does not offer what it needs.
 */
export function nativeHttp(): NativeHttp | undefined {
  if (found === undefined) found = find();
  return found ?? undefined;
}
