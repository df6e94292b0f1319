// Throughput of serve() against the servers it is compared with, on both
// runtimes, in two scenarios (handlers.ts): `GET /` answered with a short
// text, and `POST /echo` of a 1 KB JSON body echoed with request.json() and
// Response.json(). Each run starts a fresh server (scripts/bench/_server.ts)
// and loads it with autocannon (scripts/bench/_load.ts); every arm runs in
// every round and scenario, in an order that reverses each round, so that
// the arms compared run next to each other and a burst of load on a shared
// machine does not hit one arm only. Ratios are taken round by round.

import { join } from "node:path";
import type { BenchContext, Section } from "../_section.ts";
import { compileNodeHarness } from "../_node_harness.ts";
import { AUTOCANNON, cpuMicros, type LoadRequest, runLoad } from "../_load.ts";
import { type ServerStart, startServer } from "../_server.ts";
import { here, median, pairedRatios, ratioCell, spread } from "../_util.ts";

/** The npm packages compared with, pinned. */
const HONO = "@hono/node-server@2.1.9";
const HONO_PEER = "hono@4.13.19";
const SRVX = "srvx@1.0.8";

type Scenario = "hello" | "echo";
const SCENARIOS: readonly Scenario[] = ["hello", "echo"];

/** A JSON document of about 1 KB, the same in every run. */
function echoBody(): string {
  const items: unknown[] = [];
  for (let id = 0;; id++) {
    const item = {
      id,
      name: `item ${id}`,
      tags: ["alpha", "beta"],
      price: id * 1.25,
      active: id % 2 === 0,
    };
    if (JSON.stringify({ items: [...items, item] }).length > 1024) break;
    items.push(item);
  }
  return JSON.stringify({ items });
}

const ECHO_BODY = echoBody();

const REQUESTS: Record<Scenario, LoadRequest> = {
  hello: { method: "GET", path: "/" },
  echo: {
    method: "POST",
    path: "/echo",
    headers: { "content-type": "application/json" },
    body: ECHO_BODY,
  },
};

/** What a scenario's answer must be, checked once per server. */
const EXPECTED: Record<Scenario, string> = {
  hello: "hello\n",
  echo: ECHO_BODY,
};

/** One server compared. */
interface Arm {
  readonly id: string;
  readonly runtime: "node" | "deno";
  /** How the tables name it. */
  readonly label: string;
  /** The SERVER argument of server_node.mjs or server_deno.ts. */
  readonly server: string;
  readonly activated: boolean;
  readonly env?: Readonly<Record<string, string>>;
}

const FALLBACK = { SOCKET_ACTIVATION_SERVE_FALLBACK: "1" };

/** Every arm, in the order of the first round. */
export const ARMS: readonly Arm[] = [
  {
    id: "node-http",
    runtime: "node",
    label: "bare node:http",
    server: "node:http",
    activated: false,
  },
  {
    id: "node-serve",
    runtime: "node",
    label: "serve(), activated",
    server: "serve",
    activated: true,
  },
  {
    id: "node-serve-bound",
    runtime: "node",
    label: "serve(), self-bound",
    server: "serve",
    activated: false,
  },
  {
    id: "node-serve-reused",
    runtime: "node",
    label: "serve(), activated, one Response reused (diagnostic)",
    server: "serve-reused",
    activated: true,
  },
  {
    id: "node-hono",
    runtime: "node",
    label: "@hono/node-server",
    server: "hono",
    activated: false,
  },
  {
    id: "node-hono-plain",
    runtime: "node",
    label: "@hono/node-server, globals kept",
    server: "hono-plain",
    activated: false,
  },
  {
    id: "node-srvx",
    runtime: "node",
    label: "srvx",
    server: "srvx",
    activated: false,
  },
  {
    id: "deno-serve-native",
    runtime: "deno",
    label: "Deno.serve",
    server: "Deno.serve",
    activated: false,
  },
  {
    id: "deno-node-http",
    runtime: "deno",
    label: "bare node:http",
    server: "node:http",
    activated: false,
  },
  {
    id: "deno-serve",
    runtime: "deno",
    label: "serve(), activated",
    server: "serve",
    activated: true,
  },
  {
    id: "deno-serve-bound",
    runtime: "deno",
    label: "serve(), self-bound",
    server: "serve",
    activated: false,
  },
  {
    id: "deno-serve-fallback",
    runtime: "deno",
    label: "serve() on node:http, activated",
    server: "serve",
    activated: true,
    env: FALLBACK,
  },
];

/** The ratios the report shows: arm over baseline, by runtime. */
const RATIOS: readonly { arm: string; baseline: string; what: string }[] = [
  {
    arm: "node-serve",
    baseline: "node-hono",
    what: "serve() / @hono/node-server",
  },
  {
    arm: "node-serve",
    baseline: "node-hono-plain",
    what: "serve() / @hono/node-server, globals kept",
  },
  { arm: "node-serve", baseline: "node-srvx", what: "serve() / srvx" },
  {
    arm: "node-serve",
    baseline: "node-http",
    what: "serve() / bare node:http",
  },
  {
    arm: "node-serve-reused",
    baseline: "node-http",
    what: "serve(), one Response reused / bare node:http (diagnostic)",
  },
  {
    arm: "node-serve",
    baseline: "node-serve-bound",
    what: "serve() activated / self-bound",
  },
  {
    arm: "deno-serve",
    baseline: "deno-serve-native",
    what: "serve() / Deno.serve",
  },
  {
    arm: "deno-serve",
    baseline: "deno-node-http",
    what: "serve() / bare node:http",
  },
  {
    arm: "deno-serve",
    baseline: "deno-serve-bound",
    what: "serve() activated / self-bound",
  },
  {
    arm: "deno-serve-fallback",
    baseline: "deno-node-http",
    what: "serve() on node:http / bare node:http",
  },
];

/** The load of every run. */
interface Load {
  connections: number;
  pipelining: number;
  warmupSeconds: number;
  seconds: number;
  rounds: number;
}

/** One measured run. */
interface Run {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** The server's CPU time (user + system, all threads) per response, µs. */
  cpuUsPerRequest: number;
}

/** What the section measured. */
export interface ServeResult {
  load: Load;
  arms: string[];
  /** Runs by scenario, then arm, in round order. */
  runs: Record<Scenario, Record<string, Run[]>>;
  /** The order of each round. */
  order: string[][];
  pinned: boolean;
  versions: string[];
}

function positive(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) {
    throw new RangeError(`Invalid --${name}: ${value}`);
  }
  return number;
}

function startOf(
  arm: Arm,
  scenario: Scenario,
  context: BenchContext,
): ServerStart {
  const argv = arm.runtime === "node"
    ? [
      context.nodePath,
      join(context.appDir, "scripts/bench/serve/server_node.mjs"),
      arm.server,
      scenario,
    ]
    : [
      Deno.execPath(),
      "run",
      "--no-prompt",
      "--allow-env",
      "--allow-ffi",
      "--allow-net=127.0.0.1",
      here(import.meta.url, "./server_deno.ts"),
      arm.server,
      scenario,
    ];
  return {
    argv,
    activated: arm.activated,
    ...(arm.env === undefined ? {} : { env: arm.env }),
  };
}

/** Checks the server's answer once, so that every arm does the same work. */
async function checkAnswer(
  port: number,
  scenario: Scenario,
  label: string,
): Promise<void> {
  const request = REQUESTS[scenario];
  const response = await fetch(`http://127.0.0.1:${port}${request.path}`, {
    method: request.method,
    ...(request.headers === undefined ? {} : { headers: request.headers }),
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  const body = await response.text();
  if (response.status !== 200 || body !== EXPECTED[scenario]) {
    throw new Error(
      `${label} (${scenario}) answered ${response.status} ${
        JSON.stringify(body.slice(0, 80))
      }`,
    );
  }
}

async function measure(
  arm: Arm,
  scenario: Scenario,
  load: Load,
  context: BenchContext,
): Promise<Run> {
  const server = await startServer(
    startOf(arm, scenario, context),
    context.pinned,
  );
  try {
    await checkAnswer(server.port, scenario, arm.label);
    const options = {
      nodePath: context.nodePath,
      toolsDir: context.toolsDir,
      pin: context.pinned,
      port: server.port,
      request: REQUESTS[scenario],
    };
    // A run to warm the server up (not counted), then the measured one,
    // with the server's CPU time read around it.
    await runLoad({
      ...options,
      settings: { ...load, seconds: load.warmupSeconds },
    });
    const before = await cpuMicros(server.child.pid);
    const result = await runLoad({ ...options, settings: load });
    const cpu = await cpuMicros(server.child.pid) - before;
    return {
      requestsPerSecond: result.requestsPerSecond,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      cpuUsPerRequest: cpu / result.requests,
    };
  } catch (error) {
    throw new Error(
      `${arm.id} (${scenario}): ${
        (error as Error).message
      }\n${server.output()}`,
      { cause: error },
    );
  } finally {
    await server.stop();
  }
}

async function run(context: BenchContext): Promise<ServeResult> {
  const load: Load = {
    connections: 50,
    pipelining: 1,
    warmupSeconds: 1,
    seconds: positive(context.options["serve-seconds"], "serve-seconds", 5),
    rounds: positive(context.options["serve-rounds"], "serve-rounds", 5),
  };
  const only = context.options["serve-arms"];
  const arms = typeof only === "string"
    ? only.split(",").map((id) => {
      const arm = ARMS.find((candidate) => candidate.id === id);
      if (arm === undefined) {
        throw new RangeError(
          `Unknown arm in --serve-arms: ${id} (the arms: ${
            ARMS.map((arm) => arm.id).join(", ")
          })`,
        );
      }
      return arm;
    })
    : ARMS;
  // The Node servers, as they run in the app: the handlers compiled beside.
  await compileNodeHarness(context.appDir, [
    "scripts/bench/serve/handlers.ts",
  ]);
  await Deno.copyFile(
    here(import.meta.url, "./server_node.mjs"),
    join(context.appDir, "scripts/bench/serve/server_node.mjs"),
  );
  const runs = Object.fromEntries(
    SCENARIOS.map((scenario) => [
      scenario,
      Object.fromEntries(arms.map((arm) => [arm.id, [] as Run[]])),
    ]),
  ) as Record<Scenario, Record<string, Run[]>>;
  const order: string[][] = [];
  for (let round = 0; round < load.rounds; round++) {
    const ordered = round % 2 === 0 ? [...arms] : [...arms].reverse();
    order.push(ordered.map((arm) => arm.id));
    for (const scenario of SCENARIOS) {
      for (const arm of ordered) {
        const result = await measure(arm, scenario, load, context);
        runs[scenario][arm.id]!.push(result);
        context.log(
          `  round ${round + 1}, ${scenario}, ${arm.id}: ${
            result.requestsPerSecond.toFixed(0)
          } req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${
            result.cpuUsPerRequest.toFixed(1)
          } µs CPU/request`,
        );
      }
    }
  }
  return {
    load,
    arms: arms.map((arm) => arm.id),
    runs,
    order,
    pinned: context.pinned,
    versions: [AUTOCANNON, HONO, HONO_PEER, SRVX],
  };
}

function rates(runs: readonly Run[]): number[] {
  return runs.map((run) => run.requestsPerSecond);
}

function armTable(result: ServeResult, scenario: Scenario): string {
  const rows = [
    "| runtime | server | req/s | p50 / p99 (ms) | server CPU (µs/request) |",
    "| --- | --- | ---: | ---: | ---: |",
  ];
  for (const id of result.arms) {
    const arm = ARMS.find((candidate) => candidate.id === id)!;
    const runs = result.runs[scenario][id]!;
    rows.push(
      `| ${arm.runtime === "node" ? "Node" : "Deno"} | ${arm.label} | ${
        spread(rates(runs))
      } | ${median(runs.map((run) => run.p50Ms))} / ${
        median(runs.map((run) => run.p99Ms))
      } | ${spread(runs.map((run) => run.cpuUsPerRequest), 1)} |`,
    );
  }
  return rows.join("\n");
}

function ratioTable(result: ServeResult): string {
  const rows = [
    "| runtime | ratio of requests per second | GET hello | POST 1 KB JSON echo |",
    "| --- | --- | ---: | ---: |",
  ];
  for (const { arm, baseline, what } of RATIOS) {
    if (!result.arms.includes(arm) || !result.arms.includes(baseline)) {
      continue;
    }
    const cells = SCENARIOS.map((scenario) =>
      ratioCell(
        pairedRatios(
          rates(result.runs[scenario][arm]!),
          rates(result.runs[scenario][baseline]!),
        ),
      )
    );
    rows.push(
      `| ${arm.startsWith("node") ? "Node" : "Deno"} | ${what} | ${
        cells.join(" | ")
      } |`,
    );
  }
  return rows.join("\n");
}

function render(result: ServeResult): string {
  const { connections, pipelining, warmupSeconds, seconds, rounds } =
    result.load;
  const placement = result.pinned
    ? "each server runs on CPU 0 and the load generator on CPU 1 (`taskset`), so that they never share a core (a server's own helper threads share CPU 0 with it)"
    : "the server and the load generator share the cores as the scheduler places them";
  return `## Throughput of serve()

\`serve()\` against the servers it is compared with, in two scenarios with
the same handlers in every server (\`scripts/bench/serve/handlers.ts\`):
**GET hello**, \`GET /\` answered by \`new Response("hello\\n")\`, and **POST 1 KB
JSON echo**, \`POST /echo\` of a ${ECHO_BODY.length}-byte JSON document answered
by \`Response.json(await request.json())\` (bare node:http: the same with
\`JSON.parse\` and \`res.end(JSON.stringify(...))\`). The servers
(\`scripts/bench/serve/server_node.mjs\`, \`server_deno.ts\`):

- Node: **bare node:http**; **serve()** of the built package, **activated**
  (exec'd by \`systemd-socket-activate -l 127.0.0.1:PORT\`, serving the passed
  fd 3) and **self-bound** (binding the port itself); **@hono/node-server**
  as it comes, which replaces the global \`Request\` and \`Response\` with
  lighter classes of its own, so that its handler's \`new Response()\` costs
  less than the runtime's; **@hono/node-server, globals kept**
  (\`overrideGlobalObjects: false\`: the handler makes the runtime's own
  Response, as with serve() and srvx); **srvx**; and a diagnostic, **serve(),
  one Response reused**: the handler makes its Response once and returns it
  every time (the echo one still reads each request's JSON), which tells what
  undici's \`new Response()\` and \`Response.json()\` cost per request from
  what serve() itself costs (it works only because serve() writes a string
  body without reading the Response's stream; not a way to write handlers).
- Deno: **Deno.serve**; **bare node:http** (Deno's); **serve()** activated
  (TCP: Deno's own HTTP engine, see README) and self-bound; **serve() on
  node:http**, activated, with \`SOCKET_ACTIVATION_SERVE_FALLBACK=1\`, the path
  a unix socket takes on Deno.

Each run starts a fresh server on a free port; the harness checks that it
listens where it should (the passed fd or the port) and answers as expected,
then runs the load generator, \`${result.versions[0]}\` from npm, a Node
process of its own on loopback: ${connections} keep-alive connections,
pipelining ${pipelining}, ${warmupSeconds} s to warm up (not counted), then
${seconds} s measured; any error, timeout or non-2xx response fails the run.
Around the measured run the harness reads the server's CPU time (user + system,
all threads, \`/proc/PID/stat\`). ${rounds} rounds; in each, every scenario and
every arm, in an order that reverses each round. ${placement}. The packages
compared: ${result.versions.slice(1).map((name) => `\`${name}\``).join(", ")}.

Requests per second and server CPU per request: median over the rounds
(min–max). Latency: medians of each run's p50 and p99 (autocannon counts whole
ms).

### GET hello

${armTable(result, "hello")}

### POST 1 KB JSON echo

${armTable(result, "echo")}

### Ratios

Each ratio is taken round by round between runs made next to each other
(same round, same scenario): the median of the ${rounds} per-round ratios, in
bold, and their range.

${ratioTable(result)}

The CPU time per request says what the rates cannot on a shared machine: how
much work each server does for one request, whatever share of the CPU it got.
`;
}

/** The section: throughput of serve() against the servers compared with. */
export const serveSection: Section<ServeResult> = {
  id: "serve",
  title:
    "throughput of serve() against node:http, @hono/node-server, srvx and Deno.serve (autocannon)",
  options: {
    "serve-rounds": { type: "string", description: "rounds (default 5)" },
    "serve-seconds": {
      type: "string",
      description: "measured seconds per run (default 5)",
    },
    "serve-arms": {
      type: "string",
      description: `the arms to run, comma-separated (default all: ${
        ARMS.map((arm) => arm.id).join(", ")
      })`,
    },
  },
  npm: [AUTOCANNON, HONO, HONO_PEER, SRVX],
  run,
  render,
};
