// Cold start: from the moment a client connects to the moment it has the
// server's first HTTP response, for the same server (server_deno.ts,
// server_node.mjs) started by systemd-socket-activate in two ways:
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

import { join } from "node:path";
import type { BenchContext, Section } from "../_section.ts";
import { ACTIVATOR, spawn, type Spawned } from "../_server.ts";
import { freePort, here, median } from "../_util.ts";

const REQUEST = new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
);
const POLL_MS = 1;
const DEFAULT_ROUNDS = 20;

/** Both arms' times in milliseconds, in run order. */
interface ColdStartRuns {
  activatedMs: number[];
  selfBoundMs: number[];
}

/** What the section measured. */
export interface ColdStartResult {
  rounds: number;
  deno: ColdStartRuns;
  node: ColdStartRuns;
}

/** The server command, with the fallback port last. */
type ServerCommand = (port: number) => string[];

function serverCommand(
  runtime: "deno" | "node",
  context: BenchContext,
): ServerCommand {
  if (runtime === "deno") {
    const script = here(import.meta.url, "./server_deno.ts");
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
  const script = join(context.appDir, "cold_start_server.mjs");
  return (port) => [context.nodePath, script, String(port)];
}

/** Starts systemd-socket-activate and waits until it listens. */
async function startActivator(
  port: number,
  extra: readonly string[],
  server: readonly string[],
): Promise<Spawned> {
  // Not pinned: a cold start is the runtime starting as it would.
  const activator = spawn(
    [ACTIVATOR, "-l", `127.0.0.1:${port}`, ...extra, "--", ...server],
    { pin: false, cpu: 0 },
  );
  await activator.waitFor(/Listening on/, "listening");
  return activator;
}

/** Sends one request on `conn` and checks the whole response. */
async function exchange(conn: Deno.Conn, activator: Spawned): Promise<void> {
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

async function activated(server: ServerCommand): Promise<number> {
  const port = freePort();
  const activator = await startActivator(port, [], server(freePort()));
  try {
    const start = performance.now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await exchange(conn, activator);
    return performance.now() - start;
  } finally {
    await activator.stop();
  }
}

async function selfBound(server: ServerCommand): Promise<number> {
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
    await activator.stop();
  }
}

/**
 * Runs both arms `rounds` times, interleaved (the order alternates each
 * round), after one discarded warm-up round that fills the runtimes' caches.
 */
async function runArms(
  server: ServerCommand,
  rounds: number,
): Promise<ColdStartRuns> {
  await activated(server);
  await selfBound(server);
  const result: ColdStartRuns = { activatedMs: [], selfBoundMs: [] };
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

async function run(context: BenchContext): Promise<ColdStartResult> {
  const given = context.options["cold-start-rounds"];
  const rounds = given === undefined ? DEFAULT_ROUNDS : Number(given);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(`Invalid --cold-start-rounds: ${given}`);
  }
  await Deno.copyFile(
    here(import.meta.url, "./server_node.mjs"),
    join(context.appDir, "cold_start_server.mjs"),
  );
  context.log(`  Deno, ${rounds} rounds per arm`);
  const deno = await runArms(serverCommand("deno", context), rounds);
  context.log(`  Node, ${rounds} rounds per arm`);
  const node = await runArms(serverCommand("node", context), rounds);
  return { rounds, deno, node };
}

function row(runtime: string, result: ColdStartRuns): string {
  const ms = (values: number[]) =>
    `${median(values).toFixed(1)} (${Math.min(...values).toFixed(1)}–${
      Math.max(...values).toFixed(1)
    })`;
  return `| ${runtime} | ${ms(result.activatedMs)} | ${
    ms(result.selfBoundMs)
  } | **${
    (median(result.activatedMs) / median(result.selfBoundMs)).toFixed(2)
  }** | ${result.activatedMs.length} |`;
}

function render(result: ColdStartResult): string {
  return `## Cold start: activated socket against self-bound port

The same HTTP server (\`node:http\`, one \`getSystemdSocket()\` call, listen on
the fd it returns or else on the port in its argument:
\`scripts/bench/cold_start/server_deno.ts\` on Deno, \`server_node.mjs\` on
Node, run in the bench's throwaway app) is started by \`systemd-socket-activate\`,
which waits for a first connection and then execs it, in two ways:

- **activated**: \`systemd-socket-activate -l 127.0.0.1:A -- server\`; the
  server finds fd 3 and listens on it. Timed: from the client's
  \`connect()\` to port A (which makes systemd-socket-activate exec the
  server; the connection waits in the backlog) until the whole HTTP response
  to a \`GET /\` has been read.
- **self-bound**:
  \`systemd-socket-activate -l 127.0.0.1:T -E LISTEN_PID=1 -- server B\`; the library finds the variables meant for another process,
  returns nothing, and the server binds port B itself. Timed: from the
  client's \`connect()\` to the trigger port T (which execs the server) until
  the whole response has been read from port B, which the client tries
  every 1 ms until a connection is accepted (what a client of a server that
  is still starting must do; this adds up to about 1 ms).

Both arms thus time the same path: exec, runtime start-up, module loading,
the library call, listen, accept, respond. What differs: the activated server
listens on an existing socket whose first connection is already waiting; the
self-bound one calls \`listen({ port, host: "127.0.0.1" })\`, which also
resolves the host (a few ms in both runtimes) and binds, and its client finds
out by polling. The spread between rounds (min–max below) is wide on a busy
machine: compare the medians, with the load average above in mind. The client is the Deno process
running the benchmarks. After one discarded warm-up round of each arm
(which fills Deno's compile cache), ${result.rounds} rounds per runtime, the order of the two arms
alternating each round. Times in ms: median (min–max).

| runtime | activated (ms) | self-bound (ms) | ratio activated / self-bound | rounds |
| --- | ---: | ---: | ---: | ---: |
${row("Deno", result.deno)}
${row("Node", result.node)}
`;
}

/** The section: cold start, activated against self-bound. */
export const coldStartSection: Section<ColdStartResult> = {
  id: "cold-start",
  title: "cold start of an HTTP server, activated against self-bound",
  options: {
    "cold-start-rounds": {
      type: "string",
      description: `rounds per arm and runtime (default ${DEFAULT_ROUNDS})`,
    },
  },
  run,
  render,
};
