// An HTTP service for systemd (units: web.socket and web.service beside this
// file, or accept/ for one instance per connection). It reads its endpoint from app.toml and serves on the socket
// systemd passed, or, run by hand, binds the configured endpoint itself. It
// tells systemd when it is ready (Type=notify), feeds the watchdog
// (WatchdogSec=) and shuts down gracefully on SIGTERM.
//
//   npm install socket-activation
//   node node_server.mjs [app.toml]

import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  formatEndpoint,
  loadConfig,
  ready,
  serve,
  startWatchdog,
  status,
  stopping,
} from "socket-activation";

const configPath = process.argv[2] ??
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
      runtime: "node",
      pid: process.pid,
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

function stop() {
  stopping();
  status("Finishing the requests in progress");
  shutdown.abort();
}
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
await server.finished;
watchdog?.stop();
process.off("SIGTERM", stop);
process.off("SIGINT", stop);
