// A child that describes itself: a small Python program that prints, as one
// JSON line, its pid, its LISTEN_* variables (and FOO, for -E), and every
// open fd from /proc/self/fd, each socket with its
// family, type, address and whether it listens. Python opens no fd of its
// own before this runs, unlike Deno and Node, so the list is exactly what
// the process was started with.

/** The program, for `python3 -c`. */
export const REPORT = String.raw`
import json, os, socket
fds = []
for name in sorted(os.listdir("/proc/self/fd"), key=int):
    fd = int(name)
    try:
        target = os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        continue  # the directory listdir read, closed since
    entry = {"fd": fd, "inheritable": os.get_inheritable(fd)}
    if fd > 2 and target.startswith("socket:"):
        s = socket.socket(fileno=os.dup(fd))
        address = s.getsockname()
        if isinstance(address, bytes):
            address = "@" + address[1:].decode()
        elif isinstance(address, tuple):
            address = list(address[:2])
        entry.update(
            family=s.family.name,
            type=s.type.name,
            address=address,
            listening=s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
        )
        s.close()
    elif fd > 2:
        entry["target"] = target
    fds.append(entry)
env = {k: v for k, v in os.environ.items() if k.startswith("LISTEN_") or k == "FOO"}
print(json.dumps({"pid": os.getpid(), "env": env, "fds": fds}), flush=True)
`;

/** An fd as the report describes it. */
export interface ReportedFd {
  fd: number;
  inheritable: boolean;
  family?: string;
  type?: string;
  address?: string | [string, number];
  listening?: number;
  target?: string;
}

/** What the program prints. */
export interface Report {
  pid: number;
  env: Record<string, string>;
  fds: ReportedFd[];
}
