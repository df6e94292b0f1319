// The Request a serve() handler gets from node:http is made lazily; it must
// be indistinguishable from an eager `new Request(url, { method, headers,
// body })` made from the same bytes, for every member of Request.prototype a
// handler can touch. Requests are written byte for byte on a raw connection
// to a unix socket (node:http answers those on Deno too; on TCP, Deno's own
// engine gives its own Request), so that the eager one is made from exactly
// what the server received.

import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { DEADLINE, MODES, serveIn, tempDir } from "./_serve.ts";

// The Host the client sends.
const HOST = "service.test:8080";

/** A request as written on the wire. */
interface Shape {
  method: string;
  target: string;
  /** Header lines after Host, in order (repeated names included). */
  headers: [string, string][];
  body?: string;
}

const SHAPES: Record<string, Shape> = {
  get: {
    method: "GET",
    target: "/a/b?q=1&r=two",
    headers: [
      ["X-Multi", "a"],
      ["x-multi", "b"],
      ["Cookie", "c=1"],
      ["Cookie", "d=2"],
      ["Accept", "*/*"],
    ],
  },
  form: {
    method: "POST",
    target: "/form",
    headers: [["Content-Type", "application/x-www-form-urlencoded"]],
    body: "a=1&b=%C3%A9&a=3",
  },
  json: {
    method: "PUT",
    target: "/json?x",
    headers: [["content-type", "application/json; charset=UTF-8"]],
    body: '{"x":[1,2],"y":"\u00e9"}',
  },
};

// Every member of Request.prototype, split into what is read and what is
// called; plus reading `body` through its stream and `new Request(request)`.
const prototypeKeys = Object.getOwnPropertyNames(Request.prototype).filter(
  (name) => name !== "constructor",
);
const GETTERS = prototypeKeys.filter((name) =>
  Object.getOwnPropertyDescriptor(Request.prototype, name)!.get !== undefined
);
const METHODS = prototypeKeys.filter((name) =>
  typeof Object.getOwnPropertyDescriptor(Request.prototype, name)!.value ===
    "function"
);
const USES = [...METHODS, "read body", "new Request(request)", "getters"];

async function readStream(stream: ReadableStream<unknown>): Promise<unknown[]> {
  const chunks: unknown[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return chunks;
    chunks.push(await plain(value, true));
  }
}

/** A value as comparable data. */
async function plain(value: unknown, read = false): Promise<unknown> {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Headers) return { headers: [...value] };
  if (value instanceof AbortSignal) return { signal: value.aborted };
  if (value instanceof ReadableStream) {
    return read
      ? { stream: await readStream(value) }
      : { stream: true, locked: value.locked };
  }
  if (value instanceof ArrayBuffer) {
    return { arrayBuffer: [...new Uint8Array(value)] };
  }
  if (value instanceof Uint8Array) {
    return {
      // A Buffer is a Uint8Array too, but not what bytes() gives.
      plain: Object.getPrototypeOf(value) === Uint8Array.prototype,
      bytes: [...value],
    };
  }
  if (value instanceof Blob) {
    return { blob: value.type, size: value.size, text: await value.text() };
  }
  if (value instanceof FormData) return { formData: [...value] };
  if (value instanceof Request) return await describe(value, "text");
  return JSON.parse(JSON.stringify(value));
}

async function settle(call: () => unknown): Promise<unknown> {
  try {
    return { value: await plain(await call(), true) };
  } catch (error) {
    return { error: (error as Error).constructor.name };
  }
}

/** What a handler can find out about `request` by using it as `use` says. */
async function describe(request: Request, use: string): Promise<unknown> {
  const getters: Record<string, unknown> = {};
  for (const name of GETTERS) {
    getters[name] = await plain(Reflect.get(request, name));
  }
  const found: Record<string, unknown> = {
    instance: request instanceof Request,
    tag: Object.prototype.toString.call(request),
    constructor: request.constructor === Request,
    getters,
  };
  if (use === "read body") {
    found.result = await settle(() => request.body);
  } else if (use === "new Request(request)") {
    found.result = await settle(() => new Request(request));
    found.withInit = await settle(() =>
      new Request(request, { headers: { "x-new": "1" } })
    );
  } else if (use === "clone") {
    found.result = await settle(() => request.clone());
    found.original = await settle(() => request.text());
  } else if (use !== "getters") {
    found.result = await settle(() =>
      (Reflect.get(request, use) as () => unknown).call(request)
    );
    // A body is read once: the second read must fail the same way.
    found.again = await settle(() =>
      (Reflect.get(request, use) as () => unknown).call(request)
    );
  }
  found.bodyUsed = request.bodyUsed;
  found.after = await plain(request.body);
  return found;
}

/** Sends `shape` on a raw connection; resolves with the response body. */
function exchange(path: string, shape: Shape, use: string): Promise<string> {
  const body = new TextEncoder().encode(shape.body ?? "");
  const lines = [
    `${shape.method} ${shape.target} HTTP/1.1`,
    `Host: ${HOST}`,
    `X-Use: ${use}`,
    ...shape.headers.map(([name, value]) => `${name}: ${value}`),
    ...shape.body === undefined ? [] : [`Content-Length: ${body.length}`],
    "Connection: close",
    "",
    "",
  ];
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const chunks: Uint8Array[] = [];
    socket.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = new TextDecoder().decode(
        new Uint8Array(chunks.flatMap((chunk) => [...chunk])),
      );
      const split = text.indexOf("\r\n\r\n");
      const head = text.slice(0, split);
      let rest = text.slice(split + 4);
      if (/^transfer-encoding: chunked$/im.test(head)) {
        let joined = "";
        while (true) {
          const end = rest.indexOf("\r\n");
          const size = parseInt(rest.slice(0, end), 16);
          if (size === 0) break;
          joined += rest.slice(end + 2, end + 2 + size);
          rest = rest.slice(end + 2 + size + 2);
        }
        rest = joined;
      }
      if (!head.startsWith("HTTP/1.1 200")) {
        reject(new Error(`${use}: the server answered ${head}\n\n${rest}`));
      } else resolve(rest);
    });
    socket.write(lines.join("\r\n"));
    socket.end(body);
  });
}

for (const mode of MODES) {
  test(
    `serve() gives the handler a request equal to an eager one, member by member${mode.label}`,
    DEADLINE,
    async () => {
      const dir = tempDir();
      const path = join(dir, "request.sock");
      const server = await serveIn(
        mode,
        { endpoint: `unix://${path}` },
        async (request) => {
          const use = request.headers.get("x-use")!;
          const shape = SHAPES[
            new URL(request.url).pathname === "/a/b"
              ? "get"
              : new URL(request.url).pathname === "/form"
              ? "form"
              : "json"
          ]!;
          const eager = new Request(`http://${HOST}${shape.target}`, {
            method: shape.method,
            headers: [
              ["host", HOST],
              ["x-use", use],
              ...shape.headers,
              ...shape.body === undefined ? [] : [[
                "content-length",
                String(
                  new TextEncoder().encode(shape.body).length,
                ),
              ] as [string, string]],
              ["connection", "close"],
            ],
            ...shape.body === undefined
              ? {}
              : { body: shape.body, duplex: "half" } as RequestInit,
          });
          const actual = await describe(request, use);
          const expected = await describe(eager, use);
          return Response.json({ actual, expected });
        },
      );
      try {
        assert.equal(server.engine, "node:http");
        for (const [name, shape] of Object.entries(SHAPES)) {
          for (const use of USES) {
            const { actual, expected } = JSON.parse(
              await exchange(path, shape, use),
            );
            assert.deepEqual(actual, expected, `${name} request, ${use}`);
          }
        }
      } finally {
        await server.shutdown();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
