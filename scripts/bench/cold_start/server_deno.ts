// The cold-start benchmark's Deno server: HTTP on the socket the service
// manager passed, or on the port given as the first argument when there is
// none for this process. The same file serves both arms of the benchmark.

import { createServer } from "node:http";
import process from "node:process";
import { getSystemdSocket } from "../../../mod.ts";

const server = createServer((_request, response) => response.end("ok\n"));
const fd = getSystemdSocket(undefined, { unsetEnv: true });
server.listen(
  fd === undefined ? { port: Number(process.argv[2]), host: "127.0.0.1" } : {
    fd,
  },
);
