// Throughput of serve(): requests per second and latency under load from
// autocannon (npm), a Node process of its own, on loopback. The arms:
// - activated: serve() on the socket systemd-socket-activate passed (the
//   server is exec'd by `systemd-socket-activate -l 127.0.0.1:PORT`);
// - self-bound: the same server, started directly, binds PORT itself;
// - Deno.serve (Deno only): the runtime's own HTTP server on a port, the
//   baseline for what the node:http path that serve() takes costs.
// The same trivial handler everywhere (scripts/_bench_serve_deno.ts and
// scripts/_bench_serve_node.mjs). Every arm runs in every round, on a fresh
// server process, in an order that reverses each round, so that a burst of
// load on the shared machine does not hit one arm only.

import { fileURLToPath } from "node:url";
import { median } from "./_bench_setup.ts";

const ACTIVATOR = "/usr/bin/systemd-socket-activate";

/** The load generator, pinned so that runs compare. */
export const AUTOCANNON = "autocannon@9.0.0";

/** The arms, in the order of the first round. */
export const SERVE_ARMS = [
  "deno-activated",
  "deno-bound",
  "deno-Deno.serve",
  "node-activated",
  "node-bound",
] as const;

/** One of {@linkcode SERVE_ARMS}. */
export type ServeArm = typeof SERVE_ARMS[number];

/** What the load generator does in each run. */
export interface LoadSettings {
  /** Concurrent keep-alive connections. */
  readonly connections: number;
  /** Requests in flight per connection (1: no pipelining). */
  readonly pipelining: number;
  /** Seconds of load that are not measured, right before the measured ones. */
  readonly warmupSeconds: number;
  /** Seconds measured. */
  readonly seconds: number;
  /** Runs of each arm. */
  readonly rounds: number;
}

/** The default settings: 50 connections, 1 s warm-up, 5 s measured, 5 rounds. */
export const DEFAULT_LOAD: LoadSettings = {
  connections: 50,
  pipelining: 1,
  warmupSeconds: 1,
  seconds: 5,
  rounds: 5,
};

/** One measured run, from autocannon's report. */
export interface ServeRun {
  /** Mean requests per second over the measured seconds. */
  readonly requestsPerSecond: number;
  /** Latency percentiles in ms (autocannon records whole milliseconds). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Responses counted (all 2xx, else the run fails). */
  readonly requests: number;
  /**
   * The server's CPU time (user + system, all threads) per response over
   * the measured seconds, in µs: unlike the rate, it hardly depends on how
   * much CPU other processes leave to the server.
   */
  readonly cpuUsPerRequest: number;
}

/** Every arm's runs, in round order. */
export interface ServeBenchResult {
  readonly load: LoadSettings;
  readonly autocannon: string;
  readonly runs: Readonly<Record<ServeArm, readonly ServeRun[]>>;
  /** The arms in the order they ran, one list per round. */
  readonly order: readonly (readonly ServeArm[])[];
  /** Whether the servers ran on CPU 0 and the load generator on CPU 1. */
  readonly pinned: boolean;
}

/** Where the servers are. */
export interface ServeBenchOptions {
  /** The Node binary, for the Node servers and for autocannon. */
  readonly nodePath: string;
  /** The app made by `stageApp()` (the built package installed in it). */
  readonly appDir: string;
  readonly load?: LoadSettings;
  /** The arms to run (default: all of {@linkcode SERVE_ARMS}). */
  readonly arms?: readonly ServeArm[];
  /**
   * Pin each server to CPU 0 and the load generator to CPU 1 (`taskset`),
   * so that they never share a core. Default: `true` when there are at
   * least 2 CPUs.
   */
  readonly pin?: boolean;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

function freePort(): number {
  // systemd-socket-activate refuses port 0: take one the kernel picked.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function check(command: Deno.Command, what: string): Promise<string> {
  const output = await command.output();
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(
      `${what} failed (${output.code}):\n${decoder.decode(output.stdout)}${
        decoder.decode(output.stderr)
      }`,
    );
  }
  return decoder.decode(output.stdout);
}

/** Installs autocannon into a temporary folder; returns its CLI script. */
async function installAutocannon(dir: string): Promise<string> {
  await check(
    new Deno.Command("npm", {
      args: [
        "install",
        "--prefix",
        dir,
        "--no-audit",
        "--no-fund",
        "--no-save",
        "--no-package-lock",
        "--prefer-offline",
        "--loglevel=error",
        AUTOCANNON,
      ],
      stdin: "null",
    }),
    `npm install ${AUTOCANNON}`,
  );
  return `${dir}/node_modules/autocannon/autocannon.js`;
}

function serverArgv(
  arm: ServeArm,
  options: ServeBenchOptions,
  port: number,
): string[] {
  if (arm.startsWith("node-")) {
    return [
      options.nodePath,
      `${options.appDir}/serve_bench.mjs`,
      String(port),
    ];
  }
  return [
    Deno.execPath(),
    "run",
    "--no-prompt",
    "--allow-env",
    "--allow-ffi",
    "--allow-net=127.0.0.1",
    fileURLToPath(new URL("./_bench_serve_deno.ts", import.meta.url)),
    arm === "deno-Deno.serve" ? "deno" : "serve",
    String(port),
  ];
}

const SERVER_CPU = 0;
const LOAD_CPU = 1;

function pinOf(options: ServeBenchOptions): boolean {
  return options.pin ?? navigator.hardwareConcurrency >= 2;
}

/** `argv`, run on CPU `cpu` only when pinning is on. */
function pinned(
  options: ServeBenchOptions,
  cpu: number,
  argv: readonly string[],
): string[] {
  return pinOf(options) ? ["taskset", "-c", String(cpu), ...argv] : [...argv];
}

interface Running {
  child: Deno.ChildProcess;
  output(): string;
}

/**
 * Starts the arm's server on `port` and resolves once it listens there, as
 * the arm means it to: checks the line it prints (`source` "systemd" for an
 * activated arm, "bound" for the others).
 */
async function startServer(
  arm: ServeArm,
  options: ServeBenchOptions,
  port: number,
): Promise<Running> {
  const activated = arm.endsWith("-activated");
  const server = serverArgv(arm, options, port);
  const argv = pinned(
    options,
    SERVER_CPU,
    activated
      ? [ACTIVATOR, "-l", `127.0.0.1:${port}`, "--", ...server]
      : server,
  );
  const child = new Deno.Command(
    argv[0]!,
    {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    },
  ).spawn();
  let stdout = "";
  let stderr = "";
  const decoder = new TextDecoder();
  let heard: () => void = () => {};
  const listening = new Promise<void>((resolve) => heard = resolve);
  let ready: () => void = () => {};
  const printed = new Promise<void>((resolve) => ready = resolve);
  // Keep reading both streams to the end, so the server never blocks on a
  // full pipe.
  void (async () => {
    for await (const chunk of child.stderr) {
      stderr += new TextDecoder().decode(chunk);
      if (stderr.includes("Listening on")) heard();
    }
  })();
  void (async () => {
    for await (const chunk of child.stdout) {
      stdout += decoder.decode(chunk, { stream: true });
      if (stdout.includes("\n")) ready();
    }
  })();
  const output = () => `${stdout}${stderr}`;
  const exited = child.status.then((status) => {
    throw new Error(
      `The ${arm} server exited with ${status.code} before listening:\n${output()}`,
    );
  });
  exited.catch(() => {});
  let trigger: Deno.Conn | undefined;
  if (activated) {
    // systemd-socket-activate execs the server on the first connection.
    await Promise.race([listening, exited]);
    trigger = await Deno.connect({ hostname: "127.0.0.1", port });
  }
  await Promise.race([printed, exited]);
  trigger?.close();
  const line = JSON.parse(stdout.split("\n")[0]!) as {
    source: string;
    endpoint: string;
  };
  const expected = activated
    ? { source: "systemd", endpoint: "fd://3" }
    : { source: "bound", endpoint: `http://127.0.0.1:${port}` };
  if (line.source !== expected.source || line.endpoint !== expected.endpoint) {
    throw new Error(
      `The ${arm} server listens on ${JSON.stringify(line)}, expected ${
        JSON.stringify(expected)
      }`,
    );
  }
  // The same answer from every arm.
  const response = await fetch(`http://127.0.0.1:${port}/`);
  const body = await response.text();
  if (response.status !== 200 || body !== "hello\n") {
    throw new Error(
      `The ${arm} server answered ${response.status} ${JSON.stringify(body)}`,
    );
  }
  return { child, output };
}

async function stopServer(running: Running): Promise<void> {
  try {
    running.child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  await running.child.status;
}

interface AutocannonReport {
  errors: number;
  timeouts: number;
  non2xx: number;
  "2xx": number;
  latency: { p50: number; p99: number };
  requests: { average: number };
}

/** The CPU time a process has used so far, all its threads, in µs. */
async function cpuMicros(pid: number, ticksPerSecond: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // proc(5): utime and stime are fields 14 and 15; the command name in
  // field 2 may hold spaces, so count from its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / ticksPerSecond * 1e6;
}

async function autocannonRun(
  autocannon: string,
  options: ServeBenchOptions,
  settings: LoadSettings,
  port: number,
  seconds: number,
): Promise<AutocannonReport> {
  const argv = pinned(options, LOAD_CPU, [options.nodePath, autocannon]);
  const text = await check(
    new Deno.Command(argv[0]!, {
      args: [
        ...argv.slice(1),
        "--connections",
        String(settings.connections),
        "--pipelining",
        String(settings.pipelining),
        "--duration",
        String(seconds),
        "--no-progress",
        "--json",
        `http://127.0.0.1:${port}/`,
      ],
      stdin: "null",
    }),
    "autocannon",
  );
  const report = JSON.parse(text) as AutocannonReport;
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
  return report;
}

/**
 * Warms the server up, then measures: two autocannon runs (rather than its
 * `--warmup`), so that the server's CPU time can be read around the
 * measured one.
 */
async function load(
  autocannon: string,
  options: ServeBenchOptions,
  settings: LoadSettings,
  server: { port: number; pid: number; ticksPerSecond: number },
): Promise<ServeRun> {
  const { port, pid, ticksPerSecond } = server;
  if (settings.warmupSeconds > 0) {
    await autocannonRun(
      autocannon,
      options,
      settings,
      port,
      settings.warmupSeconds,
    );
  }
  const before = await cpuMicros(pid, ticksPerSecond);
  const report = await autocannonRun(
    autocannon,
    options,
    settings,
    port,
    settings.seconds,
  );
  const cpu = await cpuMicros(pid, ticksPerSecond) - before;
  return {
    requestsPerSecond: report.requests.average,
    p50Ms: report.latency.p50,
    p99Ms: report.latency.p99,
    requests: report["2xx"],
    cpuUsPerRequest: cpu / report["2xx"],
  };
}

/**
 * Runs every arm `load.rounds` times: for each run a fresh server on a free
 * port, then autocannon against it (warm-up, then the measured seconds).
 * Installs autocannon into a temporary folder first (npm's cache makes later
 * runs fast) and removes it at the end.
 *
 * @param options The Node binary, the app with the built package, the load.
 * @returns Every arm's runs.
 */
export async function runServeBench(
  options: ServeBenchOptions,
): Promise<ServeBenchResult> {
  const settings = options.load ?? DEFAULT_LOAD;
  const log = options.log ?? (() => {});
  await Deno.copyFile(
    fileURLToPath(new URL("./_bench_serve_node.mjs", import.meta.url)),
    `${options.appDir}/serve_bench.mjs`,
  );
  const dir = await Deno.makeTempDir({ prefix: "socket_activation_load_" });
  try {
    const autocannon = await installAutocannon(dir);
    const ticksPerSecond = Number(
      await check(
        new Deno.Command("getconf", { args: ["CLK_TCK"] }),
        "getconf",
      ),
    );
    const runs = Object.fromEntries(
      SERVE_ARMS.map((arm) => [arm, [] as ServeRun[]]),
    ) as Record<ServeArm, ServeRun[]>;
    const order: ServeArm[][] = [];
    const chosen = options.arms ?? SERVE_ARMS;
    for (let round = 0; round < settings.rounds; round++) {
      // Forwards, then backwards: the arms compared stay next to each other,
      // and each goes first in every other round.
      const arms = round % 2 === 0 ? [...chosen] : [...chosen].reverse();
      order.push(arms);
      for (const arm of arms) {
        const port = freePort();
        const running = await startServer(arm, options, port);
        let run: ServeRun;
        try {
          run = await load(autocannon, options, settings, {
            port,
            pid: running.child.pid,
            ticksPerSecond,
          });
        } catch (error) {
          throw new Error(`${arm}: ${(error as Error).message}`, {
            cause: error,
          });
        } finally {
          await stopServer(running);
        }
        runs[arm].push(run);
        log(
          `  round ${round + 1}, ${arm}: ${
            run.requestsPerSecond.toFixed(0)
          } req/s, p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, ${
            run.cpuUsPerRequest.toFixed(0)
          } µs CPU/request`,
        );
      }
    }
    return {
      load: settings,
      autocannon: AUTOCANNON,
      runs,
      order,
      pinned: pinOf(options),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Median requests per second of an arm. */
export function medianRate(result: ServeBenchResult, arm: ServeArm): number {
  return median(result.runs[arm].map((run) => run.requestsPerSecond));
}

/** The median ratio of `arm` to `baseline` and the range of per-round ratios. */
export function serveRatio(
  result: ServeBenchResult,
  arm: ServeArm,
  baseline: ServeArm,
): { median: number; min: number; max: number } {
  const ours = result.runs[arm];
  const theirs = result.runs[baseline];
  const perRound = ours.map((run, index) =>
    run.requestsPerSecond / theirs[index]!.requestsPerSecond
  );
  return {
    median: medianRate(result, arm) / medianRate(result, baseline),
    min: Math.min(...perRound),
    max: Math.max(...perRound),
  };
}

function rate(result: ServeBenchResult, arm: ServeArm): string {
  const values = result.runs[arm].map((run) => run.requestsPerSecond);
  const fmt = (value: number) => value.toFixed(0);
  return `${fmt(median(values))} (${fmt(Math.min(...values))}–${
    fmt(Math.max(...values))
  })`;
}

function latency(result: ServeBenchResult, arm: ServeArm): string {
  const runs = result.runs[arm];
  return `${median(runs.map((run) => run.p50Ms))} / ${
    median(runs.map((run) => run.p99Ms))
  }`;
}

function cpu(result: ServeBenchResult, arm: ServeArm): string {
  const values = result.runs[arm].map((run) => run.cpuUsPerRequest);
  const fmt = (value: number) => value.toFixed(0);
  return `${fmt(median(values))} (${fmt(Math.min(...values))}–${
    fmt(Math.max(...values))
  })`;
}

function ratioCell(
  result: ServeBenchResult,
  arm: ServeArm,
  baseline: ServeArm,
): string {
  const { median, min, max } = serveRatio(result, arm, baseline);
  return `**${median.toFixed(2)}** (${min.toFixed(2)}–${max.toFixed(2)})`;
}

/** The per-round ratios of `arm` to `baseline`, in round order. */
function perRound(
  result: ServeBenchResult,
  arm: ServeArm,
  baseline: ServeArm,
): string {
  const theirs = result.runs[baseline];
  return result.runs[arm].map((run, index) =>
    (run.requestsPerSecond / theirs[index]!.requestsPerSecond).toFixed(2)
  ).join(", ");
}

/**
 * The mean coefficient of variation of the rate over the activated and
 * self-bound arms: how far one run strays from its arm's mean.
 */
function spread(result: ServeBenchResult): number {
  const arms: ServeArm[] = [
    "deno-activated",
    "deno-bound",
    "node-activated",
    "node-bound",
  ];
  const cvs = arms.map((arm) => {
    const values = result.runs[arm].map((run) => run.requestsPerSecond);
    const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
    const variance = values.reduce((sum, value) =>
      sum + (value - mean) ** 2, 0) /
      Math.max(1, values.length - 1);
    return Math.sqrt(variance) / mean;
  });
  return cvs.reduce((sum, cv) => sum + cv, 0) / cvs.length;
}

/** The range of the servers' CPU seconds per second over all runs. */
function busy(result: ServeBenchResult): string {
  const values = SERVE_ARMS.flatMap((arm) =>
    result.runs[arm].map((run) =>
      run.requestsPerSecond * run.cpuUsPerRequest / 1e6
    )
  );
  return `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}`;
}

/** "N of R rounds" where the activated arm served more requests. */
function faster(result: ServeBenchResult, runtime: "deno" | "node"): string {
  const ours = result.runs[`${runtime}-activated`];
  const theirs = result.runs[`${runtime}-bound`];
  const count =
    ours.filter((run, index) =>
      run.requestsPerSecond > theirs[index]!.requestsPerSecond
    ).length;
  return `${count} of ${ours.length} rounds`;
}

function row(
  result: ServeBenchResult,
  label: string,
  arm: ServeArm,
  baseline: ServeArm,
): string {
  return `| ${label} | ${rate(result, arm)} | ${rate(result, baseline)} | ${
    ratioCell(result, arm, baseline)
  } | ${latency(result, arm)} | ${latency(result, baseline)} | ${
    cpu(result, arm)
  } | ${cpu(result, baseline)} |`;
}

/**
 * The BENCHMARKS.md section of a {@linkcode runServeBench} result that ran
 * every arm (Markdown, to be formatted with `deno fmt`).
 *
 * @param result What runServeBench() measured.
 * @returns The section, from its `##` heading on.
 */
export function renderServeSection(result: ServeBenchResult): string {
  for (const arm of SERVE_ARMS) {
    if (result.runs[arm].length === 0) throw new Error(`No runs of ${arm}`);
  }
  const { connections, pipelining, warmupSeconds, seconds, rounds } =
    result.load;
  const placement = result.pinned
    ? "each server runs on CPU 0 and the load generator on CPU 1 (`taskset`), so that they never share a core (the server's own helper threads share CPU 0 with it)"
    : "the server and the load generator share the machine's cores as the scheduler places them";
  return `## Throughput: serve() on an activated socket against a self-bound port

The same server, \`serve({ endpoint: "http://127.0.0.1:PORT" }, handler)\` with
the handler \`() => new Response("hello\\n")\` (\`scripts/_bench_serve_deno.ts\`
on Deno, \`scripts/_bench_serve_node.mjs\` on Node, where it imports the built
package from the throwaway app above), in two ways:

- **activated**: exec'd by \`systemd-socket-activate -l 127.0.0.1:PORT\`;
  serve() finds the passed socket (fd 3) and serves on it.
- **self-bound**: started directly; nothing is passed, so serve() binds
  127.0.0.1:PORT itself.
- **Deno.serve** (Deno only, the baseline of the second table):
  \`Deno.serve({ hostname: "127.0.0.1", port }, handler)\` with the same
  handler, the runtime's own HTTP server, which cannot take a passed fd.
  serve() runs on \`node:http\` in both runtimes; this shows what that costs
  on Deno.

Each server prints where it listens once ready, and the harness checks that an
activated one serves on \`fd://3\` and a self-bound one on its port. Then the
load generator, \`${result.autocannon}\` from npm, runs as a Node process of
its own on loopback: ${connections} keep-alive connections, pipelining ${pipelining},
one run of ${warmupSeconds} s to warm the server up (not counted), then one of
${seconds} s that is measured; any error, timeout or non-2xx response fails
the benchmark. Around the measured run the harness reads the server's CPU time
(user + system, all threads, from \`/proc/PID/stat\`). Every arm runs ${rounds}
times, on a fresh server each time, all arms in every round, in an order that
reverses each round (\`scripts/_bench_serve.ts\`). On this
${navigator.hardwareConcurrency}-core machine the load generator competes with
the server for the CPU: ${placement}. Conditions are the same for every arm.

Requests per second: median over the rounds (min–max). Latency: median over
the rounds of each run's p50 and p99, in ms (autocannon counts whole
milliseconds). Ratio: of the medians, with the range of the per-round ratios
(the arms compared run one right after the other, each first in every other
round) in parentheses.
CPU: the server's CPU time per response, median (min–max), in µs.

| runtime | activated (req/s) | self-bound (req/s) | ratio activated / self-bound | activated p50 / p99 (ms) | self-bound p50 / p99 (ms) | activated CPU (µs/req) | self-bound CPU (µs/req) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${row(result, "Deno", "deno-activated", "deno-bound")}
${row(result, "Node", "node-activated", "node-bound")}

| on a port, Deno | serve() (req/s) | Deno.serve (req/s) | ratio serve() / Deno.serve | serve() p50 / p99 (ms) | Deno.serve p50 / p99 (ms) | serve() CPU (µs/req) | Deno.serve CPU (µs/req) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${row(result, "self-bound", "deno-bound", "deno-Deno.serve")}

The per-round ratios, in round order: Deno activated / self-bound
${perRound(result, "deno-activated", "deno-bound")}; Node activated / self-bound
${perRound(result, "node-activated", "node-bound")}; Deno serve() / Deno.serve
${perRound(result, "deno-bound", "deno-Deno.serve")}. The activated arm was
the faster one in ${faster(result, "deno")} on Deno and in ${
    faster(result, "node")
  } on Node.

Reading the first table: the same arm, running the same code, spreads over the
min–max above from one run to the next, and so does the server's CPU time per
response: the shared machine's CPU is faster or slower from one run to the
next, and other processes take part of the server's core at times (the
servers' CPU seconds per second, rate × CPU per response, range over
${busy(result)} across all runs; 1 is a core kept busy). A difference between
the activated and self-bound arms within that spread, and whose sign changes
from round to round, is noise. Here one run's rate differs from its arm's mean
by ${
    (100 * spread(result)).toFixed(0)
  }% on average (coefficient of variation over the activated and
self-bound arms), so a ratio of ${rounds} rounds is known to about ±${
    (100 * spread(result) * Math.sqrt(2 / rounds)).toFixed(0)
  }%; ±5% would take about ${
    Math.ceil(2 * (spread(result) / 0.05) ** 2)
  } rounds (\`--serve-rounds N\`). Once listening, the two arms run
the same code on the same kind of socket: an strace of both servers under the
same load (done by hand, 10,000 requests each) counts the same system calls per request in both
runtimes (on Deno two \`recvfrom\` and one \`writev\`, on Node one \`read\` and
one \`writev\`), and every accepted connection gets \`TCP_NODELAY\` and is
non-blocking in both. The one difference found: Node calls \`listen(fd, 511)\`
again on the passed socket, Deno keeps the backlog systemd-socket-activate set
(4096); with ${connections} connections opened once, neither backlog is ever
full.
`;
}
