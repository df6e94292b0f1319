// Deno's permissions: binding without --allow-net must fail as an error the
// caller can catch (Deno's node:net throws it from a tick of its own for TCP).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fixtureCommand } from "./_runtime.ts";

function run(uri: string, denoFlags: string[]): unknown {
  const [program, ...args] = fixtureCommand("listen_no_net", { denoFlags });
  const result = spawnSync(program, [...args, uri], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

test("listen() on TCP without --allow-net fails with LISTEN_FAILED naming the flag", () => {
  assert.deepEqual(run("http://127.0.0.1:0", ["--allow-env"]), {
    error: {
      code: "LISTEN_FAILED",
      message:
        "Cannot listen on http://127.0.0.1:0: run Deno with --allow-net to bind 127.0.0.1:0",
    },
  });
});

test("listen() on a unix socket without --allow-net fails with LISTEN_FAILED naming the flag", () => {
  const dir = mkdtempSync(join(tmpdir(), "listen-deno-"));
  try {
    const result = run(`unix://${dir}/app.sock`, [
      "--allow-env",
      "--allow-read",
      "--allow-write",
    ]) as { error: { code: string; message: string } };
    assert.equal(result.error.code, "LISTEN_FAILED");
    assert.match(result.error.message, /--allow-net/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("listen() on TCP with --allow-net binds (the control)", () => {
  const result = run("http://127.0.0.1:0", ["--allow-env", "--allow-net"]) as {
    address: { port: number };
  };
  assert.ok(result.address.port > 0);
});

test("listen() of a unix path too long for its temporary name needs --allow-all, and says why", () => {
  const dir = mkdtempSync(join(tmpdir(), "listen-deno-"));
  try {
    // 107 bytes: the temporary ".app.sock-XXXXXX/s" beside it would not fit
    // in sun_path, so it is bound through /proc/self/fd, which Deno allows
    // with --allow-all only.
    const folder = join(dir, "d".repeat(107 - dir.length - 1 - 9));
    mkdirSync(folder);
    const path = join(folder, "app.sock");
    assert.equal(path.length, 107);
    const flags = [
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-net",
    ];
    const refused = run(`unix://${path}`, flags) as {
      error: { code: string; message: string };
    };
    assert.equal(refused.error.code, "LISTEN_FAILED");
    assert.match(
      refused.error.message,
      /through \/proc\/self\/fd\/[0-9]+\/s \(its path is too long for sun_path\): .*--allow-all/,
    );
    assert.deepEqual(readdirSync(folder), []);
    const bound = run(`unix://${path}`, ["--allow-all"]) as {
      address: string;
    };
    assert.match(bound.address, /^\/proc\/self\/fd\/[0-9]+\/s$/);
    assert.deepEqual(readdirSync(folder), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
