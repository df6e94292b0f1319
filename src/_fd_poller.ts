// Waiting for an fd the runtime cannot watch itself (a datagram socket on
// Deno, a unix datagram socket, a character device): poll() runs off the main
// thread (pollAsync, as notifyBarrier() waits), with the read end of a pipe in
// the poll set so that stopping wakes every wait at once. Closing the write
// end makes the read end report POLLHUP to every poll() in progress and to any
// started later.

import type { Libc } from "./_sys.common.ts";
import { O_CLOEXEC, POLLFD_SIZE } from "./_linux.ts";

/** Waits for one fd to become ready, until stopped. */
export class FdPoller {
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #wakeRead: number;
  readonly #wakeWrite: number;
  readonly #pending = new Set<Promise<number>>();
  #stopped = false;

  /**
   * @param libc The system calls.
   * @param fd The fd to wait on; the poller never closes it.
   * @throws {Error} With the errno of pipe2() when it fails.
   */
  constructor(libc: Libc, fd: number) {
    const pipe = new Int32Array(2);
    if (libc.pipe2(pipe, O_CLOEXEC) < 0) {
      throw Object.assign(new Error("pipe2() failed"), { errno: libc.errno() });
    }
    this.#libc = libc;
    this.#fd = fd;
    [this.#wakeRead, this.#wakeWrite] = [pipe[0]!, pipe[1]!];
  }

  /** Whether {@linkcode FdPoller.stop} was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Waits until the fd reports one of `events` (or an error or hang-up).
   *
   * @returns The fd's revents (0 when poll() was interrupted: try the call
   * again, then wait again), or `undefined` once stopped.
   */
  async wait(events: number): Promise<number | undefined> {
    if (this.#stopped) return undefined;
    const pollfds = new Uint8Array(2 * POLLFD_SIZE);
    const view = new DataView(pollfds.buffer);
    view.setInt32(0, this.#fd, true);
    view.setInt16(4, events, true);
    // POLLHUP needs no asking.
    view.setInt32(POLLFD_SIZE, this.#wakeRead, true);
    const call = this.#libc.pollAsync(pollfds, 2, -1);
    this.#pending.add(call);
    let ready: number;
    try {
      ready = await call;
    } finally {
      this.#pending.delete(call);
    }
    if (this.#stopped) return undefined;
    // -1 is EINTR (a signal for this process reached the polling thread):
    // nothing is ready, and the caller waits again.
    return ready > 0 ? view.getInt16(6, true) : 0;
  }

  /**
   * Wakes every wait in progress and resolves once each poll() returned: the
   * fd is then no longer used by any thread, and the caller may close it.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#libc.close(this.#wakeWrite);
    await Promise.allSettled([...this.#pending]);
    this.#libc.close(this.#wakeRead);
  }
}
