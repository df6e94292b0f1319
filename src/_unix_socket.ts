// Binding a unix socket path safely (SPEC section 4, with the seed's
// weaknesses fixed): a stale socket is removed only when it is a socket that
// nobody answers on; anything else at the path is left untouched; the socket
// never exists at its final path with a mode wider than asked for.

import { Buffer } from "node:buffer";
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  rmdirSync,
  type Stats,
  unlinkSync,
} from "node:fs";
import { connect, type Server } from "node:net";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { ActivationError, type ActivationErrorCode } from "./errors.ts";

// sun_path holds 108 bytes, the last one for the terminating NUL.
const UNIX_PATH_MAX = 107;

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
  return new Promise((resolve, reject) => {
    function onError(error: Error): void {
      server.off("listening", onListening);
      reject(error);
    }
    function onListening(): void {
      server.off("error", onError);
      resolve();
    }
    server.once("error", onError);
    server.once("listening", onListening);
    try {
      server.listen(options);
    } catch (error) {
      // Deno refuses a unix socket without --allow-net right here.
      server.off("error", onError);
      server.off("listening", onListening);
      reject(error);
    }
  });
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

/**
 * Makes `server` listen on `path` with file mode `mode`, never more open:
 * it binds inside a fresh private (0700) folder next to `path`, sets the
 * mode there, then hard-links the socket into place. `link()` fails with
 * EEXIST rather than replace what may have appeared at `path` meanwhile.
 * The temporary name and folder are removed on every path.
 */
export async function bindUnixSocket(
  server: Server,
  path: string,
  uri: string,
  options: { mode: number; createParents: boolean },
): Promise<BoundSocket> {
  const where = `Cannot listen on ${uri}`;
  const parent = dirname(path);
  if (options.createParents) {
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
  let folder: string;
  try {
    folder = mkdtempSync(join(parent, "."));
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
      `${where}: cannot create a private folder in ${parent}`,
      error,
    );
  }
  const temporary = join(folder, "s");
  let listening = false;
  try {
    if (Buffer.byteLength(temporary) > UNIX_PATH_MAX) {
      throw new ActivationError(
        "LISTEN_FAILED",
        `${where}: the folder ${parent} has too long a path to bind under ` +
          `${temporary} first (at most ${UNIX_PATH_MAX} bytes)`,
        { errno: constants.errno.ENAMETOOLONG },
      );
    }
    try {
      await listenServer(server, { path: temporary });
    } catch (error) {
      throw systemError("LISTEN_FAILED", `${where}: cannot bind`, error);
    }
    listening = true;
    try {
      chmodSync(temporary, options.mode);
    } catch (error) {
      throw systemError(
        "LISTEN_FAILED",
        `${where}: cannot set the mode of the socket`,
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
      throw systemError(
        "LISTEN_FAILED",
        `${where}: cannot link the socket into place`,
        error,
      );
    }
    const stats = lstatSync(path, { bigint: true });
    return { dev: stats.dev, ino: stats.ino };
  } catch (error) {
    if (listening) await closeServer(server);
    throw error;
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // Never bound, or already removed by the runtime's close().
    }
    try {
      rmdirSync(folder);
    } catch {
      // Only a racing process of the same user could have put a file there.
    }
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
