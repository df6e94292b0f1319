// The example services in examples/, as users will run them: under the real
// systemd-socket-activate (the socket passed as "web", NOTIFY_SOCKET and
// WATCHDOG_USEC pointing at a test receiver) and by hand, binding what their
// app.toml names. Deno runs examples/deno_server.ts with exactly the flags
// the README gives; Node runs examples/node_server.mjs against the npm build,
// importing "socket-activation" by name as a user's program does.

import assert from "node:assert/strict";
import {
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Agent } from "node:http";
import {
  activate,
  freePort,
  httpGet,
  instanceExit,
  start,
  stop,
  type Target,
  terminate,
  within,
} from "./_activator.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import { runtime } from "./_runtime.ts";

// Pings every 50 ms, so that one arrives quickly.
const WATCHDOG_USEC = 100_000;

// tests/ in the repository; npm/test_esm/ or npm/test_cjs/ once compiled.
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = runtime === "deno" ? dirname(HERE) : dirname(dirname(HERE));
const EXAMPLES = join(ROOT, "examples");

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

/** GET `path` on `target`: the parsed JSON answer. */
async function get(target: Target, path: string): Promise<Served> {
  const answer = await httpGet(target, path);
  assert.equal(answer.status, 200, answer.body);
  assert.match(String(answer.headers["content-type"]), /^application\/json/);
  return JSON.parse(answer.body);
}

/** How this runtime runs its example, with a config and Deno's flags. */
interface Example {
  argv(config: string, denoFlags: readonly string[]): string[];
  readonly cwd: string;
}

/**
 * Runs `body` with a temporary folder and this runtime's example: on Deno
 * the repository's file (deno.json maps its import), on Node a copy in an
 * app folder whose node_modules/socket-activation links to the npm build.
 */
async function withExample(
  body: (example: Example, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "socket-activation-examples-"));
  try {
    let example: Example;
    if (runtime === "deno") {
      example = {
        argv: (config, denoFlags) => [
          process.execPath,
          "run",
          "--no-prompt",
          ...denoFlags,
          join(EXAMPLES, "deno_server.ts"),
          config,
        ],
        cwd: ROOT,
      };
    } else {
      const app = join(dir, "app");
      await mkdir(join(app, "node_modules"), { recursive: true });
      // A copy, not a link: Node resolves a linked script's imports from
      // its real folder, examples/, where there is no node_modules.
      await copyFile(
        join(EXAMPLES, "node_server.mjs"),
        join(app, "node_server.mjs"),
      );
      await symlink(
        dirname(HERE),
        join(app, "node_modules", "socket-activation"),
      );
      example = {
        argv: (config) => [
          process.execPath,
          join(app, "node_server.mjs"),
          config,
        ],
        cwd: app,
      };
    }
    await body(example, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** examples/app.toml with its `web` entry replaced. */
async function writeConfig(dir: string, web: string): Promise<string> {
  const text = await readFile(join(EXAMPLES, "app.toml"), "utf8");
  const shipped = /^web = .*$/m;
  assert.match(text, shipped, "examples/app.toml has a web entry");
  const path = join(dir, "app.toml");
  await writeFile(path, text.replace(shipped, `web = ${web}`));
  return path;
}

/** The next notification that is not a watchdog ping, from `pid`. */
async function nextState(receiver: Receiver, pid: number): Promise<string> {
  while (true) {
    const datagram = await within(receiver.next(), "a notification");
    assert.equal(datagram.credentials?.pid, pid, datagram.text);
    if (datagram.text !== "WATCHDOG=1") return datagram.text;
  }
}

test("the example service serves on the socket systemd-socket-activate passes, notifies and stops on SIGTERM", async () => {
  await withExample(async (example, dir) => {
    // A TCP endpoint it must not bind (Deno has no --allow-net here): the
    // passed socket takes its place.
    const config = await writeConfig(dir, `"http://127.0.0.1:9"`);
    const socketPath = join(dir, "web.sock");
    const receiver = await startReceiver({ closeFds: true });
    const running = await activate(
      example.argv(config, [
        "--allow-env",
        "--allow-ffi",
        `--allow-read=${config}`,
      ]),
      {
        listen: [socketPath],
        names: ["web"],
        env: {
          NOTIFY_SOCKET: receiver.address,
          WATCHDOG_USEC: String(WATCHDOG_USEC),
        },
        cwd: example.cwd,
      },
    ).catch(async (error) => {
      await receiver.close();
      throw error;
    });
    try {
      const served = await within(get({ socketPath }, "/hello"), "the answer");
      assert.deepEqual(
        { ...served, pid: 0 },
        {
          runtime,
          pid: 0,
          mode: "activated",
          fd: 3,
          name: "web",
          endpoint: "fd://3",
          path: "/hello",
        },
      );
      // systemd-socket-activate execs the service in its own process.
      assert.equal(served.pid, running.child.pid);
      assert.equal(await nextState(receiver, served.pid), "READY=1");
      assert.equal(
        await nextState(receiver, served.pid),
        "STATUS=Serving on fd 3 (web)",
      );
      const ping = await within(receiver.next(), "a watchdog ping");
      assert.equal(ping.text, "WATCHDOG=1");
      terminate(running);
      assert.equal(await nextState(receiver, served.pid), "STOPPING=1");
      assert.equal(
        await nextState(receiver, served.pid),
        "STATUS=Finishing the requests in progress",
      );
      assert.equal(
        await within(running.exited, "the exit"),
        0,
        running.stdout() + running.stderr(),
      );
    } finally {
      await stop(running);
      await receiver.close();
    }
  });
});

test("the example service binds the TCP endpoint of its config when run by hand", async () => {
  await withExample(async (example, dir) => {
    const port = await freePort();
    const config = await writeConfig(dir, `"http://127.0.0.1:${port}"`);
    const running = start(
      example.argv(config, [
        "--allow-env",
        "--allow-ffi",
        `--allow-read=${config}`,
        "--allow-net",
      ]),
      example.cwd,
    );
    try {
      await running.line(/^Serving on http:\/\/127\.0\.0\.1:\d+$/m);
      const served = await within(get({ port }, "/"), "the answer");
      assert.deepEqual(
        { ...served, pid: 0 },
        {
          runtime,
          pid: 0,
          mode: "by hand",
          fd: null,
          name: null,
          endpoint: `http://127.0.0.1:${port}`,
          path: "/",
        },
      );
      terminate(running);
      assert.equal(
        await within(running.exited, "the exit"),
        0,
        running.output(),
      );
    } finally {
      await stop(running);
    }
  });
});

test("the example service binds the unix socket of its config with its mode when run by hand", async () => {
  await withExample(async (example, dir) => {
    const socketPath = join(dir, "web.sock");
    const config = await writeConfig(
      dir,
      `{ uri = "unix://${socketPath}", mode = "0600" }`,
    );
    const running = start(
      example.argv(config, [
        "--allow-env",
        "--allow-ffi",
        "--allow-read",
        "--allow-write",
        "--allow-net",
      ]),
      example.cwd,
    );
    try {
      await running.line(/^Serving on unix:\/\//m);
      const info = await stat(socketPath);
      assert.ok(info.isSocket());
      assert.equal(info.mode & 0o777, 0o600);
      const served = await within(get({ socketPath }, "/"), "the answer");
      assert.equal(served.mode, "by hand");
      assert.equal(served.endpoint, `unix://${socketPath}`);
      terminate(running);
      assert.equal(
        await within(running.exited, "the exit"),
        0,
        running.output(),
      );
      // The socket it bound goes with it.
      await assert.rejects(stat(socketPath), { code: "ENOENT" });
    } finally {
      await stop(running);
    }
  });
});

test("the example service run per connection (examples/accept, Accept=yes) answers keep-alive requests on its connection, then exits", async () => {
  await withExample(async (example, dir) => {
    const config = await writeConfig(dir, `"http://127.0.0.1:9"`);
    const port = await freePort();
    // systemd-socket-activate --accept passes no names; systemd passes
    // LISTEN_FDNAMES=connection. Either way the one passed fd is served.
    const running = await activate(
      example.argv(config, [
        "--allow-env",
        "--allow-ffi",
        `--allow-read=${config}`,
      ]),
      { listen: [`127.0.0.1:${port}`], accept: true, cwd: example.cwd },
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const served = [];
      for (const path of ["/one", "/two"]) {
        const answer = await within(
          httpGet({ port }, path, {}, agent),
          `GET ${path}`,
        );
        assert.equal(answer.status, 200, answer.body);
        served.push(JSON.parse(answer.body) as Served);
      }
      const pid = served[0]!.pid;
      assert.deepEqual(
        served.map((answer) => ({ ...answer, pid: 0 })),
        ["/one", "/two"].map((path) => ({
          runtime,
          pid: 0,
          mode: "activated",
          fd: 3,
          name: "unknown",
          endpoint: "fd://3",
          path,
        })),
      );
      // Both on the one connection, so by the one instance.
      assert.equal(served[1]!.pid, pid);
      const exit = instanceExit(running, pid);
      agent.destroy();
      assert.equal(await exit, 0, running.stderr());
    } finally {
      agent.destroy();
      await stop(running);
    }
  });
});
