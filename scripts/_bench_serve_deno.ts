// The throughput benchmark's Deno server (scripts/_bench_serve.ts). The first
// argument picks the server, the second the port:
// - `serve`: this library's serve() on `http://127.0.0.1:PORT`, which uses the
//   socket systemd-socket-activate passed when there is one, else binds PORT;
// - `deno`: Deno.serve on PORT, the runtime's own HTTP server, which cannot
//   take a passed fd (the baseline of the node:http path's cost).
// Prints one JSON line once it listens, saying where, so that the harness can
// check that each arm serves from the socket it is meant to.

import { formatEndpoint, serve } from "../mod.ts";

// The same trivial handler in every arm and runtime.
function handler(): Response {
  return new Response("hello\n");
}

const [mode, portArg] = Deno.args;
const port = Number(portArg);
if (mode === "deno") {
  Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: ({ port }) =>
      console.log(JSON.stringify({
        source: "bound",
        endpoint: `http://127.0.0.1:${port}`,
      })),
  }, handler);
} else if (mode === "serve") {
  const server = await serve({ endpoint: `http://127.0.0.1:${port}` }, handler);
  console.log(JSON.stringify({
    source: server.source,
    endpoint: formatEndpoint(server.endpoint),
  }));
} else {
  throw new RangeError(`Unknown server: ${mode}`);
}
