// A listening server on an endpoint, with the seed's precedence (SPEC
// section 4): a socket systemd passed first, else the endpoint bound here.

import { createServer, type Server, Socket } from "node:net";
import {
  type Endpoint,
  formatEndpoint,
  parseEndpoint,
  type UnixEndpoint,
} from "./endpoint.ts";
import { ActivationError } from "./errors.ts";
import { getSystemdSocket } from "./get_systemd_socket.ts";
import { type ListenFd, listenFds } from "./listen_fds.ts";
import { type SocketInfo, socketInfo } from "./socket_info.ts";
import {
  bindUnixSocket,
  clearStaleSocket,
  codeOf,
  DEFAULT_SOCKET_MODE,
  listenServer,
  systemError,
  unlinkOnClose,
} from "./_unix_socket.ts";
import { sys } from "./_sys.deno.ts";
import { unsetListenEnv } from "./_activate.ts";
import { listenStored } from "./_stored_listener.ts";
import { checkFdName } from "./fd_store.ts";

/** Options of {@linkcode listen}. */
export interface ListenOptions {
  /**
   * The socket name (`FileDescriptorName=`) to prefer among several passed
   * sockets, for `http://` and `unix://` endpoints; a single passed socket
   * is used whatever its name. An `fd://name` endpoint uses its own name.
   * With `fdStore`, the name the socket is stored under, and the only one
   * taken.
   */
  name?: string;
  /** The file mode of a unix socket bound here. Default: `0o660`. */
  mode?: number;
  /**
   * Create the missing parent folders of a unix socket (mode 0755).
   * Default: `false`.
   */
  createParents?: boolean;
  /**
   * Refuse to bind TCP when systemd passed no socket, so that a service
   * meant to sit behind unix sockets never opens a port by mistake.
   * Default: `false`.
   */
  unixOnly?: boolean;
  /**
   * Remove `LISTEN_PID`, `LISTEN_PIDFDID`, `LISTEN_FDS` and `LISTEN_FDNAMES`
   * once the socket is chosen, whatever the outcome (errors included), so
   * that processes started later do not take them for their own. Default:
   * `false`.
   */
  unsetEnv?: boolean;
  /**
   * Keep the socket in systemd's fd store under `name`, for a service whose
   * socket is in no socket unit, so that it outlives restarts and crashes
   * (`FileDescriptorStoreMax=` in the service unit): when no fd named
   * `name` was passed (the first start), the `http://` or `unix://`
   * endpoint is bound here, the listening socket handed to the store
   * (`FDSTORE=1`, `FDNAME=name`), then served; on every later start systemd
   * passes it back and it is served again, whatever its address: the port
   * stays bound, and connections waiting in its backlog are served by the
   * new process. Only a passed fd named `name` is taken (a single passed
   * socket with another name is not). Without `NOTIFY_SOCKET` nothing is
   * stored, and the socket is bound as without this option.
   *
   * A stored unix socket's path is not removed when the server closes: the
   * next process serves that socket at that path. Default: `false`.
   */
  fdStore?: boolean;
}

/** Where a server listens, as {@linkcode listen} resolved it. */
export interface ListenedOn {
  /** `systemd` for a passed socket, `bound` for one bound here. */
  readonly source: "systemd" | "bound";
  /** The passed socket's fd, for `source: "systemd"`. */
  readonly fd?: number;
  /** The passed socket's name, for `source: "systemd"`. */
  readonly name?: string;
  /**
   * Where it listens: a passed socket as `fd://N`, a bound TCP endpoint
   * with its real port (port 0 asks for any), a bound unix socket by path.
   */
  readonly endpoint: Endpoint;
  /** The endpoint asked for. */
  readonly requested: Endpoint;
  /** The address family of the listening socket. */
  readonly family: "unix" | "ipv4" | "ipv6";
  /**
   * The unix socket path bound here, removed when the server closes (if it
   * is still that socket). Never set for a passed socket: systemd owns it.
   */
  readonly path?: string;
  /** What {@linkcode socketInfo} said of a passed socket. */
  readonly socket?: SocketInfo;
}

function describeRange(passed: readonly ListenFd[]): string {
  const first = passed[0]!.fd;
  const last = passed[passed.length - 1]!.fd;
  const fds = passed.length === 1 ? "fd" : "fds";
  return `the ${passed.length} ${fds} systemd passed (${
    first === last ? first : `${first}-${last}`
  })`;
}

/** @internal The passed fd an endpoint names, by number or by name. */
export function findPassedFd(
  endpoint: Endpoint,
  uri: string,
  action: string,
): ListenFd | undefined {
  if (endpoint.kind !== "fd" && endpoint.kind !== "fdname") return undefined;
  const passed = listenFds();
  const where = `Cannot ${action} ${uri}`;
  if (endpoint.kind === "fd") {
    if (passed.length === 0) {
      throw new ActivationError(
        "FD_NOT_PASSED",
        `${where}: systemd passed no fds to this process`,
      );
    }
    const found = passed.find((fd) => fd.fd === endpoint.fd);
    if (found === undefined) {
      throw new ActivationError(
        "FD_NOT_PASSED",
        `${where}: fd ${endpoint.fd} is not among ${describeRange(passed)}`,
      );
    }
    return found;
  }
  const found = passed.find((fd) => fd.name === endpoint.name);
  if (found === undefined) {
    throw new ActivationError(
      "NAME_NOT_FOUND",
      passed.length === 0
        ? `${where}: systemd passed no fds to this process`
        : `${where}: no passed fd is named ${
          JSON.stringify(endpoint.name)
        }; the names are ${
          passed.map((fd) => JSON.stringify(fd.name)).join(", ")
        }`,
    );
  }
  return found;
}

// Address families a socket unit can pass besides unix and IP (ListenNetlink=,
// vsock and AF_PACKET addresses of ListenStream=/ListenDatagram=).
const FAMILY_NAMES: Readonly<Record<number, string>> = {
  16: "netlink",
  17: "packet",
  40: "vsock",
};

/** Describes a socket for an error: `a dgram ipv4 socket on 127.0.0.1:53`. */
export function describeSocket(info: SocketInfo): string {
  const address = info.address;
  const family = address.family === "other"
    ? FAMILY_NAMES[address.familyNumber] ?? `family ${address.familyNumber}`
    : address.family;
  const state = info.type === "stream" || info.type === "seqpacket"
    ? info.listening
      ? "listening "
      : info.peer === undefined
      ? "unconnected "
      : "connected "
    : "";
  const where = address.family === "unix"
    ? address.path === "" ? " (unnamed)" : ` at ${address.path}`
    : address.family === "other"
    ? ""
    : address.family === "ipv6"
    ? ` on [${address.host}]:${address.port}`
    : ` on ${address.host}:${address.port}`;
  const kind = `${state}${info.type} ${family} socket${where}`;
  return `${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind}`;
}

/**
 * @internal Why neither runtime can use the socket `info` describes, or
 * `undefined` when one of them can: node:net and node:dgram know stream and
 * datagram sockets of the unix and IP families only.
 */
export function unsupportedReason(info: SocketInfo): string | undefined {
  const address = info.address;
  if (address.family === "other") {
    const name = FAMILY_NAMES[address.familyNumber];
    return `neither Deno nor Node can use ${
      name === undefined
        ? `sockets of address family ${address.familyNumber}`
        : `${name} sockets`
    }`;
  }
  if (info.type === "seqpacket") {
    return "neither Deno nor Node can use SOCK_SEQPACKET sockets (ListenSequentialPacket=)";
  }
  if (info.type === "other") {
    return "neither Deno nor Node can use sockets of this type (neither stream nor datagram)";
  }
  return undefined;
}

/**
 * @internal Throws UNSUPPORTED for a socket neither runtime can use, naming
 * its kind.
 */
export function checkSupported(info: SocketInfo, where: string): void {
  const reason = unsupportedReason(info);
  if (reason !== undefined) {
    throw new ActivationError(
      "UNSUPPORTED",
      `${where}: fd ${info.fd} is ${describeSocket(info)}, and ${reason}`,
    );
  }
}

/** @internal socketInfo(), with the fd's context in the error message. */
export function inspectPassedFd(fd: number, where: string): SocketInfo {
  try {
    return socketInfo(fd);
  } catch (error) {
    if (error instanceof ActivationError && error.code === "NOT_A_SOCKET") {
      throw new ActivationError(
        "NOT_A_SOCKET",
        `${where}: ${error.message.replace(/^Fd/, "fd")}`,
        {
          cause: error,
          ...(error.errno === undefined ? {} : { errno: error.errno }),
        },
      );
    }
    throw error;
  }
}

// A listening stream socket (Accept=no), or the connection an Accept=yes
// unit passes: a stream socket that is connected.
function checkServable(fd: number, where: string): SocketInfo {
  const info = inspectPassedFd(fd, where);
  checkSupported(info, where);
  if (info.type === "dgram") {
    throw new ActivationError(
      "UNSUITABLE_SOCKET",
      `${where}: fd ${fd} is ${
        describeSocket(info)
      }, not a stream socket; listenDatagram() serves datagram sockets`,
    );
  }
  if (!info.listening && info.peer === undefined) {
    throw new ActivationError(
      "UNSUITABLE_SOCKET",
      `${where}: fd ${fd} is ${
        describeSocket(info)
      }, neither listening nor connected`,
    );
  }
  return info;
}

/**
 * Makes `server` serve the one connection an `Accept=yes` unit passed, as if
 * it had accepted it: it emits "listening", then "connection" once someone
 * listens for connections, and closes once the connection closes.
 */
function serveConnection(server: Server, fd: number, where: string): void {
  let socket: Socket;
  try {
    socket = new Socket({
      fd,
      readable: true,
      writable: true,
      // As the server would make an accepted socket (true for node:http).
      allowHalfOpen:
        (server as { allowHalfOpen?: unknown }).allowHalfOpen === true,
    });
  } catch (error) {
    throw systemError(
      "LISTEN_FAILED",
      `${where}: cannot serve on fd ${fd}`,
      error,
    );
  }
  let closed = false;
  server.once("close", () => closed = true);
  // node:http closes a keep-alive connection after each response when its
  // server is not listening (Deno 2.9, as newer Node): this server listens,
  // on its one connection, until it closes. It has no listening handle of
  // its own, so the getter is this instance's.
  Object.defineProperty(server, "listening", {
    configurable: true,
    get: () => !closed,
  });
  socket.once("close", () => {
    if (!closed) server.close();
  });
  function deliver(): void {
    if (closed) socket.destroy();
    else server.emit("connection", socket);
  }
  // After the caller's `await`, and not before anyone listens: a listening
  // socket would keep a connection in its backlog until then.
  setImmediate(() => {
    if (server.listenerCount("connection") > 0) return deliver();
    server.on("newListener", function wait(event: string | symbol): void {
      if (event !== "connection") return;
      server.off("newListener", wait);
      setImmediate(deliver);
    });
  });
  server.emit("listening");
}

/** @internal An endpoint and its URI, from either. */
export function normalise(endpoint: Endpoint | string): [Endpoint, string] {
  if (typeof endpoint === "string") {
    return [parseEndpoint(endpoint), endpoint];
  }
  return [endpoint, formatEndpoint(endpoint)];
}

function checkOptions(options: ListenOptions): number {
  const mode = options.mode ?? DEFAULT_SOCKET_MODE;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(
      `A socket mode is an integer from 0 to 0o777, not ${mode}`,
    );
  }
  return mode;
}

/** The name to store the socket under, for `fdStore`; else `undefined`. */
function storeName(
  requested: Endpoint,
  uri: string,
  options: ListenOptions,
): string | undefined {
  if (!options.fdStore) return undefined;
  if (requested.kind !== "http" && requested.kind !== "unix") {
    throw new TypeError(
      `fdStore needs an endpoint to bind on the first start, http:// or unix://, not ${uri}`,
    );
  }
  if (options.name === undefined) {
    throw new TypeError(
      "fdStore needs a name (options.name) to store the socket under",
    );
  }
  return checkFdName(options.name);
}

/**
 * @internal Makes any `net.Server` (an `http.Server` too) listen as
 * {@linkcode listen} does, and says where. Resolves once it listens and, for
 * a unix socket, once the socket is in place with its mode.
 */
export async function listenOn<S extends Server>(
  server: S,
  endpoint: Endpoint | string,
  options: ListenOptions = {},
): Promise<ListenedOn> {
  const [requested, uri] = normalise(endpoint);
  const mode = checkOptions(options);
  const where = `Cannot listen on ${uri}`;
  if (requested.kind === "udp") {
    throw new ActivationError(
      "INVALID_ENDPOINT",
      `${where}: udp:// names a datagram endpoint; listenDatagram() serves it`,
    );
  }

  const stored = storeName(requested, uri, options);
  let passed: ListenFd | undefined;
  try {
    passed = requested.kind === "fd" || requested.kind === "fdname"
      ? findPassedFd(requested, uri, "listen on")
      : stored !== undefined
      ? listenFds().find((fd) => fd.name === stored)
      : pickSystemdSocket(options.name);
  } finally {
    if (options.unsetEnv) unsetListenEnv();
  }
  if (passed !== undefined) {
    const info = checkServable(
      passed.fd,
      requested.kind === "fd" || requested.kind === "fdname"
        ? where
        : `${where} through the socket systemd passed`,
    );
    if (!info.listening) {
      serveConnection(server, passed.fd, where);
    } else {
      try {
        await listenServer(server, { fd: passed.fd });
      } catch (error) {
        throw systemError(
          "LISTEN_FAILED",
          `${where}: cannot serve on fd ${passed.fd}`,
          error,
        );
      }
    }
    return {
      source: "systemd",
      fd: passed.fd,
      name: passed.name,
      endpoint: { kind: "fd", fd: passed.fd },
      requested,
      family: info.address.family as ListenedOn["family"],
      socket: info,
    };
  }

  if (requested.kind === "http") {
    if (options.unixOnly) {
      throw new ActivationError(
        "TCP_NOT_ALLOWED",
        `${where}: unixOnly forbids binding TCP, and systemd passed no socket`,
      );
    }
    if (!sys.mayBindTcp(requested.host, requested.port)) {
      throw new ActivationError(
        "LISTEN_FAILED",
        `${where}: run Deno with --allow-net to bind ${requested.host}:${requested.port}`,
      );
    }
    if (stored !== undefined) {
      return await listenStored(server, requested, uri, stored, {
        mode,
        createParents: false,
      });
    }
    try {
      await listenServer(server, {
        host: requested.host,
        port: requested.port,
      });
    } catch (error) {
      throw systemError(
        codeOf(error) === "EADDRINUSE" ? "ADDRESS_IN_USE" : "LISTEN_FAILED",
        `${where}: cannot bind`,
        error,
      );
    }
    const address = server.address();
    const bound = typeof address === "object" && address !== null
      ? address
      : undefined;
    return {
      source: "bound",
      endpoint: { ...requested, port: bound?.port ?? requested.port },
      requested,
      family: bound?.family === "IPv6" ? "ipv6" : "ipv4",
    };
  }

  // A unix socket: what systemd passed was handled above.
  if (stored !== undefined) {
    return await listenStored(server, requested as UnixEndpoint, uri, stored, {
      mode,
      createParents: options.createParents ?? false,
    });
  }
  const path = (requested as { path: string }).path;
  await clearStaleSocket(path, uri);
  const bound = await bindUnixSocket(server, path, uri, {
    mode,
    createParents: options.createParents ?? false,
  });
  unlinkOnClose(server, path, bound);
  return {
    source: "bound",
    endpoint: requested,
    requested,
    family: "unix",
    path,
  };
}

/** @internal The passed fd getSystemdSocket(name) picks, with its name. */
export function pickSystemdSocket(
  name: string | undefined,
): ListenFd | undefined {
  const fd = getSystemdSocket(name);
  if (fd === undefined) return undefined;
  const passed = listenFds().find((candidate) => candidate.fd === fd);
  return passed ?? { fd, name: "unknown" };
}

/**
 * Makes a listening `node:net` server for an endpoint, preferring a socket
 * systemd passed (SPEC section 4):
 * - `fd://3` and `fd://web` use the passed fd with that number or name;
 *   anything else is an error;
 * - for `http://` and `unix://`, a passed socket is used when
 *   {@linkcode getSystemdSocket} picks one (`options.name` among several);
 * - a passed fd must be a stream socket (unix, IPv4 or IPv6), checked with
 *   {@linkcode socketInfo}: a listening one (`Accept=no`, the default), or
 *   the connection of an `Accept=yes` unit (see below);
 * - otherwise `http://host:port` binds TCP (unless `unixOnly`), and
 *   `unix:///path` binds the path: a stale socket there is removed, a live
 *   one or anything else (file, folder, symlink) is an error and left
 *   untouched; the socket gets `mode` (0660) before it appears at the path.
 *
 * With `Accept=yes`, systemd accepts each connection and starts one service
 * instance per connection (`web@.service`), with the connected socket as
 * fd 3. The server then serves that one connection as if it had accepted
 * it: it emits "connection" with it once (after the `await`, and only once
 * a "connection" listener is added), has no address (`address()` is
 * `null`), and closes by itself once the connection closes, so that the
 * process can exit. `MaxConnections=` in the socket unit bounds the
 * instances. Datagram sockets are {@linkcode listenDatagram}'s; FIFOs and
 * special files {@linkcode readPassedFile}'s.
 *
 * Closing the server removes the socket path bound here (if it is still that
 * socket), never the path of a passed socket. `server.address()` of a bound
 * unix socket names the temporary path it was bound under; use `path`.
 *
 * A unix socket is bound in a private folder beside its path and linked into
 * place, so only its own folder need be writable; what a process killed
 * while binding the same path left there is removed.
 *
 * With `fdStore` (and a `name`), a service whose socket is in no socket unit
 * keeps it across restarts: the first start binds the endpoint and hands the
 * listening socket to systemd's fd store under `name`; every later start
 * gets it back, passed under that name, and serves it, so the port never
 * closes and no connection is refused (see {@linkcode storeFds}; the unit
 * needs `FileDescriptorStoreMax=`). Such a socket is bound through libc,
 * a unix one at its path itself (up to 107 bytes); without `NOTIFY_SOCKET`
 * nothing is stored and the server is an ordinary one.
 *
 * On Deno this needs `--allow-env` and `--allow-ffi` (to read and check the
 * passed sockets), plus `--allow-net` to bind TCP, or `--allow-read
 * --allow-write --allow-net` to bind a unix socket (`--allow-all` for a path
 * over 97 bytes, bound through `/proc/self/fd`).
 *
 * @param endpoint The endpoint or its URI.
 * @param options The socket name to prefer, the unix socket mode and the
 * rules for binding.
 * @returns The listening server, once it listens (or, for an `Accept=yes`
 * connection, once it serves it).
 * @throws {ActivationError} `FD_NOT_PASSED` or `NAME_NOT_FOUND` for an
 * `fd://` endpoint systemd did not pass; `NOT_A_SOCKET` or
 * `UNSUITABLE_SOCKET` for a passed fd that is not a stream socket, or is
 * neither listening nor connected; `UNSUPPORTED` for a socket neither
 * runtime can use (SOCK_SEQPACKET, netlink, vsock), naming it;
 * `PATH_NOT_SOCKET` for a file, folder or symlink at a unix path;
 * `ADDRESS_IN_USE` when another server listens there; `TCP_NOT_ALLOWED`
 * under `unixOnly`; `LISTEN_FAILED` for other system errors;
 * `INVALID_ENDPOINT` for a bad URI or a `udp://` one; the errors of
 * {@linkcode listenFds}; with `fdStore`, those of {@linkcode storeFds}
 * (`NOTIFY_FAILED`), and nothing is left bound or stored.
 * @throws {RangeError} For a mode outside 0 to 0o777, or an invalid `name`
 * with `fdStore`.
 * @throws {TypeError} For `fdStore` without a `name`, or with an `fd://`
 * endpoint (there is nothing to bind).
 *
 * @tags allow-env, allow-ffi, allow-net, allow-read, allow-write
 *
 * @example Echo on the passed socket named "echo", or on a unix socket
 * ```ts ignore
 * import { listen } from "@socket-activation/socket-activation";
 *
 * const server = await listen("unix:///run/echo/echo.sock", { name: "echo" });
 * server.on("connection", (socket) => socket.pipe(socket));
 * ```
 *
 * @example A port kept in the fd store across restarts
 * ```ts ignore
 * import { listen, ready } from "@socket-activation/socket-activation";
 *
 * const server = await listen("http://0.0.0.0:8080", {
 *   name: "web",
 *   fdStore: true,
 * });
 * server.on("connection", (socket) => socket.end("hello\n"));
 * ready();
 * ```
 */
export async function listen(
  endpoint: Endpoint | string,
  options: ListenOptions = {},
): Promise<Server> {
  const server = createServer();
  await listenOn(server, endpoint, options);
  return server;
}
