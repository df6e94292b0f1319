// The client side of an endpoint (SPEC section 4: "the same endpoint works
// as a client"): TCP, a unix socket, or a connected socket systemd passed.

import { connect as netConnect, Socket } from "node:net";
import { type Endpoint, formatEndpoint, parseEndpoint } from "./endpoint.ts";
import { ActivationError } from "./errors.ts";
import { describeSocket, findPassedFd, inspectPassedFd } from "./listen.ts";
import { systemError } from "./_unix_socket.ts";

function connected(
  options: { host: string; port: number } | { path: string },
  where: string,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let socket: Socket;
    try {
      socket = netConnect(options);
    } catch (error) {
      // Deno refuses a unix socket without --allow-net right here.
      reject(systemError("CONNECT_FAILED", where, error));
      return;
    }
    function onError(error: Error): void {
      socket.destroy();
      reject(systemError("CONNECT_FAILED", where, error));
    }
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

/**
 * Connects to an endpoint and returns the connected `node:net` socket:
 * `http://host:port` over TCP, `unix:///path` over a unix socket, and
 * `fd://3` or `fd://name` as a connected stream socket systemd passed (for
 * example with `Accept=yes`), checked with {@linkcode socketInfo} first.
 *
 * On Deno this needs `--allow-net` for TCP, `--allow-read --allow-write
 * --allow-net` for a unix socket, and `--allow-env --allow-ffi` for a passed
 * fd.
 *
 * @param endpoint The endpoint or its URI.
 * @returns The socket, once connected.
 * @throws {ActivationError} `CONNECT_FAILED` when the connection fails (the
 * errno says why: ECONNREFUSED, ENOENT, …); `FD_NOT_PASSED` or
 * `NAME_NOT_FOUND` for an `fd://` endpoint systemd did not pass;
 * `NOT_A_SOCKET` or `UNSUITABLE_SOCKET` for a passed fd that is not a
 * connected stream socket; `INVALID_ENDPOINT` for a bad URI.
 *
 * @tags allow-env, allow-ffi, allow-net, allow-read, allow-write
 *
 * @example Talking to a unix socket
 * ```ts ignore
 * import { connect } from "@socket-activation/socket-activation";
 *
 * const socket = await connect("unix:///run/echo/echo.sock");
 * socket.end("hello\n");
 * ```
 */
export async function connect(endpoint: Endpoint | string): Promise<Socket> {
  const parsed = typeof endpoint === "string"
    ? parseEndpoint(endpoint)
    : endpoint;
  const uri = typeof endpoint === "string" ? endpoint : formatEndpoint(parsed);
  const where = `Cannot connect to ${uri}`;
  switch (parsed.kind) {
    case "http":
      return await connected({ host: parsed.host, port: parsed.port }, where);
    case "unix":
      return await connected({ path: parsed.path }, where);
    case "udp":
      throw new ActivationError(
        "INVALID_ENDPOINT",
        `${where}: connect() makes stream connections, and udp:// names a datagram endpoint`,
      );
    case "fd":
    case "fdname": {
      const { fd } = findPassedFd(parsed, uri, "connect to")!;
      const info = inspectPassedFd(fd, where);
      const family = info.address.family;
      if (
        info.type !== "stream" || info.listening ||
        (family !== "unix" && family !== "ipv4" && family !== "ipv6")
      ) {
        throw new ActivationError(
          "UNSUITABLE_SOCKET",
          `${where}: fd ${fd} is ${
            describeSocket(info)
          }, not a connected stream socket (unix, IPv4 or IPv6)`,
        );
      }
      return new Socket({ fd, readable: true, writable: true });
    }
  }
}
