// Writing a fetch Response to node:http's ServerResponse. A body that is all
// there at once (a string, bytes, nothing) goes out with its Content-Length
// in one writeHead() + end(); a body still being produced streams chunk by
// chunk, waiting for `drain`, and is cancelled when the client goes away.
// Whether a body is all there is known at once where the runtime tells
// (see staticBodyReader()), else found out within the microtasks that follow
// the first reads: never by waiting for a turn of the event loop.

import { Buffer } from "node:buffer";
import type { ServerResponse } from "node:http";
import process from "node:process";

/** A body known in full: the bytes or string, or `null` for no body. */
type StaticBody = string | Uint8Array | null;

/**
 * Reads a Response's body when the runtime keeps what it was made from, or
 * says `undefined` (not known: read the stream).
 */
type StaticBodyReader = (response: Response) => StaticBody | undefined;

/**
 * Undici (Node's fetch) keeps a Response's body source (the string or bytes
 * it was made from) and length beside its stream, in the state slot of the
 * instance; the response can then be written without reading the stream.
 * That slot is internal: it is found by looking for it on a probe, and used
 * only when it has the shape expected, for a body nobody has read or locked.
 * Deno keeps its own differently: `undefined` there, as on any runtime
 * where the probe does not match.
 */
function findUndiciBody(): StaticBodyReader | undefined {
  const probe = new Response("probe");
  for (const key of Object.getOwnPropertySymbols(probe)) {
    const state = Reflect.get(probe, key) as
      | { body?: { source?: unknown; stream?: unknown } | null }
      | undefined;
    if (
      state?.body?.source !== "probe" ||
      !(state.body.stream instanceof ReadableStream)
    ) continue;
    return (response) => {
      const body = (Reflect.get(response, key) as typeof state | undefined)
        ?.body;
      if (body === null) return null;
      const source = body?.source;
      if (
        (typeof source !== "string" && !(source instanceof Uint8Array)) ||
        (body!.stream as ReadableStream).locked || response.bodyUsed
      ) return undefined;
      return source;
    };
  }
  return undefined;
}

let undiciBody: StaticBodyReader | null | undefined;

/**
 * How to read a static body without the stream on this runtime, or
 * `undefined` to read the stream (always so when `publicOnly`).
 */
export function staticBodyReader(
  publicOnly: boolean,
): StaticBodyReader | undefined {
  if (publicOnly) return undefined;
  if (undiciBody === undefined) undiciBody = findUndiciBody() ?? null;
  return undiciBody ?? undefined;
}

/** Whether `status` or `method` rules out a response body (RFC 9110 6.4.1). */
function noBodyStatus(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200);
}

function byteLength(body: string | Uint8Array): number {
  return typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
}

/** What to write: the status line and the header lines. */
interface Head {
  status: number;
  statusText: string;
  /** Flat name, value pairs, as writeHead() takes them. */
  lines: string[];
  /** Whether the response sets its own Content-Length. */
  hasLength: boolean;
}

function headOf(response: Response, close: boolean): Head {
  const lines: string[] = [];
  let hasLength = false;
  // Iteration gives each Set-Cookie on its own and joins the other repeated
  // names, as the fetch standard says.
  for (const [name, value] of response.headers) {
    if (name === "content-length") hasLength = true;
    else if (close && name === "connection") continue;
    lines.push(name, value);
  }
  if (close) lines.push("connection", "close");
  return {
    status: response.status,
    statusText: response.statusText,
    lines,
    hasLength,
  };
}

function writeHead(out: ServerResponse, head: Head): void {
  if (head.statusText === "") out.writeHead(head.status, head.lines);
  else out.writeHead(head.status, head.statusText, head.lines);
}

/** Writes a body known in full: one writeHead() and one end(). */
function writeStatic(
  out: ServerResponse,
  head: Head,
  body: StaticBody,
  bodyless: boolean,
): void {
  if (!head.hasLength && !noBodyStatus(head.status)) {
    head.lines.push(
      "content-length",
      body === null ? "0" : String(byteLength(body)),
    );
  }
  writeHead(out, head);
  if (bodyless || body === null) out.end();
  else out.end(body);
}

/** Resolves on `drain`, or on `close` (the client went away). */
function drained(out: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    function done(): void {
      out.off("drain", done);
      out.off("close", done);
      resolve();
    }
    out.on("drain", done);
    out.on("close", done);
  });
}

/** Resolves once the microtasks queued so far, and theirs, have run. */
function afterMicrotasks(): Promise<void> {
  // A tick queued from a microtask runs once the microtask queue is empty,
  // in the same turn of the event loop (Node and Deno alike).
  return new Promise((resolve) =>
    queueMicrotask(() => process.nextTick(resolve))
  );
}

type Read = Awaited<
  ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>
>;

function checkChunk(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(
      "The response body stream gave something else than a Uint8Array",
    );
  }
  return value;
}

/** Ends the response with an error: the client must not take a cut body for a whole one. */
function fail(
  out: ServerResponse,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  error: unknown,
): void {
  reader.cancel(error).catch(() => {});
  out.destroy(error instanceof Error ? error : new Error(String(error)));
}

/**
 * Writes a body that is still being produced: the head at once (chunked),
 * then each chunk as it comes, waiting for `drain` when the connection's
 * buffer is full; the stream is cancelled when the client goes away.
 * `first` and `next` are the reads already made.
 */
async function pump(
  out: ServerResponse,
  head: Head,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  first: Promise<Read>,
  next: Promise<Read> | undefined,
  firstArrived: boolean,
): Promise<void> {
  function cancel(): void {
    if (!out.writableFinished) reader.cancel().catch(() => {});
  }
  out.once("close", cancel);
  try {
    writeHead(out, head);
    // Sent now when there is no chunk yet, so that a client waiting for a
    // stream sees it start; else they go out with the first chunk.
    if (!firstArrived) out.flushHeaders();
    let result = await first;
    while (!result.done) {
      if (out.destroyed) return;
      if (!out.write(checkChunk(result.value))) await drained(out);
      if (out.destroyed) return;
      result = await (next ?? reader.read());
      next = undefined;
    }
    out.end();
  } catch (error) {
    fail(out, reader, error);
  } finally {
    out.off("close", cancel);
  }
}

/**
 * Writes a body read through its stream: two reads first; if both settle
 * within the microtasks that follow and the second says done, the body was
 * all there and goes out as a static one, else it is pumped.
 */
function writeStream(
  out: ServerResponse,
  head: Head,
  body: ReadableStream<Uint8Array>,
): Promise<void> {
  const reader = body.getReader();
  const first = reader.read();
  const second = reader.read();
  let firstResult: Read | undefined;
  let secondResult: Read | undefined;
  let failed = false;
  let error: unknown;
  first.then((result) => firstResult = result, (reason: unknown) => {
    failed = true;
    error = reason;
  });
  second.then((result) => secondResult = result, () => {});
  return afterMicrotasks().then(() => {
    try {
      if (failed) throw error;
      if (firstResult?.done) {
        writeStatic(out, head, null, false);
        return;
      }
      if (firstResult !== undefined && secondResult?.done) {
        writeStatic(out, head, checkChunk(firstResult.value), false);
        return;
      }
    } catch (reason) {
      fail(out, reader, reason);
      return;
    }
    return pump(out, head, reader, first, second, firstResult !== undefined);
  });
}

/**
 * Writes `response` to `out`: its status, status text and headers (each
 * Set-Cookie on its own line; `Connection: close` added when `close`), then
 * its body. Returns `undefined` when the response was written at once, else
 * a promise that settles once it is ended or the connection is gone. HEAD,
 * 204, 304 and 1xx send no body, and a stream body is cancelled.
 */
export function writeResponse(
  response: Response,
  out: ServerResponse,
  head: boolean,
  close: boolean,
  staticBody: StaticBodyReader | undefined,
): Promise<void> | undefined {
  const written = headOf(response, close);
  const bodyless = head || noBodyStatus(written.status);
  const known = staticBody?.(response);
  if (known !== undefined) {
    writeStatic(out, written, known, bodyless);
    return undefined;
  }
  const body = response.body;
  if (body === null) {
    writeStatic(out, written, null, bodyless);
    return undefined;
  }
  if (bodyless) {
    body.cancel().catch(() => {});
    writeHead(out, written);
    out.end();
    return undefined;
  }
  return writeStream(out, written, body);
}
