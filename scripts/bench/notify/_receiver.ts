// The receiving end that the notify() harnesses share (deno_bench.ts under
// `deno bench`, and node_bench.ts compiled for Node), and the check that
// both arms send the same datagram. Runtime-neutral: node:child_process and
// node:process only; the caller passes its own `notify` and `native`,
// because the Node compile (scripts/bench/_node_harness.ts) erases types but
// does not swap `.deno.ts` for `.node.ts`.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import type { Native } from "../../../tests/_native.common.ts";
import { startReceiver } from "../../../tests/_receiver.ts";
import { lineReader } from "../../../tests/_launch.ts";

/** The state both arms send. */
export const STATE = "WATCHDOG=1";

// Reads and drops datagrams as fast as it can, on its own thread, so that
// the senders never find the queue full (net.unix.max_dgram_qlen is often
// only 10, and a blocking sender then waits). Prints "ready" once bound, and
// the number of datagrams read when its stdin closes. It prints nothing per
// datagram: under `deno bench` nobody reads its output while timing.
const DRAIN = String.raw`
import socket, sys, threading
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    sock.setsockopt(socket.SOL_SOCKET, 33, 1 << 24)  # SO_RCVBUFFORCE (root)
except OSError:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
sock.bind("\0" + sys.argv[1])
count = 0
def drain():
    global count
    buffer = bytearray(65536)
    while True:
        sock.recv_into(buffer)
        count += 1
threading.Thread(target=drain, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
print(count, flush=True)
`;

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

/** A running drain receiver. */
export interface Drain {
  /** The NOTIFY_SOCKET value: an abstract `@name`. */
  address: string;
  /** Stops it; returns how many datagrams it read. */
  stop(): Promise<number>;
}

/** Starts the drain receiver and waits until it is bound. */
export async function startDrain(): Promise<Drain> {
  const name = `socket-activation-bench-${process.pid}`;
  const child: ChildProcess = spawn(PYTHON, ["-c", DRAIN, name], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = lineReader(child);
  const ready = await lines.next();
  if (ready !== "ready") throw new Error(`The drain said ${ready}`);
  return {
    address: `@${name}`,
    async stop() {
      child.stdin!.end();
      return Number(await lines.next());
    },
  };
}

const EAGAIN = 11;

/**
 * notify(`STATE`) until it is sent: a full queue (EAGAIN, when the drain
 * falls behind) is tried again at once. notify() never waits for the
 * receiver, where libsystemd's blocking send does, so this keeps both arms
 * timing a delivered datagram.
 */
export function deliver(notify: NotifyArms["notify"]): void {
  for (;;) {
    try {
      if (!notify(STATE)) throw new Error("not sent");
      return;
    } catch (error) {
      if ((error as { errno?: unknown }).errno !== EAGAIN) throw error;
    }
  }
}

/** The two arms a harness compares, from its own runtime's modules. */
export interface NotifyArms {
  /** The runtime's libsystemd bindings (`tests/_native.*.ts`). */
  native: Native;
  /** This library's `notify()`. */
  notify: (state: string) => boolean;
}

/**
 * Throws unless both arms send the same datagram (bytes and credentials)
 * to a receiver that reports it (tests/_receiver.ts). Restores
 * NOTIFY_SOCKET afterwards.
 */
export async function checkArmsAgree(arms: NotifyArms): Promise<void> {
  const saved = process.env.NOTIFY_SOCKET;
  const receiver = await startReceiver({
    abstract: `socket-activation-bench-check-${process.pid}`,
    closeFds: true,
  });
  try {
    process.env.NOTIFY_SOCKET = receiver.address;
    const theirs = arms.native.sdNotify(false, STATE);
    const first = await receiver.next();
    const ours = arms.notify(STATE);
    const second = await receiver.next();
    const same = theirs === 1 && ours === true && first.text === STATE &&
      second.text === STATE &&
      JSON.stringify(first.credentials) === JSON.stringify(second.credentials);
    if (!same) {
      throw new Error(
        `notify() and libsystemd disagree: ${
          JSON.stringify({ theirs, ours, first, second })
        }`,
      );
    }
  } finally {
    await receiver.close();
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
  }
}
