// serve() over real sockets: TCP on port 0, a unix socket bound here, and
// sockets passed to a child process (tests/fixtures/serve_app.ts) as systemd
// passes them. Clients are node:http, one connection per request unless a
// test needs keep-alive. Every test runs in both modes of tests/_serve.ts:
// serve()'s default paths and its fallback ones.

import assert from "node:assert/strict";
import { Agent, type IncomingMessage, request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ActivationError } from "./_lib.ts";
import type { LaunchFd } from "./_launch.ts";
import { runtime } from "./_runtime.ts";
import {
  type Answer,
  ask,
  connection,
  DEADLINE,
  MODES,
  readAll,
  serveIn,
  type ServeMode,
  signal,
  startFixture,
  type Target,
  targetOf,
  tempDir,
} from "./_serve.ts";

/** Echoes the request as JSON. */
async function echo(request: Request): Promise<Response> {
  return Response.json({
    method: request.method,
    url: request.url,
    body: await request.text(),
  });
}

/** Runs serve_app.ts with `fd` passed as fd 3 named `web`. */
function activated(
  mode: ServeMode,
  fd: LaunchFd,
  env: Record<string, string> = {},
) {
  return startFixture({ name: "serve_app", fd, mode, env });
}

function refused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: "127.0.0.1", port });
    socket.on("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code!));
  });
}

for (const mode of MODES) {
  test(
    `serve() answers a request over TCP on port 0${mode.label}`,
    DEADLINE,
    async () => {
      const server = await serveIn(
        mode,
        { endpoint: "http://127.0.0.1:0" },
        echo,
      );
      try {
        assert.equal(server.source, "bound");
        assert.equal(server.engine, mode.tcpEngine);
        assert.equal(server.fd, undefined);
        assert.equal(server.endpoint.kind, "http");
        const target = targetOf(server);
        assert.ok("port" in target && target.port > 0);
        const answer = await ask(target, {
          method: "POST",
          path: "/a/b?c=d",
          body: "hello",
        });
        assert.equal(answer.status, 200);
        assert.equal(answer.headers["content-type"], "application/json");
        assert.deepEqual(JSON.parse(answer.body), {
          method: "POST",
          url: `http://127.0.0.1:${target.port}/a/b?c=d`,
          body: "hello",
        });
      } finally {
        await server.shutdown();
      }
    },
  );

  test(
    `serve() answers a request over a unix socket it binds${mode.label}`,
    DEADLINE,
    async () => {
      const dir = tempDir();
      const path = join(dir, "web.sock");
      const server = await serveIn(mode, { endpoint: `unix://${path}` }, echo);
      try {
        assert.deepEqual(server.endpoint, { kind: "unix", path });
        // Deno's engine cannot take a unix socket's connections.
        assert.equal(server.engine, "node:http");
        const answer = await ask({ socketPath: path }, { path: "/x" });
        assert.equal(answer.status, 200);
        assert.deepEqual(JSON.parse(answer.body), {
          method: "GET",
          url: "http://localhost/x",
          body: "",
        });
      } finally {
        await server.shutdown();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  for (const kind of ["unix", "tcp"] as const) {
    test(
      `serve() answers on an activated ${kind} socket (fd://web) and stops on SIGTERM${mode.label}`,
      DEADLINE,
      async () => {
        const dir = tempDir();
        const path = join(dir, "activated.sock");
        try {
          const { launched, event, terminate } = await activated(
            mode,
            kind === "unix" ? { type: "unix", path } : { type: "tcp" },
          );
          assert.deepEqual(await event(), {
            event: "listening",
            source: "systemd",
            // Deno's engine takes TCP connections (with no --allow-net).
            engine: kind === "tcp" ? mode.tcpEngine : "node:http",
            fd: 3,
            name: "web",
            endpoint: { kind: "fd", fd: 3 },
          });
          const target: Target = kind === "unix"
            ? { socketPath: path }
            : { port: launched.fds[0]!.port! };
          const answer = await ask(target, {
            method: "PUT",
            path: "/activated",
            body: "payload",
          });
          assert.equal(answer.status, 200);
          const served = JSON.parse(answer.body) as Record<string, unknown>;
          assert.equal(served.runtime, runtime);
          assert.equal(served.pid, launched.pid);
          assert.equal(served.method, "PUT");
          assert.equal(served.body, "payload");
          assert.match(String(served.url), /\/activated$/);
          await terminate();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  }

  test(
    `serve() streams the request and response bodies without buffering them${mode.label}`,
    DEADLINE,
    async () => {
      const server = await serveIn(
        mode,
        { endpoint: "http://127.0.0.1:0" },
        (request) =>
          new Response(
            request.body!.pipeThrough(new TextDecoderStream()).pipeThrough(
              new TransformStream<string, string>({
                transform: (chunk, controller) =>
                  controller.enqueue(chunk.toUpperCase()),
              }),
            ).pipeThrough(new TextEncoderStream()),
          ),
      );
      try {
        const outgoing = httpRequest({
          ...connection(targetOf(server)),
          method: "POST",
          path: "/echo",
          agent: false,
          headers: { "transfer-encoding": "chunked" },
        });
        const response = new Promise<IncomingMessage>((resolve, reject) => {
          outgoing.on("response", resolve);
          outgoing.on("error", reject);
        });
        // The first chunk comes back while the request body is still open: the
        // server neither waits for the whole request nor holds the response.
        outgoing.write("first chunk;");
        const incoming = await response;
        assert.equal(incoming.statusCode, 200);
        assert.equal(incoming.headers["transfer-encoding"], "chunked");
        incoming.setEncoding("utf8");
        const firstEcho = await new Promise<string>((resolve) =>
          incoming.once("data", resolve)
        );
        assert.equal(firstEcho, "FIRST CHUNK;");
        const rest = readAll(incoming);
        outgoing.end("second chunk");
        assert.equal(await rest, "SECOND CHUNK");
      } finally {
        await server.shutdown();
      }
    },
  );

  test(
    `serve() answers pipelined requests on one connection in order${mode.label}`,
    DEADLINE,
    async () => {
      const server = await serveIn(
        mode,
        { endpoint: "http://127.0.0.1:0" },
        async (request) => {
          const body = await request.text();
          return new Response(`${new URL(request.url).pathname} ${body};`);
        },
      );
      try {
        const { port } = targetOf(server) as { port: number };
        const socket = connect(port, "127.0.0.1");
        let received = "";
        socket.setEncoding("utf8");
        socket.on("data", (chunk: string) => received += chunk);
        const closed = new Promise((resolve) => socket.on("close", resolve));
        // Three requests in one write, the last one closing the connection.
        socket.write(
          "POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na" +
            "GET /two HTTP/1.1\r\nHost: x\r\n\r\n" +
            "POST /three HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n" +
            "Connection: close\r\n\r\nccc",
        );
        await closed;
        const bodies = received.split(/HTTP\/1\.1 200 [^\r]*\r\n/).slice(1)
          .map((answer) => answer.slice(answer.indexOf("\r\n\r\n") + 4));
        assert.deepEqual(bodies, ["/one a;", "/two ;", "/three ccc;"]);
      } finally {
        await server.shutdown();
      }
    },
  );

  test(
    `serve() passes repeated headers both ways, each Set-Cookie on its own line${mode.label}`,
    DEADLINE,
    async () => {
      const server = await serveIn(
        mode,
        { endpoint: "http://127.0.0.1:0" },
        (request) => {
          const headers = new Headers({
            "x-seen": request.headers.get("x-multi")!,
          });
          headers.append("set-cookie", "a=1; Path=/");
          headers.append("set-cookie", "b=2; HttpOnly");
          headers.append("x-list", "one");
          headers.append("x-list", "two");
          return new Response("body", {
            status: 299,
            statusText: "Fine Indeed",
            headers,
          });
        },
      );
      try {
        const target = targetOf(server);
        const answer = await ask(target, {
          // An array value is sent as one header line per element.
          headers: { "x-multi": ["a", "b"] },
        });
        assert.equal(answer.status, 299);
        // Deno's engine sends the standard reason phrase (none for 299), as
        // Deno.serve() does.
        if (server.engine === "node:http") {
          assert.equal(answer.statusText, "Fine Indeed");
        }
        assert.equal(answer.headers["x-seen"], "a, b");
        assert.deepEqual(answer.headers["set-cookie"], [
          "a=1; Path=/",
          "b=2; HttpOnly",
        ]);
        assert.equal(answer.headers["x-list"], "one, two");
        assert.equal(answer.headers["content-length"], "4");
        assert.equal(answer.body, "body");

        const head = await ask(target, { method: "HEAD" });
        assert.equal(head.status, 299);
        assert.equal(head.body, "");
      } finally {
        await server.shutdown();
      }
    },
  );

  test(
    `serve() answers 500 for a handler error, or what onError returns${mode.label}`,
    DEADLINE,
    async () => {
      const failing = () => {
        throw new Error("handler failed on purpose");
      };
      const server = await serveIn(mode, {
        endpoint: "http://127.0.0.1:0",
        onError: (error) =>
          new Response(`caught: ${(error as Error).message}`, { status: 502 }),
      }, failing);
      const plain = await serveIn(mode, {
        endpoint: "http://127.0.0.1:0",
        // The default prints the error; this one keeps the test output clean
        // and falls back to the default 500 by throwing.
        onError: () => {
          throw new Error("onError failed too");
        },
      }, failing);
      const originalError = console.error;
      console.error = () => {};
      try {
        const answer = await ask(targetOf(server));
        assert.equal(answer.status, 502);
        assert.equal(answer.body, "caught: handler failed on purpose");
        const fallback = await ask(targetOf(plain));
        assert.equal(fallback.status, 500);
      } finally {
        console.error = originalError;
        await server.shutdown();
        await plain.shutdown();
      }
    },
  );

  test(
    `serve() aborts request.signal when the client goes away${mode.label}`,
    DEADLINE,
    async () => {
      const reached = signal();
      const aborted = signal();
      const server = await serveIn(
        mode,
        { endpoint: "http://127.0.0.1:0" },
        (request) => {
          request.signal.addEventListener("abort", () => aborted.resolve());
          reached.resolve();
          return new Promise<Response>((resolve) =>
            request.signal.addEventListener(
              "abort",
              () => resolve(new Response("too late")),
            )
          );
        },
      );
      try {
        const outgoing = httpRequest({
          ...connection(targetOf(server)),
          path: "/slow",
          agent: false,
        });
        outgoing.on("error", () => {});
        outgoing.end();
        await reached.promise;
        outgoing.destroy();
        await aborted.promise;
      } finally {
        await server.shutdown();
      }
    },
  );

  test(
    `serve() cancels the response body and aborts request.signal when the client leaves mid-stream${mode.label}`,
    DEADLINE,
    async () => {
      const cancelled = signal<unknown>();
      const aborted = signal();
      const server = await serveIn(
        mode,
        { endpoint: "http://127.0.0.1:0" },
        (request) => {
          request.signal.addEventListener("abort", () => aborted.resolve());
          let sent = 0;
          // Endless: a chunk each time the connection wants one.
          return new Response(
            new ReadableStream<Uint8Array>({
              pull(controller) {
                controller.enqueue(
                  new TextEncoder().encode(`chunk ${++sent}\n`),
                );
              },
              cancel(reason) {
                cancelled.resolve(reason);
              },
            }),
          );
        },
      );
      try {
        const outgoing = httpRequest({
          ...connection(targetOf(server)),
          path: "/endless",
          agent: false,
        });
        outgoing.on("error", () => {});
        const response = await new Promise<IncomingMessage>((resolve) => {
          outgoing.on("response", resolve);
          outgoing.end();
        });
        assert.equal(response.statusCode, 200);
        await new Promise((resolve) => response.once("data", resolve));
        outgoing.destroy();
        await cancelled.promise;
        await aborted.promise;
      } finally {
        await server.shutdown();
      }
    },
  );

  test(
    `serve() gives an aborted request.signal to a handler that reads it after the client left${mode.label}`,
    DEADLINE,
    async () => {
      const seen = signal<{ failed: boolean; abortedAtOnce: boolean }>();
      const aborted = signal();
      const server = await serveIn(
        mode,
        { endpoint: "http://127.0.0.1:0" },
        async (request) => {
          // The body never ends: the client leaves first, and the read fails.
          const failed = await request.text().then(() => false, () => true);
          // Only now is the signal read.
          const { signal } = request;
          if (signal.aborted) aborted.resolve();
          else signal.addEventListener("abort", () => aborted.resolve());
          seen.resolve({ failed, abortedAtOnce: signal.aborted });
          return new Response("too late");
        },
      );
      try {
        const target = targetOf(server) as { port: number };
        const socket = connect(target.port, "127.0.0.1");
        socket.on("error", () => {});
        socket.write(
          "POST /half HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf",
        );
        // Once the server has the request, the client goes away.
        await new Promise((resolve) => socket.once("connect", resolve));
        socket.destroy();
        const { failed, abortedAtOnce } = await seen.promise;
        assert.equal(failed, true);
        // node:http's lazy signal knows the client left; Deno's engine may
        // tell its own a moment later.
        if (server.engine === "node:http") assert.equal(abortedAtOnce, true);
        await aborted.promise;
      } finally {
        await server.shutdown();
      }
    },
  );

  test(
    `serve() ends a HEAD response at once and cancels its endless body${mode.label}`,
    DEADLINE,
    async () => {
      const cancelled = signal();
      const server = await serveIn(
        mode,
        { endpoint: "http://127.0.0.1:0" },
        () =>
          new Response(
            new ReadableStream<Uint8Array>({
              pull(controller) {
                controller.enqueue(new Uint8Array(1024));
              },
              cancel() {
                cancelled.resolve();
              },
            }),
            { headers: { "x-kind": "endless" } },
          ),
      );
      try {
        const answer = await ask(targetOf(server), { method: "HEAD" });
        assert.equal(answer.status, 200);
        assert.equal(answer.headers["x-kind"], "endless");
        assert.equal(answer.body, "");
        await cancelled.promise;
      } finally {
        await server.shutdown();
      }
    },
  );

  test(
    `serve() shuts down gracefully: in-flight requests finish, then \`finished\`${mode.label}`,
    DEADLINE,
    async () => {
      const controller = new AbortController();
      const reached = signal();
      const release = signal();
      const server = await serveIn(mode, {
        endpoint: "http://127.0.0.1:0",
        signal: controller.signal,
      }, async (request) => {
        if (new URL(request.url).pathname === "/slow") {
          reached.resolve();
          await release.promise;
          return new Response("slow done");
        }
        return new Response("quick");
      });
      // Idle keep-alive connections must be closed by the shutdown, not by
      // this timeout: a test that hangs here fails.
      server.server.keepAliveTimeout = 120_000;
      const target = targetOf(server);
      assert.ok("port" in target);
      let finished = false;
      void server.finished.then(() => finished = true);

      // An idle keep-alive connection, left open after its request.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const idleClosed = signal();
      const warm = httpRequest({ ...connection(target), agent });
      warm.on(
        "socket",
        (socket) => socket.once("close", () => idleClosed.resolve()),
      );
      const warmAnswer = await new Promise<string>((resolve, reject) => {
        warm.on(
          "response",
          (response) => readAll(response).then(resolve, reject),
        );
        warm.on("error", reject);
        warm.end();
      });
      assert.equal(warmAnswer, "quick");

      const slow = ask(target, { path: "/slow" });
      await reached.promise;
      controller.abort();
      assert.equal(await refused(target.port), "ECONNREFUSED");
      await idleClosed.promise;
      assert.equal(finished, false);

      release.resolve();
      const answer = await slow;
      assert.equal(answer.status, 200);
      assert.equal(answer.body, "slow done");
      assert.equal(answer.headers.connection, "close");
      await server.finished;
      assert.equal(finished, true);
      // shutdown() after the fact resolves with the same promise.
      await server.shutdown();
      agent.destroy();
    },
  );

  test(
    `serve() shutdown answers a new connection's first request with Connection: close and closes a silent one after shutdownGraceMs${mode.label}`,
    DEADLINE,
    async () => {
      const server = await serveIn(
        mode,
        { endpoint: "http://127.0.0.1:0", shutdownGraceMs: 200 },
        () => new Response("first and last"),
      );
      const { port } = targetOf(server) as { port: number };
      const accepted = signal();
      let count = 0;
      server.server.on("connection", () => {
        if (++count === 2) accepted.resolve();
      });
      // Connected, but no request yet: what a restart catches.
      const open = () => {
        const socket = connect(port, "127.0.0.1");
        let received = "";
        socket.setEncoding("utf8");
        socket.on("data", (chunk: string) => received += chunk);
        const ended = new Promise<string>((resolve) =>
          socket.on("close", () => resolve(received))
        );
        socket.on("error", () => {});
        return { socket, ended };
      };
      const talker = open();
      const silent = open();
      await accepted.promise;
      let finished = false;
      const done = server.shutdown().then(() => finished = true);
      talker.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      const answer = await talker.ended;
      assert.match(answer, /^HTTP\/1\.1 200 /);
      assert.match(answer, /\r\nconnection: close\r\n/i);
      assert.match(answer, /first and last$/);
      // The silent one is closed by the server once the grace is over.
      assert.equal(await silent.ended, "");
      await done;
      assert.equal(finished, true);
    },
  );

  test(
    `serve() answers 503 over the per-uid limit on a unix socket${mode.label}`,
    DEADLINE,
    async () => {
      const dir = tempDir();
      const path = join(dir, "limited.sock");
      const limit = 2;
      let inHandler = 0;
      const allIn = signal();
      const release = signal();
      const server = await serveIn(mode, {
        endpoint: `unix://${path}`,
        perUidLimit: limit,
      }, async (request) => {
        if (new URL(request.url).pathname === "/hold") {
          if (++inHandler === limit) allIn.resolve();
          await release.promise;
        }
        return new Response("ok");
      });
      try {
        const target = { socketPath: path };
        const held = Array.from(
          { length: limit },
          () => ask(target, { path: "/hold" }),
        );
        await allIn.promise;
        const over = await ask(target, { path: "/hold" });
        assert.equal(over.status, 503);
        assert.equal(inHandler, limit);
        release.resolve();
        for (const answer of await Promise.all(held)) {
          assert.equal(answer.status, 200);
        }
        // The count goes back down: the next request is served.
        assert.equal((await ask(target)).status, 200);
      } finally {
        await server.shutdown();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test(
    `serve() answers 503 over the per-uid limit on an activated unix socket${mode.label}`,
    DEADLINE,
    async () => {
      const dir = tempDir();
      const path = join(dir, "activated.sock");
      try {
        const { event, terminate } = await activated(
          mode,
          { type: "unix", path },
          { SERVE_PER_UID_LIMIT: "1" },
        );
        assert.equal((await event()).event, "listening");
        // One request held open (its body not ended) takes the only slot.
        const held = httpRequest({
          socketPath: path,
          method: "POST",
          path: "/held",
          agent: false,
          headers: { "transfer-encoding": "chunked" },
        });
        const heldResponse = new Promise<IncomingMessage>((resolve, reject) => {
          held.on("response", resolve);
          held.on("error", reject);
        });
        held.flushHeaders();
        // The server reads the body, so a request answered after the held one
        // reached the handler: retry until the held one is counted.
        let over: Answer;
        do {
          over = await ask({ socketPath: path });
        } while (over.status === 200);
        assert.equal(over.status, 503);
        held.end("done");
        const served = JSON.parse(await readAll(await heldResponse)) as {
          body: string;
        };
        assert.equal(served.body, "done");
        assert.equal((await ask({ socketPath: path })).status, 200);
        await terminate();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test(
    `serve() refuses the per-uid limit on TCP with UNSUPPORTED${mode.label}`,
    DEADLINE,
    async () => {
      await assert.rejects(
        serveIn(
          mode,
          { endpoint: "http://127.0.0.1:0", perUidLimit: true },
          echo,
        ),
        (error: unknown) => {
          assert.ok(error instanceof ActivationError);
          assert.equal(error.code, "UNSUPPORTED");
          assert.match(error.message, /^Cannot limit requests per uid on /);
          return true;
        },
      );
    },
  );

  test(
    `serve() refuses the per-uid limit on an activated TCP socket with UNSUPPORTED${mode.label}`,
    DEADLINE,
    async () => {
      const { launched, event } = await activated(mode, { type: "tcp" }, {
        SERVE_PER_UID_LIMIT: "1",
      });
      const failure = await event();
      assert.equal(failure.event, "error");
      assert.equal(failure.code, "UNSUPPORTED");
      assert.match(String(failure.message), /IPv4 socket/);
      assert.equal(await launched.exited, 1, launched.stderr());
    },
  );

  test(
    `serve() rejects a bad perUidLimit and an aborted signal before listening${mode.label}`,
    DEADLINE,
    async () => {
      for (const perUidLimit of [0, -1, 1.5, Number.NaN]) {
        await assert.rejects(
          serveIn(mode, { endpoint: "http://127.0.0.1:0", perUidLimit }, echo),
          RangeError,
        );
      }
      const reason = new Error("stopped before start");
      await assert.rejects(
        serveIn(mode, {
          endpoint: "http://127.0.0.1:0",
          signal: AbortSignal.abort(reason),
        }, echo),
        (error: unknown) => error === reason,
      );
    },
  );
}
