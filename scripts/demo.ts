// The examples, live: starts examples/deno_server.ts and
// examples/node_server.mjs each under the real systemd-socket-activate on a
// unix socket named "web", sends each one request and prints who served it.
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

import { request } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { exists } from "./_build_util.ts";

// The repository root: this file lives in <root>/scripts/.
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

const SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate";
// Each step takes well under a second; this turns a hang into a message.
const DEADLINE_MS = 15_000;

/** A failure whose message says it all: printed without a stack trace. */
class DemoError extends Error {
  override name = "DemoError";
}

/** Rejects with a message naming `what` if `promise` takes too long. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DemoError(`Timed out waiting for ${what}`)),
      DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** GET / over the unix socket at `socketPath`: the body. */
function get(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      { socketPath, path: "/", agent: false },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => body += chunk);
        response.on("end", () => {
          if (response.statusCode === 200) resolve(body.trim());
          else reject(new DemoError(`HTTP ${response.statusCode}: ${body}`));
        });
        response.on("error", reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.end();
  });
}

/**
 * Runs `argv` under systemd-socket-activate on a fresh unix socket named
 * "web", sends it one request, prints the answer and stops the server.
 */
async function demo(
  label: string,
  socketPath: string,
  argv: readonly string[],
  cwd: string,
): Promise<void> {
  // systemd-socket-activate passes on only TERM, PATH, USER and HOME.
  const env = ["-E", "NO_COLOR=1"];
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir !== undefined) env.push("-E", `DENO_DIR=${denoDir}`);
  const child = new Deno.Command(SOCKET_ACTIVATE, {
    args: ["-l", socketPath, "--fdname=web", ...env, ...argv],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Both streams carry the activator's and the server's log lines, shown
  // only when something fails.
  let log = "";
  const decoder = new TextDecoder();
  let listening: () => void = () => {};
  const isListening = new Promise<void>((resolve) => listening = resolve);
  const collect = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeTo(
      new WritableStream({
        write(chunk) {
          log += decoder.decode(chunk, { stream: true });
          // Printed once the socket is bound; the server itself starts on
          // the first connection.
          if (/^Listening on .* as 3\.$/m.test(log)) listening();
        },
      }),
    );
  const streams = Promise.all([collect(child.stdout), collect(child.stderr)]);
  try {
    await within(
      Promise.race([
        isListening,
        child.status.then(({ code }) => {
          throw new DemoError(`${SOCKET_ACTIVATE} exited with ${code}`);
        }),
      ]),
      `${label}: ${SOCKET_ACTIVATE} to listen`,
    );
    const body = await within(get(socketPath), `${label}: the answer`);
    const served = JSON.parse(body) as {
      runtime: string;
      fd: number | null;
      name: string | null;
      method: string;
      url: string;
    };
    if (served.runtime !== label || served.fd !== 3 || served.name !== "web") {
      throw new DemoError(
        `${label}: expected fd 3 (web) from ${label}, got ${body}`,
      );
    }
    console.log(
      `${
        label.padEnd(5)
      } served ${served.method} ${served.url} on fd ${served.fd} (${served.name}): ${body}`,
    );
  } catch (error) {
    console.error(`--- ${label} log ---\n${log.trimEnd()}\n---`);
    throw error instanceof DemoError
      ? error
      : new DemoError(`${label}: ${error}`);
  } finally {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await child.status;
    await streams;
  }
}

async function main(): Promise<void> {
  if (!await exists(join(ROOT, "npm", "esm", "mod.js"))) {
    console.log(
      "No npm build yet: building it (scripts/build_npm.ts --no-test)",
    );
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/build_npm.ts", "--no-test"],
      cwd: ROOT,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (code !== 0) {
      throw new DemoError(`scripts/build_npm.ts failed with exit code ${code}`);
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

    // No --allow-net: serving on the passed socket needs none.
    await demo("deno", join(dir, "deno.sock"), [
      Deno.execPath(),
      "run",
      "--allow-env",
      "--allow-ffi",
      join(ROOT, "examples", "deno_server.ts"),
    ], ROOT);
    await demo("node", join(dir, "node.sock"), [
      "node",
      join(app, "node_server.mjs"),
    ], app);
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
