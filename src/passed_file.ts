// Reading the FIFOs and special files a socket unit passes (ListenFIFO=,
// ListenSpecial=) as a stream, the same way on both runtimes.

import { Socket } from "node:net";
import type { Readable } from "node:stream";
import { FdReadStream } from "./_fd_reader.ts";
import { sys } from "./_sys.deno.ts";
import { unsetListenEnv } from "./_activate.ts";
import { systemError } from "./_unix_socket.ts";
import type { Endpoint } from "./endpoint.ts";
import { ActivationError } from "./errors.ts";
import { isType, statPassedFd } from "./fd_kind.ts";
import { findPassedFd, normalise } from "./listen.ts";
import { describeFileType } from "./socket_info.ts";
import { S_IFCHR, S_IFIFO, S_IFREG, S_IFSOCK } from "./_linux.ts";

// statfs() f_type of the mqueue file system (linux/magic.h).
const MQUEUE_MAGIC = 0x19800202n;

// A POSIX message queue (ListenMessageQueue=) looks like a regular file, but
// read() gives its status line, not its messages: mq_receive() reads those.
function isMessageQueue(fd: number): boolean {
  const statfs = new Uint8Array(256);
  if (sys.libc().fstatfs(fd, statfs) < 0) return false;
  return new DataView(statfs.buffer).getBigUint64(0, true) === MQUEUE_MAGIC;
}

/** Options of {@linkcode readPassedFile}. */
export interface ReadPassedFileOptions {
  /**
   * Remove the `LISTEN_*` variables once the fd is found, whatever the
   * outcome (errors included). Default: `false`.
   */
  unsetEnv?: boolean;
}

/**
 * Reads a FIFO (`ListenFIFO=`) or a special file (`ListenSpecial=`: a
 * character device such as `/dev/kmsg`, or a file in `/proc` or `/sys`)
 * that systemd passed, as a readable byte stream, on Deno and Node alike.
 * The stream owns the fd: destroying it closes the fd.
 *
 * A FIFO is read through `node:net` (the event loop waits on it). systemd
 * opens it read-write, so it never ends: each writer's bytes arrive in turn,
 * and the stream stays open for the next one until it is destroyed (and
 * keeps the process running meanwhile). A special file is read through the
 * system calls (`read()`, and a `poll()` on a thread of its own while there
 * is nothing to read; on Node that thread is one of libuv's pool); it ends
 * where the file ends (a regular file), or never (a device that waits for
 * data).
 *
 * On Deno this needs `--allow-env` and `--allow-ffi`; nothing else.
 *
 * @param endpoint The passed fd: `fd://3` or `fd://name`
 * (`FileDescriptorName=`), or its record.
 * @param options Whether to unset `LISTEN_*`.
 * @returns The stream of the file's bytes.
 * @throws {ActivationError} `FD_NOT_PASSED` or `NAME_NOT_FOUND` for an fd
 * systemd did not pass; `STAT_FAILED` when it is not open;
 * `UNSUITABLE_SOCKET` when it is a socket, a directory or another kind of
 * file; `UNSUPPORTED` for a POSIX message queue (`ListenMessageQueue=`);
 * `INVALID_ENDPOINT` for an endpoint that is not `fd://`; the errors
 * of {@linkcode listenFds}.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Lines written to the FIFO of ListenFIFO=/run/app/control
 * ```ts ignore
 * import { createInterface } from "node:readline";
 * import { readPassedFile } from "@socket-activation/socket-activation";
 *
 * const control = readPassedFile("fd://control");
 * for await (const line of createInterface({ input: control })) {
 *   console.log("command:", line);
 * }
 * ```
 */
export function readPassedFile(
  endpoint: Endpoint | string,
  options: ReadPassedFileOptions = {},
): Readable {
  const [requested, uri] = normalise(endpoint);
  const where = `Cannot read ${uri}`;
  if (requested.kind !== "fd" && requested.kind !== "fdname") {
    throw new ActivationError(
      "INVALID_ENDPOINT",
      `${where}: a passed FIFO or special file is named fd://N or fd://name`,
    );
  }
  let fd: number;
  try {
    fd = findPassedFd(requested, uri, "read")!.fd;
  } finally {
    if (options.unsetEnv) unsetListenEnv();
  }
  const stat = statPassedFd(fd, `${where}: fd ${fd}`);
  if (isType(stat, S_IFIFO)) {
    try {
      return new Socket({ fd, readable: true, writable: false });
    } catch (error) {
      throw systemError(
        "LISTEN_FAILED",
        `${where}: cannot read fd ${fd}`,
        error,
      );
    }
  }
  if (isType(stat, S_IFREG) && isMessageQueue(fd)) {
    throw new ActivationError(
      "UNSUPPORTED",
      `${where}: fd ${fd} is a POSIX message queue (ListenMessageQueue=), whose messages neither Deno nor Node can receive`,
    );
  }
  if (isType(stat, S_IFREG) || isType(stat, S_IFCHR)) {
    return new FdReadStream(sys.libc(), fd);
  }
  throw new ActivationError(
    "UNSUITABLE_SOCKET",
    `${where}: fd ${fd} is ${
      describeFileType(stat.mode)
    }, not a FIFO or a special file${
      isType(stat, S_IFSOCK)
        ? "; listen() and listenDatagram() serve sockets"
        : ""
    }`,
  );
}
