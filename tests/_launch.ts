// Starts a program with sockets at fds 3, 4, … and chosen LISTEN_* values, as
// a service manager would, but with any values a test needs. A small Python
// launcher does it (python3 is on every machine we use): Deno's
// node:child_process cannot place extra fds, and the variables must name the
// pid of the exec'd program, which only the launcher knows.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { createInterface } from "node:readline";

const LAUNCHER = String.raw`
import json, os, socket, sys
spec = json.loads(sys.argv[1])
made, info = [], []
for kind in spec["fds"]:
    if kind == "pipe":
        r, w = os.pipe()
        made.append(r)
        info.append({"kind": kind})
        continue
    if kind["type"] == "mqueue":
        # As ListenMessageQueue= opens one; unlinked at once, the fd stays.
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        name = ("/" + kind["name"]).encode()
        made.append(libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, None))
        libc.mq_unlink(name)
        info.append({"kind": "mqueue"})
        continue
    if kind["type"] in ("fifo", "file"):
        # As ListenFIFO= (read-write) and ListenSpecial= (read-only) open
        # them: non-blocking, no controlling tty.
        mode = os.O_RDWR if kind["type"] == "fifo" else os.O_RDONLY
        made.append(os.open(kind["path"], mode | os.O_NONBLOCK | os.O_NOCTTY))
        info.append({"kind": kind["type"], "path": kind["path"]})
        continue
    if kind["type"] in ("tcp", "udp"):
        host = kind.get("host", "127.0.0.1")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        type = socket.SOCK_STREAM if kind["type"] == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(family, type)
        s.bind((host, 0))
        info.append({"kind": kind["type"], "port": s.getsockname()[1]})
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(kind["path"])
        info.append({"kind": "unix", "path": kind["path"]})
    if kind["type"] != "udp" and kind.get("listen", True):
        s.listen(16)
    made.append(s.detach())
# Move the fds out of the way, then down to 3, 4, … without the close-on-exec
# flag, as systemd passes them; close everything else above 2.
high = [os.dup(fd) for fd in made]
for fd in made:
    os.close(fd)
top = 3 + len(high)
for index, fd in enumerate(high):
    os.dup2(fd, 3 + index, inheritable=True)
os.closerange(top, 65536)
pid = os.getpid()
env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
pidfdid = ""
if "$PIDFDID" in json.dumps(spec["env"]):
    pidfd = os.pidfd_open(pid)
    pidfdid = str(os.fstat(pidfd).st_ino)
    os.close(pidfd)
for k, v in spec["env"].items():
    if v is None:
        env.pop(k, None)
    else:
        env[k] = v.replace("$PIDFDID", pidfdid).replace("$PID", str(pid))
print(json.dumps({"pid": pid, "fds": info}), flush=True)
os.execve(spec["argv"][0], spec["argv"], env)
`;

// The system's Python starts in a fraction of the time of a version manager's
// shim (pyenv's costs about 0.2 s a launch); any python3 on PATH will do.
/** python3, for the Python helpers the tests start. */
export const PYTHON = existsSync("/usr/bin/python3")
  ? "/usr/bin/python3"
  : "python3";

/**
 * A passed fd to make: a pipe's read end, or a socket, listening unless it
 * is UDP or `listen` is false. TCP and UDP bind port 0 of `host`
 * (127.0.0.1 by default; an IPv6 address makes an IPv6 socket). `fifo` and
 * `file` open an existing FIFO or file as ListenFIFO= and ListenSpecial= do;
 * `mqueue` makes a POSIX message queue, as ListenMessageQueue= does.
 */
export type LaunchFd =
  | "pipe"
  | { type: "tcp" | "udp"; host?: string; listen?: boolean }
  | { type: "unix"; path: string; listen?: boolean }
  | { type: "fifo" | "file"; path: string }
  | { type: "mqueue"; name: string };

/** What to start and with what. */
export interface LaunchSpec {
  /** The program and its arguments (the program as an absolute path). */
  argv: readonly string[];
  /** The fds to pass, placed at 3, 4, … in this order. */
  fds?: readonly LaunchFd[];
  /**
   * Variables to set (`null` removes one). In values, `$PID` becomes the pid
   * of the started program and `$PIDFDID` the inode id of its pidfd. Any
   * LISTEN_* variable of this process is removed first.
   */
  env?: Readonly<Record<string, string | null>>;
}

/** What the launcher made, in fd order. */
export interface LaunchedFd {
  kind: "pipe" | "tcp" | "udp" | "unix" | "fifo" | "file" | "mqueue";
  port?: number;
  path?: string;
}

/** A started program. */
export interface Launched {
  /** Its pid (the launcher's, kept across exec). */
  pid: number;
  /** The fds passed, from fd 3 on. */
  fds: LaunchedFd[];
  /** The child process. */
  child: ChildProcess;
  /** The next line the program prints on stdout. */
  nextLine(): Promise<string>;
  /** Everything it printed on stderr so far. */
  stderr(): string;
  /** Waits for the exit: the code, or the signal name. */
  exited: Promise<number | string>;
}

/** A Python helper started by startPython(), its output read as it comes. */
export interface PythonProcess {
  child: ChildProcess;
  /** Its stdout, line by line. */
  lines: { next(): Promise<string> };
  /** Everything it printed on stderr so far. */
  stderr(): string;
  /** Waits for the exit: the code, or the signal name. */
  exited: Promise<number | string>;
}

/**
 * Runs `script` with python3, its one argument `spec` as JSON, in this
 * environment; stdin is `"ignore"` unless the caller writes to it.
 */
export function startPython(
  script: string,
  spec: unknown,
  stdin: "ignore" | "pipe" = "ignore",
): PythonProcess {
  const child = spawn(
    PYTHON,
    ["-c", script, JSON.stringify(spec)],
    { stdio: [stdin, "pipe", "pipe"], env: process.env },
  );
  let stderr = "";
  child.stderr!.setEncoding("utf8").on(
    "data",
    (chunk: string) => stderr += chunk,
  );
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
  );
  return { child, lines: lineReader(child), stderr: () => stderr, exited };
}

/** Starts `spec.argv` with the fds and variables asked for. */
export async function launch(spec: LaunchSpec): Promise<Launched> {
  const { child, lines, stderr, exited } = startPython(LAUNCHER, {
    argv: spec.argv,
    fds: spec.fds ?? [],
    env: spec.env ?? {},
  });
  const header = await lines.next().catch((error: Error) => {
    throw new Error(`${error.message}\n${stderr()}`);
  });
  const { pid, fds } = JSON.parse(header) as { pid: number; fds: LaunchedFd[] };
  return {
    pid,
    fds,
    child,
    nextLine: () => lines.next(),
    stderr,
    exited,
  };
}

/** Reads a child's stdout line by line; rejects when it ends first. */
export function lineReader(child: ChildProcess): { next(): Promise<string> } {
  const queue: string[] = [];
  const waiting: { resolve(line: string): void; reject(error: Error): void }[] =
    [];
  let ended = false;
  const reader = createInterface({ input: child.stdout! });
  reader.on("line", (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(line);
    else queue.push(line);
  });
  reader.on("close", () => {
    ended = true;
    for (const waiter of waiting.splice(0)) {
      waiter.reject(new Error("The process closed its output"));
    }
  });
  return {
    next() {
      const line = queue.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (ended) {
        return Promise.reject(new Error("The process closed its output"));
      }
      return new Promise((resolve, reject) =>
        waiting.push({ resolve, reject })
      );
    },
  };
}
