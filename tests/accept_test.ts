// Accept=yes: the real systemd-socket-activate --accept accepts each
// connection and starts a fixture in this runtime with the connected socket
// as fd 3 (LISTEN_FDS=1, LISTEN_PID, no names), as systemd starts one
// instance of a web@.service per connection. serve() and listen() must
// answer on that connection for as long as the client keeps it open, then
// let the process exit.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import {
  activate,
  freePort,
  instanceExit,
  stop,
  within,
} from "./_activator.ts";
import { fixtureCommand, runtime } from "./_runtime.ts";

// No --allow-net: serving a passed connection needs none.
const DENO_FLAGS = ["--allow-env", "--allow-ffi"];

const root = mkdtempSync(join(tmpdir(), "accept-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
let sockets = 0;

/** Where systemd-socket-activate listens, and how a client reaches it. */
type Listen = { port: number } | { path: string };

async function listenAddress(kind: "tcp" | "unix"): Promise<Listen> {
  return kind === "tcp"
    ? { port: await freePort() }
    : { path: join(root, `${sockets++}.sock`) };
}

function argument(where: Listen): string {
  return "port" in where ? `127.0.0.1:${where.port}` : where.path;
}

/** GET `path` through `agent`: the JSON answer and the client port used. */
function get(
  where: Listen,
  agent: Agent,
  path: string,
): Promise<{ body: Record<string, unknown>; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        ...("port" in where
          ? { host: "127.0.0.1", port: where.port }
          : { socketPath: where.path }),
        path,
        agent,
      },
      (response) => {
        const socket = response.socket as Socket;
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => body += chunk);
        response.on("end", () => {
          try {
            assert.equal(response.statusCode, 200, body);
            // HTTP/1.1 keeps the connection unless the server says close
            // (Deno's engine sends no Connection header, node:http sends
            // keep-alive).
            assert.notEqual(response.headers.connection, "close");
            resolve({ body: JSON.parse(body), socket });
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    outgoing.on("error", reject);
    outgoing.end();
  });
}

for (const kind of ["tcp", "unix"] as const) {
  test(`serve() answers keep-alive requests on the ${kind} connection systemd-socket-activate --accept passed, then finishes when the client closes`, async () => {
    const where = await listenAddress(kind);
    const activated = await activate(
      fixtureCommand("serve_app", { denoFlags: DENO_FLAGS }),
      {
        listen: [argument(where)],
        accept: true,
        // Where it would listen by hand; the passed connection comes first.
        env: { SERVE_ENDPOINT: `http://127.0.0.1:${await freePort()}` },
      },
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answers = [];
      for (const path of ["/one", "/two", "/three"]) {
        answers.push(await within(get(where, agent, path), `GET ${path}`));
      }
      // One connection, one instance, three answers.
      const [first, ...rest] = answers;
      for (const answer of rest) {
        assert.ok(answer.socket === first!.socket, "a second connection");
      }
      const pid = first!.body.pid as number;
      assert.equal(typeof pid, "number");
      assert.deepEqual(
        answers.map(({ body }) => [
          body.runtime,
          body.pid,
          new URL(String(body.url)).pathname,
        ]),
        ["/one", "/two", "/three"].map((path) => [runtime, pid, path]),
      );
      assert.deepEqual(JSON.parse(await activated.nextLine()), {
        event: "listening",
        source: "systemd",
        fd: 3,
        name: "unknown",
        endpoint: { kind: "fd", fd: 3 },
        // The connection was not accepted by the server: Deno's engine,
        // which takes accepted TCP connections, leaves it to node:http.
        engine: "node:http",
      });
      const exit = instanceExit(activated, pid);
      // Closing the connection ends the service: finished settles and the
      // process exits by itself.
      agent.destroy();
      assert.deepEqual(
        JSON.parse(await within(activated.nextLine(), "finished")),
        { event: "finished" },
      );
      assert.equal(await exit, 0, activated.stderr());
    } finally {
      agent.destroy();
      await stop(activated);
    }
  });
}

test("serve() on an --accept connection finishes gracefully on SIGTERM while the client keeps the connection", async () => {
  const where = await listenAddress("tcp");
  const activated = await activate(
    fixtureCommand("serve_app", { denoFlags: DENO_FLAGS }),
    {
      listen: [argument(where)],
      accept: true,
      env: { SERVE_ENDPOINT: "fd://3" },
    },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const { body, socket } = await within(get(where, agent, "/"), "GET /");
    const pid = body.pid as number;
    const closed = new Promise((resolve) => socket.once("close", resolve));
    const exit = instanceExit(activated, pid);
    await within(activated.nextLine(), "listening");
    process.kill(pid, "SIGTERM");
    assert.deepEqual(
      JSON.parse(await within(activated.nextLine(), "finished")),
      { event: "finished" },
    );
    assert.equal(await exit, 0, activated.stderr());
    // The idle keep-alive connection was closed by the server.
    await within(closed, "the connection to close");
  } finally {
    agent.destroy();
    await stop(activated);
  }
});

for (const kind of ["tcp", "unix"] as const) {
  test(`listen() emits the ${kind} connection systemd-socket-activate --accept passed, then closes with it`, async () => {
    const where = await listenAddress(kind);
    const activated = await activate(
      [
        ...fixtureCommand("listen_echo", { denoFlags: DENO_FLAGS }),
        "fd://3",
      ],
      { listen: [argument(where)], accept: true },
    );
    try {
      const client = "port" in where
        ? connect({ host: "127.0.0.1", port: where.port })
        : connect({ path: where.path });
      client.setEncoding("utf8");
      const lines: string[] = [];
      let buffered = "";
      const answered = (count: number) =>
        within(
          new Promise<void>((resolve) => {
            const check = () => {
              if (lines.length < count) return;
              client.off("data", collect);
              resolve();
            };
            const collect = (chunk: string) => {
              buffered += chunk;
              let end;
              while ((end = buffered.indexOf("\n")) >= 0) {
                lines.push(buffered.slice(0, end));
                buffered = buffered.slice(end + 1);
              }
              check();
            };
            client.on("data", collect);
            check();
          }),
          `${count} answers (${activated.stderr()})`,
        );
      client.write("first\n");
      await answered(1);
      client.write("second\n");
      await answered(2);
      const pid = Number(lines[0]!.split(" ")[0]);
      assert.deepEqual(lines, [`${pid} first`, `${pid} second`]);
      const listening = JSON.parse(await activated.nextLine());
      assert.equal(listening.event, "listening");
      // No listening socket of its own: the server serves one connection.
      assert.equal(listening.address, null);
      const exit = instanceExit(activated, pid);
      client.end();
      assert.equal(await exit, 0, activated.stderr());
    } finally {
      await stop(activated);
    }
  });
}

test("Under systemd-socket-activate --inetd (the connection on stdin and stdout, no LISTEN_*), listen() is not activated and binds its configured endpoint", async () => {
  const where = await listenAddress("tcp");
  const configured = await freePort();
  const activated = await activate(
    [
      ...fixtureCommand("listen_echo", {
        denoFlags: [...DENO_FLAGS, "--allow-net"],
      }),
      `http://127.0.0.1:${configured}`,
    ],
    { listen: [argument(where)], accept: true, inetd: true },
  );
  try {
    const client = connect({
      host: "127.0.0.1",
      port: (where as { port: number }).port,
    });
    client.setEncoding("utf8");
    // The fixture's stdout is the connection: its first line comes here.
    const line = await within(
      new Promise<string>((resolve, reject) => {
        let buffered = "";
        client.on("data", (chunk: string) => {
          buffered += chunk;
          const end = buffered.indexOf("\n");
          if (end >= 0) resolve(buffered.slice(0, end));
        });
        client.on("error", reject);
      }),
      `the fixture's first line (${activated.stderr()})`,
    );
    const listening = JSON.parse(line);
    assert.equal(listening.event, "listening");
    assert.deepEqual(listening.listenEnv, []);
    assert.equal(listening.address.port, configured);
    client.destroy();
  } finally {
    await stop(activated);
  }
});
