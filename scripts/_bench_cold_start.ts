// Cold start: from the moment a client connects to the moment it has the
// server's first HTTP response, for the same server started by
// systemd-socket-activate in two ways:
// - activated: the server listens on the socket systemd-socket-activate
//   passed (fd 3); the client's connection is the one that makes
//   systemd-socket-activate exec the server, and it waits in the socket's
//   backlog until the server accepts it.
// - self-bound: systemd-socket-activate listens on a trigger port and passes
//   LISTEN_PID=1 (meant for another process, so the library finds nothing);
//   the server binds its own port. The client connects to the trigger port
//   (which execs the server) and then tries the server's port every
//   millisecond until a connection is accepted, as a client of a server
//   that is still starting must.
// Both arms time the same path (exec by systemd-socket-activate, runtime
// start-up, module loading, the library call, listen, accept, respond); they
// differ only in where the socket comes from, plus the self-bound arm's
// polling step (up to about 1 ms).

import { fileURLToPath } from "node:url";

const ACTIVATOR = "/usr/bin/systemd-socket-activate";
const REQUEST = new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
);
const POLL_MS = 1;

/**
 * The server command of each runtime, with the fallback port last; the Node
 * server is the one in the app made by `stageApp()`.
 */
export function serverCommand(
  runtime: "deno" | "node",
  nodePath: string,
  appDir: string,
): (port: number) => string[] {
  if (runtime === "deno") {
    const script = fileURLToPath(
      new URL("./_bench_server_deno.ts", import.meta.url),
    );
    return (port) => [
      Deno.execPath(),
      "run",
      "--no-prompt",
      "--allow-env",
      "--allow-ffi",
      "--allow-net=127.0.0.1",
      script,
      String(port),
    ];
  }
  return (port) => [nodePath, `${appDir}/server.mjs`, String(port)];
}

/** Both arms' times in milliseconds, in run order. */
export interface ColdStartResult {
  activatedMs: number[];
  selfBoundMs: number[];
}

function freePort(): number {
  // systemd-socket-activate refuses port 0: take one the kernel picked.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

interface Activator {
  child: Deno.ChildProcess;
  output(): string;
}

/** Starts systemd-socket-activate and waits until it listens. */
async function startActivator(
  port: number,
  extra: readonly string[],
  server: readonly string[],
): Promise<Activator> {
  const child = new Deno.Command(ACTIVATOR, {
    args: ["-l", `127.0.0.1:${port}`, ...extra, "--", ...server],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  // Keep reading both streams to the end, so the server never blocks on a
  // full pipe; resolve once the activator says it listens.
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve) => listening = resolve);
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
      if (output.includes("Listening on")) listening();
    }
  };
  drain(child.stdout);
  drain(child.stderr);
  const status = child.status.then((status) => {
    throw new Error(
      `systemd-socket-activate exited with ${status.code} before listening:\n${output}`,
    );
  });
  await Promise.race([ready, status]);
  status.catch(() => {});
  return { child, output: () => output };
}

async function stop(activator: Activator): Promise<void> {
  // The activator exec'd the server in place: this ends the server.
  try {
    activator.child.kill("SIGTERM");
  } catch {
    // Already gone; its status tells.
  }
  await activator.child.status;
}

/** Sends one request on `conn` and checks the whole response. */
async function exchange(conn: Deno.Conn, activator: Activator): Promise<void> {
  await conn.write(REQUEST);
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(4096);
  for (;;) {
    const read = await conn.read(buffer);
    if (read === null) break;
    chunks.push(buffer.slice(0, read));
  }
  conn.close();
  const text = new TextDecoder().decode(
    new Uint8Array(chunks.flatMap((chunk) => [...chunk])),
  );
  if (!text.startsWith("HTTP/1.1 200") || !text.endsWith("ok\n")) {
    throw new Error(
      `Unexpected response: ${JSON.stringify(text)}\n${activator.output()}`,
    );
  }
}

async function activated(server: (port: number) => string[]): Promise<number> {
  const port = freePort();
  const activator = await startActivator(port, [], server(freePort()));
  try {
    const start = performance.now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await exchange(conn, activator);
    return performance.now() - start;
  } finally {
    await stop(activator);
  }
}

async function selfBound(server: (port: number) => string[]): Promise<number> {
  const trigger = freePort();
  const port = freePort();
  const activator = await startActivator(
    trigger,
    ["-E", "LISTEN_PID=1"],
    server(port),
  );
  try {
    const start = performance.now();
    const triggering = await Deno.connect({
      hostname: "127.0.0.1",
      port: trigger,
    });
    let conn: Deno.Conn | undefined;
    while (conn === undefined) {
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
      } catch (error) {
        if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
        const exited = await Promise.race([
          activator.child.status.then(() => true),
          new Promise<false>((resolve) => setTimeout(resolve, POLL_MS, false)),
        ]);
        if (exited) {
          throw new Error(`The server exited:\n${activator.output()}`);
        }
      }
    }
    await exchange(conn, activator);
    const elapsed = performance.now() - start;
    triggering.close();
    return elapsed;
  } finally {
    await stop(activator);
  }
}

/**
 * Runs both arms `rounds` times, interleaved (the order alternates each
 * round), after one discarded warm-up round that fills the runtimes' caches.
 */
export async function runColdStart(
  server: (port: number) => string[],
  rounds: number,
): Promise<ColdStartResult> {
  await activated(server);
  await selfBound(server);
  const result: ColdStartResult = { activatedMs: [], selfBoundMs: [] };
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      result.activatedMs.push(await activated(server));
      result.selfBoundMs.push(await selfBound(server));
    } else {
      result.selfBoundMs.push(await selfBound(server));
      result.activatedMs.push(await activated(server));
    }
  }
  return result;
}
