// The socket addresses that bind(), connect() and sendto() take, built from
// their text. socket_info.ts reads the ones the kernel gives back.

import { isIPv4, isIPv6 } from "node:net";
import { AF_INET, AF_INET6, AF_UNIX, SUN_PATH_MAX } from "./_linux.ts";

/**
 * A sockaddr_un for a path, or for an abstract name written `@name`. A path
 * keeps its terminating NUL, as libsystemd sends it; an abstract name starts
 * with a NUL and has none after it, since every byte of it is the name.
 */
export function unixSockaddr(path: string): Uint8Array {
  const abstract = path.startsWith("@");
  const bytes = new TextEncoder().encode(abstract ? path.slice(1) : path);
  if (bytes.length > SUN_PATH_MAX) {
    throw new RangeError(
      `A unix socket path holds at most ${SUN_PATH_MAX} bytes: ${path}`,
    );
  }
  const address = new Uint8Array(2 + 1 + bytes.length);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(bytes, abstract ? 3 : 2);
  return address;
}

/**
 * A sockaddr_in for an IPv4 address, or a sockaddr_in6 for an IPv6 one; an
 * IPv4 address for an IPv6 socket (`family` "ipv6") takes its IPv4-mapped
 * form, `::ffff:1.2.3.4`. `host` is an IP address, already resolved.
 */
export function inetSockaddr(
  host: string,
  port: number,
  family: "ipv4" | "ipv6" = isIPv6(host) ? "ipv6" : "ipv4",
): Uint8Array {
  if (family === "ipv4") {
    const address = new Uint8Array(16);
    const view = new DataView(address.buffer);
    view.setUint16(0, AF_INET, true);
    view.setUint16(2, port); // network byte order, as is the address
    address.set(host.split(".").map(Number), 4);
    return address;
  }
  const address = new Uint8Array(28);
  const view = new DataView(address.buffer);
  view.setUint16(0, AF_INET6, true);
  view.setUint16(2, port);
  ipv6Groups(isIPv4(host) ? `::ffff:${host}` : host).forEach((group, index) =>
    view.setUint16(8 + index * 2, group)
  );
  return address;
}

/** The eight 16-bit groups of an IPv6 address (`::`, a dotted IPv4 tail). */
function ipv6Groups(text: string): number[] {
  const hex = text.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_, a, b, c, d) =>
      `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  const groups = (part: string | undefined) =>
    part ? part.split(":").map((group) => parseInt(group, 16)) : [];
  const [head, tail] = hex.split("::");
  const left = groups(head);
  if (tail === undefined) return left;
  const right = groups(tail);
  return [
    ...left,
    ...new Array<number>(8 - left.length - right.length).fill(0),
    ...right,
  ];
}
