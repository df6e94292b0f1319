// Endpoint URIs as the connector the seed comes from writes them in its TOML
// files (SPEC section 4): http://host[:port], unix:///path, fd://N, fd://name;
// and udp://host:port for datagram sockets.

import { isIPv4, isIPv6 } from "node:net";
import { ActivationError } from "./errors.ts";
import { SD_LISTEN_FDS_START } from "./listen_env.ts";
import { SUN_PATH_MAX } from "./_linux.ts";

/** A TCP endpoint: `http://host[:port]`. */
export interface HttpEndpoint {
  /** The discriminant. */
  readonly kind: "http";
  /** A name, an IPv4 address or an IPv6 address (without brackets). */
  readonly host: string;
  /** The port, 80 when the URI gives none. */
  readonly port: number;
}

/** A UDP endpoint: `udp://host:port`, for `listenDatagram()`. */
export interface UdpEndpoint {
  /** The discriminant. */
  readonly kind: "udp";
  /** A name, an IPv4 address or an IPv6 address (without brackets). */
  readonly host: string;
  /** The port: a UDP URI always names it. */
  readonly port: number;
}

/** A unix socket endpoint: `unix:///absolute/path`. */
export interface UnixEndpoint {
  /** The discriminant. */
  readonly kind: "unix";
  /** The absolute path of the socket file. */
  readonly path: string;
}

/** A passed fd by number: `fd://3`. */
export interface FdEndpoint {
  /** The discriminant. */
  readonly kind: "fd";
  /** The fd number, 3 or more. */
  readonly fd: number;
}

/** A passed fd by name: `fd://web` (its `FileDescriptorName=`). */
export interface FdNameEndpoint {
  /** The discriminant. */
  readonly kind: "fdname";
  /** The name, as in `LISTEN_FDNAMES`. */
  readonly name: string;
}

/** Where to listen or connect, as parsed from an endpoint URI. */
export type Endpoint =
  | HttpEndpoint
  | UdpEndpoint
  | UnixEndpoint
  | FdEndpoint
  | FdNameEndpoint;

const DEFAULT_HTTP_PORT = 80;
// systemd's fdname_is_valid(): at most 255 characters.
const FDNAME_MAX = 255;
const FD_MAX = 2 ** 31 - 1;
// RFC 3986 reg-name characters we accept in a host name (no percent-encoding:
// a host name is looked up as written).
const HOST_NAME = /^[a-z0-9]([a-z0-9._~-]*)$/i;
// What a URI may hold unencoded in a path or an fd name (RFC 3986 pchar less
// ":" for names, which systemd forbids anyway, and less "%").
const SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=@/]/;
// Half a surrogate pair: a UTF-16 code unit that no code point stands for.
const LONE_SURROGATE = /\p{Cs}/u;

function invalid(uri: string, reason: string): ActivationError {
  return new ActivationError(
    "INVALID_ENDPOINT",
    `Invalid endpoint ${JSON.stringify(uri)}: ${reason}`,
  );
}

function decode(uri: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid(uri, `bad percent-encoding in ${JSON.stringify(text)}`);
  }
}

function encode(text: string, safe: RegExp): string {
  let out = "";
  for (const char of text) {
    if (safe.test(char)) {
      out += char;
      continue;
    }
    for (const byte of new TextEncoder().encode(char)) {
      out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}

function parseHttp(uri: string, authority: string, path: string): HttpEndpoint {
  if (path !== "" && path !== "/") {
    throw invalid(uri, "an http endpoint has no path");
  }
  let host: string;
  let rest: string;
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    if (end < 0) throw invalid(uri, "unclosed [ in the host");
    host = authority.slice(1, end);
    rest = authority.slice(end + 1);
    if (!isIPv6(host) || host.includes("%")) {
      throw invalid(uri, `${JSON.stringify(host)} is not an IPv6 address`);
    }
  } else {
    const colon = authority.indexOf(":");
    host = colon < 0 ? authority : authority.slice(0, colon);
    rest = colon < 0 ? "" : authority.slice(colon);
    if (host === "") throw invalid(uri, "the host is empty");
    if (!isIPv4(host) && !HOST_NAME.test(host)) {
      throw invalid(uri, `${JSON.stringify(host)} is not a host name`);
    }
  }
  let port = DEFAULT_HTTP_PORT;
  if (rest !== "") {
    if (!/^:[0-9]{1,5}$/.test(rest) || Number(rest.slice(1)) > 65535) {
      throw invalid(uri, `${JSON.stringify(rest.slice(1))} is not a port`);
    }
    port = Number(rest.slice(1));
  }
  return { kind: "http", host: host.toLowerCase(), port };
}

// udp://host:port: the host and port of an http URI, with no default port.
function parseUdp(uri: string, authority: string, path: string): UdpEndpoint {
  if (path !== "" && path !== "/") {
    throw invalid(uri, "a udp endpoint has no path");
  }
  if (!/:[0-9]*$/.test(authority) || authority.endsWith("]")) {
    throw invalid(uri, "a udp endpoint names its port: udp://host:port");
  }
  const { host, port } = parseHttp(uri, authority, "");
  return { kind: "udp", host, port };
}

/** Why `path` cannot be a unix socket path, or undefined if it can. */
function unixPathProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return "the socket path must be absolute";
  if (path.endsWith("/")) {
    return "the socket path ends with / and names no file";
  }
  if (path.includes("\0")) return "the path holds a NUL byte";
  // A Linux path is bytes, written here as UTF-8: half a surrogate pair has
  // no UTF-8 form, and encoders turn it into U+FFFD, another file's name.
  const surrogate = LONE_SURROGATE.exec(path)?.[0];
  if (surrogate !== undefined) {
    return `the path holds a lone UTF-16 surrogate (U+${
      surrogate.charCodeAt(0).toString(16).toUpperCase()
    }), which no file name can hold`;
  }
  if (new TextEncoder().encode(path).length > SUN_PATH_MAX) {
    return `the path is longer than ${SUN_PATH_MAX} bytes`;
  }
  return undefined;
}

function parseUnix(uri: string, authority: string, path: string): UnixEndpoint {
  if (authority !== "") {
    throw invalid(
      uri,
      "a unix endpoint is unix:///absolute/path, with no host",
    );
  }
  const decoded = decode(uri, path);
  const problem = unixPathProblem(decoded);
  if (problem !== undefined) throw invalid(uri, problem);
  return { kind: "unix", path: decoded };
}

function parseFd(
  uri: string,
  authority: string,
  path: string,
): FdEndpoint | FdNameEndpoint {
  if (path !== "") throw invalid(uri, "an fd endpoint has no path");
  if (authority === "") throw invalid(uri, "the fd number or name is empty");
  if (/^[0-9]+$/.test(authority)) {
    const fd = Number(authority);
    if (fd < SD_LISTEN_FDS_START || fd > FD_MAX) {
      throw invalid(
        uri,
        `fd ${authority} is not a passed fd (they start at ${SD_LISTEN_FDS_START})`,
      );
    }
    return { kind: "fd", fd };
  }
  const name = decode(uri, authority);
  const problem = fdNameProblem(name);
  if (problem !== undefined) {
    throw invalid(uri, `the fd name ${problem} (FileDescriptorName=)`);
  }
  return { kind: "fdname", name };
}

/** @internal Why `name` is not a valid fd name, or `undefined` when it is. */
export function fdNameProblem(name: string): string | undefined {
  // systemd's fdname_is_valid() (sd_listen_fds(3), FileDescriptorName= in
  // systemd.socket(5)); an empty name could never be asked for.
  if (name === "") return "is empty";
  if (!/^[\x20-\x7e]*$/.test(name) || name.includes(":")) {
    return "is not printable ASCII without ':'";
  }
  if (name.length > FDNAME_MAX) return `is over ${FDNAME_MAX} characters`;
  return undefined;
}

/**
 * Parses an endpoint URI: `http://host[:port]` (port 80 by default; an IPv6
 * host in brackets, `http://[::1]:8080`), `udp://host:port` (a datagram
 * endpoint, for `listenDatagram()`; IPv6 in brackets too),
 * `unix:///absolute/path`, `fd://3`
 * (a passed fd by number, 3 or more) or `fd://web` (a passed fd by its
 * `FileDescriptorName=`). Percent-encoding is decoded in unix paths and fd
 * names.
 *
 * @param uri The URI, as written in a configuration file.
 * @returns The endpoint as a plain record.
 * @throws {ActivationError} `INVALID_ENDPOINT`, quoting the URI, for an
 * unknown scheme, a relative unix path, user info, a query, a fragment, a bad
 * port, host or fd name.
 *
 * @example Parsing and formatting back
 * ```ts
 * import { formatEndpoint, parseEndpoint } from "@socket-activation/socket-activation";
 *
 * const endpoint = parseEndpoint("http://[::1]:8080");
 * console.log(endpoint); // { kind: "http", host: "::1", port: 8080 }
 * console.log(formatEndpoint(endpoint)); // "http://[::1]:8080"
 * ```
 */
export function parseEndpoint(uri: string): Endpoint {
  if (typeof uri !== "string") {
    throw new TypeError(`An endpoint URI must be a string, not ${typeof uri}`);
  }
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(.*)$/s.exec(
    uri,
  );
  if (match === null) {
    throw invalid(
      uri,
      "expected scheme://…, with scheme http, udp, unix or fd",
    );
  }
  const [, scheme, authority, path, tail] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (tail.startsWith("?")) throw invalid(uri, "endpoints take no query");
  if (tail.startsWith("#")) throw invalid(uri, "endpoints take no fragment");
  if (authority.includes("@")) {
    throw invalid(uri, "endpoints take no user info");
  }
  switch (scheme.toLowerCase()) {
    case "http":
      return parseHttp(uri, authority, path);
    case "udp":
      return parseUdp(uri, authority, path);
    case "unix":
      return parseUnix(uri, authority, path);
    case "fd":
      return parseFd(uri, authority, path);
    default:
      throw invalid(
        uri,
        `unknown scheme ${
          JSON.stringify(scheme)
        }, expected http, udp, unix or fd`,
      );
  }
}

/**
 * Formats an endpoint as its canonical URI, the one
 * {@linkcode parseEndpoint} reads back to the same record: the default port
 * left out, host names in lower case, IPv6 hosts in brackets, and characters
 * that a URI cannot hold percent-encoded.
 *
 * @param endpoint The endpoint.
 * @returns Its URI.
 * @throws {ActivationError} `INVALID_ENDPOINT` for a record that no URI
 * describes (an fd below 3, a relative path, a bad name or port).
 *
 * @example A unix socket
 * ```ts
 * import { formatEndpoint } from "@socket-activation/socket-activation";
 *
 * console.log(formatEndpoint({ kind: "unix", path: "/run/app.sock" })); // "unix:///run/app.sock"
 * ```
 */
export function formatEndpoint(endpoint: Endpoint): string {
  let uri: string;
  switch (endpoint.kind) {
    case "http": {
      const host = isIPv6(endpoint.host) ? `[${endpoint.host}]` : endpoint.host;
      const port = endpoint.port === DEFAULT_HTTP_PORT
        ? ""
        : `:${endpoint.port}`;
      uri = `http://${host.toLowerCase()}${port}`;
      break;
    }
    case "udp": {
      const host = isIPv6(endpoint.host) ? `[${endpoint.host}]` : endpoint.host;
      uri = `udp://${host.toLowerCase()}:${endpoint.port}`;
      break;
    }
    case "unix": {
      // Checked before encoding, which would write a lone surrogate as the
      // bytes of U+FFFD and so name another path.
      const problem = unixPathProblem(endpoint.path);
      if (problem !== undefined) {
        throw invalid(`unix://${endpoint.path}`, problem);
      }
      uri = `unix://${encode(endpoint.path, SAFE)}`;
      break;
    }
    case "fd":
      uri = `fd://${endpoint.fd}`;
      break;
    case "fdname": {
      // A name of digits alone would read back as an fd number.
      const encoded = encode(endpoint.name, /[A-Za-z0-9\-._~!$&'()*+,;=]/);
      uri = /^[0-9]+$/.test(encoded)
        ? `fd://%3${encoded[0]}${encoded.slice(1)}`
        : `fd://${encoded}`;
      break;
    }
    default:
      throw new TypeError(
        `Unknown endpoint kind ${
          JSON.stringify((endpoint as { kind: unknown }).kind)
        }`,
      );
  }
  // Read it back, so that a record no URI describes (fd 2, a relative path,
  // port 70000) is refused rather than formatted into something else.
  if (!sameEndpoint(parseEndpoint(uri), endpoint)) {
    throw invalid(uri, `it does not describe ${JSON.stringify(endpoint)}`);
  }
  return uri;
}

function sameEndpoint(parsed: Endpoint, given: Endpoint): boolean {
  switch (parsed.kind) {
    case "http":
      return given.kind === "http" && parsed.port === given.port &&
        parsed.host === given.host.toLowerCase();
    case "udp":
      return given.kind === "udp" && parsed.port === given.port &&
        parsed.host === given.host.toLowerCase();
    case "unix":
      return given.kind === "unix" && parsed.path === given.path;
    case "fd":
      return given.kind === "fd" && parsed.fd === given.fd;
    case "fdname":
      return given.kind === "fdname" && parsed.name === given.name;
  }
}
