// listen()'s fdStore option, for a service whose socket is in no socket
// unit: the socket is opened through libc (so that this process holds its fd
// on both runtimes: Deno's node:net gives none for a TCP server), handed to
// systemd's fd store, then served through server.listen({ fd }), as a
// passed socket is. systemd passes it back to every later start of the
// service (systemd.service(5), FileDescriptorStoreMax=), so the socket,
// its port and its backlog outlive the process.

import { lstatSync } from "node:fs";
import type { Server } from "node:net";
import { openListeningSocket } from "./_listening_socket.ts";
import {
  createParentFolders,
  listenServer,
  systemError,
  unlinkOnClose,
} from "./_unix_socket.ts";
import type { HttpEndpoint, UnixEndpoint } from "./endpoint.ts";
import { removeStoredFds, storeFds } from "./fd_store.ts";
import type { ListenedOn } from "./listen.ts";

/** How to bind: the options of listen() that apply. */
export interface StoredListenerOptions {
  readonly mode: number;
  readonly createParents: boolean;
}

/**
 * Binds `requested`, stores the listening socket under `name`, and makes
 * `server` serve it. Without `NOTIFY_SOCKET` nothing is stored, and the
 * socket is this process's alone: a unix socket's path is removed when the
 * server closes, as listen() does. A stored one's path is kept: the socket
 * lives on in the store, and the next process serves it at that path.
 * Nothing is left behind on failure: the fd is closed, the socket file
 * removed, and what was stored removed from the store.
 */
export async function listenStored(
  server: Server,
  requested: HttpEndpoint | UnixEndpoint,
  uri: string,
  name: string,
  options: StoredListenerOptions,
): Promise<ListenedOn> {
  const where = `Cannot listen on ${uri}`;
  if (requested.kind === "unix" && options.createParents) {
    createParentFolders(requested.path, where);
  }
  const socket = await openListeningSocket(
    requested.kind === "http"
      ? { kind: "tcp", host: requested.host, port: requested.port }
      : { kind: "unix", path: requested.path },
    uri,
    options.mode,
  );
  let stored: boolean;
  try {
    stored = storeFds(name, [socket.fd]);
  } catch (error) {
    socket.close();
    throw error;
  }
  try {
    await listenServer(server, { fd: socket.fd });
  } catch (error) {
    if (stored) {
      try {
        removeStoredFds(name);
      } catch {
        // The manager is not reading: it gets a listening socket that the
        // next start serves, which loses nothing.
      }
    }
    socket.close();
    throw systemError(
      "LISTEN_FAILED",
      `${where}: cannot serve on fd ${socket.fd}`,
      error,
    );
  }
  if (requested.kind === "unix" && !stored) {
    try {
      const bound = lstatSync(requested.path, { bigint: true });
      unlinkOnClose(server, requested.path, { dev: bound.dev, ino: bound.ino });
    } catch {
      // Removed already: nothing to remove on close.
    }
  }
  if (requested.kind === "unix") {
    return {
      source: "bound",
      endpoint: requested,
      requested,
      family: "unix",
      ...(stored ? {} : { path: requested.path }),
    };
  }
  // The address openListeningSocket() bound: the host resolved, the port
  // the kernel picked for port 0.
  const bound = socket.endpoint as HttpEndpoint;
  return {
    source: "bound",
    endpoint: { ...requested, port: bound.port },
    requested,
    family: bound.host.includes(":") ? "ipv6" : "ipv4",
  };
}
