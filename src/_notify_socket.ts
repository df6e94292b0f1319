// The service manager's end of sd_notify(3): a unix datagram socket with
// SO_PASSCRED, read with recvmsg() for the sender's credentials
// (SCM_CREDENTIALS) and the fds that came along (SCM_RIGHTS), through the
// FFI layer: neither runtime has unix datagram sockets that carry either.

import { describeErrno } from "./_errno.ts";
import type { Reactor } from "./_reactor.ts";
import { unixSockaddr } from "./_sockaddr.ts";
import type { Reception } from "./_sys.common.ts";
import { sys } from "./_sys.deno.ts";
import { ActivationError } from "./errors.ts";
import {
  AF_UNIX,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_TRUNC,
  POLLIN,
  SCM_CREDENTIALS,
  SCM_RIGHTS,
  SO_PASSCRED,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  SUN_PATH_MAX,
} from "./_linux.ts";

/** One datagram as received, its fds now this process's to keep or close. */
export interface RawNotification {
  /** The payload as text. */
  readonly text: string;
  /** Its `KEY=VALUE` lines; a key given twice keeps its last value. */
  readonly fields: Readonly<Record<string, string>>;
  /** The sender's pid, uid and gid, as the kernel vouches for them. */
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** The fds that came with it (close-on-exec), in order. */
  readonly fds: readonly number[];
}

// Bigger than any notification systemd accepts (it takes PIPE_BUF, 4096).
const DATA_SIZE = 65536;
// SCM_RIGHTS with 253 fds (the kernel's most) and SCM_CREDENTIALS.
const CONTROL_SIZE = 2048;

const decoder = new TextDecoder();

/** Splits `KEY=VALUE` lines; lines without `=` are ignored, as systemd does. */
export function parseFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const equals = line.indexOf("=");
    if (equals > 0) fields[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return fields;
}

// struct cmsghdr on LP64: size_t len, int level, int type, then the data at
// 16, each header aligned to 8.
function readControl(
  control: Uint8Array,
  length: number,
): { fds: number[]; credentials: [number, number, number] } {
  const view = new DataView(control.buffer, control.byteOffset, length);
  const fds: number[] = [];
  let credentials: [number, number, number] = [0, -1, -1];
  let offset = 0;
  while (offset + 16 <= length) {
    const size = Number(view.getBigUint64(offset, true));
    if (size < 16 || offset + size > length) break;
    const level = view.getInt32(offset + 8, true);
    const type = view.getInt32(offset + 12, true);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let at = offset + 16; at + 4 <= offset + size; at += 4) {
        fds.push(view.getInt32(at, true));
      }
    } else if (level === SOL_SOCKET && type === SCM_CREDENTIALS) {
      credentials = [
        view.getInt32(offset + 16, true),
        view.getUint32(offset + 20, true),
        view.getUint32(offset + 24, true),
      ];
    }
    offset += (size + 7) & ~7;
  }
  return { fds, credentials };
}

/** A bound notify socket, read as datagrams arrive. */
export interface NotifySocket {
  /** The socket's path: the NOTIFY_SOCKET value. */
  readonly path: string;
  /** Stops reading and closes the socket (the caller removes the path). */
  close(): void;
}

/**
 * Binds a notify socket at `path` and hands every datagram to `onMessage`.
 * A datagram too long to read whole is dropped, its fds closed, as systemd
 * drops it.
 */
export function openNotifySocket(
  path: string,
  reactor: Reactor,
  onMessage: (message: RawNotification) => void,
): NotifySocket {
  const libc = sys.libc();
  const bytes = new TextEncoder().encode(path);
  const where = `Cannot make the notify socket ${path}`;
  if (bytes.length > SUN_PATH_MAX) {
    throw new ActivationError(
      "LISTEN_FAILED",
      `${where}: the path is longer than ${SUN_PATH_MAX} bytes`,
    );
  }
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const fail = (call: string) => {
    const errno = libc.errno();
    if (fd >= 0) libc.close(fd);
    return new ActivationError(
      "LISTEN_FAILED",
      `${where}: ${call} failed with ${describeErrno(errno)}`,
      { errno },
    );
  };
  if (fd < 0) throw fail("socket()");
  const one = new Uint8Array([1, 0, 0, 0]);
  if (libc.setsockopt(fd, SOL_SOCKET, SO_PASSCRED, one) < 0) {
    throw fail("setsockopt(SO_PASSCRED)");
  }
  if (libc.bind(fd, unixSockaddr(path)) < 0) throw fail("bind()");

  const reception: Reception = {
    address: new Uint8Array(128),
    data: new Uint8Array(DATA_SIZE),
    control: new Uint8Array(CONTROL_SIZE),
    addressLength: 0,
    controlLength: 0,
    flags: 0,
  };
  function receive(): void {
    while (true) {
      const length = libc.recvmsg(
        fd,
        reception,
        MSG_DONTWAIT | MSG_CMSG_CLOEXEC,
      );
      // EAGAIN: read to the end (any other error would repeat the same way).
      if (length < 0) return;
      const { fds, credentials } = readControl(
        reception.control,
        reception.controlLength,
      );
      if (reception.flags & (MSG_TRUNC | MSG_CTRUNC)) {
        fds.forEach((received) => libc.close(received));
        continue;
      }
      const text = decoder.decode(reception.data.subarray(0, length));
      const [pid, uid, gid] = credentials;
      onMessage({ text, fields: parseFields(text), pid, uid, gid, fds });
    }
  }
  const unwatch = reactor.watch(fd, POLLIN, receive);
  return {
    path,
    close() {
      unwatch();
      libc.close(fd);
    },
  };
}
