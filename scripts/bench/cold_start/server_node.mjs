// The cold-start benchmark's Node server: HTTP on the socket the service
// manager passed, or on the port given as the first argument when there is
// none for this process. Same code as the Deno one. The section copies it
// into the bench's app, where "socket-activation" is the built package.

import { createServer } from "node:http";
import process from "node:process";
import { getSystemdSocket } from "socket-activation";

const server = createServer((_request, response) => response.end("ok\n"));
const fd = getSystemdSocket(undefined, { unsetEnv: true });
server.listen(
  fd === undefined ? { port: Number(process.argv[2]), host: "127.0.0.1" } : {
    fd,
  },
);
