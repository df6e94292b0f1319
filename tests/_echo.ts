// The line echo the listen() tests serve in this process, and how they talk
// to it: ping a server by path or port, close one, make a stale socket.

import assert from "node:assert/strict";
import { linkSync, lstatSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { within } from "./_activator.ts";

/** Where a stream server is: a unix socket path, or a TCP port. */
export type Target = { port: number; host?: string } | { path: string };

/** Sends `line` to the server at `target`; resolves with the answer line. */
export function ping(target: Target, line = "ping"): Promise<string> {
  return within(
    new Promise((resolve, reject) => {
      const socket = "path" in target
        ? connect({ path: target.path })
        : connect({ host: target.host ?? "127.0.0.1", port: target.port });
      socket.setEncoding("utf8");
      let buffered = "";
      socket.on("data", (chunk: string) => {
        buffered += chunk;
        const end = buffered.indexOf("\n");
        if (end >= 0) {
          socket.destroy();
          resolve(buffered.slice(0, end));
        }
      });
      socket.on("error", reject);
      socket.write(`${line}\n`);
    }),
    `an answer from ${JSON.stringify(target)}`,
  );
}

/** Answers "here LINE" to every line, on a net.Server from listen(). */
export function echo(server: Server): Server {
  server.on("connection", (socket) => {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => socket.write(`here ${chunk}`));
  });
  return server;
}

/** Closes `server`; rejects if it was not listening. */
export function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) =>
    server.close((error) => error ? reject(error) : resolve())
  );
}

/** A socket file nobody listens on: a second name of a closed server's. */
export async function staleSocket(path: string): Promise<void> {
  const server = createServer();
  const live = `${path}.live`;
  await new Promise<void>((resolve) => server.listen(live, resolve));
  linkSync(live, path);
  await close(server);
  assert.ok(lstatSync(path).isSocket());
}
