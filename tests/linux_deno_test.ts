// The Linux numbers of src/_linux.ts against the system's own headers: a C
// program built with the machine's compiler prints what the headers say for
// every name, and each must equal ours. On Deno only, as errno_deno_test.ts:
// the table is private and the same data on both runtimes.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import * as linux from "../src/_linux.ts";

// What C says for the names that are not a macro of the same name.
const EXPRESSIONS: Readonly<Record<string, string>> = {
  SUN_PATH_SIZE: "sizeof(((struct sockaddr_un *)0)->sun_path)",
  SUN_PATH_MAX: "sizeof(((struct sockaddr_un *)0)->sun_path) - 1",
  POLLFD_SIZE: "sizeof(struct pollfd)",
  SYS_PIDFD_OPEN: "SYS_pidfd_open",
};
// The kernel's own limit, in include/net/scm.h, which no userspace header
// has; notify_test.ts sends 253 fds in one message and sees 254 refused.
const KERNEL_ONLY = new Set(["SCM_MAX_FD"]);

const HEADERS = [
  "fcntl.h",
  "poll.h",
  "signal.h",
  "spawn.h",
  "stdio.h",
  "sys/socket.h",
  "sys/stat.h",
  "sys/syscall.h",
  "sys/un.h",
  "sys/wait.h",
  "time.h",
];

function compilerAvailable(): boolean {
  try {
    execFileSync("cc", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test("every number of _linux.ts is what the system's headers say", (t) => {
  if (!compilerAvailable()) {
    t.skip("no C compiler (cc) on this machine");
    return;
  }
  const names = Object.keys(linux).filter((name) => !KERNEL_ONLY.has(name));
  assert.ok(names.length >= 50, `only ${names.length} names`);
  const program = [
    "#define _GNU_SOURCE",
    ...HEADERS.map((header) => `#include <${header}>`),
    "int main(void) {",
    ...names.map((name) =>
      `  printf("%s %lld\\n", "${name}", (long long)(${
        EXPRESSIONS[name] ?? name
      }));`
    ),
    "  return 0;",
    "}",
  ].join("\n");
  const folder = mkdtempSync(join(tmpdir(), "linux-numbers-"));
  try {
    writeFileSync(join(folder, "numbers.c"), program);
    execFileSync("cc", [
      "-o",
      join(folder, "numbers"),
      join(folder, "numbers.c"),
    ]);
    const output = execFileSync(join(folder, "numbers"), {
      encoding: "utf8",
    });
    const actual = Object.fromEntries(
      output.trim().split("\n").map((line) => {
        const [name, value] = line.split(" ");
        return [name!, Number(value)];
      }),
    );
    const ours = Object.fromEntries(
      names.map((name) => [name, linux[name as keyof typeof linux]]),
    );
    assert.deepEqual(ours, actual);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
