// A datagram socket over a passed fd through the system calls, for what
// node:dgram cannot take: a UDP socket on Deno (its bind({ fd }) throws
// "Unsupported fd type") and a unix datagram socket on both runtimes (node:dgram
// knows UDP only). It offers the part of node:dgram's Socket a service needs:
// "message", "error" and "close" events, send(), address() and close().
//
// Receiving: poll() off the main thread (FdPoller), then recvmsg() with
// MSG_DONTWAIT until the socket is empty. Sending: sendmsg() with
// MSG_DONTWAIT, waiting for POLLOUT when the socket's buffer is full.

import { Buffer } from "node:buffer";
import { lookup } from "node:dns/promises";
import { EventEmitter } from "node:events";
import { isIPv4, isIPv6 } from "node:net";
import { EAGAIN, EINTR, systemCallError } from "./_errno.ts";
import { FdPoller } from "./_fd_poller.ts";
import type { Libc, Reception } from "./_sys.common.ts";
import { parseAddress, type SocketAddress } from "./socket_info.ts";
import { inetSockaddr, unixSockaddr } from "./_sockaddr.ts";
import {
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_PEEK,
  MSG_TRUNC,
  POLLIN,
  POLLOUT,
} from "./_linux.ts";

// sockaddr_storage.
const ADDRESS_SIZE = 128;

/** Where a datagram came from, as node:dgram's "message" event gives it. */
export interface DatagramRemoteInfo {
  /** The sender's IP address, or its unix socket path (`""` if unnamed). */
  address: string;
  /** `IPv4`, `IPv6`, or `unix` for a unix datagram socket. */
  family: "IPv4" | "IPv6" | "unix";
  /** The sender's port; 0 for a unix socket. */
  port: number;
  /** The datagram's size in bytes. */
  size: number;
}

/** A socket's own address, as node:dgram's `address()` gives it. */
export interface DatagramAddress {
  /** The IP address, or the unix socket path. */
  address: string;
  /** `IPv4`, `IPv6` or `unix`. */
  family: string;
  /** The port; 0 for a unix socket. */
  port: number;
}

function remoteInfo(address: SocketAddress, size: number): DatagramRemoteInfo {
  if (address.family === "ipv4" || address.family === "ipv6") {
    const family = address.family === "ipv4" ? "IPv4" : "IPv6";
    return { address: address.host, family, port: address.port, size };
  }
  // A unix sender; a socket of this kind has no sender of another family.
  const path = address.family === "unix" ? address.path : "";
  return { address: path, family: "unix", port: 0, size };
}

interface Outgoing {
  data: Uint8Array;
  port: number;
  host: string;
  callback: ((error: Error | null, bytes: number) => void) | undefined;
}

/**
 * A datagram socket on an fd (UDP or unix), with node:dgram's events and the
 * methods a service needs. It owns the fd: close() closes it.
 */
export class FdDatagramSocket extends EventEmitter {
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #local: SocketAddress;
  readonly #poller: FdPoller;
  readonly #queue: Outgoing[] = [];
  #receiving = false;
  #sending = false;
  #closed = false;

  /**
   * @param libc The system calls.
   * @param fd A datagram socket, UDP or unix.
   * @param local Its address, as socketInfo() read it.
   */
  constructor(libc: Libc, fd: number, local: SocketAddress) {
    super();
    this.#libc = libc;
    this.#fd = fd;
    this.#local = local;
    this.#poller = new FdPoller(libc, fd);
    // Read only once someone listens: until then the datagrams wait in the
    // socket (the one that started the service among them), none is lost.
    this.on("newListener", (event: string | symbol) => {
      if (event !== "message" || this.#receiving) return;
      this.#receiving = true;
      // "newListener" comes before the listener is added.
      queueMicrotask(() => void this.#receive());
    });
  }

  async #receive(): Promise<void> {
    while (!this.#closed) {
      let received: boolean;
      do {
        received = this.#receiveOne();
      } while (received && !this.#closed);
      if (this.#closed) return;
      if ((await this.#poller.wait(POLLIN)) === undefined) return;
    }
  }

  /** Reads and emits one datagram; false when the socket is empty. */
  #receiveOne(): boolean {
    // The size first (MSG_TRUNC returns a datagram's real length), so that
    // each message gets a buffer of its own size and none is cut short.
    const probe: Reception = {
      address: new Uint8Array(0),
      data: new Uint8Array(0),
      control: new Uint8Array(0),
      addressLength: 0,
      controlLength: 0,
      flags: 0,
    };
    const size = this.#libc.recvmsg(
      this.#fd,
      probe,
      MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT,
    );
    if (size < 0) return this.#receiveFailed(this.#libc.errno());
    const data = Buffer.allocUnsafe(size);
    const message: Reception = {
      address: new Uint8Array(ADDRESS_SIZE),
      data,
      control: new Uint8Array(0),
      addressLength: 0,
      controlLength: 0,
      flags: 0,
    };
    const length = this.#libc.recvmsg(this.#fd, message, MSG_DONTWAIT);
    if (length < 0) return this.#receiveFailed(this.#libc.errno());
    const sender = parseAddress(
      message.address.subarray(
        0,
        Math.min(message.addressLength, ADDRESS_SIZE),
      ),
    );
    this.emit("message", data.subarray(0, length), remoteInfo(sender, length));
    return true;
  }

  #receiveFailed(errno: number): boolean {
    if (errno !== EAGAIN && errno !== EINTR) {
      // As node:dgram reports a failed receive (an ICMP error queued on a
      // connected UDP socket): an "error" event, and it goes on.
      this.emit("error", systemCallError("recvmsg", errno));
    }
    return false;
  }

  /**
   * Sends one datagram to `address`: an IP address or host name and `port`,
   * or for a unix socket a path (`@name` for an abstract one; `port` is
   * ignored, 0 in what "message" reports). `socket.send(reply, remote.port,
   * remote.address)` answers a sender.
   *
   * @param message The payload.
   * @param port The destination port.
   * @param address The destination host or path.
   * @param callback Called with `null` and the byte count once sent, or with
   * the error; without it, an error is emitted as "error".
   * @throws {Error} `ERR_SOCKET_DGRAM_NOT_RUNNING` after close().
   */
  send(
    message: string | Uint8Array,
    port: number,
    address: string,
    callback?: (error: Error | null, bytes: number) => void,
  ): void {
    if (this.#closed) throw notRunning();
    const data = typeof message === "string" ? Buffer.from(message) : message;
    this.#queue.push({ data, port, host: address, callback });
    if (!this.#sending) {
      this.#sending = true;
      void this.#sendQueued();
    }
  }

  async #sendQueued(): Promise<void> {
    let outgoing;
    while ((outgoing = this.#queue.shift()) !== undefined) {
      let result: Error | number;
      try {
        result = await this.#sendOne(outgoing);
      } catch (error) {
        result = error instanceof Error ? error : new Error(String(error));
      }
      const { callback } = outgoing;
      if (callback !== undefined) {
        if (typeof result === "number") callback(null, result);
        else callback(result, 0);
      } else if (typeof result !== "number") {
        this.emit("error", result);
      }
    }
    this.#sending = false;
  }

  async #sendOne(outgoing: Outgoing): Promise<number> {
    const destination = await this.#destination(outgoing.host, outgoing.port);
    for (;;) {
      if (this.#closed) throw notRunning();
      const sent = this.#libc.sendmsg(
        this.#fd,
        {
          address: destination,
          data: outgoing.data,
          control: new Uint8Array(0),
        },
        MSG_DONTWAIT | MSG_NOSIGNAL,
      );
      if (sent >= 0) return sent;
      const errno = this.#libc.errno();
      if (errno !== EAGAIN && errno !== EINTR) {
        throw systemCallError(
          "send",
          errno,
          ` ${outgoing.host}${
            this.#local.family === "unix" ? "" : `:${outgoing.port}`
          }`,
        );
      }
      // The socket's send buffer is full (a unix datagram peer that does not
      // read): wait until it has room.
      if ((await this.#poller.wait(POLLOUT)) === undefined) {
        throw notRunning();
      }
    }
  }

  async #destination(host: string, port: number): Promise<Uint8Array> {
    const family = this.#local.family;
    if (family === "unix") return unixSockaddr(host);
    if (family !== "ipv4" && family !== "ipv6") {
      throw new TypeError("Cannot send on a socket of this address family");
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`A destination port is 1 to 65535, not ${port}`);
    }
    const ip = isIPv4(host) || isIPv6(host)
      ? host
      : (await lookup(host, { family: family === "ipv4" ? 4 : 6 })).address;
    if (family === "ipv4" && !isIPv4(ip)) {
      throw new TypeError(
        `Cannot send to the IPv6 address ${ip} from an IPv4 socket`,
      );
    }
    return inetSockaddr(ip, port, family);
  }

  /**
   * The socket's own address.
   *
   * @returns Its IP address, family and port, or its unix path.
   */
  address(): DatagramAddress {
    const local = this.#local;
    if (local.family === "unix") {
      return { address: local.path, family: "unix", port: 0 };
    }
    if (local.family === "other") {
      return { address: "", family: `family ${local.familyNumber}`, port: 0 };
    }
    return {
      address: local.host,
      family: local.family === "ipv4" ? "IPv4" : "IPv6",
      port: local.port,
    };
  }

  /**
   * Stops receiving, waits for the polling thread to let go of the fd, then
   * closes it and emits "close". Sends not yet made fail.
   *
   * @param callback Called once closed, as a "close" listener.
   * @returns This socket.
   * @throws {Error} `ERR_SOCKET_DGRAM_NOT_RUNNING` when already closed.
   */
  close(callback?: () => void): this {
    if (this.#closed) throw notRunning();
    this.#closed = true;
    if (callback !== undefined) this.once("close", callback);
    void this.#poller.stop().then(() => {
      this.#libc.close(this.#fd);
      this.emit("close");
    });
    return this;
  }
}

function notRunning(): Error {
  return Object.assign(new Error("Not running"), {
    code: "ERR_SOCKET_DGRAM_NOT_RUNNING",
  });
}
