// The service manager's end of sd_notify(3), for tests: a real unix datagram
// socket with SO_PASSCRED on, in a small Python process (python3 is on every
// machine we use; neither runtime can receive SCM_CREDENTIALS or SCM_RIGHTS
// by itself). It reports each datagram as one JSON line: the bytes, the
// credentials the kernel delivered, and what every received fd is, read on
// the receiver's side, so a test checks what arrived, not what was sent.
// It keeps the received fds open until told to close them: that is how a
// test plays the manager for sd_notify_barrier().

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { lineReader } from "./_launch.ts";

const RECEIVER = String.raw`
import base64, fcntl, json, os, select, socket, stat, struct, sys, tempfile, time

spec = json.loads(sys.argv[1])
FD_PEEK = spec["peekBytes"]

def now_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()

directory = None
if spec["abstract"] is not None:
    address = "@" + spec["abstract"]
    bind_to = "\0" + spec["abstract"]
elif spec["path"] is not None:
    address = bind_to = spec["path"]
else:
    directory = tempfile.mkdtemp(prefix="notify-")
    address = bind_to = os.path.join(directory, "notify")

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind(bind_to)
held = set()
received = 0

def describe_fd(fd):
    info = {"fd": fd, "target": os.readlink("/proc/self/fd/%d" % fd)}
    st = os.fstat(fd)
    access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    info["access"] = {os.O_RDONLY: "r", os.O_WRONLY: "w", os.O_RDWR: "rw"}[access]
    if stat.S_ISREG(st.st_mode):
        info["kind"] = "file"
        info["bytes"] = base64.b64encode(os.pread(fd, FD_PEEK, 0)).decode()
    elif stat.S_ISFIFO(st.st_mode):
        info["kind"] = "fifo"
        if access != os.O_WRONLY:
            # Never block on an empty pipe whose writer is still open.
            os.set_blocking(fd, False)
            try:
                data = os.read(fd, FD_PEEK)
            except BlockingIOError:
                data = b""
            info["bytes"] = base64.b64encode(data).decode()
    elif stat.S_ISSOCK(st.st_mode):
        info["kind"] = "socket"
    else:
        info["kind"] = "other"
    return info

def receive():
    global received
    space = socket.CMSG_SPACE(4 * 253) + socket.CMSG_SPACE(12)
    data, ancillary, flags, _ = sock.recvmsg(spec["maxBytes"], space)
    received += 1
    message = {
        "type": "datagram",
        "at": now_usec(),
        "data": base64.b64encode(data).decode(),
        "truncated": bool(flags & socket.MSG_TRUNC),
        "controlTruncated": bool(flags & socket.MSG_CTRUNC),
        "credentials": None,
        "fds": [],
    }
    for level, kind, payload in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_CREDENTIALS:
            pid, uid, gid = struct.unpack("iII", payload[:12])
            message["credentials"] = {"pid": pid, "uid": uid, "gid": gid}
        elif kind == socket.SCM_RIGHTS:
            count = len(payload) // 4
            for fd in struct.unpack("%di" % count, payload[:4 * count]):
                message["fds"].append(describe_fd(fd))
                if spec["closeFds"]:
                    os.close(fd)
                else:
                    held.add(fd)
    emit(message)

def pending():
    return bool(select.select([sock], [], [], 0)[0])

def command(line):
    global paused
    request = json.loads(line)
    reply = {"type": "reply", "id": request["id"]}
    if request["cmd"] == "close":
        # Whether a datagram was already queued before the close: a sender
        # that claims to wait for the close must not have sent it yet.
        reply["pendingBefore"] = pending()
        fds = request.get("fds")
        for fd in sorted(held if fds is None else set(fds) & held):
            os.close(fd)
            held.discard(fd)
    elif request["cmd"] == "clock":
        reply["now"] = now_usec()
    elif request["cmd"] == "pending":
        reply["pending"] = pending()
    elif request["cmd"] == "quiet":
        readable = select.select([sock], [], [], request["ms"] / 1000)[0]
        reply["quiet"] = not readable
    elif request["cmd"] == "resume":
        paused = False
    reply["held"] = sorted(held)
    reply["received"] = received
    emit(reply)

emit({"type": "ready", "address": address, "path": directory and bind_to, "pid": os.getpid()})
buffered = b""
paused = spec["paused"]
try:
    while True:
        # A paused receiver leaves the datagrams in the socket's queue.
        watched = [sys.stdin.fileno()] if paused else [sock, sys.stdin.fileno()]
        readable, _, _ = select.select(watched, [], [])
        # Commands first: a test that asks before the next datagram arrives
        # gets its answer about the state before that datagram.
        if sys.stdin.fileno() in readable:
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                break
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                command(line)
            continue
        receive()
finally:
    sock.close()
    if directory is not None:
        os.unlink(bind_to)
        os.rmdir(directory)
`;

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/**
 * How many datagrams a receiver's queue holds while it does not read: the
 * kernel refuses one when more than net.unix.max_dgram_qlen wait (read when
 * the socket is made, in this network namespace). notify() does not wait
 * for room (EAGAIN), so a test sends at most this many before the receiver
 * has read them.
 */
export function queueRoom(): number {
  return Number(readFileSync("/proc/sys/net/unix/max_dgram_qlen", "utf8")) + 1;
}

/** Where the receiver binds. */
export interface ReceiverOptions {
  /**
   * An abstract socket name (without the `@`); NOTIFY_SOCKET is then
   * `@name`. Default: a path socket.
   */
  abstract?: string;
  /**
   * The socket's path; the caller removes it. Default: a path in a new
   * temporary folder, removed by {@linkcode Receiver.close}.
   */
  path?: string;
  /**
   * Close each received fd as soon as it is described, as systemd does with
   * a BARRIER=1 pipe. Default: hold them until {@linkcode Receiver.closeFds}.
   */
  closeFds?: boolean;
  /** How many bytes of a received file or pipe to read. Default: 4096. */
  peekBytes?: number;
  /**
   * The longest datagram read whole; a longer one arrives cut, with
   * `truncated` set. Default: 65536.
   */
  maxBytes?: number;
  /**
   * Start without reading, as a stuck service manager: datagrams stay in
   * the socket's queue (net.unix.max_dgram_qlen of them, plus one) until
   * {@linkcode Receiver.resume}. Default: false.
   */
  paused?: boolean;
}

/** The credentials of a datagram (SCM_CREDENTIALS, as the kernel gave them). */
export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

/** An fd received with SCM_RIGHTS, described by the receiver. */
export interface ReceivedFd {
  /** Its number in the receiver. */
  fd: number;
  /** readlink of /proc/self/fd/N: a path, `pipe:[N]`, `socket:[N]`. */
  target: string;
  kind: "file" | "fifo" | "socket" | "other";
  /** The access mode of its open file description. */
  access: "r" | "w" | "rw";
  /**
   * The first bytes of a file (read at offset 0) or of a readable pipe
   * (consumed, without blocking); undefined for the rest.
   */
  bytes: Uint8Array | undefined;
}

/** One received datagram. */
export interface ReceivedDatagram {
  /** The receiver's CLOCK_MONOTONIC when it was read, in µs. */
  at: number;
  /** The payload. */
  data: Uint8Array;
  /** The payload as UTF-8 text. */
  text: string;
  /** MSG_TRUNC: the payload was longer than `maxBytes`. */
  truncated: boolean;
  /** MSG_CTRUNC: some control data did not fit. */
  controlTruncated: boolean;
  /** SCM_CREDENTIALS; always present with SO_PASSCRED. */
  credentials: Credentials | null;
  /** The fds that came with it, in order. */
  fds: ReceivedFd[];
}

/** A running receiver. */
export interface Receiver {
  /** The value for NOTIFY_SOCKET: a path or `@name`. */
  address: string;
  /** The receiver process's pid. */
  pid: number;
  /** The next datagram; rejects when the receiver ended first. */
  next(): Promise<ReceivedDatagram>;
  /** The receiver's CLOCK_MONOTONIC now, in µs. */
  clock(): Promise<number>;
  /** Whether a datagram is waiting in the socket, not yet read. */
  pending(): Promise<boolean>;
  /**
   * How many datagrams it has read so far (all reported, maybe not yet
   * taken with `next()`).
   */
  received(): Promise<number>;
  /** Starts reading, for a receiver started `paused`. */
  resume(): Promise<void>;
  /**
   * Watches the socket for `ms` by the receiver's clock: true when no
   * datagram came. For checking that something does NOT happen (a sender
   * that should be blocked); never a way to wait for an event.
   */
  quiet(ms: number): Promise<boolean>;
  /**
   * Closes received fds (all that are held, or those listed). Returns
   * whether a datagram was already waiting before the close, how many it
   * had read by then (all reported, maybe not yet taken with `next()`),
   * and the fds still held after it.
   */
  closeFds(
    fds?: readonly number[],
  ): Promise<{ pendingBefore: boolean; received: number; held: number[] }>;
  /** Stops the receiver (its socket and temporary folder go with it). */
  close(): Promise<void>;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
}

interface Reply {
  type: "reply";
  id: number;
  now?: number;
  pending?: boolean;
  quiet?: boolean;
  pendingBefore?: boolean;
  held: number[];
  received: number;
}

interface RawDatagram {
  type: "datagram";
  at: number;
  data: string;
  truncated: boolean;
  controlTruncated: boolean;
  credentials: Credentials | null;
  fds: (Omit<ReceivedFd, "bytes"> & { bytes?: string })[];
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function decode(raw: RawDatagram): ReceivedDatagram {
  const data = fromBase64(raw.data);
  return {
    at: raw.at,
    data,
    text: new TextDecoder().decode(data),
    truncated: raw.truncated,
    controlTruncated: raw.controlTruncated,
    credentials: raw.credentials,
    fds: raw.fds.map((fd) => ({
      ...fd,
      bytes: fd.bytes === undefined ? undefined : fromBase64(fd.bytes),
    })),
  };
}

/** A queue that hands out items in order, waiting for the next if empty. */
function queue<T>() {
  const items: T[] = [];
  const waiting: { resolve(item: T): void; reject(error: Error): void }[] = [];
  let failure: Error | undefined;
  return {
    push(item: T) {
      const waiter = waiting.shift();
      if (waiter) waiter.resolve(item);
      else items.push(item);
    },
    fail(error: Error) {
      failure = error;
      for (const waiter of waiting.splice(0)) waiter.reject(error);
    },
    next(): Promise<T> {
      if (items.length > 0) return Promise.resolve(items.shift()!);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) =>
        waiting.push({ resolve, reject })
      );
    },
  };
}

/** Starts a receiver and waits until its socket is bound. */
export async function startReceiver(
  options: ReceiverOptions = {},
): Promise<Receiver> {
  const child: ChildProcess = spawn(PYTHON, [
    "-c",
    RECEIVER,
    JSON.stringify({
      abstract: options.abstract ?? null,
      path: options.path ?? null,
      closeFds: options.closeFds ?? false,
      peekBytes: options.peekBytes ?? 4096,
      maxBytes: options.maxBytes ?? 65536,
      paused: options.paused ?? false,
    }),
  ], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on(
    "data",
    (chunk: string) => stderr += chunk,
  );
  const exited = new Promise<void>((resolve) => child.on("exit", resolve));
  const datagrams = queue<RawDatagram>();
  const replies = new Map<
    number,
    { resolve(reply: Reply): void; reject(error: Error): void }
  >();
  const lines = lineReader(child);
  let ended: Error | undefined;
  const ready = await lines.next().catch((error: Error) => {
    throw new Error(`The receiver did not start: ${error.message}\n${stderr}`);
  });
  const { address, pid } = JSON.parse(ready) as {
    address: string;
    pid: number;
  };
  // One reader feeds both queues: datagrams and command replies share stdout.
  (async () => {
    while (true) {
      const message = JSON.parse(await lines.next()) as Reply | RawDatagram;
      if (message.type === "datagram") datagrams.push(message);
      else replies.get(message.id)?.resolve(message);
    }
  })().catch((error: Error) => {
    ended = new Error(`The receiver ended: ${error.message}\n${stderr}`);
    datagrams.fail(ended);
    for (const [id, waiter] of replies) {
      replies.delete(id);
      waiter.reject(ended);
    }
  });
  let nextId = 0;
  function request(cmd: string, extra: object = {}): Promise<Reply> {
    const id = nextId++;
    if (ended) return Promise.reject(ended);
    return new Promise((resolve, reject) => {
      replies.set(id, {
        resolve(reply) {
          replies.delete(id);
          resolve(reply);
        },
        reject,
      });
      child.stdin!.write(JSON.stringify({ id, cmd, ...extra }) + "\n");
    });
  }
  return {
    address,
    pid,
    next: async () => decode(await datagrams.next()),
    clock: async () => (await request("clock")).now!,
    pending: async () => (await request("pending")).pending!,
    received: async () => (await request("pending")).received,
    resume: async () => {
      await request("resume");
    },
    quiet: async (ms) => (await request("quiet", { ms })).quiet!,
    closeFds: async (fds) => {
      const reply = await request("close", fds ? { fds } : {});
      return {
        pendingBefore: reply.pendingBefore!,
        received: reply.received,
        held: reply.held,
      };
    },
    close: async () => {
      child.stdin!.end();
      await exited;
    },
    stderr: () => stderr,
  };
}

/** Runs `run` with a fresh receiver, closed afterwards whatever happens. */
export async function withReceiver<T>(
  run: (receiver: Receiver) => Promise<T>,
  options: ReceiverOptions = {},
): Promise<T> {
  const receiver = await startReceiver(options);
  try {
    return await run(receiver);
  } finally {
    await receiver.close();
  }
}
