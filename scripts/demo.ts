// The examples, live: runs examples/deno_server.ts and examples/node_server.mjs
// in both of their modes, sends each one request and prints who served it:
//
// - activated: the real systemd-socket-activate opens a unix socket named
//   "web" and starts the service on the first connection, with NOTIFY_SOCKET
//   and WATCHDOG_USEC pointing at a receiver bound here, which plays
//   systemd's side of sd_notify: the READY=1, STATUS=, WATCHDOG=1 and
//   STOPPING=1 it gets are printed;
// - by hand: the service binds the TCP endpoint of its app.toml itself.
//
// Each run ends with SIGTERM, which the services answer with a graceful
// shutdown and exit code 0.
//
//   deno run -A scripts/demo.ts
//
// The Node example imports "socket-activation" by name, as a user's program
// would. To run it against the local build without publishing or npm-linking
// anything, the demo copies it into a temporary app folder whose
// node_modules/socket-activation is a symlink to npm/: Node resolves the
// package through the link and koffi from npm/node_modules (it follows the
// link to its real path). The copy matters: Node would resolve imports of a
// symlinked script from the script's real folder, examples/.

import { join } from "node:path";
import {
  activate,
  freePort,
  httpGet,
  start,
  stop,
  type Target,
  terminate,
  within,
} from "../tests/_activator.ts";
import { type Receiver, startReceiver } from "../tests/_receiver.ts";
import { exists, ROOT } from "./build/_util.ts";

// A short watchdog interval, so that a ping (every half interval) shows.
const WATCHDOG_USEC = 200_000;

/** A failure whose message says it all: printed without a stack trace. */
class DemoError extends Error {
  override name = "DemoError";
}

/** What the example services answer. */
interface Served {
  runtime: string;
  pid: number;
  mode: string;
  fd: number | null;
  name: string | null;
  endpoint: string;
  path: string;
}

/** GET `path` on `target` over a fresh connection: the parsed answer. */
async function get(target: Target, path: string): Promise<Served> {
  const answer = await httpGet(target, path);
  if (answer.status !== 200) {
    throw new DemoError(`HTTP ${answer.status}: ${answer.body}`);
  }
  return JSON.parse(answer.body);
}

/** Reads datagrams until one says `state`, skipping the watchdog pings. */
async function expectState(
  receiver: Receiver,
  state: string,
  pid: number,
): Promise<string> {
  while (true) {
    const datagram = await receiver.next();
    if (datagram.credentials?.pid !== pid) {
      throw new DemoError(
        `A notification came from pid ${datagram.credentials?.pid}, not from the service (${pid})`,
      );
    }
    if (datagram.text === state) return datagram.text;
    if (datagram.text !== "WATCHDOG=1") {
      throw new DemoError(
        `Expected ${JSON.stringify(state)} from the service, got ${
          JSON.stringify(datagram.text)
        }`,
      );
    }
  }
}

/** One runtime's example: how to run it, where, and what it answers. */
interface Example {
  readonly runtime: "deno" | "node";
  /** The argv that runs it with `config`, binding the endpoint or not. */
  command(config: string, binds: boolean): string[];
  readonly cwd: string;
}

function show(served: Served, how: string): void {
  const where = served.fd === null
    ? served.endpoint
    : `fd ${served.fd} (${served.name})`;
  console.log(
    `${served.runtime}, ${served.mode}: pid ${served.pid} answered GET ${served.path} on ${where}, ${how}`,
  );
}

function check(served: Served, expected: Partial<Served>, what: string): void {
  for (const [key, value] of Object.entries(expected)) {
    if (served[key as keyof Served] !== value) {
      throw new DemoError(
        `${what}: expected ${key} ${JSON.stringify(value)}, got ${
          JSON.stringify(served)
        }`,
      );
    }
  }
}

/** Waits for the graceful exit that SIGTERM starts. */
async function exitedCleanly(
  running: { exited: Promise<number | string> },
  what: string,
): Promise<void> {
  const status = await within(running.exited, `${what} to exit`);
  if (status !== 0) {
    throw new DemoError(`${what} exited with ${status} after SIGTERM`);
  }
}

/**
 * Activated: systemd-socket-activate listens on a unix socket named "web"
 * (it execs the service in its own process), with the notify receiver.
 */
async function activated(
  example: Example,
  config: string,
  dir: string,
): Promise<void> {
  const what = `${example.runtime} (activated)`;
  const socketPath = join(dir, `${example.runtime}.sock`);
  const receiver = await startReceiver({ closeFds: true });
  // Resolves once the socket is open; the service starts on the first
  // connection.
  const running = await activate(example.command(config, false), {
    listen: [socketPath],
    names: ["web"],
    env: {
      NOTIFY_SOCKET: receiver.address,
      WATCHDOG_USEC: String(WATCHDOG_USEC),
    },
    cwd: example.cwd,
  }).catch(async (error) => {
    await receiver.close();
    throw error;
  });
  try {
    const served = await within(get({ socketPath }, "/"), `${what} answer`);
    check(served, {
      runtime: example.runtime,
      mode: "activated",
      fd: 3,
      name: "web",
    }, what);
    show(served, `passed by systemd-socket-activate (${socketPath})`);
    const states = [
      "READY=1",
      "STATUS=Serving on fd 3 (web)",
    ];
    const received: string[] = [];
    for (const state of states) {
      received.push(
        await within(expectState(receiver, state, served.pid), state),
      );
    }
    // The first ping shows the pinger runs: every WATCHDOG_USEC / 2.
    const ping = await within(receiver.next(), "WATCHDOG=1");
    if (ping.text !== "WATCHDOG=1") {
      throw new DemoError(`Expected WATCHDOG=1, got ${ping.text}`);
    }
    received.push(`WATCHDOG=1 (every ${WATCHDOG_USEC / 2000} ms)`);
    terminate(running);
    for (
      const state of ["STOPPING=1", "STATUS=Finishing the requests in progress"]
    ) {
      received.push(
        await within(expectState(receiver, state, served.pid), state),
      );
    }
    await exitedCleanly(running, what);
    console.log(
      `  sd_notify: ${received.join(" | ")}; exit 0 on SIGTERM`,
    );
  } catch (error) {
    console.error(
      `--- ${what} log ---\n${
        (running.stdout() + running.stderr()).trimEnd()
      }\n---`,
    );
    throw error;
  } finally {
    await stop(running);
    await receiver.close();
  }
}

/** By hand: the service binds the configured TCP endpoint itself. */
async function byHand(
  example: Example,
  config: string,
  port: number,
): Promise<void> {
  const what = `${example.runtime} (by hand)`;
  const running = start(example.command(config, true), example.cwd);
  try {
    await running.line(/^Serving on /m);
    const served = await within(get({ port }, "/"), `${what} answer`);
    check(served, {
      runtime: example.runtime,
      mode: "by hand",
      fd: null,
      endpoint: `http://127.0.0.1:${port}`,
    }, what);
    show(served, "bound from its app.toml");
    terminate(running);
    await exitedCleanly(running, what);
  } catch (error) {
    console.error(`--- ${what} log ---\n${running.output().trimEnd()}\n---`);
    throw error;
  } finally {
    await stop(running);
  }
}

async function main(): Promise<void> {
  if (!await exists(join(ROOT, "npm", "esm", "mod.js"))) {
    console.log(
      "No npm build yet: building it (scripts/build/build_npm.ts --no-test)",
    );
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/build/build_npm.ts", "--no-test"],
      cwd: ROOT,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (code !== 0) {
      throw new DemoError(
        `scripts/build/build_npm.ts failed with exit code ${code}`,
      );
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "socket-activation-demo-" });
  try {
    const app = join(dir, "app");
    await Deno.mkdir(join(app, "node_modules"), { recursive: true });
    await Deno.copyFile(
      join(ROOT, "examples", "node_server.mjs"),
      join(app, "node_server.mjs"),
    );
    await Deno.symlink(
      join(ROOT, "npm"),
      join(app, "node_modules", "socket-activation"),
    );

    const examples: Example[] = [{
      runtime: "deno",
      // Exactly what the services need: no --allow-net when activated (a
      // passed socket needs none), --allow-net to bind the port by hand.
      command: (config, binds) => [
        Deno.execPath(),
        "run",
        "--no-prompt",
        "--allow-env",
        "--allow-ffi",
        `--allow-read=${config}`,
        ...binds ? ["--allow-net"] : [],
        join(ROOT, "examples", "deno_server.ts"),
        config,
      ],
      cwd: ROOT,
    }, {
      runtime: "node",
      command: (config) => ["node", join(app, "node_server.mjs"), config],
      cwd: app,
    }];
    for (const example of examples) {
      // app.toml as shipped, with a free port for the run by hand. When
      // activated, the passed socket takes its place.
      const port = await freePort();
      const text = (await Deno.readTextFile(
        join(ROOT, "examples", "app.toml"),
      )).replace("http://127.0.0.1:8080", `http://127.0.0.1:${port}`);
      const config = join(dir, `${example.runtime}.toml`);
      await Deno.writeTextFile(config, text);
      await activated(example, config, dir);
      await byHand(example, config, port);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

try {
  await main();
} catch (error) {
  console.error(
    `demo failed: ${error instanceof DemoError ? error.message : error}`,
  );
  Deno.exit(1);
}
