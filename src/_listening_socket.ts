// The activator's listening sockets: opened once through the FFI layer, so
// that they are real fds this process owns on both runtimes (Deno's node:net
// exposes no fd for a TCP server), and kept open while the activator runs.
// Addresses take systemd-socket-activate's forms and the library's URIs.

import { lookup } from "node:dns/promises";
import { lstatSync, unlinkSync } from "node:fs";
import { isIP, isIPv6 } from "node:net";
import { describeErrno, EADDRINUSE, EAFNOSUPPORT } from "./_errno.ts";
import { sys } from "./_sys.deno.ts";
import { clearStaleSocket, systemError } from "./_unix_socket.ts";
import { inetSockaddr, unixSockaddr } from "./_sockaddr.ts";
import { type Endpoint, parseEndpoint } from "./endpoint.ts";
import { ActivationError } from "./errors.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  SO_REUSEADDR,
  SOCK_CLOEXEC,
  SOCK_STREAM,
  SOL_SOCKET,
  SUN_PATH_MAX,
} from "./_linux.ts";

/** Where to listen, parsed. `host` undefined is any address. */
export type ListenTarget =
  | { readonly kind: "tcp"; readonly host: string | undefined; port: number }
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "abstract"; readonly name: string };

/** A listening socket the activator opened. */
export interface ListeningSocket {
  /** The fd, close-on-exec, in this process. */
  readonly fd: number;
  /** Where it listens: `127.0.0.1:8080`, `[::]:8080`, `/path`, `@name`. */
  readonly address: string;
  /** The same as an endpoint; `undefined` for an abstract socket. */
  readonly endpoint: Endpoint | undefined;
  /**
   * Closes the fd and removes the socket file it made, if that file is
   * still this socket.
   */
  close(): void;
}

// Linux's SOMAXCONN since 5.4; the kernel caps it at net.core.somaxconn.
// systemd's Backlog= default: a deep queue holds connections while no
// child accepts, during a restart.
const BACKLOG = 4096;

const FORMS =
  "a port, ADDRESS:PORT, [IPv6]:PORT, /path, @abstract, http://host:port or unix:///path";

function invalid(text: string, detail: string): ActivationError {
  return new ActivationError(
    "INVALID_ENDPOINT",
    `Invalid listen address ${JSON.stringify(text)}: ${detail}`,
  );
}

function parsePort(text: string, port: string): number {
  const number = Number(port);
  if (!/^\d{1,5}$/.test(port) || number > 65535) {
    throw invalid(text, `${port} is not a port (0 to 65535)`);
  }
  return number;
}

/**
 * Parses a listen address: systemd-socket-activate's forms (`8080`,
 * `127.0.0.1:8080`, `[::1]:8080`, `/path`, `@abstract`) or the library's
 * `http://` and `unix://` URIs.
 */
export function parseListenAddress(text: string): ListenTarget {
  if (text.includes("://")) {
    const endpoint = parseEndpoint(text);
    if (endpoint.kind === "http") {
      return { kind: "tcp", host: endpoint.host, port: endpoint.port };
    }
    if (endpoint.kind === "unix") return { kind: "unix", path: endpoint.path };
    throw invalid(
      text,
      "fd:// names a socket passed to a service, not one to open",
    );
  }
  if (text.startsWith("@")) {
    if (text.length < 2) throw invalid(text, "an abstract name is not empty");
    return { kind: "abstract", name: text.slice(1) };
  }
  if (text.startsWith("/")) return { kind: "unix", path: text };
  if (/^\d+$/.test(text)) {
    return { kind: "tcp", host: undefined, port: parsePort(text, text) };
  }
  const bracketed = /^\[([^\]]+)\]:([^:]*)$/.exec(text);
  if (bracketed !== null) {
    if (!isIPv6(bracketed[1]!)) {
      throw invalid(text, `${bracketed[1]} is not an IPv6 address`);
    }
    return {
      kind: "tcp",
      host: bracketed[1]!,
      port: parsePort(text, bracketed[2]!),
    };
  }
  const hostPort = /^([^:/]+):([^:]*)$/.exec(text);
  if (hostPort !== null) {
    if (isIP(hostPort[1]!) !== 4) {
      throw invalid(text, `${hostPort[1]} is not an IPv4 address`);
    }
    return {
      kind: "tcp",
      host: hostPort[1]!,
      port: parsePort(text, hostPort[2]!),
    };
  }
  throw invalid(text, `expected ${FORMS}`);
}

function failure(where: string, call: string, errno: number): ActivationError {
  return new ActivationError(
    errno === EADDRINUSE ? "ADDRESS_IN_USE" : "LISTEN_FAILED",
    `${where}: ${call} failed with ${describeErrno(errno)}`,
    { errno },
  );
}

/** socket(), then bind() and listen(); the fd is closed on failure. */
function bindAndListen(
  where: string,
  family: number,
  address: Uint8Array,
  steps: { beforeBind?(fd: number): void; afterBind?(): void } = {},
): number {
  const libc = sys.libc();
  const fd = libc.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure(where, "socket()", libc.errno());
  try {
    if (family !== AF_UNIX) {
      const one = new Uint8Array(4);
      new DataView(one.buffer).setInt32(0, 1, true);
      if (libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one) < 0) {
        throw failure(where, "setsockopt(SO_REUSEADDR)", libc.errno());
      }
    }
    steps.beforeBind?.(fd);
    if (libc.bind(fd, address) < 0) {
      throw failure(where, "bind()", libc.errno());
    }
    steps.afterBind?.();
    if (libc.listen(fd, BACKLOG) < 0) {
      throw failure(where, "listen()", libc.errno());
    }
    return fd;
  } catch (error) {
    libc.close(fd);
    throw error;
  }
}

/** The port the kernel picked for port 0, from getsockname(). */
function boundPort(fd: number): number {
  const address = new Uint8Array(128);
  const length = new Uint32Array([address.length]);
  sys.libc().getsockname(fd, address, length);
  return new DataView(address.buffer).getUint16(2);
}

async function openTcp(
  target: { host: string | undefined; port: number },
  where: string,
): Promise<ListeningSocket> {
  const libc = sys.libc();
  let host = target.host;
  if (host !== undefined && isIP(host) === 0) {
    try {
      host = (await lookup(host)).address;
    } catch (error) {
      throw systemError(
        "LISTEN_FAILED",
        `${where}: cannot resolve ${host}`,
        error,
      );
    }
  }
  // A bare port is the IPv6 any address, which takes IPv4 too unless the
  // system says otherwise (net.ipv6.bindv6only), as systemd does; IPv4
  // where the kernel has no IPv6.
  let fd: number;
  if (host === undefined) {
    try {
      host = "::";
      fd = bindAndListen(
        where,
        AF_INET6,
        inetSockaddr("::", target.port),
      );
    } catch (error) {
      if ((error as ActivationError).errno !== EAFNOSUPPORT) throw error;
      host = "0.0.0.0";
      fd = bindAndListen(
        where,
        AF_INET,
        inetSockaddr(host, target.port),
      );
    }
  } else {
    const family = isIP(host) === 6 ? AF_INET6 : AF_INET;
    fd = bindAndListen(where, family, inetSockaddr(host, target.port));
  }
  const port = target.port === 0 ? boundPort(fd) : target.port;
  return {
    fd,
    address: host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`,
    endpoint: { kind: "http", host, port },
    close: () => libc.close(fd),
  };
}

/**
 * Binds a unix socket at `path` with file mode `mode`, never more open and
 * never over anything but a stale socket. The socket's own mode, set before
 * bind(), is what the kernel gives the file (less the umask): the file
 * never has more than `mode`, and chmod() then gives it `mode` exactly,
 * without following a symlink put there meanwhile. bind() itself replaces
 * nothing (EADDRINUSE). Binding at the path itself, not at a temporary
 * name moved into place, keeps getsockname() naming the path, as under
 * systemd.
 */
async function openUnix(
  path: string,
  mode: number,
  text: string,
): Promise<ListeningSocket> {
  const libc = sys.libc();
  const where = `Cannot listen on ${text}`;
  if (new TextEncoder().encode(path).length > SUN_PATH_MAX) {
    throw new ActivationError(
      "LISTEN_FAILED",
      `${where}: the path is longer than ${SUN_PATH_MAX} bytes`,
    );
  }
  await clearStaleSocket(path, text);
  const fd = bindAndListen(where, AF_UNIX, unixSockaddr(path), {
    beforeBind(fd) {
      if (libc.fchmod(fd, mode) < 0) {
        throw failure(where, "fchmod()", libc.errno());
      }
    },
    afterBind() {
      if (libc.fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW) < 0) {
        const errno = libc.errno();
        try {
          // The socket just made, unless something replaced it already.
          if (lstatSync(path).isSocket()) unlinkSync(path);
        } catch {
          // Gone already.
        }
        throw failure(where, "chmod()", errno);
      }
    },
  });
  const bound = lstatSync(path, { bigint: true });
  return {
    fd,
    address: path,
    endpoint: { kind: "unix", path },
    close() {
      libc.close(fd);
      // Only the socket made here: a file that replaced it is not ours.
      try {
        const now = lstatSync(path, { bigint: true });
        if (now.isSocket() && now.dev === bound.dev && now.ino === bound.ino) {
          unlinkSync(path);
        }
      } catch {
        // Gone already.
      }
    },
  };
}

/**
 * Opens a listening stream socket at `target` (`text` as the user wrote
 * it, for messages); a unix socket gets file mode `mode`.
 */
export async function openListeningSocket(
  target: ListenTarget,
  text: string,
  mode: number,
): Promise<ListeningSocket> {
  const where = `Cannot listen on ${text}`;
  if (target.kind === "tcp") return await openTcp(target, where);
  if (target.kind === "unix") return await openUnix(target.path, mode, text);
  const fd = bindAndListen(where, AF_UNIX, unixSockaddr(`@${target.name}`));
  return {
    fd,
    address: `@${target.name}`,
    endpoint: undefined,
    close: () => sys.libc().close(fd),
  };
}
