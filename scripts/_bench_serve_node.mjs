// The throughput benchmark's Node server (scripts/_bench_serve.ts): this
// library's serve() on `http://127.0.0.1:PORT` (PORT the first argument),
// which uses the socket systemd-socket-activate passed when there is one,
// else binds PORT. The same code as the Deno server's `serve` mode;
// scripts/_bench_serve.ts copies it into the app where "socket-activation"
// is the built package. Prints one JSON line once it listens, saying where.

import process from "node:process";
import { formatEndpoint, serve } from "socket-activation";

// The same trivial handler in every arm and runtime.
function handler() {
  return new Response("hello\n");
}

const server = await serve(
  { endpoint: `http://127.0.0.1:${Number(process.argv[2])}` },
  handler,
);
console.log(JSON.stringify({
  source: server.source,
  endpoint: formatEndpoint(server.endpoint),
}));
