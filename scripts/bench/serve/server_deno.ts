// The Deno servers of the throughput benchmark (scripts/bench/serve/):
//
//   deno run … server_deno.ts SERVER SCENARIO PORT
//
// SERVER is `Deno.serve` (the runtime's own server, which cannot take a
// passed fd), `node:http` (Deno's node:http, the handler written for it) or
// `serve` (this library: the socket systemd-socket-activate passed when
// there is one, else PORT bound here). SCENARIO is `hello` or `echo`
// (handlers.ts). Prints one JSON line once it listens, saying where.

import { createServer } from "node:http";
import { formatEndpoint, serve } from "../../../mod.ts";
import { fetchHandlers, nodeHandlers } from "./handlers.ts";

const [server, scenario, portArgument] = Deno.args;
const port = Number(portArgument);
const hostname = "127.0.0.1";
if (scenario !== "hello" && scenario !== "echo") {
  throw new RangeError(`Unknown scenario: ${scenario}`);
}

function ready(source: string, endpoint: string): void {
  console.log(JSON.stringify({ source, endpoint }));
}

if (server === "Deno.serve") {
  Deno.serve({
    hostname,
    port,
    onListen: () => ready("bound", `http://${hostname}:${port}`),
  }, fetchHandlers[scenario]);
} else if (server === "node:http") {
  createServer(nodeHandlers[scenario]).listen(
    port,
    hostname,
    () => ready("bound", `http://${hostname}:${port}`),
  );
} else if (server === "serve") {
  const running = await serve(
    { endpoint: `http://${hostname}:${port}` },
    fetchHandlers[scenario],
  );
  ready(running.source, formatEndpoint(running.endpoint));
} else {
  throw new RangeError(`Unknown server: ${server}`);
}
