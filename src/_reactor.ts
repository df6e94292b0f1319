// One poll() for many fds, off the main thread. Each waiting poll() holds a
// thread (Deno's blocking pool; on Node, one of libuv's four pool threads,
// which file system calls and DNS lookups share), so an activator waits on
// all its fds at once (children's pidfds, notify sockets, stored fds,
// listening sockets before the first connection) in one call. A pipe in the
// poll set wakes it when the set changes or the reactor closes, so that a
// closed reactor leaves nothing pending and the process can exit.

import { sys } from "./_sys.deno.ts";
import { ActivationError } from "./errors.ts";
import { describeErrno } from "./_errno.ts";
import { O_CLOEXEC, O_NONBLOCK, POLLFD_SIZE, POLLIN } from "./_linux.ts";

/** What to do when an fd is ready. */
export type ReadyHandler = (revents: number) => void;

/** Waits on fds with one poll() at a time. */
export interface Reactor {
  /**
   * Calls `onReady` each time `fd` reports one of `events` (POLLHUP and
   * POLLERR always count), until the returned function is called.
   */
  watch(fd: number, events: number, onReady: ReadyHandler): () => void;
  /** Stops waiting; resolves once no poll() is left running. */
  close(): Promise<void>;
}

interface Entry {
  readonly fd: number;
  readonly events: number;
  readonly onReady: ReadyHandler;
}

/**
 * Makes a reactor. Handlers run on the main thread, one at a time; an error
 * a handler throws goes to `onError`.
 */
export function createReactor(onError: (error: unknown) => void): Reactor {
  const libc = sys.libc();
  const pipe = new Int32Array(2);
  if (libc.pipe2(pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
    const errno = libc.errno();
    throw new ActivationError(
      "LISTEN_FAILED",
      `Cannot make a wake-up pipe: pipe2() failed with ${describeErrno(errno)}`,
      { errno },
    );
  }
  const [wakeRead, wakeWrite] = [pipe[0]!, pipe[1]!];
  const entries = new Set<Entry>();
  let loop: Promise<void> | undefined;
  let closed = false;
  const byte = new Uint8Array(1);
  const drain = new Uint8Array(64);

  function wake(): void {
    if (loop !== undefined) libc.write(wakeWrite, byte);
  }

  async function run(): Promise<void> {
    while (!closed && entries.size > 0) {
      const round = [...entries];
      const pollfds = new Uint8Array(POLLFD_SIZE * (round.length + 1));
      const view = new DataView(pollfds.buffer);
      view.setInt32(0, wakeRead, true);
      view.setInt16(4, POLLIN, true);
      round.forEach((entry, index) => {
        view.setInt32(POLLFD_SIZE * (index + 1), entry.fd, true);
        view.setInt16(POLLFD_SIZE * (index + 1) + 4, entry.events, true);
      });
      // -1 is EINTR (a signal on the polling thread) or a failure that the
      // next round reports per fd (POLLNVAL): poll again either way.
      const count = await libc.pollAsync(pollfds, round.length + 1, -1);
      if (count <= 0 || closed) continue;
      if (view.getInt16(6, true) !== 0) {
        while (libc.read(wakeRead, drain) > 0) {
          // Emptied: the wake-ups before this round are all seen.
        }
      }
      round.forEach((entry, index) => {
        const revents = view.getInt16(POLLFD_SIZE * (index + 1) + 6, true);
        if (revents === 0 || !entries.has(entry)) return;
        try {
          entry.onReady(revents);
        } catch (error) {
          onError(error);
        }
      });
    }
    loop = undefined;
  }

  return {
    watch(fd, events, onReady) {
      if (closed) throw new Error("The reactor is closed");
      const entry: Entry = { fd, events, onReady };
      entries.add(entry);
      if (loop === undefined) {
        loop = run().catch(onError);
      } else {
        wake();
      }
      return () => {
        if (entries.delete(entry)) wake();
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      entries.clear();
      wake();
      await loop;
      libc.close(wakeRead);
      libc.close(wakeWrite);
    },
  };
}
