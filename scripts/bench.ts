// The benchmarks (`deno task bench`, or `deno run -A scripts/bench.ts`):
// listenFds() against libsystemd's sd_listen_fds_with_names() on Deno and
// Node, notify("WATCHDOG=1") against sd_notify(), and the cold start of an
// HTTP server on an activated socket against the same server binding its
// own port, and the throughput of serve() on an activated socket against a
// self-bound port (and against Deno.serve). Prints the results and rewrites
// BENCHMARKS.md with them. Ratios are against a baseline measured in the
// same run: the absolute times on a shared machine say little.
//
//   deno run -A scripts/bench.ts [--no-build] [--rounds N] [--serve-rounds N]
//                                [--output FILE]
//
// --no-build  use the package already in npm/ instead of building it first
// --rounds N  cold-start rounds per arm and runtime (default 20)
// --serve-rounds N  throughput rounds per arm (default 5)
// --output    where to write the report (default BENCHMARKS.md)

import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type ColdStartResult,
  runColdStart,
  serverCommand,
} from "./_bench_cold_start.ts";
import { stageApp } from "./_bench_app.ts";
import {
  type DenoBenchReport,
  type DenoBenchStats,
  type NodeBenchResult,
  runDenoBench,
  runNodeBench,
} from "./_bench_listen_fds.ts";
import { COUNTS, median } from "./_bench_setup.ts";
import {
  type NodeNotifyResult,
  runDenoNotifyBench,
  runNodeNotifyBench,
} from "./_bench_notify.ts";
import {
  DEFAULT_LOAD,
  renderServeSection,
  runServeBench,
  type ServeBenchResult,
} from "./_bench_serve.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

interface Flags {
  build: boolean;
  rounds: number;
  serveRounds: number;
  output: string;
}

function parseFlags(args: readonly string[]): Flags {
  const flags: Flags = {
    build: true,
    rounds: 20,
    serveRounds: DEFAULT_LOAD.rounds,
    output: "BENCHMARKS.md",
  };
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    if (arg === "--no-build") flags.build = false;
    else if (arg === "--rounds") {
      flags.rounds = Number(args[++index]);
      if (!Number.isInteger(flags.rounds) || flags.rounds < 1) {
        throw new RangeError(`Invalid --rounds: ${args[index]}`);
      }
    } else if (arg === "--serve-rounds") {
      flags.serveRounds = Number(args[++index]);
      if (!Number.isInteger(flags.serveRounds) || flags.serveRounds < 1) {
        throw new RangeError(`Invalid --serve-rounds: ${args[index]}`);
      }
    } else if (arg === "--output") {
      const output = args[++index];
      if (output === undefined) throw new RangeError("Missing --output value");
      flags.output = output;
    } else throw new RangeError(`Unknown flag: ${arg}`);
  }
  return flags;
}

async function run(program: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(program, {
    args,
    cwd: ROOT,
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed:\n${text}${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
  return text.trim();
}

interface Machine {
  cpu: string;
  nproc: number;
  kernel: string;
  deno: string;
  node: string;
  systemd: string;
  commit: string;
  load: string;
}

async function machine(nodePath: string): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    nproc: navigator.hardwareConcurrency,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    node: (await run(nodePath, ["--version"])).replace(/^v/, ""),
    systemd: (await run("/usr/bin/systemd-socket-activate", ["--version"]))
      .split("\n")[0]!,
    commit: await run("git", ["rev-parse", "--short", "HEAD"]).catch(() =>
      "unknown"
    ),
    load: await loadAverage(),
  };
}

/** The 1-minute load average, to show how busy the machine was. */
async function loadAverage(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ")[0]!;
}

function us(ns: number): string {
  return (ns / 1000).toFixed(ns < 10_000 ? 2 : 1);
}

function ratio(value: number): string {
  return value.toFixed(2);
}

/** An arm's mean time per call: the median over the rounds of the group. */
function denoMean(
  report: DenoBenchReport,
  group: string,
  name: string,
): number {
  const means: number[] = [];
  for (const bench of report.benches) {
    if (bench.group.replace(/ \(round \d+\)$/, "") !== group) continue;
    if (bench.name !== name) continue;
    const stats: DenoBenchStats | undefined = bench.results[0]?.ok;
    if (stats === undefined) throw new Error(`${group}/${name} failed`);
    means.push(stats.avg);
  }
  if (means.length === 0) throw new Error(`No result for ${group}/${name}`);
  return median(means);
}

function denoRounds(report: DenoBenchReport): number {
  return new Set(report.benches.map((bench) => bench.group)).size /
    (2 * COUNTS.length);
}

function denoTable(report: DenoBenchReport): string {
  const rows = [
    "| scenario | fds | libsystemd (µs/call) | listenFds() (µs/call) | ratio listenFds() / libsystemd |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  for (const scenario of ["steady", "fresh"]) {
    for (const count of COUNTS) {
      const group = `${scenario}, ${count} fds`;
      let theirs = denoMean(report, group, "libsystemd");
      let ours = denoMean(report, group, "listenFds()");
      let note = "";
      if (scenario === "fresh") {
        const clearing = denoMean(report, group, "clearing only");
        note = ` (gross ${us(theirs)} / ${us(ours)}, clearing ${us(clearing)})`;
        theirs -= clearing;
        ours -= clearing;
      }
      rows.push(
        `| ${scenario} | ${count} | ${us(theirs)} | ${us(ours)}${note} | **${
          ratio(ours / theirs)
        }** |`,
      );
    }
  }
  return rows.join("\n");
}

function nodeTable(result: NodeBenchResult): string {
  const rows = [
    "| scenario | fds | libsystemd (µs/call) | listenFds() (µs/call) | ratio listenFds() / libsystemd | iterations × rounds |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const scenario of ["steady", "fresh"] as const) {
    for (const count of COUNTS) {
      const arms = result[scenario][count]!;
      rows.push(
        `| ${scenario} | ${count} | ${us(arms.libsystemd.medianNs)} | ${
          us(arms.listenFds.medianNs)
        } | **${
          ratio(arms.listenFds.medianNs / arms.libsystemd.medianNs)
        }** | ${arms.listenFds.iterations} × ${arms.listenFds.roundsNs.length} |`,
      );
    }
  }
  return rows.join("\n");
}

function coldRow(runtime: string, result: ColdStartResult): string {
  const ms = (values: number[]) =>
    `${median(values).toFixed(1)} (${Math.min(...values).toFixed(1)}–${
      Math.max(...values).toFixed(1)
    })`;
  return `| ${runtime} | ${ms(result.activatedMs)} | ${
    ms(result.selfBoundMs)
  } | **${
    ratio(median(result.activatedMs) / median(result.selfBoundMs))
  }** | ${result.activatedMs.length} |`;
}

/** The notify() section: Deno's and Node's arms and ratio. */
function notifySection(deno: DenoBenchReport, node: NodeNotifyResult): string {
  const denoTheirs = denoMean(deno, "notify", "libsystemd");
  const denoOurs = denoMean(deno, "notify", "notify()");
  const rounds = new Set(deno.benches.map((bench) => bench.group)).size;
  const nodeTheirs = node.libsystemd.medianNs;
  const nodeOurs = node.notify.medianNs;
  return `## notify() against libsystemd

The cost of one \`notify("WATCHDOG=1")\` (what a watchdog ping sends) against
libsystemd's \`sd_notify(0, "WATCHDOG=1")\` called through the runtime's FFI
(\`tests/_native.*.ts\`) in the same process, to the same receiver:
\`NOTIFY_SOCKET\` names an abstract unix datagram socket that a Python process
(\`scripts/bench_notify_receiver.ts\`) drains on a thread of its own, so that
the sends seldom find the queue full (\`net.unix.max_dgram_qlen\` is often
10). When the drain falls behind anyway, libsystemd's blocking send waits for
it, and \`notify()\`, which never waits, fails with EAGAIN and is sent again
at once, so both arms time a delivered datagram. Both make the same eleven
system calls (strace; checked by \`tests/notify_differential_test.ts\`):
\`socket()\`, four to raise the socket's send buffer to 8 MiB
(\`getsockopt\`/\`setsockopt\` of \`SO_SNDBUF\`, then
\`SO_SNDBUFFORCE\`), \`getuid()\`, \`geteuid()\`, \`getgid()\`,
\`getegid()\`, \`sendmsg()\`, \`close()\`; but the library crosses the FFI
boundary once per system call, libsystemd once per \`sd_notify()\`. Before timing, a reporting receiver
(\`tests/_receiver.ts\`) checks that both arms deliver the same bytes and
credentials.

- **Deno**: \`deno bench --json scripts/bench_notify_deno.ts\`, started by
  scripts/bench.ts; the group is registered ${rounds} times, and the table shows each arm's median over the rounds of the mean
  time per call.
- **Node**: \`scripts/bench_notify_node.ts\`, compiled and run like the
  listenFds() harness above, against the built package (\`notify()\` loads
  koffi on its first call): ${node.notify.roundsNs.length} rounds of ${node.notify.iterations} calls per
  arm, alternating, after a warm-up; the median round. The receiver read
  ${node.received} of the ${node.sent} datagrams sent.

| runtime | libsystemd (µs/call) | notify() (µs/call) | ratio notify() / libsystemd |
| --- | ---: | ---: | ---: |
| Deno | ${us(denoTheirs)} | ${us(denoOurs)} | **${
    ratio(denoOurs / denoTheirs)
  }** |
| Node | ${us(nodeTheirs)} | ${us(nodeOurs)} | **${
    ratio(nodeOurs / nodeTheirs)
  }** |
`;
}

interface Results {
  machine: Machine;
  flags: Flags;
  deno: DenoBenchReport;
  node: NodeBenchResult;
  notify: { deno: DenoBenchReport; node: NodeNotifyResult };
  cold: { deno: ColdStartResult; node: ColdStartResult };
  serve: ServeBenchResult;
  seconds: number;
  loadAtEnd: string;
}

function report(results: Results): string {
  const { machine: m, flags } = results;
  const command = [
    "deno run -A scripts/bench.ts",
    ...(flags.build ? [] : ["--no-build"]),
    ...(flags.rounds === 20 ? [] : [`--rounds ${flags.rounds}`]),
    ...(flags.serveRounds === DEFAULT_LOAD.rounds
      ? []
      : [`--serve-rounds ${flags.serveRounds}`]),
  ].join(" ");
  return `# Benchmarks

Generated by \`${command}\` (${
    flags.build
      ? "\`deno task bench\`"
      : "with the package already built; \`deno task bench\` builds it first"
  }), which rewrites this file;
the numbers below are from one run of it (${
    Math.round(results.seconds)
  } s, commit \`${m.commit}\`). Every
ratio compares two arms measured in the same process or the same run,
interleaved; the absolute times come from a shared ${m.nproc}-core machine and
are shown only for scale.

Machine: ${m.cpu}, nproc ${m.nproc}, Linux ${m.kernel}; Deno ${m.deno}, Node ${m.node},
${m.systemd} (libsystemd.so.0 and systemd-socket-activate). Load average
(1 min) ${m.load} at the start of the run, ${results.loadAtEnd} at the end.

## listenFds() against libsystemd

Both arms run in one process that was started with pipes at fds 3..258,
without close-on-exec, as a service manager passes sockets (the test
launcher \`tests/_launch.ts\` places them). \`LISTEN_PID\` is the process's
own pid, \`LISTEN_FDS\` the count, \`LISTEN_FDNAMES\` that many names. Before
timing, each count is checked: both arms must return the same fds and names.

- **libsystemd** (baseline): the real \`sd_listen_fds_with_names(0, &names)\`
  of libsystemd.so.0 through the runtime's FFI (\`tests/_native.*.ts\`),
  including what a JavaScript caller must do with its result: read each name
  into a string, \`free()\` each name and the array.
- **listenFds()**: this library, \`listenFds()\` with default options; on
  Node the built package (\`npm/esm/mod.js\`).
- **steady**: the flags are already set (after the first call, or on Node
  after start-up, which marks inherited fds close-on-exec): libsystemd does
  one \`F_GETFD\` per fd; the library does the same on Deno, and on Node reads
  \`/proc/self/fdinfo/N\` per fd, so that koffi is never loaded.
- **fresh**: \`FD_CLOEXEC\` is cleared on every fd before each call, so each
  call also sets it, as the first call after exec does (on Node this loads
  koffi once, then calls \`fcntl\` for each fd after reading its fdinfo).

### Deno (\`deno bench\`)

\`deno bench --json scripts/bench_listen_fds_deno.ts\`, started by
scripts/bench.ts. Each group is registered ${
    denoRounds(results.deno)
  } times, the rounds run one after the other,
so that a burst of load on the shared machine does not hit one arm only; the
table shows, for each arm, the median over the rounds of the mean time per call
that \`deno bench\` reports. In the
fresh rows every arm times clearing + call (\`deno bench\` ignores
\`b.start()\`/\`b.end()\` when an iteration takes under 10 µs, as with 1 fd),
so a third arm times the clearing alone, and the table shows each arm minus
the clearing (the gross means are in parentheses).

${denoTable(results.deno)}

### Node (hrtime harness)

\`scripts/bench_listen_fds_node.ts\`, compiled by scripts/bench.ts (TypeScript
erased) with the test helpers it imports, and run with Node in a throwaway app
where the built package is installed as \`node_modules/socket-activation\` with
koffi beside it, as in a user's app (\`scripts/_bench_app.ts\`). Each
arm is warmed up, then timed in ${
    results.node.steady[1]!.listenFds.roundsNs.length
  } rounds of the same iteration count (sized
so that a round of the slower arm takes about 40 ms), the two arms
alternating within each round; the table shows the median round. Steady
rounds time the loop as a whole; fresh rounds clear the flags before each
call and time each call alone with \`process.hrtime.bigint()\`, summing.

${nodeTable(results.node)}

${notifySection(results.notify.deno, results.notify.node)}
## Cold start: activated socket against self-bound port

The same HTTP server (\`node:http\`, one \`getSystemdSocket()\` call, listen on
the fd it returns or else on the port in its argument:
\`scripts/_bench_server_deno.ts\` on Deno, \`scripts/_bench_server_node.mjs\`
on Node, run in the same throwaway app) is started by \`systemd-socket-activate\`,
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
running scripts/bench.ts. After one discarded warm-up round of each arm
(which fills Deno's compile cache), ${flags.rounds} rounds per runtime, the order of the two arms
alternating each round. Times in ms: median (min–max).

| runtime | activated (ms) | self-bound (ms) | ratio activated / self-bound | rounds |
| --- | ---: | ---: | ---: | ---: |
${coldRow("Deno", results.cold.deno)}
${coldRow("Node", results.cold.node)}

${renderServeSection(results.serve)}`;
}

async function main(): Promise<void> {
  const flags = parseFlags(Deno.args);
  const started = performance.now();
  const nodePath = await run("sh", ["-c", "command -v node"]);
  const npmDir = `${ROOT}/npm`;
  if (flags.build) {
    console.error("Building npm/ (deno run -A scripts/build_npm.ts --no-test)");
    await run(Deno.execPath(), [
      "run",
      "-A",
      "scripts/build_npm.ts",
      "--no-test",
    ]);
  }
  try {
    await Deno.stat(`${npmDir}/esm/mod.js`);
  } catch {
    throw new Error("npm/esm/mod.js is missing: run without --no-build");
  }
  const info = await machine(nodePath);
  const app = await stageApp(npmDir);
  let deno: DenoBenchReport, node: NodeBenchResult;
  let notifyDeno: DenoBenchReport, notifyNode: NodeNotifyResult;
  let coldDeno: ColdStartResult, coldNode: ColdStartResult;
  let serve: ServeBenchResult;
  try {
    console.error("listenFds() against libsystemd on Deno (deno bench)");
    deno = await runDenoBench();
    console.error("listenFds() against libsystemd on Node");
    node = await runNodeBench(nodePath, app.dir);
    console.error("notify() against libsystemd on Deno (deno bench)");
    notifyDeno = await runDenoNotifyBench();
    console.error("notify() against libsystemd on Node");
    notifyNode = await runNodeNotifyBench(nodePath, app.dir);
    console.error(`Cold start on Deno, ${flags.rounds} rounds per arm`);
    coldDeno = await runColdStart(
      serverCommand("deno", nodePath, app.dir),
      flags.rounds,
    );
    console.error(`Cold start on Node, ${flags.rounds} rounds per arm`);
    coldNode = await runColdStart(
      serverCommand("node", nodePath, app.dir),
      flags.rounds,
    );
    console.error(
      `Throughput of serve(), ${flags.serveRounds} rounds per arm (autocannon)`,
    );
    serve = await runServeBench({
      nodePath,
      appDir: app.dir,
      load: { ...DEFAULT_LOAD, rounds: flags.serveRounds },
      log: (line) => console.error(line),
    });
  } finally {
    await app.remove();
  }
  const text = report({
    machine: info,
    flags,
    deno,
    node,
    notify: { deno: notifyDeno, node: notifyNode },
    cold: { deno: coldDeno, node: coldNode },
    serve,
    seconds: (performance.now() - started) / 1000,
    loadAtEnd: await loadAverage(),
  });
  const output = flags.output.startsWith("/")
    ? flags.output
    : `${ROOT}/${flags.output}`;
  await Deno.writeTextFile(output, text);
  // The report is Markdown, formatted as the repository's other files.
  await run(Deno.execPath(), ["fmt", output]);
  console.log(await Deno.readTextFile(output));
}

if (import.meta.main) {
  await main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
