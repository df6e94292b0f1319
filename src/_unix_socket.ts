// Binding a unix socket path safely (SPEC section 4, with the seed's
// weaknesses fixed): a stale socket is removed only when it is a socket that
// nobody answers on; anything else at the path is left untouched; the socket
// never exists at its final path with a mode wider than asked for.

import { Buffer } from "node:buffer";
import {
  chmodSync,
  closeSync,
  constants as fsConstants,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmdirSync,
  type Stats,
  unlinkSync,
} from "node:fs";
import { connect, type Server } from "node:net";
import { constants } from "node:os";
import { basename, dirname, join } from "node:path";
import { ActivationError, type ActivationErrorCode } from "./errors.ts";
import { SUN_PATH_MAX } from "./_linux.ts";
import { whenListening } from "./_when_listening.ts";

/** The mode of a unix socket we bind when none is asked for: owner and group. */
export const DEFAULT_SOCKET_MODE = 0o660;

/** The errno number of a Node system error (`code: "EACCES"`), if any. */
export function errnoOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return undefined;
  return (constants.errno as Record<string, number | undefined>)[code];
}

/** The errno name of a Node system error, if any. */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Wraps a failed system call into an ActivationError that names it. */
export function systemError(
  code: ActivationErrorCode,
  message: string,
  error: unknown,
): ActivationError {
  const name = codeOf(error);
  const detail = name === undefined ? String(error) : name;
  const errno = errnoOf(error);
  return new ActivationError(code, `${message}: ${detail}`, {
    cause: error,
    ...(errno === undefined ? {} : { errno }),
  });
}

/** What a file that is not a socket is, for an error message. */
export function describeFile(stats: Stats): string {
  if (stats.isSymbolicLink()) return "a symbolic link";
  if (stats.isDirectory()) return "a directory";
  if (stats.isFile()) return "a regular file";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  return "not a socket";
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if (codeOf(error) === "ENOENT") return undefined;
    throw error;
  }
}

/** Whether something accepts connections on the socket at `path`. */
function probe(path: string): Promise<"live" | "stale" | "gone"> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    socket.once("connect", () => {
      socket.destroy();
      resolve("live");
    });
    socket.once("error", (error) => {
      socket.destroy();
      const code = codeOf(error);
      if (code === "ECONNREFUSED") resolve("stale");
      else if (code === "ENOENT") resolve("gone");
      // A full backlog: someone listens, but is busy.
      else if (code === "EAGAIN") resolve("live");
      else reject(error);
    });
  });
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Makes `path` free for a new socket: nothing there, or a stale socket,
 * which is removed. A live socket, or anything that is not a socket (a
 * symlink too, even to a socket), is an error and left as it is.
 */
export async function clearStaleSocket(
  path: string,
  uri: string,
): Promise<void> {
  const where = `Cannot listen on ${uri}`;
  let stats: Stats | undefined;
  try {
    stats = lstatOrUndefined(path);
  } catch (error) {
    throw systemError("LISTEN_FAILED", `${where}: cannot stat ${path}`, error);
  }
  if (stats === undefined) return;
  if (!stats.isSocket()) {
    throw new ActivationError(
      "PATH_NOT_SOCKET",
      `${where}: ${path} is ${
        describeFile(stats)
      }, not a stale socket; it is left untouched`,
    );
  }
  let state: "live" | "stale" | "gone";
  try {
    state = await probe(path);
  } catch (error) {
    throw systemError(
      "LISTEN_FAILED",
      `${where}: cannot tell whether the socket ${path} is in use`,
      error,
    );
  }
  if (state === "live") {
    throw new ActivationError(
      "ADDRESS_IN_USE",
      `${where}: a server already listens on ${path}`,
      { errno: constants.errno.EADDRINUSE },
    );
  }
  if (state === "gone") return;
  // Remove only the socket that was probed, not whatever replaced it since.
  try {
    const now = lstatOrUndefined(path);
    if (now === undefined) return;
    if (!now.isSocket() || !sameFile(now, stats)) {
      throw new ActivationError(
        "ADDRESS_IN_USE",
        `${where}: ${path} changed while it was checked`,
        { errno: constants.errno.EADDRINUSE },
      );
    }
    unlinkSync(path);
  } catch (error) {
    if (error instanceof ActivationError) throw error;
    if (codeOf(error) === "ENOENT") return;
    throw systemError(
      "LISTEN_FAILED",
      `${where}: cannot remove the stale socket ${path}`,
      error,
    );
  }
}

/** Resolves once `server` listens, rejects with its listen error. */
export function listenServer(
  server: Server,
  options: { fd: number } | { host: string; port: number } | {
    path: string;
  },
): Promise<void> {
  return whenListening(server, () => server.listen(options));
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The socket file made by {@linkcode bindUnixSocket}. */
export interface BoundSocket {
  /** Its device and inode, to unlink it only while it is still ours. */
  readonly dev: bigint;
  readonly ino: bigint;
}

// The private folder of a bind: ".NAME-XXXXXX" beside the socket NAME (the
// six characters are mkdtemp's), mode 0700, holding the socket as "s" until
// it is linked into place. The name and the mode are how the next listen()
// of the same path recognises what a process killed mid-bind left.
const RANDOM_SUFFIX = /^[A-Za-z0-9]{6}$/;
const TEMPORARY_NAME = "s";
const PRIVATE_MODE = 0o700;
// How many times a bind starts over when its private folder disappears: only
// another listen() of the same path, taking it for a leftover in the few
// microseconds it is empty, removes it.
const ATTEMPTS = 3;

function privateFolderPrefix(path: string): string {
  return join(dirname(path), `.${basename(path)}-`);
}

function isPrivateFolderName(name: string, socketName: string): boolean {
  const prefix = `.${socketName}-`;
  return name.startsWith(prefix) &&
    RANDOM_SUFFIX.test(name.slice(prefix.length));
}

/**
 * A way to name `folder` that leaves room in sun_path: its own path, or
 * `/proc/self/fd/N` through an fd opened on it when `folder/s` would not fit
 * (a socket path near 107 bytes leaves no room for ".NAME-XXXXXX/s"). The
 * kernel resolves that name to the folder itself, so the socket is still
 * made inside it.
 */
interface FolderName {
  /** The name of the temporary socket in the folder, short enough to bind. */
  readonly socket: string;
  /** Closes the fd, if one was opened. */
  close(): void;
}

function nameFolder(folder: string): FolderName {
  const socket = join(folder, TEMPORARY_NAME);
  if (Buffer.byteLength(socket) <= SUN_PATH_MAX) {
    return { socket, close() {} };
  }
  const fd = openSync(
    folder,
    fsConstants.O_RDONLY | fsConstants.O_DIRECTORY,
  );
  return {
    socket: `/proc/self/fd/${fd}/${TEMPORARY_NAME}`,
    close: () => closeSync(fd),
  };
}

/**
 * Removes what a process killed while binding `path` left in its folder: a
 * private folder of `path` (by name) that is ours (our uid, mode 0700) and
 * holds nothing, or only a socket of ours that nobody listens on. Anything
 * else is left as it is, as is whatever cannot be checked.
 */
async function removeLeftovers(
  path: string,
  own: string,
  owner: number,
): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return; // A folder we may write but not read: nothing to find.
  }
  for (const name of names) {
    const folder = join(dirname(path), name);
    if (folder === own || !isPrivateFolderName(name, basename(path))) continue;
    try {
      await removeLeftover(folder, owner);
    } catch {
      // Gone meanwhile, or not ours to read: left as it is.
    }
  }
}

async function removeLeftover(folder: string, owner: number): Promise<void> {
  const stats = lstatSync(folder);
  if (
    !stats.isDirectory() || stats.uid !== owner ||
    (stats.mode & 0o7777) !== PRIVATE_MODE
  ) {
    return;
  }
  const entries = readdirSync(folder);
  if (entries.length > 1) return;
  if (entries.length === 1) {
    if (entries[0] !== TEMPORARY_NAME) return;
    const socket = join(folder, TEMPORARY_NAME);
    const socketStats = lstatSync(socket);
    if (!socketStats.isSocket() || socketStats.uid !== owner) return;
    const name = nameFolder(folder);
    let state: "live" | "stale" | "gone";
    try {
      state = await probe(name.socket);
    } finally {
      name.close();
    }
    // A live socket is a bind in progress in another process.
    if (state === "live") return;
    if (state === "stale") unlinkSync(socket);
  }
  rmdirSync(folder); // Fails, and keeps it, if anything appeared inside.
}

/** Makes the missing folders above the socket `path` (mode 0755). */
export function createParentFolders(path: string, where: string): void {
  const parent = dirname(path);
  try {
    mkdirSync(parent, { recursive: true, mode: 0o755 });
  } catch (error) {
    throw systemError(
      "LISTEN_FAILED",
      `${where}: cannot create the folder ${parent}`,
      error,
    );
  }
}

/** Raised inside a bind whose private folder another listen() removed. */
class FolderGone extends Error {}

/** Whether `folder` is no longer the folder made as `made`. */
function isGone(folder: string, made: Stats): boolean {
  const now = lstatOrUndefined(folder);
  return now === undefined || !sameFile(now, made);
}

/**
 * Makes `server` listen on `path` with file mode `mode`, never more open:
 * it binds inside a fresh private (0700) folder beside `path` (so that the
 * socket stays on the same filesystem and only the socket's own folder need
 * be writable), sets the mode there, then hard-links the socket into place.
 * `link()` fails with EEXIST rather than replace what may have appeared at
 * `path` meanwhile. The temporary name and folder are removed on every
 * path, and so are those a process killed while binding `path` left.
 */
export async function bindUnixSocket(
  server: Server,
  path: string,
  uri: string,
  options: { mode: number; createParents: boolean },
): Promise<BoundSocket> {
  const where = `Cannot listen on ${uri}`;
  const parent = dirname(path);
  if (options.createParents) createParentFolders(path, where);
  for (let attempt = 1;; attempt++) {
    try {
      return await bindInPrivateFolder(server, path, where, options.mode);
    } catch (error) {
      if (!(error instanceof FolderGone)) throw error;
      if (attempt === ATTEMPTS) {
        throw new ActivationError(
          "LISTEN_FAILED",
          `${where}: its private folder in ${parent} was removed ${ATTEMPTS} times while binding, by other listen() calls on the same path`,
          { errno: constants.errno.ENOENT },
        );
      }
    }
  }
}

async function bindInPrivateFolder(
  server: Server,
  path: string,
  where: string,
  mode: number,
): Promise<BoundSocket> {
  const parent = dirname(path);
  const prefix = privateFolderPrefix(path);
  let folder: string;
  try {
    folder = mkdtempSync(prefix);
  } catch (error) {
    if (codeOf(error) === "ENOENT") {
      throw systemError(
        "LISTEN_FAILED",
        `${where}: the folder ${parent} does not exist (createParents makes it)`,
        error,
      );
    }
    throw systemError(
      "LISTEN_FAILED",
      `${where}: cannot create the private folder ${prefix}XXXXXX`,
      error,
    );
  }
  const temporary = join(folder, TEMPORARY_NAME);
  let made: Stats | undefined;
  let name: FolderName | undefined;
  let listening = false;
  try {
    // Our uid, without asking for it (Deno would need --allow-sys): the
    // owner of the folder we just made.
    made = lstatSync(folder);
    name = nameFolder(folder);
    try {
      await listenServer(server, { path: name.socket });
    } catch (error) {
      if (isGone(folder, made)) throw new FolderGone();
      // Deno allows a /proc/self path only with --allow-all: its message
      // says so, this one says why such a path was used.
      const shown = name.socket === temporary
        ? temporary
        : `${temporary} through ${name.socket} (its path is too long for sun_path)`;
      throw systemError(
        "LISTEN_FAILED",
        `${where}: cannot bind ${shown}`,
        error,
      );
    }
    listening = true;
    try {
      chmodSync(temporary, mode);
    } catch (error) {
      if (isGone(folder, made)) throw new FolderGone();
      throw systemError(
        "LISTEN_FAILED",
        `${where}: cannot set the mode of ${temporary}`,
        error,
      );
    }
    try {
      linkSync(temporary, path);
    } catch (error) {
      if (codeOf(error) === "EEXIST") {
        throw systemError(
          "ADDRESS_IN_USE",
          `${where}: ${path} appeared while the socket was being made`,
          error,
        );
      }
      if (isGone(folder, made)) throw new FolderGone();
      throw systemError(
        "LISTEN_FAILED",
        `${where}: cannot link ${temporary} to ${path}`,
        error,
      );
    }
    const stats = lstatSync(path, { bigint: true });
    // The runtime unlinks the name it bound when the server closes: through
    // /proc/self/fd, that fd must still name the (by then removed) folder.
    server.once("close", name.close);
    name = undefined;
    return { dev: stats.dev, ino: stats.ino };
  } catch (error) {
    if (listening) await closeServer(server);
    throw error;
  } finally {
    name?.close();
    try {
      unlinkSync(temporary);
    } catch {
      // Never bound, or already removed by the runtime's close().
    }
    try {
      rmdirSync(folder);
    } catch {
      // Removed by another listen(), or something of ours appeared inside.
    }
    if (made !== undefined) await removeLeftovers(path, folder, made.uid);
  }
}

/**
 * Unlinks `path` when `server` closes, if it is still the socket that was
 * bound: a restarted service may have bound a new one there meanwhile.
 */
export function unlinkOnClose(
  server: Server,
  path: string,
  bound: BoundSocket,
): void {
  server.once("close", () => {
    try {
      const stats = lstatSync(path, { bigint: true });
      if (
        stats.isSocket() && stats.dev === bound.dev && stats.ino === bound.ino
      ) {
        unlinkSync(path);
      }
    } catch {
      // Gone already, or not ours to remove.
    }
  });
}
