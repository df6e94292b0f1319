// A Node web service started by systemd socket activation (see web.socket
// and web.service beside this file). It serves on the socket named "web"
// when systemd passed one, and on port 8080 otherwise, so that the same
// program also runs by hand.
//
// Install the package beside it (`npm install socket-activation`), then
// run: node node_server.mjs

import { createServer } from "node:http";
import process from "node:process";
import { getSystemdSocket, listenFds } from "socket-activation";

// The passed sockets and their FileDescriptorName=, for the log line below.
const passed = listenFds();
// unsetEnv: programs this service starts must not take the sockets for theirs.
const fd = getSystemdSocket("web", { unsetEnv: true });
const name = passed.find((socket) => socket.fd === fd)?.name;

const server = createServer((request, response) => {
  response.setHeader("content-type", "application/json");
  response.end(
    JSON.stringify({
      runtime: "node",
      pid: process.pid,
      fd: fd ?? null,
      name: name ?? null,
      method: request.method,
      url: request.url,
    }) + "\n",
  );
});

if (fd === undefined) {
  server.listen(8080, () => console.error("Not socket-activated: port 8080"));
} else {
  server.listen({ fd }, () => console.error(`Serving on fd ${fd} (${name})`));
}
