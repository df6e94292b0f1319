// A restart without a lost request: one listening TCP socket is passed to a
// chain of serve() processes (tests/fixtures/serve_app.ts), each new one
// started before the old one gets SIGTERM, as a service manager or a
// development activator hands its socket over; meanwhile clients open a new
// connection for every request. The old process must answer every
// connection it accepted, including those whose request has not arrived
// when its shutdown starts: not one request may fail.
//
// A small Python supervisor holds the socket (at its fd 3) and starts each
// process with it at fd 3 and LISTEN_PID set to that process's pid; Deno's
// node:child_process cannot place an extra fd.

import assert from "node:assert/strict";
import { test } from "node:test";
import { clientLoop } from "./_client_loop.ts";
import { startPython } from "./_launch.ts";
import { fixtureCommand } from "./_runtime.ts";
import { ask, FALLBACK_VARIABLE, MODES, type ServeMode } from "./_serve.ts";

const HANDOVERS = 10;
const CLIENTS = 4;
// Requests answered between two hand-overs, so that each process serves
// for a while, alone and beside the next one.
const BETWEEN = 30;

// Reads commands on stdin: `start` starts the program with the socket, `term
// PID` sends SIGTERM. Prints JSON lines: the port, each program's lines and
// its exit status, tagged with its pid. Kills what is left when stdin ends.
// The programs get no stdin: Node makes an inherited stdin pipe
// non-blocking, and the supervisor's reads would then see an end.
const SUPERVISOR = String.raw`
import json, os, signal, socket, subprocess, sys, threading
spec = json.loads(sys.argv[1])
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(128)
port = listener.getsockname()[1]
if listener.fileno() != 3:
    os.dup2(listener.fileno(), 3)
    listener.close()
for key in list(os.environ):
    if key.startswith("LISTEN_"):
        del os.environ[key]
os.environ.update(spec["env"])
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_FDNAMES"] = "web"
lock = threading.Lock()
def say(message):
    with lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
children = []
def relay(child):
    for line in child.stdout:
        say({"pid": child.pid, "line": line.decode().rstrip("\n")})
    say({"pid": child.pid, "exit": child.wait()})
say({"port": port})
for command in sys.stdin:
    words = command.split()
    if words[0] == "start":
        # The shell's pid is the program's: exec keeps it. Not our stdin:
        # Node makes its stdin non-blocking, which would end our reading.
        child = subprocess.Popen(
            ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + spec["argv"],
            pass_fds=(3,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        children.append(child)
        threading.Thread(target=relay, args=(child,), daemon=True).start()
    elif words[0] == "term":
        os.kill(int(words[1]), signal.SIGTERM)
for child in children:
    if child.poll() is None:
        child.kill()
`;

/** What the supervisor says, one line at a time, routed by pid. */
interface Supervised {
  port: number;
  /** Starts a program; resolves with its pid once it listens. */
  start(): Promise<number>;
  /** SIGTERM; resolves once it said `finished` and exited 0. */
  terminate(pid: number): Promise<void>;
  close(): Promise<void>;
}

async function supervise(mode: ServeMode): Promise<Supervised> {
  const env: Record<string, string> = { ...mode.env };
  if (env[FALLBACK_VARIABLE] === undefined) env[FALLBACK_VARIABLE] = "0";
  const python = startPython(
    SUPERVISOR,
    { argv: fixtureCommand("serve_app"), env },
    "pipe",
  );
  const fail = (error: Error) => {
    throw new Error(`${error.message}\n${python.stderr()}`);
  };
  const { port } = JSON.parse(await python.lines.next().catch(fail));
  const lines = new Map<number, string[]>();
  const exits = new Map<number, number>();
  const waiting: (() => void)[] = [];
  let ended = false;
  void python.exited.then(() => {
    ended = true;
    for (const wake of waiting.splice(0)) wake();
  });
  let unnamed: ((pid: number) => void) | undefined;
  void (async () => {
    for (;;) {
      const message = JSON.parse(await python.lines.next()) as {
        pid: number;
        line?: string;
        exit?: number;
      };
      if (message.exit !== undefined) exits.set(message.pid, message.exit);
      else {
        if (!lines.has(message.pid)) {
          lines.set(message.pid, []);
          unnamed?.(message.pid);
        }
        lines.get(message.pid)!.push(message.line!);
      }
      for (const wake of waiting.splice(0)) wake();
    }
  })().catch(() => {});
  function until(done: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) resolve();
        else if (ended) {
          reject(new Error(`The supervisor ended:\n${python.stderr()}`));
        } else waiting.push(check);
      };
      check();
    });
  }
  const said = (pid: number, event: string) =>
    (lines.get(pid) ?? []).some((line) => JSON.parse(line).event === event);
  return {
    port,
    async start() {
      let pid: number | undefined;
      unnamed = (started) => pid = started;
      python.child.stdin!.write("start\n");
      await until(() => pid !== undefined);
      await until(() => said(pid!, "listening") || exits.has(pid!));
      assert.ok(said(pid!, "listening"), `${pid}: ${lines.get(pid!)}`);
      return pid!;
    },
    async terminate(pid) {
      python.child.stdin!.write(`term ${pid}\n`);
      await until(() => exits.has(pid));
      assert.ok(said(pid, "finished"), `${pid}: ${lines.get(pid)}`);
      assert.equal(exits.get(pid), 0, python.stderr());
    },
    async close() {
      python.child.stdin!.end();
      await python.exited;
    },
  };
}

for (const mode of MODES) {
  test(
    `serve() loses no request over ${HANDOVERS} hand-overs of its listening socket${mode.label}`,
    { timeout: 180_000 },
    async () => {
      const supervised = await supervise(mode);
      const target = { port: supervised.port };
      let current = await supervised.start();
      // A new connection for each request (no agent); the answer is the pid
      // of the process that served it.
      const clients = clientLoop(CLIENTS, async () => {
        const answer = await ask(target, { path: "/handover" });
        if (answer.status !== 200) {
          throw new Error(`HTTP ${answer.status}: ${answer.body}`);
        }
        return (JSON.parse(answer.body) as { pid: number }).pid;
      });
      try {
        await clients.after(BETWEEN);
        for (let round = 0; round < HANDOVERS; round++) {
          const next = await supervised.start();
          // Both accept from the socket now; the next one has served.
          await clients.answered((pid) => pid === next, `pid ${next}`);
          await supervised.terminate(current);
          current = next;
          await clients.after(BETWEEN);
        }
      } finally {
        await clients.stop();
        await supervised.terminate(current).finally(() => supervised.close());
      }
      assert.deepEqual(
        clients.failures,
        [],
        `${clients.answers.length} requests answered`,
      );
      assert.equal(new Set(clients.answers).size, HANDOVERS + 1);
    },
  );
}
