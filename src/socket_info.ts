// What an fd is, as libsystemd's sd_is_socket() family asks it, in one call:
// an adopted fd must be checked before a server trusts it, since a LISTEN_FDS
// larger than what was passed points at the runtime's own fds (SPEC section 5).

import { sys } from "./_sys.deno.ts";
import { type RawFdInfo, readFdInfo } from "./_sys.common.ts";
import { EBADF, ENOTSOCK } from "./_errno.ts";
import { ActivationError } from "./errors.ts";
import { AF_INET, AF_INET6, AF_UNIX } from "./_linux.ts";

/** A socket's local address, as getsockname() gives it. */
export type SocketAddress =
  | {
    /** An AF_UNIX socket. */
    readonly family: "unix";
    /**
     * The path; `@name` for the abstract namespace; `""` for an unnamed
     * socket.
     */
    readonly path: string;
  }
  | {
    /** An AF_INET or AF_INET6 socket. */
    readonly family: "ipv4" | "ipv6";
    /** The address, IPv6 in its RFC 5952 form, without brackets. */
    readonly host: string;
    /** The port. */
    readonly port: number;
  }
  | {
    /** Another address family (netlink, vsock, …). */
    readonly family: "other";
    /** Its AF_* number. */
    readonly familyNumber: number;
  };

/** What a socket fd is: the `sd_is_socket*()` questions answered at once. */
export interface SocketInfo {
  /** The fd asked about. */
  readonly fd: number;
  /** SO_TYPE: `stream` (TCP, unix stream), `dgram`, `seqpacket` or `other`. */
  readonly type: "stream" | "dgram" | "seqpacket" | "other";
  /** SO_ACCEPTCONN: whether `listen()` was called on it. */
  readonly listening: boolean;
  /** The local address. */
  readonly address: SocketAddress;
  /**
   * The peer's address (getpeername()), for a connected socket only: the
   * connection an `Accept=yes` unit passes, or a socket pair (an unnamed
   * unix address). Absent for a listening or unconnected socket.
   */
  readonly peer?: SocketAddress;
}

const SOCKET_TYPES: Readonly<Record<number, SocketInfo["type"]>> = {
  1: "stream",
  2: "dgram",
  5: "seqpacket",
};

// What fstat()'s file type says an fd is, for the error message.
const FILE_TYPES: Readonly<Record<number, string>> = {
  0o140000: "a socket",
  0o010000: "a FIFO or pipe",
  0o020000: "a character device",
  0o040000: "a directory",
  0o060000: "a block device",
  0o100000: "a regular file",
  0o120000: "a symbolic link",
};

function unixPath(address: Uint8Array): string {
  const path = address.subarray(2);
  if (path.length === 0) return "";
  if (path[0] === 0) {
    return "@" + new TextDecoder().decode(path.subarray(1));
  }
  const end = path.indexOf(0);
  return new TextDecoder().decode(end < 0 ? path : path.subarray(0, end));
}

// RFC 5952: lower-case hex, leading zeros dropped, the longest run of two or
// more zero groups (the first of equals) as "::", IPv4-mapped as dotted quad.
function formatIpv6(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const groups = Array.from({ length: 8 }, (_, i) => view.getUint16(i * 2));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes.subarray(12, 16).join(".")}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8;) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) {
      [bestStart, bestLength] = [start, end - start];
    }
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${
    hex.slice(bestStart + bestLength).join(":")
  }`;
}

/** @internal A sockaddr, cut to its length, as a {@linkcode SocketAddress}. */
export function parseAddress(address: Uint8Array): SocketAddress {
  if (address.length < 2) return { family: "other", familyNumber: 0 };
  const view = new DataView(address.buffer, address.byteOffset);
  const family = view.getUint16(0, true);
  if (family === AF_UNIX) return { family: "unix", path: unixPath(address) };
  if (family === AF_INET && address.length >= 8) {
    return {
      family: "ipv4",
      host: address.subarray(4, 8).join("."),
      port: view.getUint16(2),
    };
  }
  if (family === AF_INET6 && address.length >= 24) {
    return {
      family: "ipv6",
      host: formatIpv6(address.subarray(8, 24)),
      port: view.getUint16(2),
    };
  }
  return { family: "other", familyNumber: family };
}

/** @internal What a file of fstat() mode `mode` is: `a FIFO or pipe`, … */
export function describeFileType(mode: number): string {
  return FILE_TYPES[mode & 0o170000] ?? "a file of an unknown type";
}

/**
 * @internal Interprets what the kernel said of `fd`; `peer` is the sockaddr
 * getpeername() gave, if it succeeded.
 */
export function interpretFdInfo(
  fd: number,
  raw: RawFdInfo,
  peer?: Uint8Array,
): SocketInfo {
  if (!raw.open) {
    throw new ActivationError("NOT_A_SOCKET", `Fd ${fd} is not open`, {
      errno: EBADF,
    });
  }
  if (!raw.socket) {
    throw new ActivationError(
      "NOT_A_SOCKET",
      `Fd ${fd} is not a socket: it is ${describeFileType(raw.mode)}`,
      { errno: ENOTSOCK },
    );
  }
  return {
    fd,
    type: SOCKET_TYPES[raw.type] ?? "other",
    listening: raw.listening,
    address: parseAddress(raw.address),
    ...(peer === undefined ? {} : { peer: parseAddress(peer) }),
  };
}

// getpeername(): the peer of a connected socket, undefined otherwise
// (ENOTCONN).
function readPeer(fd: number): Uint8Array | undefined {
  const libc = sys.libc();
  const address = new Uint8Array(128);
  const length = new Uint32Array([address.length]);
  if (libc.getpeername(fd, address, length) < 0) return undefined;
  return address.slice(0, Math.min(length[0]!, address.length));
}

/**
 * Tells what a socket fd is: its type, whether it is listening, its local
 * address (family, path or host and port) and, for a connected socket, its
 * peer's — what libsystemd's `sd_is_socket()`, `sd_is_socket_inet()` and
 * `sd_is_socket_unix()` ask, in one call. Use it to check an fd before
 * serving on it: a listening socket (`Accept=no`), a connection
 * (`Accept=yes`: not listening, with a `peer`), or a datagram socket.
 *
 * Needs `--allow-ffi` on Deno; on Node it loads koffi.
 *
 * @param fd The fd, for example one returned by {@linkcode listenFds}.
 * @returns The socket's type, listening state, address and peer.
 * @throws {ActivationError} `NOT_A_SOCKET` when the fd is not open (errno
 * EBADF) or not a socket (errno ENOTSOCK; the message says what it is), and
 * `FFI_UNAVAILABLE` without the system calls.
 *
 * @tags allow-ffi
 *
 * @example Checking a passed socket before serving on it
 * ```ts ignore
 * import { listenFds, socketInfo } from "@socket-activation/socket-activation";
 *
 * for (const { fd, name } of listenFds()) {
 *   const info = socketInfo(fd);
 *   console.log(name, info.type, info.listening, info.address);
 * }
 * ```
 */
export function socketInfo(fd: number): SocketInfo {
  if (!Number.isInteger(fd) || fd < 0) {
    throw new RangeError(`An fd is a non-negative integer, not ${fd}`);
  }
  const raw = readFdInfo(sys.libc(), fd);
  return interpretFdInfo(
    fd,
    raw,
    raw.open && raw.socket && !raw.listening ? readPeer(fd) : undefined,
  );
}
