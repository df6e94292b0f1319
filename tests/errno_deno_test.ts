// The errno table behind every message that names an errno: checked against
// the system's own headers (the names and numbers) and glibc's strerror()
// (the descriptions, read through Python's os.strerror), so that no errno a
// system call can return is left as a bare number. On Deno only: the table
// is private (the npm build lets tests reach the package's exports only)
// and is the same data on both runtimes; the messages that use it are
// tested on both (notify_test.ts, notify_differential_test.ts).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { test } from "node:test";
import * as errno from "../src/_errno.ts";
import { describeErrno, errnoNumber } from "../src/_errno.ts";
import { PYTHON } from "./_launch.ts";

const HEADERS = [
  "/usr/include/asm-generic/errno-base.h",
  "/usr/include/asm-generic/errno.h",
];

/** Every `#define EXXX <number or name>` of the headers, in order. */
function definitions(): [string, string][] {
  return HEADERS.flatMap((path) =>
    [...readFileSync(path, "utf8").matchAll(/^#define\s+(E\w+)\s+(\w+)/gm)]
      .map((match) => [match[1]!, match[2]!] as [string, string])
  );
}

test("describeErrno() names every errno of the Linux headers with glibc's description", (t) => {
  if (!HEADERS.every(existsSync)) {
    t.skip("the Linux headers are not installed");
    return;
  }
  const numbered = definitions().filter(([, value]) => /^\d+$/.test(value));
  assert.ok(numbered.length >= 130, `only ${numbered.length} errnos`);
  const numbers = numbered.map(([, value]) => Number(value));
  const descriptions = JSON.parse(
    execFileSync(PYTHON, [
      "-c",
      "import json, os, sys; print(json.dumps([os.strerror(int(n)) for n in sys.argv[1:]]))",
      ...numbers.map(String),
    ], { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } }),
  ) as string[];
  numbered.forEach(([name, value], index) => {
    const text = descriptions[index]!;
    // A small first letter, except where the text starts with an acronym.
    const expected = /^[A-Z][a-z]/.test(text)
      ? text[0]!.toLowerCase() + text.slice(1)
      : text;
    assert.equal(describeErrno(Number(value)), `${name} (${expected})`);
    assert.equal(errnoNumber(name), Number(value), name);
  });
});

test("errnoNumber() knows the aliases, and describeErrno() gives the first name", (t) => {
  if (!HEADERS.every(existsSync)) {
    t.skip("the Linux headers are not installed");
    return;
  }
  const aliases = definitions().filter(([, value]) => /^E/.test(value));
  assert.ok(aliases.length >= 2);
  for (const [alias, target] of aliases) {
    assert.equal(errnoNumber(alias), errnoNumber(target), alias);
  }
  // glibc's own alias, not in the kernel's headers.
  assert.equal(errnoNumber("ENOTSUP"), errnoNumber("EOPNOTSUPP"));
  assert.equal(describeErrno(11), "EAGAIN (resource temporarily unavailable)");
});

test("describeErrno() names EMSGSIZE, and says a number is unknown rather than guess", () => {
  assert.equal(describeErrno(90), "EMSGSIZE (message too long)");
  assert.equal(describeErrno(0), "errno 0 (unknown)");
  assert.equal(describeErrno(4096), "errno 4096 (unknown)");
  assert.equal(errnoNumber("EXYZ"), undefined);
  assert.equal(errnoNumber("toString"), undefined);
});

test("the errno constants the library uses are the table's numbers", () => {
  const constants = Object.entries(errno).filter(([name]) =>
    /^E[A-Z0-9]+$/.test(name)
  );
  assert.ok(constants.length >= 10, `only ${constants.length} constants`);
  for (const [name, value] of constants) {
    assert.equal(value, errnoNumber(name), name);
  }
});
