// 5 MB bodies through serve(), both ways, on a passed unix socket and a
// passed TCP socket: they arrive intact (SHA-256 on both sides), and the
// server's live memory (measured inside it, after collecting garbage: see
// tests/fixtures/serve_memory.ts) stays far below the body's size. A server
// that held a body whole would hold at least 5 MB at some point; one that
// streams with backpressure holds a few chunks and its buffers.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { type IncomingMessage, request as httpRequest } from "node:http";
import { join } from "node:path";
import { test } from "node:test";
import { CHUNK, chunkOf } from "./_bulk.ts";
import {
  ask,
  connection,
  DEADLINE,
  MODES,
  startFixture,
  type Target,
  tempDir,
} from "./_serve.ts";

const SIZE = 5 * 1024 * 1024;
const CHUNKS = SIZE / CHUNK;

// The bound on the server's live memory above its level when the request
// came: well below the 5 MB that a server holding the body would add, and
// well above what streaming holds (a few 64 KiB chunks and the buffers of
// node:http and the socket).
const MEMORY_BOUND = 2 * 1024 * 1024;

// Over a unix socket, the kernel holds at most the sender's send buffer
// (about 200 KiB), so while the client reads nothing, a server that waits
// for `drain` produces little more than that; one that does not, the whole
// body. Over TCP on loopback the kernel's buffers can hold megabytes, so
// this is checked on unix sockets only.
const PRODUCED_BOUND = 1536 * 1024;

function expectedDigest(): string {
  const hash = createHash("sha256");
  for (let index = 0; index < CHUNKS; index++) hash.update(chunkOf(index));
  return hash.digest("hex");
}

/** POSTs the 5 MB body to /upload, chunk by chunk, waiting for `drain`. */
function upload(target: Target): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({
      ...connection(target),
      method: "POST",
      path: "/upload",
      agent: false,
      headers: { "content-length": String(SIZE) },
    }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => text += chunk);
      response.on("end", () => resolve(JSON.parse(text)));
      response.on("error", reject);
    });
    outgoing.on("error", reject);
    let index = 0;
    function write(): void {
      while (index < CHUNKS) {
        if (!outgoing.write(chunkOf(index++))) {
          outgoing.once("drain", write);
          return;
        }
      }
      outgoing.end();
    }
    write();
  });
}

/** Reads a response to its end, hashing it; resolves with digest and size. */
function digestOf(
  response: IncomingMessage,
): Promise<{ digest: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    let bytes = 0;
    response.on("data", (chunk: Uint8Array) => {
      hash.update(chunk);
      bytes += chunk.byteLength;
    });
    response.on("end", () => resolve({ digest: hash.digest("hex"), bytes }));
    response.on("error", reject);
    response.resume();
  });
}

for (const mode of MODES) {
  for (const kind of ["unix", "tcp"] as const) {
    test(
      `serve() moves 5 MB bodies both ways intact, in bounded memory, on ${kind}${mode.label}`,
      DEADLINE,
      async () => {
        const dir = tempDir();
        const path = join(dir, "memory.sock");
        const { launched, event, terminate } = await startFixture({
          name: "serve_memory",
          fd: kind === "unix" ? { type: "unix", path } : { type: "tcp" },
          mode,
          v8Flags: ["--expose-gc"],
        });
        try {
          assert.equal((await event()).event, "listening");
          const target: Target = kind === "unix"
            ? { socketPath: path }
            : { port: launched.fds[0]!.port! };
          const digest = expectedDigest();

          const uploaded = await upload(target);
          assert.equal(uploaded.bytes, SIZE);
          assert.equal(uploaded.digest, digest);
          assert.ok(
            (uploaded.peak as number) < MEMORY_BOUND,
            `upload: ${uploaded.peak} bytes live above the start`,
          );

          const response = await new Promise<IncomingMessage>(
            (resolve, reject) => {
              const outgoing = httpRequest({
                ...connection(target),
                path: `/download?bytes=${SIZE}`,
                agent: false,
              }, resolve);
              outgoing.on("error", reject);
              outgoing.end();
            },
          );
          assert.equal(response.statusCode, 200);
          // The client reads nothing yet: the server must wait for it.
          response.pause();
          const { produced } = JSON.parse(
            (await ask(target, { path: "/produced" })).body,
          );
          if (kind === "unix") {
            assert.ok(
              produced < PRODUCED_BOUND,
              `download: ${produced} bytes produced while the client read none`,
            );
          }
          const downloaded = await digestOf(response);
          assert.equal(downloaded.bytes, SIZE);
          assert.equal(downloaded.digest, digest);
          const stats = JSON.parse(
            (await ask(target, { path: "/stats" })).body,
          );
          assert.ok(
            stats.peak < MEMORY_BOUND,
            `download: ${stats.peak} bytes live above the start`,
          );
          await terminate();
        } finally {
          launched.child.kill("SIGKILL");
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  }
}
