// A readable stream on an fd neither runtime can read without blocking: a
// special file of ListenSpecial= (a character device such as /dev/kmsg, or a
// file in /proc or /sys), which systemd opens non-blocking. node:fs reads
// only fds it opened itself on Deno, and fails with EAGAIN on such an fd on
// Node; node:net takes sockets and FIFOs only. So: read() through the system
// calls, and poll() off the main thread (FdPoller) while there is nothing to
// read.

import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { EAGAIN, EINTR, systemCallError } from "./_errno.ts";
import { FdPoller } from "./_fd_poller.ts";
import { POLLIN } from "./_linux.ts";
import type { Libc } from "./_sys.common.ts";

// As much as one read() takes: a whole /dev/kmsg record, several pages of a
// /proc file.
const CHUNK_SIZE = 65536;

/** Reads an fd until its end; it owns the fd and closes it once destroyed. */
export class FdReadStream extends Readable {
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #poller: FdPoller;
  readonly #buffer = Buffer.allocUnsafe(CHUNK_SIZE);

  /**
   * @param libc The system calls.
   * @param fd The fd to read.
   */
  constructor(libc: Libc, fd: number) {
    super({ highWaterMark: CHUNK_SIZE });
    this.#libc = libc;
    this.#fd = fd;
    this.#poller = new FdPoller(libc, fd);
  }

  // One chunk per call: the stream calls it again when it wants more.
  override _read(): void {
    void this.#readChunk();
  }

  async #readChunk(): Promise<void> {
    for (;;) {
      const length = this.#libc.read(this.#fd, this.#buffer);
      if (length > 0) {
        // A copy: the buffer is read into again.
        this.push(Buffer.from(this.#buffer.subarray(0, length)));
        return;
      }
      if (length === 0) {
        this.push(null);
        return;
      }
      const errno = this.#libc.errno();
      if (errno === EINTR) continue;
      if (errno !== EAGAIN) {
        this.destroy(systemCallError("read", errno));
        return;
      }
      if ((await this.#poller.wait(POLLIN)) === undefined) return;
    }
  }

  override _destroy(
    error: Error | null,
    callback: (error?: Error | null) => void,
  ): void {
    // Close the fd only once no poll() uses it any more.
    void this.#poller.stop().then(() => {
      this.#libc.close(this.#fd);
      callback(error);
    });
  }
}
