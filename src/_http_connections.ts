// The connections of a serve() server, as its graceful shutdown sees them:
// stop accepting, let the requests in progress finish, close the idle
// keep-alive connections at once, and give a connection that has not brought
// its first request yet a bounded grace (Go's http.Server.Shutdown does the
// same): during a restart or a hand-over of the listening socket, such a
// connection was accepted a moment ago and its client is sending a request
// that must not be lost. Its first request is answered with
// `Connection: close`, then the connection closes.

/** One accepted connection, whichever engine answers it. */
export interface Connection {
  /** The requests it has brought so far. */
  readonly requests: number;
  /**
   * The shutdown has started (called once, for a connection that brought a
   * request): close it now when idle, else once the request in progress is
   * answered.
   */
  drain(): void;
  /** The grace is over and it brought no request: close it now. */
  close(): void;
}

/** The open connections, the handlers still running, and `finished`. */
export class Connections {
  /** Set once the shutdown has started. */
  closing = false;
  /** Settles once closed, every connection closed, every handler settled. */
  readonly finished: Promise<void>;
  readonly #open = new Set<Connection>();
  #running = 0;
  #listening = true;
  #grace: ReturnType<typeof setTimeout> | undefined;
  #finish!: () => void;

  constructor() {
    this.finished = new Promise((resolve) => this.#finish = resolve);
  }

  add(connection: Connection): void {
    this.#open.add(connection);
  }

  delete(connection: Connection): void {
    this.#open.delete(connection);
    this.#check();
  }

  /** A handler returned a promise: `finished` waits for it. */
  started(): void {
    this.#running++;
  }

  /** That promise settled. */
  settled(): void {
    this.#running--;
    this.#check();
  }

  /**
   * Starts the shutdown: `closeListener` stops accepting and calls back once
   * the listener is closed; each connection with a request drains, and
   * those without get `graceMs` to bring one.
   */
  shutdown(closeListener: (closed: () => void) => void, graceMs: number): void {
    this.closing = true;
    closeListener(() => {
      this.#listening = false;
      this.#check();
    });
    let waiting = false;
    for (const connection of [...this.#open]) {
      if (connection.requests > 0) connection.drain();
      else waiting = true;
    }
    if (waiting) {
      this.#grace = setTimeout(() => {
        for (const connection of [...this.#open]) {
          if (connection.requests === 0) connection.close();
        }
      }, graceMs);
    }
    this.#check();
  }

  #check(): void {
    if (
      !this.closing || this.#listening || this.#open.size > 0 ||
      this.#running > 0
    ) return;
    clearTimeout(this.#grace);
    this.#finish();
  }
}
