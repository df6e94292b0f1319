// The one way the benchmarks put an HTTP server under load: autocannon (npm,
// pinned), as a Node process of its own pinned to the load generators' CPU,
// on loopback. Any error, timeout or non-2xx response fails the run.

import { join } from "node:path";
import { capture } from "./_util.ts";
import { LOAD_CPU, pinned } from "./_server.ts";

/** The load generator, pinned so that runs compare. */
export const AUTOCANNON = "autocannon@9.0.0";

/** The requests the load generator sends. */
export interface LoadRequest {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** How hard and how long. */
export interface LoadSettings {
  /** Concurrent keep-alive connections. */
  readonly connections: number;
  /** Requests in flight per connection (1: no pipelining). */
  readonly pipelining: number;
  /** Seconds. */
  readonly seconds: number;
}

/** What one run measured. */
export interface LoadResult {
  /** Mean requests per second. */
  readonly requestsPerSecond: number;
  /** Latency percentiles in ms (autocannon counts whole milliseconds). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Responses counted (all 2xx). */
  readonly requests: number;
}

interface AutocannonReport {
  errors: number;
  timeouts: number;
  non2xx: number;
  "2xx": number;
  latency: { p50: number; p99: number };
  requests: { average: number };
}

/**
 * Runs autocannon against `port` (installed in `toolsDir` by the runner,
 * for the sections that list {@linkcode AUTOCANNON} in their `npm`).
 */
export async function runLoad(
  options: {
    nodePath: string;
    toolsDir: string;
    pin: boolean;
    port: number;
    request: LoadRequest;
    settings: LoadSettings;
  },
): Promise<LoadResult> {
  const { request, settings } = options;
  const argv = pinned(options.pin, LOAD_CPU, [
    options.nodePath,
    join(options.toolsDir, "node_modules", "autocannon", "autocannon.js"),
    "--connections",
    String(settings.connections),
    "--pipelining",
    String(settings.pipelining),
    "--duration",
    String(settings.seconds),
    "--method",
    request.method,
    ...Object.entries(request.headers ?? {}).flatMap(([name, value]) => [
      "--headers",
      `${name}=${value}`,
    ]),
    ...(request.body === undefined ? [] : ["--body", request.body]),
    "--no-progress",
    "--json",
    `http://127.0.0.1:${options.port}${request.path}`,
  ]);
  const report = JSON.parse(
    await capture(argv[0]!, argv.slice(1)),
  ) as AutocannonReport;
  if (
    report.errors !== 0 || report.timeouts !== 0 || report.non2xx !== 0 ||
    report["2xx"] === 0
  ) {
    throw new Error(
      `autocannon saw failures: ${report.errors} errors, ${report.timeouts} timeouts, ${report.non2xx} non-2xx, ${
        report["2xx"]
      } 2xx`,
    );
  }
  return {
    requestsPerSecond: report.requests.average,
    p50Ms: report.latency.p50,
    p99Ms: report.latency.p99,
    requests: report["2xx"],
  };
}

/** The CPU time a process has used so far, all its threads, in µs. */
export async function cpuMicros(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // proc(5): utime and stime are fields 14 and 15; the command name in
  // field 2 may hold spaces, so count from its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / await ticksPerSecond() * 1e6;
}

let ticks: Promise<number> | undefined;

function ticksPerSecond(): Promise<number> {
  return ticks ??= capture("getconf", ["CLK_TCK"]).then(Number);
}
