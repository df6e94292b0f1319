// The Node servers of the throughput benchmark (scripts/bench/serve/),
// run from the bench's app, where "socket-activation" is the built package
// and the others come from npm:
//
//   node server.mjs SERVER SCENARIO PORT
//
// SERVER is `node:http` (bare, the handler written for it), `serve` (this
// library: the socket systemd-socket-activate passed when there is one,
// else PORT bound here), `hono` (@hono/node-server as it comes: it replaces
// the global Request and Response with lighter ones of its own), `hono-plain`
// (the same with `overrideGlobalObjects: false`, so that the handler makes
// the runtime's own Response, as with serve() and srvx), `srvx`, or
// `serve-reused`, a diagnostic: serve() with a handler that makes its
// Response once and returns it every time (the echo one still reads each
// request's JSON), to tell the cost of undici's Response from that of
// serve() (it works because serve() writes such a body without reading its
// stream).
// SCENARIO is `hello` or `echo` (handlers.js). Prints one JSON line once it
// listens, saying where.

import { createServer } from "node:http";
import process from "node:process";
import { fetchHandlers, nodeHandlers } from "./handlers.js";

const [server, scenario, portArgument] = process.argv.slice(2);
const port = Number(portArgument);
const hostname = "127.0.0.1";
if (scenario !== "hello" && scenario !== "echo") {
  throw new RangeError(`Unknown scenario: ${scenario}`);
}
const fetch = fetchHandlers[scenario];

function ready(source, endpoint) {
  console.log(JSON.stringify({ source, endpoint }));
}

const bound = `http://${hostname}:${port}`;
if (server === "node:http") {
  createServer(nodeHandlers[scenario]).listen(
    port,
    hostname,
    () => ready("bound", bound),
  );
} else if (server === "serve") {
  const { formatEndpoint, serve } = await import("socket-activation");
  const running = await serve({ endpoint: bound }, fetch);
  ready(running.source, formatEndpoint(running.endpoint));
} else if (server === "serve-reused") {
  const { formatEndpoint, serve } = await import("socket-activation");
  let made;
  const reused = scenario === "hello"
    ? () => made ??= new Response("hello\n")
    : async (request) => {
      const data = await request.json();
      return made ??= Response.json(data);
    };
  const running = await serve({ endpoint: bound }, reused);
  ready(running.source, formatEndpoint(running.endpoint));
} else if (server === "hono" || server === "hono-plain") {
  const { serve } = await import("@hono/node-server");
  serve({
    fetch,
    port,
    hostname,
    overrideGlobalObjects: server === "hono",
  }, () => ready("bound", bound));
} else if (server === "srvx") {
  const { serve } = await import("srvx");
  await serve({ fetch, port, hostname, silent: true }).ready();
  ready("bound", bound);
} else {
  throw new RangeError(`Unknown server: ${server}`);
}
