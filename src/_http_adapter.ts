// node:http's IncomingMessage and ServerResponse as the WHATWG Request and
// Response a fetch-style handler takes and returns. Bodies stream both ways
// with backpressure: nothing is buffered beyond one chunk and the streams'
// own queues.

import type { IncomingMessage, ServerResponse } from "node:http";
import { setImmediate } from "node:timers";

// How much request body a handler that does not read may leave queued before
// the connection stops reading (the kernel's buffers then push back on the
// client).
const REQUEST_BODY_HIGH_WATER_MARK = 64 * 1024;

// A Request with a stream body needs `duplex: "half"` on Node (undici); Deno
// accepts it. Not every lib.d.ts knows the member yet.
type StreamRequestInit = RequestInit & { duplex?: "half" };

// RFC 9110 section 7.2: Host is uri-host [":" port]; anything else (a path,
// user info, spaces) falls back to the listener's own address.
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::\d*)?$/;

/**
 * The request body as a ReadableStream that reads from the connection only
 * when pulled, or `null` for a request without one (RFC 9112 section 6.3: no
 * Content-Length and no Transfer-Encoding means no body).
 */
function requestBody(
  message: IncomingMessage,
): ReadableStream<Uint8Array> | null {
  const length = message.headers["content-length"];
  const chunked = message.headers["transfer-encoding"] !== undefined;
  if (!chunked && (length === undefined || Number(length) === 0)) return null;
  // Paused before the listener goes on, so the message flows only on pull().
  message.pause();
  let done = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        message.on("data", (chunk: Uint8Array) => {
          if (done) return;
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) message.pause();
        });
        message.on("end", () => {
          if (done) return;
          done = true;
          controller.close();
        });
        // The client went away before the body ended.
        message.on("close", () => {
          if (done || message.complete) return;
          done = true;
          controller.error(new Error("Request body: the client closed early"));
        });
      },
      pull() {
        message.resume();
      },
      cancel() {
        // The handler does not want the rest: let node:http discard it, so the
        // connection stays usable for the next request.
        done = true;
        message.resume();
      },
    },
    new ByteLengthQueuingStrategy({
      highWaterMark: REQUEST_BODY_HIGH_WATER_MARK,
    }),
  );
}

/**
 * Builds the WHATWG Request for `message`: the URL from its target and Host
 * header (`fallbackHost` without one), every header line in order (repeated
 * ones appended), and `signal` as the request's signal.
 *
 * @throws {TypeError} for a target or header that is not valid.
 */
export function toRequest(
  message: IncomingMessage,
  fallbackHost: string,
  signal: AbortSignal,
): Request {
  const target = message.url ?? "/";
  // Origin form ("/path?query") is what clients send; absolute form
  // ("http://host/path") is allowed too (RFC 9112 section 3.2.2). A "//x"
  // target stays a path: it is appended to the origin, not resolved.
  let url: string;
  if (target.startsWith("/")) {
    const given = message.headers.host;
    const host = given !== undefined && HOST.test(given) ? given : fallbackHost;
    url = `http://${host}${target}`;
  } else {
    url = new URL(target).href;
  }
  const headers = new Headers();
  const raw = message.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    headers.append(raw[i]!, raw[i + 1]!);
  }
  const method = message.method ?? "GET";
  const init: StreamRequestInit = { method, headers, signal };
  if (method !== "GET" && method !== "HEAD") {
    const body = requestBody(message);
    if (body !== null) {
      init.body = body;
      init.duplex = "half";
    }
  }
  return new Request(url, init);
}

/** Whether `status` or `method` rules out a response body (RFC 9110 6.4.1). */
function bodyless(method: string, status: number): boolean {
  return method === "HEAD" || status === 204 || status === 304 ||
    (status >= 100 && status < 200);
}

/**
 * Writes `response` to `out`: status, status text, headers (each Set-Cookie
 * on its own line), then the body, chunk by chunk, waiting for `drain` when
 * the connection's buffer is full. Resolves once the response is ended or
 * the connection is gone; a body that fails midway destroys the connection,
 * since the client must not take a cut body for a whole one.
 */
export async function writeResponse(
  response: Response,
  out: ServerResponse,
  method: string,
): Promise<void> {
  out.statusCode = response.status;
  if (response.statusText !== "") out.statusMessage = response.statusText;
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") out.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) out.setHeader("set-cookie", cookies);

  const body = response.body;
  if (body === null || bodyless(method, response.status)) {
    if (body !== null) await body.cancel().catch(() => {});
    out.end();
    return;
  }
  const reader = body.getReader();
  const gone = new Promise<void>((resolve) => {
    out.once("close", () => {
      if (!out.writableFinished) reader.cancel().catch(() => {});
      resolve();
    });
  });
  try {
    let next = reader.read();
    let first = true;
    while (true) {
      const { done, value } = await next;
      if (done) {
        out.end();
        return;
      }
      next = reader.read();
      // A body that is all there is at once (a string, a buffer) goes out
      // with a Content-Length in one write; anything still being produced
      // goes out now, so a streaming client sees each chunk as it comes.
      const ready = await Promise.race([
        next.then((result) => result.done),
        new Promise<undefined>((resolve) =>
          setImmediate(() => resolve(undefined))
        ),
      ]);
      if (ready === true && first) {
        out.end(value);
        return;
      }
      first = false;
      if (out.destroyed) return;
      if (!out.write(value)) {
        await Promise.race([
          new Promise((resolve) => out.once("drain", resolve)),
          gone,
        ]);
      }
    }
  } catch (error) {
    out.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}
