// The handlers every server of the throughput benchmark runs, whatever the
// runtime: a fetch-style one (serve(), Deno.serve, @hono/node-server, srvx)
// and a node:http one for the bare node:http baselines, doing the same:
//
// - hello: `GET /` answers `hello\n` (text/plain);
// - echo: `POST /echo` with a JSON body answers the same JSON, read with
//   `await request.json()` and sent with `Response.json()`.
//
// Runtime-neutral (node:http types only), for Deno as it is and for Node
// compiled (scripts/bench/serve/section.ts copies it beside the Node server).

import type { IncomingMessage, ServerResponse } from "node:http";

/** The fetch-style handlers, by scenario. */
export const fetchHandlers = {
  hello(): Response {
    return new Response("hello\n");
  },
  async echo(request: Request): Promise<Response> {
    return Response.json(await request.json());
  },
};

/** The node:http handlers, by scenario. */
export const nodeHandlers = {
  hello(_request: IncomingMessage, response: ServerResponse): void {
    response.end("hello\n");
  },
  echo(request: IncomingMessage, response: ServerResponse): void {
    const chunks: Uint8Array[] = [];
    request.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    request.on("end", () => {
      const text = new TextDecoder().decode(concat(chunks));
      const body = JSON.stringify(JSON.parse(text));
      response.writeHead(200, {
        "content-type": "application/json",
        "content-length": new TextEncoder().encode(body).byteLength,
      });
      response.end(body);
    });
  },
};

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
