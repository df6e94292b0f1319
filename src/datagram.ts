// Datagram sockets (ListenDatagram=): the one systemd passed first, as
// listen() prefers a passed stream socket, else a UDP socket bound here.

import type { Buffer } from "node:buffer";
import { createSocket, type Socket as NodeDatagramSocket } from "node:dgram";
import { isIPv6 } from "node:net";
import {
  type DatagramAddress,
  type DatagramRemoteInfo,
  FdDatagramSocket,
} from "./_datagram_fd.ts";
import { sys } from "./_sys.deno.ts";
import { unsetListenEnv } from "./_activate.ts";
import { codeOf, systemError } from "./_unix_socket.ts";
import { whenListening } from "./_when_listening.ts";
import type { Endpoint } from "./endpoint.ts";
import { ActivationError } from "./errors.ts";
import {
  checkSupported,
  describeSocket,
  findPassedFd,
  inspectPassedFd,
  normalise,
  pickSystemdSocket,
} from "./listen.ts";
import type { ListenFd } from "./listen_fds.ts";
import type { SocketInfo } from "./socket_info.ts";

export type { DatagramAddress, DatagramRemoteInfo };

/**
 * What {@linkcode listenDatagram} returns: node:dgram's `Socket` where the
 * runtime can make one, else a socket with the same events and methods, as
 * far as this interface goes.
 */
export interface DatagramSocket {
  /**
   * A datagram arrived: its payload and sender. A listener added after the
   * socket was made still gets every datagram, the one that started the
   * service too, if it is added right after `await listenDatagram()`.
   */
  on(
    event: "message",
    listener: (message: Buffer, remote: DatagramRemoteInfo) => void,
  ): this;
  /** A receive or send failed (a send without a callback). */
  on(event: "error", listener: (error: Error) => void): this;
  /** The socket is closed. */
  on(event: "close", listener: () => void): this;
  /** As {@linkcode DatagramSocket.on}, once. */
  once(
    event: "message",
    listener: (message: Buffer, remote: DatagramRemoteInfo) => void,
  ): this;
  /** As {@linkcode DatagramSocket.on}, once. */
  once(event: "error", listener: (error: Error) => void): this;
  /** As {@linkcode DatagramSocket.on}, once. */
  once(event: "close", listener: () => void): this;
  /** Removes a listener. */
  off(
    event: "message" | "error" | "close",
    // deno-lint-ignore no-explicit-any
    listener: (...args: any[]) => void,
  ): this;
  /**
   * Sends one datagram to `address` and `port`; for a unix datagram socket,
   * `address` is the path and `port` is ignored, so that
   * `send(reply, remote.port, remote.address)` answers any sender.
   */
  send(
    message: string | Uint8Array,
    port: number,
    address: string,
    callback?: (error: Error | null, bytes: number) => void,
  ): void;
  /** The socket's own address. */
  address(): DatagramAddress;
  /** Closes the socket (and its fd); `callback` runs once closed. */
  close(callback?: () => void): this;
}

/** Options of {@linkcode listenDatagram}. */
export interface ListenDatagramOptions {
  /**
   * The socket name (`FileDescriptorName=`) to prefer among several passed
   * sockets, for `udp://` and `unix://` endpoints; a single passed socket is
   * used whatever its name. An `fd://name` endpoint uses its own name.
   */
  name?: string;
  /**
   * Remove the `LISTEN_*` variables once the socket is chosen, whatever the
   * outcome (errors included). Default: `false`.
   */
  unsetEnv?: boolean;
}

// The datagram socket on a passed fd: node:dgram's where the runtime can
// wrap it (Node, for UDP), else the system calls'.
async function adopt(
  info: SocketInfo,
  where: string,
): Promise<DatagramSocket> {
  const family = info.address.family;
  if (family === "ipv4" || family === "ipv6") {
    const socket = createSocket(family === "ipv4" ? "udp4" : "udp6");
    try {
      await bound(socket, { fd: info.fd });
      return socket;
    } catch (error) {
      // Deno 2.9's node:dgram takes no fd: "Unsupported fd type: UNKNOWN".
      if (codeOf(error) !== "ERR_INVALID_FD_TYPE") {
        throw systemError(
          "LISTEN_FAILED",
          `${where}: cannot receive on fd ${info.fd}`,
          error,
        );
      }
    }
  }
  return new FdDatagramSocket(sys.libc(), info.fd, info.address);
}

/** Binds a node:dgram socket; resolves once it listens. */
function bound(
  socket: NodeDatagramSocket,
  options: { fd: number } | { address: string; port: number },
): Promise<void> {
  return whenListening(
    socket,
    () => socket.bind({ exclusive: true, ...options }),
  );
}

function checkDatagram(fd: number, where: string): SocketInfo {
  const info = inspectPassedFd(fd, where);
  checkSupported(info, where);
  if (info.type !== "dgram") {
    throw new ActivationError(
      "UNSUITABLE_SOCKET",
      `${where}: fd ${fd} is ${
        describeSocket(info)
      }, not a datagram socket; listen() serves stream sockets`,
    );
  }
  return info;
}

/**
 * Makes a datagram socket for an endpoint, preferring a socket systemd
 * passed (`ListenDatagram=`), as {@linkcode listen} does for stream sockets:
 * - `fd://3` and `fd://name` use the passed fd with that number or name;
 * - for `udp://` and `unix://`, a passed socket is used when
 *   {@linkcode getSystemdSocket} picks one (`options.name` among several);
 * - a passed fd must be a UDP or unix datagram socket;
 * - otherwise `udp://host:port` binds UDP (an IPv6 address makes an IPv6
 *   socket; a host name is looked up as IPv4).
 *
 * The datagram that made systemd start the service waits in the socket and
 * is the first "message", provided the listener is added right after the
 * `await`.
 *
 * What it returns: node:dgram's `Socket` for a passed UDP socket on Node and
 * for a socket bound here; for a passed unix datagram socket (which
 * node:dgram does not know) and for a passed UDP socket on Deno (whose
 * node:dgram cannot take an fd), a socket with the same events ("message",
 * "error", "close") and methods (`send`, `address`, `close`) that receives
 * through the system calls: a poll() on a thread of its own, then
 * `recvmsg()`. That socket keeps the process running until it is closed; on
 * Node its poll() holds one of libuv's threadpool threads (4 by default,
 * `UV_THREADPOOL_SIZE`).
 *
 * On Deno this needs `--allow-env` and `--allow-ffi`, plus `--allow-net` to
 * bind UDP.
 *
 * @param endpoint `udp://host:port`, `unix:///path` (passed only), `fd://3`
 * or `fd://name`, or its record.
 * @param options The socket name to prefer; whether to unset `LISTEN_*`.
 * @returns The datagram socket, ready to receive.
 * @throws {ActivationError} `FD_NOT_PASSED` or `NAME_NOT_FOUND` for an
 * `fd://` endpoint systemd did not pass; `NOT_A_SOCKET` or
 * `UNSUITABLE_SOCKET` for a passed fd that is not a datagram socket;
 * `UNSUPPORTED` for a socket neither runtime can use (seqpacket, netlink)
 * and for a `unix://` endpoint systemd did not pass (binding unix datagram
 * sockets is not offered); `ADDRESS_IN_USE` or `LISTEN_FAILED` when binding
 * fails; `INVALID_ENDPOINT` for a bad URI or an `http://` one; the errors of
 * {@linkcode listenFds}.
 *
 * @tags allow-env, allow-ffi, allow-net
 *
 * @example Answering each datagram, on the socket systemd passed or on a port
 * ```ts ignore
 * import { listenDatagram } from "@socket-activation/socket-activation";
 *
 * const socket = await listenDatagram("udp://127.0.0.1:5300", { name: "echo" });
 * socket.on("message", (message, remote) => {
 *   socket.send(message, remote.port, remote.address);
 * });
 * ```
 */
export async function listenDatagram(
  endpoint: Endpoint | string,
  options: ListenDatagramOptions = {},
): Promise<DatagramSocket> {
  const [requested, uri] = normalise(endpoint);
  const where = `Cannot listen on ${uri}`;
  if (requested.kind === "http") {
    throw new ActivationError(
      "INVALID_ENDPOINT",
      `${where}: http:// names a stream endpoint; a datagram endpoint is udp://host:port`,
    );
  }
  let passed: ListenFd | undefined;
  try {
    passed = requested.kind === "fd" || requested.kind === "fdname"
      ? findPassedFd(requested, uri, "listen on")
      : pickSystemdSocket(options.name);
  } finally {
    if (options.unsetEnv) unsetListenEnv();
  }
  if (passed !== undefined) {
    const info = checkDatagram(
      passed.fd,
      requested.kind === "fd" || requested.kind === "fdname"
        ? where
        : `${where} through the socket systemd passed`,
    );
    return await adopt(info, where);
  }
  if (requested.kind === "unix") {
    throw new ActivationError(
      "UNSUPPORTED",
      `${where}: systemd passed no socket, and binding a unix datagram socket is not supported (let systemd pass it: ListenDatagram=${requested.path})`,
    );
  }
  // fd:// was handled above.
  const { host, port } = requested as { host: string; port: number };
  // The net permission covers UDP as it does TCP.
  if (!sys.mayBindTcp(host, port)) {
    throw new ActivationError(
      "LISTEN_FAILED",
      `${where}: run Deno with --allow-net to bind ${host}:${port}`,
    );
  }
  const socket = createSocket(isIPv6(host) ? "udp6" : "udp4");
  try {
    await bound(socket, { address: host, port });
  } catch (error) {
    socket.close();
    throw systemError(
      codeOf(error) === "EADDRINUSE" ? "ADDRESS_IN_USE" : "LISTEN_FAILED",
      `${where}: cannot bind`,
      error,
    );
  }
  return socket;
}
