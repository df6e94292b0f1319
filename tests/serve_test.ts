// serve() over real sockets: TCP on port 0, a unix socket bound here, and
// sockets passed to a child process (tests/fixtures/serve_app.ts) as systemd
// passes them. Clients are node:http, one connection per request unless a
// test needs keep-alive.

import assert from "node:assert/strict";
import {
  Agent,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request as httpRequest,
  type RequestOptions,
} from "node:http";
import { connect, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { ActivationError, type HttpServer, serve } from "./_lib.ts";
import { launch, type LaunchFd } from "./_launch.ts";
import { fixtureCommand, runtime } from "./_runtime.ts";

// A test waits on events (a request reached the handler, a line printed);
// this only turns a hang into a failure.
const DEADLINE = { timeout: 20_000 };

/** Where a client connects. */
type Target = { port: number } | { socketPath: string };

interface Answer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Ask {
  method?: string;
  path?: string;
  headers?: RequestOptions["headers"];
  body?: string;
  agent?: Agent | false;
}

function targetOf(server: HttpServer): Target {
  const { endpoint } = server;
  if (endpoint.kind === "http") return { port: endpoint.port };
  if (endpoint.kind === "unix") return { socketPath: endpoint.path };
  throw new Error(`Not a bound endpoint: ${JSON.stringify(endpoint)}`);
}

function connection(target: Target): RequestOptions {
  return "port" in target
    ? { host: "127.0.0.1", port: target.port }
    : { socketPath: target.socketPath };
}

function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => body += chunk);
    response.on("end", () => resolve(body));
    response.on("error", reject);
  });
}

/** One request, its whole answer. */
function ask(target: Target, options: Ask = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({
      ...connection(target),
      method: options.method ?? "GET",
      path: options.path ?? "/",
      agent: options.agent ?? false,
      ...(options.headers === undefined ? {} : { headers: options.headers }),
    }, (response) => {
      readAll(response).then((body) =>
        resolve({
          status: response.statusCode!,
          statusText: response.statusMessage!,
          headers: response.headers,
          body,
        }), reject);
    });
    outgoing.on("error", reject);
    outgoing.end(options.body);
  });
}

/** A promise and its resolver, to wait on an event. */
function signal<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "serve-"));
}

/** Echoes the request as JSON. */
async function echo(request: Request): Promise<Response> {
  return Response.json({
    method: request.method,
    url: request.url,
    body: await request.text(),
  });
}

test("serve() answers a request over TCP on port 0", DEADLINE, async () => {
  const server = await serve({ endpoint: "http://127.0.0.1:0" }, echo);
  try {
    assert.equal(server.source, "bound");
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
});

test(
  "serve() answers a request over a unix socket it binds",
  DEADLINE,
  async () => {
    const dir = tempDir();
    const path = join(dir, "web.sock");
    const server = await serve({ endpoint: `unix://${path}` }, echo);
    try {
      assert.deepEqual(server.endpoint, { kind: "unix", path });
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

/** Runs serve_app.ts with `fd` passed as fd 3 named `web`. */
async function activated(fd: LaunchFd, env: Record<string, string> = {}) {
  const launched = await launch({
    argv: fixtureCommand("serve_app"),
    fds: [fd],
    env: {
      LISTEN_PID: "$PID",
      LISTEN_FDS: "1",
      LISTEN_FDNAMES: "web",
      ...env,
    },
  });
  const event = async () => {
    const line = await launched.nextLine().catch((error: Error) => {
      throw new Error(`${error.message}\n${launched.stderr()}`);
    });
    return JSON.parse(line) as Record<string, unknown>;
  };
  /** Sends SIGTERM; the app must print `finished` and exit 0. */
  const terminate = async () => {
    // process.kill(), not child.kill(): Deno's child_process then reports the
    // signal as the exit status even when the process exits 0.
    process.kill(launched.pid, "SIGTERM");
    assert.deepEqual(await event(), { event: "finished" });
    assert.equal(await launched.exited, 0, launched.stderr());
  };
  return { launched, event, terminate };
}

for (const kind of ["unix", "tcp"] as const) {
  test(
    `serve() answers on an activated ${kind} socket (fd://web) and stops on SIGTERM`,
    DEADLINE,
    async () => {
      const dir = tempDir();
      const path = join(dir, "activated.sock");
      try {
        const { launched, event, terminate } = await activated(
          kind === "unix" ? { type: "unix", path } : { type: "tcp" },
        );
        assert.deepEqual(await event(), {
          event: "listening",
          source: "systemd",
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
  "serve() streams the request and response bodies without buffering them",
  DEADLINE,
  async () => {
    const server = await serve(
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
  "serve() passes repeated headers both ways, each Set-Cookie on its own line",
  DEADLINE,
  async () => {
    const server = await serve(
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
      assert.equal(answer.statusText, "Fine Indeed");
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
  "serve() answers 500 for a handler error, or what onError returns",
  DEADLINE,
  async () => {
    const failing = () => {
      throw new Error("handler failed on purpose");
    };
    const server = await serve({
      endpoint: "http://127.0.0.1:0",
      onError: (error) =>
        new Response(`caught: ${(error as Error).message}`, { status: 502 }),
    }, failing);
    const plain = await serve({
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
  "serve() aborts request.signal when the client goes away",
  DEADLINE,
  async () => {
    const reached = signal();
    const aborted = signal();
    const server = await serve(
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

test(
  "serve() shuts down gracefully: in-flight requests finish, then `finished`",
  DEADLINE,
  async () => {
    const controller = new AbortController();
    const reached = signal();
    const release = signal();
    const server = await serve(
      { endpoint: "http://127.0.0.1:0", signal: controller.signal },
      async (request) => {
        if (new URL(request.url).pathname === "/slow") {
          reached.resolve();
          await release.promise;
          return new Response("slow done");
        }
        return new Response("quick");
      },
    );
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
  "serve() answers 503 over the per-uid limit on a unix socket",
  DEADLINE,
  async () => {
    const dir = tempDir();
    const path = join(dir, "limited.sock");
    const limit = 2;
    let inHandler = 0;
    const allIn = signal();
    const release = signal();
    const server = await serve(
      { endpoint: `unix://${path}`, perUidLimit: limit },
      async (request) => {
        if (new URL(request.url).pathname === "/hold") {
          if (++inHandler === limit) allIn.resolve();
          await release.promise;
        }
        return new Response("ok");
      },
    );
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
  "serve() answers 503 over the per-uid limit on an activated unix socket",
  DEADLINE,
  async () => {
    const dir = tempDir();
    const path = join(dir, "activated.sock");
    try {
      const { event, terminate } = await activated(
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
  "serve() refuses the per-uid limit on TCP with UNSUPPORTED",
  DEADLINE,
  async () => {
    await assert.rejects(
      serve({ endpoint: "http://127.0.0.1:0", perUidLimit: true }, echo),
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
  "serve() refuses the per-uid limit on an activated TCP socket with UNSUPPORTED",
  DEADLINE,
  async () => {
    const { launched, event } = await activated({ type: "tcp" }, {
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
  "serve() rejects a bad perUidLimit and an aborted signal before listening",
  DEADLINE,
  async () => {
    for (const perUidLimit of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(
        serve({ endpoint: "http://127.0.0.1:0", perUidLimit }, echo),
        RangeError,
      );
    }
    const reason = new Error("stopped before start");
    await assert.rejects(
      serve({
        endpoint: "http://127.0.0.1:0",
        signal: AbortSignal.abort(reason),
      }, echo),
      (error: unknown) => error === reason,
    );
  },
);
