// The WHATWG Request a fetch-style handler gets for a node:http request,
// built lazily: an object whose prototype chain holds the runtime's own
// Request.prototype (so `instanceof Request` holds), that reads the
// IncomingMessage only for the members the handler touches. The URL, the
// Headers, the AbortController and the body stream are made on first access;
// text(), json(), arrayBuffer() and bytes() read the message straight into
// one buffer. Anything else (clone(), formData(), blob(), mode, …) is
// answered by a real Request made from this one on first need.

import type { IncomingMessage, ServerResponse } from "node:http";

// RFC 9110 section 7.2: Host is uri-host [":" port]; anything else (a path,
// user info, spaces) falls back to the listener's own address.
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::\d*)?$/;

// A host and a target that the WHATWG URL parser leaves as they are, so the
// URL can be put together without parsing it: a lower-case name whose last
// label starts with a letter (any other would be read as an IPv4 address) or
// a dotted quad, a port that is not the default one, and a path and query
// made of characters that are never percent-encoded or rewritten (no dot
// segments, no `%`, no backslash, no `'`, which the query of a special URL
// encodes). Anything else takes the parser.
const PLAIN_NAME = /^(?:[a-z0-9][a-z0-9-]*\.)*[a-z][a-z0-9-]*$/;
const PLAIN_IPV4 =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const PLAIN_PORT = /^[1-9]\d{0,4}$/;
const PLAIN_TARGET =
  /^(?:\/(?!\.\.?(?:[/?]|$))[A-Za-z0-9\-._~!$&()*+,;=:@]*)+(?:\?[A-Za-z0-9\-._~!$&()*+,;=:@/?]*)?$/;

function isPlainHost(host: string): boolean {
  const colon = host.indexOf(":");
  if (colon !== -1) {
    const port = host.slice(colon + 1);
    if (!PLAIN_PORT.test(port) || port === "80" || Number(port) > 65535) {
      return false;
    }
  }
  const name = colon === -1 ? host : host.slice(0, colon);
  return PLAIN_NAME.test(name) || PLAIN_IPV4.test(name);
}

const decoder = new TextDecoder();

/** Why a body read fails when the client goes away before the body ends. */
function clientGone(): Error {
  return new Error(
    "The client closed the connection before the request body ended",
  );
}

function bodyUnusable(): TypeError {
  return new TypeError("Body is unusable: the request body was already read");
}

/** Whether the message announces a body (RFC 9112 section 6.3). */
function hasBody(message: IncomingMessage): boolean {
  const method = message.method;
  if (method === "GET" || method === "HEAD") return false;
  const headers = message.headers;
  if (headers["transfer-encoding"] !== undefined) return true;
  const length = headers["content-length"];
  return length !== undefined && length !== "0";
}

/**
 * The URL of a request: the origin form (`/path?query`, what clients send)
 * joined to the Host header (`fallbackHost` without a usable one), or the
 * absolute form as it is (RFC 9112 section 3.2). A `//x` target stays a
 * path.
 *
 * @throws {TypeError} for a target that is not a URL.
 */
function requestUrl(
  message: IncomingMessage,
  fallbackHost: string,
): string {
  const target = message.url ?? "/";
  if (!target.startsWith("/")) return new URL(target).href;
  const given = message.headers.host;
  const host = given !== undefined && HOST.test(given) ? given : fallbackHost;
  const url = `http://${host}${target}`;
  return isPlainHost(host) && PLAIN_TARGET.test(target)
    ? url
    : new URL(url).href;
}

/**
 * Reads the rest of the message into one exact-size Uint8Array; `onGone` is
 * told when the client goes away first.
 */
function readAll(
  message: IncomingMessage,
  onGone: () => void,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    if (message.destroyed) {
      onGone();
      reject(clientGone());
      return;
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    function onData(chunk: Uint8Array): void {
      chunks.push(chunk);
      total += chunk.byteLength;
    }
    function onEnd(): void {
      cleanUp();
      // A copy of exact size: Node's chunks may be views of a shared pool,
      // and arrayBuffer() must hand out a buffer of its own.
      const bytes = new Uint8Array(total);
      let offset = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.byteLength;
      }
      resolve(bytes);
    }
    function onClose(): void {
      if (message.complete && message.readableEnded) return;
      cleanUp();
      onGone();
      reject(clientGone());
    }
    function onError(error: Error): void {
      cleanUp();
      reject(error);
    }
    function cleanUp(): void {
      message.off("data", onData);
      message.off("end", onEnd);
      message.off("close", onClose);
      message.off("error", onError);
    }
    message.on("data", onData);
    message.on("end", onEnd);
    message.on("close", onClose);
    message.on("error", onError);
  });
}

/**
 * The body as a ReadableStream that reads from the connection only when a
 * reader waits (high-water mark 0): the message stays paused otherwise, and
 * the kernel's buffers then push back on the client. `onRead` is told of the
 * first read or cancel, which is what "disturbed" means for bodyUsed, and
 * `onGone` when the client goes away before the body ends.
 */
function bodyStream(
  message: IncomingMessage,
  onRead: () => void,
  onGone: () => void,
): ReadableStream<Uint8Array> {
  message.pause();
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      message.on("data", (chunk: Uint8Array) => {
        if (done) return;
        // A plain Uint8Array over Node's Buffer, as the fetch standard gives.
        controller.enqueue(
          new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
        );
        if ((controller.desiredSize ?? 0) <= 0) message.pause();
      });
      message.on("end", () => {
        if (done) return;
        done = true;
        controller.close();
      });
      // Closed before its end was read: the client went away (node:http
      // then drops what it had received, even a complete body).
      message.on("close", () => {
        if (done) return;
        done = true;
        onGone();
        controller.error(clientGone());
      });
      if (message.destroyed || message.readableEnded) {
        done = true;
        onGone();
        controller.error(clientGone());
      }
    },
    pull() {
      onRead();
      message.resume();
    },
    cancel() {
      onRead();
      // The handler does not want the rest: node:http discards it once the
      // response is sent, so the connection stays usable.
      done = true;
      message.resume();
    },
  }, { highWaterMark: 0 });
}

type StreamRequestInit = RequestInit & { duplex?: "half" };

/** What a request reads from, besides the message. */
export interface RequestSource {
  readonly message: IncomingMessage;
  readonly out: ServerResponse;
  /** The URL, when the caller already made it (the absolute form). */
  readonly url: string | undefined;
  /** The host for a request without a usable Host header. */
  readonly fallbackHost: string;
}

/** The constructor of the lazy request class. */
export type LazyRequestClass = new (source: RequestSource) => Request;

function makeRequestClass(): LazyRequestClass {
  const NativeRequest = globalThis.Request;

  class NodeHttpRequest {
    readonly #message: IncomingMessage;
    readonly #out: ServerResponse;
    readonly #fallbackHost: string;
    #url: string | undefined;
    #headers: Headers | undefined;
    #controller: AbortController | undefined;
    #body: ReadableStream<Uint8Array> | null | undefined;
    /** The body was read or cancelled (through `body` or a fast read). */
    #used = false;
    /** The client went away before the body ended. */
    #gone = false;
    /** The real Request, once something needed one. */
    #request: Request | undefined;
    /** The real Request's body is this one's (it took the stream over). */
    #bodyIsRequests = false;

    constructor(source: RequestSource) {
      this.#message = source.message;
      this.#out = source.out;
      this.#fallbackHost = source.fallbackHost;
      this.#url = source.url;
    }

    get method(): string {
      return this.#message.method ?? "GET";
    }

    get url(): string {
      return this.#url ??= requestUrl(this.#message, this.#fallbackHost);
    }

    get headers(): Headers {
      if (this.#headers === undefined) {
        if (this.#request !== undefined) return this.#request.headers;
        const raw = this.#message.rawHeaders;
        const headers = new Headers();
        for (let index = 0; index + 1 < raw.length; index += 2) {
          headers.append(raw[index]!, raw[index + 1]!);
        }
        this.#headers = headers;
      }
      return this.#headers;
    }

    get signal(): AbortSignal {
      if (this.#controller === undefined) {
        const controller = new AbortController();
        this.#controller = controller;
        const out = this.#out;
        // The client went away before the response was sent: replayed for a
        // signal read after the fact (the socket is gone, or the body read
        // failed because it is).
        if (
          this.#gone || out.destroyed || this.#message.socket?.destroyed
        ) {
          if (!out.writableFinished) controller.abort();
        } else {
          out.once("close", () => {
            if (!out.writableFinished) controller.abort();
          });
        }
      }
      return this.#controller.signal;
    }

    /** The client went away before the request body ended. */
    #left(): void {
      this.#gone = true;
      if (!this.#out.writableFinished) this.#controller?.abort();
    }

    get body(): ReadableStream<Uint8Array> | null {
      if (this.#bodyIsRequests) return this.#request!.body;
      if (this.#body === undefined) {
        if (!hasBody(this.#message)) this.#body = null;
        // Read straight from the message: the real Request holds a used body.
        else if (this.#used) return this.#materialize().body;
        else {
          this.#body = bodyStream(
            this.#message,
            () => this.#used = true,
            () => this.#left(),
          );
        }
      }
      return this.#body;
    }

    get bodyUsed(): boolean {
      if (this.#bodyIsRequests) return this.#request!.bodyUsed;
      return this.#used;
    }

    text(): Promise<string> {
      return this.#read("text", (bytes) => decoder.decode(bytes));
    }

    json(): Promise<unknown> {
      return this.#read("json", (bytes) => JSON.parse(decoder.decode(bytes)));
    }

    arrayBuffer(): Promise<ArrayBuffer> {
      return this.#read(
        "arrayBuffer",
        (bytes) => bytes.buffer as ArrayBuffer,
      );
    }

    bytes(): Promise<Uint8Array> {
      return this.#read("bytes", (bytes) => bytes);
    }

    /**
     * Reads the whole body: from the real Request or a stream already handed
     * out when there is one, else straight from the message.
     */
    #read<T>(
      method: "text" | "json" | "arrayBuffer" | "bytes",
      convert: (bytes: Uint8Array) => T,
    ): Promise<T> {
      try {
        if (this.#request !== undefined || this.#body) {
          // Not every lib.d.ts knows Request's bytes() yet.
          const request = this.#materialize() as unknown as Record<
            typeof method,
            () => Promise<T>
          >;
          return request[method]();
        }
        if (!hasBody(this.#message)) {
          return Promise.resolve(convert(new Uint8Array(0)));
        }
        if (this.#used) return Promise.reject(bodyUnusable());
        this.#used = true;
        return readAll(this.#message, () => this.#left()).then(convert);
      } catch (error) {
        return Promise.reject(error);
      }
    }

    /**
     * The real Request this one stands for, made on first need. It takes
     * over the body stream when that is still unread and unlocked; a body
     * already read or locked is given to it as a used one, so that bodyUsed,
     * clone() and `new Request(request)` say so.
     */
    #materialize(): Request {
      if (this.#request !== undefined) return this.#request;
      const init: StreamRequestInit = {
        method: this.method,
        headers: this.headers,
        signal: this.signal,
      };
      let used = false;
      if (hasBody(this.#message)) {
        const body = this.#body;
        if (!this.#used && !body?.locked) {
          init.body = this.body;
          this.#bodyIsRequests = true;
        } else {
          init.body = new ReadableStream({ start: (c) => c.close() });
          used = true;
          // A stream the handler holds stays its body.
          this.#bodyIsRequests = body === undefined;
        }
        init.duplex = "half";
      }
      const request = new NativeRequest(this.url, init);
      if (used) void request.body!.getReader().read();
      this.#request = request;
      return request;
    }

    static {
      const own = new Set(Reflect.ownKeys(NodeHttpRequest.prototype));
      // The Request members this class does not answer itself: forwarded to
      // the real Request.
      for (const key of Reflect.ownKeys(NativeRequest.prototype)) {
        if (own.has(key) || key === Symbol.toStringTag) continue;
        const descriptor = Reflect.getOwnPropertyDescriptor(
          NativeRequest.prototype,
          key,
        )!;
        if (descriptor.get !== undefined) {
          Object.defineProperty(NodeHttpRequest.prototype, key, {
            configurable: true,
            get(this: NodeHttpRequest) {
              return Reflect.get(this.#materialize(), key);
            },
            ...descriptor.set === undefined ? {} : {
              set(this: NodeHttpRequest, value: unknown) {
                Reflect.set(this.#materialize(), key, value);
              },
            },
          });
        } else if (typeof descriptor.value === "function") {
          Object.defineProperty(NodeHttpRequest.prototype, key, {
            configurable: true,
            writable: true,
            value: function (this: NodeHttpRequest, ...args: unknown[]) {
              const request = this.#materialize();
              return Reflect.apply(
                Reflect.get(request, key) as (...args: unknown[]) => unknown,
                request,
                args,
              );
            },
          });
        }
      }
      // The runtime keeps a Request's state in symbol-keyed slots of the
      // instance, which `new Request(request)` and fetch(request) read from
      // their input: these forward to the real Request's, so that both work
      // with this one too.
      const probe = new NativeRequest("http://localhost/");
      for (const key of Reflect.ownKeys(probe)) {
        if (typeof key !== "symbol" || own.has(key)) continue;
        Object.defineProperty(NodeHttpRequest.prototype, key, {
          configurable: true,
          get(this: NodeHttpRequest) {
            return Reflect.get(this.#materialize(), key);
          },
          set(this: NodeHttpRequest, value: unknown) {
            Reflect.set(this.#materialize(), key, value);
          },
        });
      }
      // node:util's inspect would otherwise reach the forwarded members.
      Object.defineProperty(
        NodeHttpRequest.prototype,
        Symbol.for("nodejs.util.inspect.custom"),
        {
          configurable: true,
          value: function (this: NodeHttpRequest) {
            return `Request { method: ${JSON.stringify(this.method)}, url: ${
              JSON.stringify(this.url)
            } }`;
          },
        },
      );
      // request.constructor is Request, as for any other request.
      Object.defineProperty(NodeHttpRequest.prototype, "constructor", {
        configurable: true,
        writable: true,
        value: NativeRequest,
      });
      Object.setPrototypeOf(
        NodeHttpRequest.prototype,
        NativeRequest.prototype,
      );
    }
  }
  return NodeHttpRequest as unknown as LazyRequestClass;
}

let requestClass: LazyRequestClass | undefined;

/** The lazy request class, made on first use (it probes the runtime). */
export function lazyRequestClass(): LazyRequestClass {
  return requestClass ??= makeRequestClass();
}
