// The TOML file in which a service names its endpoints: a [listen] table for
// the sockets it serves on and a [connect] table for those it talks to
// (issue 3, item 2; the seed's connector reads the same URIs, SPEC section 4).

import { readFile } from "node:fs/promises";
import { parse, TomlError } from "smol-toml";
import { type KeyPositions, keyPositions } from "./_config_positions.ts";
import { describeErrno } from "./_errno.ts";
import {
  type Endpoint,
  fdNameProblem,
  formatEndpoint,
  parseEndpoint,
} from "./endpoint.ts";
import { ActivationError } from "./errors.ts";

/** One endpoint a service listens on, from the `[listen]` table. */
export interface ListenEntry {
  /** Where to listen when systemd passed no socket of that name. */
  readonly endpoint: Endpoint;
  /**
   * The file mode of a `unix://` socket the service binds itself, such as
   * `0o660`; when absent, `listen()` applies its default (`0o660`). Only
   * `unix://` endpoints take one.
   */
  readonly mode?: number;
  /**
   * The systemd socket name (`FileDescriptorName=`) to prefer when
   * activated; when absent, the entry's key.
   */
  readonly name?: string;
}

/** A service's endpoints, as read from its TOML configuration. */
export interface Config {
  /** The endpoints it listens on, by key (the socket name by default). */
  readonly listen: Readonly<Record<string, ListenEntry>>;
  /** The endpoints it connects to, by key. */
  readonly connect: Readonly<Record<string, Endpoint>>;
}

const TOP_LEVEL_KEYS = ["listen", "connect"] as const;
const LISTEN_KEYS = ["uri", "mode", "name"] as const;
const CONNECT_KEYS = ["uri"] as const;
const MODE_MAX = 0o777;
const BARE_KEY = /^[A-Za-z0-9_-]+$/;
// How deep inline tables and arrays may nest. A configuration needs one
// level (an entry's inline table); the limit leaves room for mistakes to get
// the schema's message, and keeps the parsers' recursion far from the stack's
// end however deep the text nests.
const MAX_NESTING = 32;

/** Where the text came from, to name it in messages. */
interface Source {
  /** The file path, for loadConfig(). */
  readonly path?: string;
  /** The key positions, for parseConfig(); none for stringifyConfig(). */
  readonly keys?: KeyPositions;
}

/** A key path as TOML writes it: `listen."my socket".mode`. */
function showPath(path: readonly string[]): string {
  return path.map((part) => BARE_KEY.test(part) ? part : tomlString(part))
    .join(".");
}

function configError(
  source: Source,
  where: string,
  detail: string,
  cause?: unknown,
): ActivationError {
  const head = source.path === undefined
    ? "Invalid config"
    : `Invalid config ${JSON.stringify(source.path)}`;
  return new ActivationError(
    "INVALID_CONFIG",
    `${head}: ${where}: ${detail}`,
    cause === undefined ? {} : { cause },
  );
}

/** `listen.admin.mode (line 4)`, or `(line unknown)` where it was not found. */
function located(source: Source, path: readonly string[]): string {
  if (source.keys === undefined) return showPath(path);
  const position = source.keys.get(path);
  const line = position === undefined
    ? "line unknown"
    : `line ${position.line}`;
  return `${showPath(path)} (${line})`;
}

function invalid(
  source: Source,
  path: readonly string[],
  detail: string,
  cause?: unknown,
): ActivationError {
  return configError(source, located(source, path), detail, cause);
}

function typeName(value: unknown): string {
  if (typeof value === "string") return "a string";
  if (typeof value === "boolean") return "a boolean";
  if (typeof value === "number" || typeof value === "bigint") return "a number";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  return "a table";
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function unknownKey(key: string, known: readonly string[]): string {
  const expected = known.length === 1
    ? known[0]
    : `${known.slice(0, -1).join(", ")} or ${known.at(-1)}`;
  const close = known.find((name) => editDistance(key, name) <= 2);
  return `unknown key, expected ${expected}${
    close === undefined ? "" : ` (did you mean ${close}?)`
  }`;
}

function checkKeys(
  source: Source,
  path: readonly string[],
  table: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const key of Object.keys(table)) {
    if (!known.includes(key)) {
      throw invalid(source, [...path, key], unknownKey(key, known));
    }
  }
}

function readEndpoint(
  source: Source,
  path: readonly string[],
  value: unknown,
): Endpoint {
  if (typeof value !== "string") {
    throw invalid(
      source,
      path,
      `expected a URI string, not ${typeName(value)}`,
    );
  }
  try {
    return parseEndpoint(value);
  } catch (error) {
    if (!(error instanceof ActivationError)) throw error;
    throw invalid(source, path, error.message, error);
  }
}

function modeText(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}

function readMode(
  source: Source,
  path: readonly string[],
  value: unknown,
): number {
  let mode: number;
  if (typeof value === "string") {
    // As systemd's SocketMode=: octal digits, with or without a leading 0.
    if (!/^[0-7]{1,4}$/.test(value)) {
      throw invalid(
        source,
        path,
        `${JSON.stringify(value)} is not an octal file mode, such as "0660"`,
      );
    }
    mode = parseInt(value, 8);
  } else if (typeof value === "number" && Number.isInteger(value)) {
    // TOML reads 0o660 and 432 to the same number: only the text tells
    // whether the integer was octal, and `mode = 660` must not pass as 0o1224.
    const raw = source.keys?.get(path)?.raw;
    if (source.keys !== undefined) {
      if (raw === undefined) {
        throw invalid(
          source,
          path,
          `cannot tell whether the integer ${value} is written in octal; write the mode as a string, such as "0660"`,
        );
      }
      if (!/^0o[0-7_]+$/.test(raw)) {
        const octal = /^[0-7]{1,4}$/.test(raw) ? raw.padStart(4, "0") : "0660";
        throw invalid(
          source,
          path,
          `${raw} is not an octal integer; write the mode as "${octal}" or 0o${
            octal.replace(/^0+(?=.)/, "")
          }`,
        );
      }
    }
    mode = value;
  } else {
    throw invalid(
      source,
      path,
      `expected an octal file mode string such as "0660", not ${
        typeName(value)
      }`,
    );
  }
  if (mode < 0 || mode > MODE_MAX) {
    throw invalid(
      source,
      path,
      `${
        typeof value === "string"
          ? JSON.stringify(value)
          : `0o${mode.toString(8)}`
      } is not a file mode from 0000 to 0777`,
    );
  }
  return mode;
}

function readName(
  source: Source,
  path: readonly string[],
  value: unknown,
): string {
  if (typeof value !== "string") {
    throw invalid(source, path, `expected a string, not ${typeName(value)}`);
  }
  const problem = fdNameProblem(value);
  if (problem !== undefined) {
    throw invalid(
      source,
      path,
      `${
        JSON.stringify(value)
      } ${problem}: not a socket name (FileDescriptorName=)`,
    );
  }
  return value;
}

function readListenEntry(
  source: Source,
  path: readonly string[],
  value: unknown,
): ListenEntry {
  const key = path.at(-1) ?? "";
  let entry: ListenEntry;
  if (typeof value === "string") {
    entry = { endpoint: readEndpoint(source, path, value) };
  } else if (isTable(value)) {
    checkKeys(source, path, value, LISTEN_KEYS);
    if (value.uri === undefined) {
      throw invalid(source, path, 'the table has no "uri"');
    }
    const endpoint = readEndpoint(source, [...path, "uri"], value.uri);
    entry = { endpoint };
    if (value.mode !== undefined) {
      const mode = readMode(source, [...path, "mode"], value.mode);
      if (endpoint.kind !== "unix") {
        throw invalid(
          source,
          [...path, "mode"],
          "a mode applies to unix:// endpoints only",
        );
      }
      entry = { ...entry, mode };
    }
    if (value.name !== undefined) {
      entry = {
        ...entry,
        name: readName(source, [...path, "name"], value.name),
      };
    }
  } else {
    throw invalid(
      source,
      path,
      `expected a URI string or a table with "uri", not ${typeName(value)}`,
    );
  }
  // The key is the socket name to prefer unless the entry names another.
  const problem = fdNameProblem(key);
  if (entry.name === undefined && problem !== undefined) {
    throw invalid(
      source,
      path,
      `the key is the socket name to prefer (FileDescriptorName=) and ${problem}; add name = "…"`,
    );
  }
  return entry;
}

function readConnectEntry(
  source: Source,
  path: readonly string[],
  value: unknown,
): Endpoint {
  if (isTable(value)) {
    checkKeys(source, path, value, CONNECT_KEYS);
    if (value.uri === undefined) {
      throw invalid(source, path, 'the table has no "uri"');
    }
    return readEndpoint(source, [...path, "uri"], value.uri);
  }
  if (typeof value !== "string") {
    throw invalid(
      source,
      path,
      `expected a URI string or a table with "uri", not ${typeName(value)}`,
    );
  }
  return readEndpoint(source, path, value);
}

function readSection<T>(
  source: Source,
  document: Record<string, unknown>,
  key: (typeof TOP_LEVEL_KEYS)[number],
  read: (source: Source, path: readonly string[], value: unknown) => T,
): Record<string, T> {
  const table = document[key];
  if (table === undefined) return {};
  if (!isTable(table)) {
    throw invalid(source, [key], `expected a table, not ${typeName(table)}`);
  }
  // fromEntries defines the keys, so "__proto__" stays a plain key.
  return Object.fromEntries(
    Object.entries(table).map((
      [name, value],
    ) => [name, read(source, [key, name], value)]),
  );
}

function readConfig(
  source: Source,
  document: Record<string, unknown>,
): Config {
  checkKeys(source, [], document, TOP_LEVEL_KEYS);
  return {
    listen: readSection(source, document, "listen", readListenEntry),
    connect: readSection(source, document, "connect", readConnectEntry),
  };
}

function parseWithSource(text: string, path?: string): Config {
  if (typeof text !== "string") {
    throw new TypeError(`A config must be a string, not ${typeof text}`);
  }
  const source: Source = path === undefined ? {} : { path };
  let document: Record<string, unknown>;
  try {
    document = parse(text, { maxDepth: MAX_NESTING });
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    // smol-toml's message is "Invalid TOML document: <what>" and a code
    // frame; the line and column say the rest.
    const first = error.message.split("\n")[0] ?? "";
    const what = /excessively nested/.test(first)
      ? `inline tables and arrays nest deeper than ${MAX_NESTING} levels`
      : first.replace(/^Invalid TOML document: /, "");
    throw configError(
      source,
      `line ${error.line}, column ${error.column}`,
      what === "" ? "syntax error" : what,
      error,
    );
  }
  return readConfig({ ...source, keys: keyPositions(text) }, document);
}

/**
 * Parses a service's TOML configuration: the `[listen]` table names the
 * endpoints it listens on, the `[connect]` table those it talks to. Both are
 * optional. A `[listen]` entry is an endpoint URI, or an inline table with
 * `uri`, `mode` (the file mode of a `unix://` socket it binds, an octal
 * string such as `"0660"` or a TOML octal integer such as `0o660`) and `name`
 * (the systemd socket name to prefer, by default the key). A `[connect]`
 * entry is a URI, or a table with `uri` alone. URIs are those of
 * {@linkcode parseEndpoint}. Any other key is an error, so that a typo
 * cannot fall back to a default unnoticed.
 *
 * @param text The TOML text.
 * @returns The endpoints, as plain records.
 * @throws {ActivationError} `INVALID_CONFIG`, with the key path and its line
 * (`Invalid config: listen.admin.mode (line 4): "0999" is not an octal file
 * mode, such as "0660"`), for a TOML syntax error (with line and column), an
 * unknown key, a value of the wrong type, a bad URI (quoting the endpoint's
 * own message), a bad mode or socket name.
 * @throws {TypeError} If `text` is not a string.
 *
 * @example Reading the endpoints of a service
 * ```ts
 * import { parseConfig } from "@socket-activation/socket-activation";
 *
 * const config = parseConfig(`
 * [listen]
 * web = "http://127.0.0.1:8080"
 * admin = { uri = "unix:///run/app/admin.sock", mode = "0600" }
 *
 * [connect]
 * database = "unix:///run/postgresql/.s.PGSQL.5432"
 * `);
 * console.log(config.listen.admin); // { endpoint: { kind: "unix", path: "/run/app/admin.sock" }, mode: 384 }
 * ```
 */
export function parseConfig(text: string): Config {
  return parseWithSource(text);
}

/**
 * Reads and parses a TOML configuration file, as {@linkcode parseConfig}
 * does. On Deno it needs `--allow-read` for the file.
 *
 * @param path The file's path.
 * @returns The endpoints, as plain records.
 * @throws {ActivationError} `CONFIG_UNREADABLE` naming the path when the
 * file cannot be read (with the `errno`: 2 for a missing file), including
 * Deno without `--allow-read`; `INVALID_CONFIG` naming the path, the key path
 * and the line when its content is not a valid configuration.
 *
 * @tags allow-read
 *
 * @example Loading the configuration next to the service
 * ```ts ignore
 * import { loadConfig } from "@socket-activation/socket-activation";
 *
 * const config = await loadConfig("/etc/app/app.toml");
 * console.log(Object.keys(config.listen));
 * ```
 */
export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw readError(path, error);
  }
  return parseWithSource(text, path);
}

function readError(path: string, error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const quoted = JSON.stringify(path);
  // Deno 2 throws NotCapable for a path that --allow-read does not cover.
  if (error.name === "NotCapable") {
    return new ActivationError(
      "CONFIG_UNREADABLE",
      `Cannot read config ${quoted}: run Deno with --allow-read`,
      { cause: error },
    );
  }
  const { code, errno } = error as { code?: unknown; errno?: unknown };
  if (typeof code !== "string") return error;
  // Node's errno is negative (-2 for ENOENT); ours is the C value.
  const positive = typeof errno === "number" ? Math.abs(errno) : undefined;
  const described = positive === undefined ? "" : describeErrno(positive);
  return new ActivationError(
    "CONFIG_UNREADABLE",
    `Cannot read config ${quoted}: ${
      described.startsWith(code) ? described : code
    }`,
    positive === undefined
      ? { cause: error }
      : { errno: positive, cause: error },
  );
}

/** A TOML basic string: JSON's escapes are TOML's, but DEL must be escaped. */
function tomlString(text: string): string {
  return JSON.stringify(text).replaceAll("\x7f", "\\u007F");
}

function tomlKey(key: string): string {
  return BARE_KEY.test(key) ? key : tomlString(key);
}

function checkWritable(source: Source, path: readonly string[]): void {
  // TOML is UTF-8: a lone surrogate has no encoding.
  const key = path.at(-1) ?? "";
  if (/\p{Cs}/u.test(key)) {
    throw invalid(source, path, "the key holds a lone UTF-16 surrogate");
  }
}

function writeEndpoint(
  source: Source,
  path: readonly string[],
  endpoint: Endpoint,
): string {
  try {
    return formatEndpoint(endpoint);
  } catch (error) {
    if (!(error instanceof ActivationError)) throw error;
    throw invalid(source, path, error.message, error);
  }
}

/**
 * Writes a configuration as TOML that {@linkcode parseConfig} reads back to an
 * equal configuration: endpoints as their canonical URIs
 * ({@linkcode formatEndpoint}), a `[listen]` entry as a plain URI when it has
 * no options and as an inline table otherwise, modes as octal strings. Empty
 * tables are left out.
 *
 * @param config The configuration.
 * @returns The TOML text, ending with a newline (empty for an empty config).
 * @throws {ActivationError} `INVALID_CONFIG` with the key path for what no
 * configuration file could hold (a mode beyond 0777, a mode on an endpoint
 * other than `unix://`, a bad socket name, an endpoint no URI describes).
 * @throws {TypeError} For an endpoint of an unknown kind.
 *
 * @example Writing a configuration
 * ```ts
 * import { stringifyConfig } from "@socket-activation/socket-activation";
 *
 * console.log(stringifyConfig({
 *   listen: {
 *     web: { endpoint: { kind: "http", host: "127.0.0.1", port: 8080 } },
 *     admin: { endpoint: { kind: "unix", path: "/run/app/admin.sock" }, mode: 0o600 },
 *   },
 *   connect: {},
 * }));
 * // [listen]
 * // web = "http://127.0.0.1:8080"
 * // admin = { uri = "unix:///run/app/admin.sock", mode = "0600" }
 * ```
 */
export function stringifyConfig(config: Config): string {
  const source: Source = {};
  const sections: string[] = [];
  const listen = Object.entries(config.listen);
  if (listen.length > 0) {
    const lines = ["[listen]"];
    for (const [key, entry] of listen) {
      const path = ["listen", key];
      checkWritable(source, path);
      const uri = writeEndpoint(source, path, entry.endpoint);
      const fields = [`uri = ${tomlString(uri)}`];
      if (entry.mode !== undefined) {
        fields.push(`mode = ${tomlString(modeText(entry.mode))}`);
      }
      if (entry.name !== undefined) {
        fields.push(`name = ${tomlString(entry.name)}`);
      }
      // Validated as parseConfig() would, so what is written reads back.
      if (
        entry.mode !== undefined &&
        !(Number.isInteger(entry.mode) && entry.mode >= 0 &&
          entry.mode <= MODE_MAX)
      ) {
        throw invalid(
          source,
          [...path, "mode"],
          `${entry.mode} is not a file mode from 0 to 0o777`,
        );
      }
      readListenEntry(source, path, {
        uri,
        ...entry.mode === undefined ? {} : { mode: modeText(entry.mode) },
        ...entry.name === undefined ? {} : { name: entry.name },
      });
      lines.push(
        fields.length === 1
          ? `${tomlKey(key)} = ${tomlString(uri)}`
          : `${tomlKey(key)} = { ${fields.join(", ")} }`,
      );
    }
    sections.push(lines.join("\n") + "\n");
  }
  const connect = Object.entries(config.connect);
  if (connect.length > 0) {
    const lines = ["[connect]"];
    for (const [key, endpoint] of connect) {
      checkWritable(source, ["connect", key]);
      const uri = writeEndpoint(source, ["connect", key], endpoint);
      lines.push(`${tomlKey(key)} = ${tomlString(uri)}`);
    }
    sections.push(lines.join("\n") + "\n");
  }
  return sections.join("\n");
}
