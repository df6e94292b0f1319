// A queue of items read in order by next() or by iterating, for the
// notifications a receiver or an activator hands out. Unread items are kept
// up to a limit, the oldest dropped first, so that a program that never
// reads them (the CLI) does not grow without end.

/** The reading side of a {@linkcode createQueue}. */
export interface Queue<T> {
  /** Adds an item (dropped once the queue is closed). */
  push(item: T): void;
  /** The next item; rejects once the queue is closed and empty. */
  next(): Promise<T>;
  /** The items, until the queue is closed and empty. */
  readonly items: AsyncIterable<T>;
  /** Ends the queue: what is left can still be read. */
  close(): void;
}

/** Makes a queue that keeps at most `limit` unread items. */
export function createQueue<T>(limit: number, what: string): Queue<T> {
  const items: T[] = [];
  const waiting: { resolve(item: T): void; reject(error: Error): void }[] = [];
  let closed = false;
  const ended = () => new Error(`${what} ended`);

  function next(): Promise<T> {
    if (items.length > 0) return Promise.resolve(items.shift()!);
    if (closed) return Promise.reject(ended());
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  }

  return {
    push(item) {
      if (closed) return;
      const waiter = waiting.shift();
      if (waiter !== undefined) return waiter.resolve(item);
      items.push(item);
      if (items.length > limit) items.shift();
    },
    next,
    items: {
      async *[Symbol.asyncIterator]() {
        while (items.length > 0 || !closed) {
          let item: T;
          try {
            item = await next();
          } catch {
            return;
          }
          yield item;
        }
      },
    },
    close() {
      closed = true;
      for (const waiter of waiting.splice(0)) waiter.reject(ended());
    },
  };
}
