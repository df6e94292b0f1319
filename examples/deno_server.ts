// An HTTP service for systemd (units: web.socket and web.service beside this
// file, or accept/ for one instance per connection). It reads its endpoint from app.toml and serves on the socket
// systemd passed, or, run by hand, binds the configured endpoint itself. It
// tells systemd when it is ready (Type=notify), feeds the watchdog
// (WatchdogSec=) and shuts down gracefully on SIGTERM.
//
//   deno run --allow-env --allow-ffi --allow-read deno_server.ts [app.toml]
//
// By hand, add --allow-net to bind a TCP port, or --allow-write to bind a
// unix socket. In your project, `deno add
// jsr:@socket-activation/socket-activation` maps the import below.

import { fileURLToPath } from "node:url";
import {
  formatEndpoint,
  loadConfig,
  ready,
  serve,
  startWatchdog,
  status,
  stopping,
} from "@socket-activation/socket-activation";

const configPath = Deno.args[0] ??
  fileURLToPath(new URL("app.toml", import.meta.url));
const config = await loadConfig(configPath);
const web = config.listen.web;
if (web === undefined) {
  throw new Error(`No [listen] web entry in ${configPath}`);
}

const shutdown = new AbortController();
// The socket named "web" when systemd passed one, else web's URI, bound here;
// then LISTEN_* leave the environment, so that no child takes them for its own.
const server = await serve(
  { name: "web", ...web, signal: shutdown.signal, unsetEnv: true },
  (request) =>
    Response.json({
      runtime: "deno",
      pid: Deno.pid,
      mode: server.source === "systemd" ? "activated" : "by hand",
      fd: server.fd ?? null,
      name: server.name ?? null,
      endpoint: formatEndpoint(server.endpoint),
      path: new URL(request.url).pathname,
    }),
);

const where = server.source === "systemd"
  ? `fd ${server.fd} (${server.name})`
  : formatEndpoint(server.endpoint);
console.error(`Serving on ${where}`);
// Each returns false, doing nothing, when not started by systemd.
ready();
status(`Serving on ${where}`);
const watchdog = startWatchdog();

function stop(): void {
  stopping();
  status("Finishing the requests in progress");
  shutdown.abort();
}
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
await server.finished;
watchdog?.stop();
Deno.removeSignalListener("SIGTERM", stop);
Deno.removeSignalListener("SIGINT", stop);
