// The packaging check: packs npm/ as `npm publish` would, then looks at the
// tarball as a user gets it. It checks what is inside (the builds, no tests,
// no Deno code, koffi only behind the Node file) and installs it into a clean
// project to load both entry points and type-check against both.

import ts from "npm:typescript@5.9.3";
import { join } from "node:path";
import {
  BuildError,
  capture,
  listFiles,
  run,
  warn,
  writeFile,
} from "./_util.ts";

const REQUIRED_FILES = [
  "package.json",
  "LICENSE",
  "esm/mod.js",
  "esm/mod.d.ts",
  "script/mod.js",
  "script/mod.d.ts",
  "script/package.json",
];

function isCode(file: string): boolean {
  return /\.[cm]?js$/.test(file) || /\.d\.[cm]?ts$/.test(file);
}

/** What a compiled file's code (not its comments) refers to that it must not. */
function forbiddenReferences(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  // koffi is a native module: only the Node system-call file may load it,
  // so that importing the package loads no native code.
  const mayLoadKoffi = file.endsWith(".node.js");
  const found: string[] = [];
  function visit(node: ts.Node): void {
    if (ts.isIdentifier(node) && node.text === "Deno") {
      found.push(`the Deno global (line ${lineOf(node)})`);
    } else if (
      ts.isStringLiteralLike(node) && /^koffi(\/|$)/.test(node.text) &&
      !mayLoadKoffi
    ) {
      found.push(`koffi (line ${lineOf(node)})`);
    }
    ts.forEachChild(node, visit);
  }
  function lineOf(node: ts.Node): number {
    return source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
  }
  visit(source);
  return found;
}

function checkFileList(files: readonly string[]): void {
  for (const file of REQUIRED_FILES) {
    if (!files.includes(file)) {
      throw new BuildError(`The package lacks ${file}`);
    }
  }
  if (!files.includes("README.md")) warn("The package has no README.md");
  const unwanted = files.filter((file) =>
    /^(test_|node_modules\/|\.stage\/)/.test(file) || file.includes(".deno.")
  );
  if (unwanted.length > 0) {
    throw new BuildError(
      `The package holds files it should not: ${unwanted.join(", ")}`,
    );
  }
}

async function checkContents(packageDir: string): Promise<void> {
  const problems: string[] = [];
  for (const file of await listFiles(packageDir)) {
    const text = await Deno.readTextFile(join(packageDir, file));
    if (isCode(file)) {
      for (const found of forbiddenReferences(file, text)) {
        problems.push(`${file} refers to ${found}`);
      }
    }
    // Not even a comment or the README: the npm package is for Node alone.
    if (text.includes("Deno.")) problems.push(`${file} mentions "Deno."`);
  }
  if (problems.length > 0) {
    throw new BuildError(
      `The package holds code it should not:\n  ${problems.join("\n  ")}`,
    );
  }
}

// The runtime check, in both module systems: the right build is picked, the
// exports are all there, importing loads no native code, and the calls that
// need koffi reach it.
function smokeTest(format: "esm" | "cjs", names: readonly string[]): string {
  const header = format === "esm"
    ? `import assert from "node:assert/strict";
import { createRequire } from "node:module";
import * as lib from "socket-activation";
import { listenFds } from "socket-activation";

const require = createRequire(import.meta.url);
const resolved = import.meta.resolve("socket-activation");
const build = /[\\\\/]esm[\\\\/]mod\\.js$/;
`
    : `"use strict";
const assert = require("node:assert/strict");
const lib = require("socket-activation");
const { listenFds } = require("socket-activation");

const resolved = require.resolve("socket-activation");
const build = /[\\\\/]script[\\\\/]mod\\.js$/;
`;
  return `${header}
assert.match(resolved, build);
assert.deepEqual(Object.keys(lib).sort(), ${JSON.stringify(names)});

// require.cache is the same registry for both module systems.
function koffiLoaded() {
  return Object.keys(require.cache).some((path) =>
    /[\\\\/]node_modules[\\\\/]koffi[\\\\/]/.test(path)
  );
}

for (const name of ["LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS", "LISTEN_FDNAMES"]) {
  delete process.env[name];
}
assert.deepEqual(listenFds(), []);
assert.equal(lib.getSystemdSocket("web"), undefined);
assert.deepEqual(
  lib.parseListenEnv({ LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "a:b" }, 42),
  { count: 2, names: ["a", "b"] },
);
assert.equal(koffiLoaded(), false, "importing the package loaded koffi");

// LISTEN_PIDFDID makes the library read this process's pidfd id, which
// goes through koffi. The id "1" is not ours (a mismatch: no fds) or, on
// kernels without pidfs, not checked (then fd 3 is looked at).
process.env.LISTEN_PID = String(process.pid);
process.env.LISTEN_PIDFDID = "1";
process.env.LISTEN_FDS = "1";
try {
  listenFds({ unsetEnv: true });
} catch (error) {
  assert.ok(error instanceof lib.ActivationError, String(error));
  assert.notEqual(error.code, "FFI_UNAVAILABLE", error.message);
}
assert.equal(koffiLoaded(), true, "koffi was not loaded for LISTEN_PIDFDID");
assert.equal(process.env.LISTEN_PID, undefined);
console.log("${format}: ok");
`;
}

// Type-checked in both resolution modes: .mts picks the "import" types,
// .cts the "require" ones. The @ts-expect-error lines fail if the
// declarations degrade to `any`.
const TYPES_CHECK = `import {
  ActivationError,
  type ActivationErrorCode,
  getSystemdSocket,
  type ListenFd,
  listenFds,
  parseListenEnv,
  SD_LISTEN_FDS_START,
} from "socket-activation";

const fds: readonly ListenFd[] = listenFds({ unsetEnv: true });
const fd: number | undefined = getSystemdSocket("web", { unsetEnv: false });
const count: number = parseListenEnv({ LISTEN_PID: "1" }, 1).count;
const code: ActivationErrorCode = new ActivationError("NAME_NOT_FOUND", "x").code;
const start: number = SD_LISTEN_FDS_START;
// @ts-expect-error: unsetEnv is a boolean
listenFds({ unsetEnv: "yes" });
// @ts-expect-error: not a code
const wrong: ActivationErrorCode = "NOPE";
export { code, count, fd, fds, start, wrong };
`;

async function checkConsumer(
  tarball: string,
  consumerDir: string,
  tsc: string,
  names: readonly string[],
  typesNode: string,
): Promise<void> {
  await writeFile(
    join(consumerDir, "package.json"),
    JSON.stringify({ name: "consumer", private: true }, null, 2),
  );
  // A TypeScript project on Node has Node's types: the API hands out
  // node:net and node:http servers and sockets.
  await run("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--prefer-offline",
    tarball,
    `@types/node@${typesNode}`,
  ], { cwd: consumerDir });
  await writeFile(join(consumerDir, "smoke.mjs"), smokeTest("esm", names));
  await writeFile(join(consumerDir, "smoke.cjs"), smokeTest("cjs", names));
  await run("node", ["smoke.mjs"], { cwd: consumerDir });
  await run("node", ["smoke.cjs"], { cwd: consumerDir });
  await writeFile(join(consumerDir, "types.mts"), TYPES_CHECK);
  await writeFile(join(consumerDir, "types.cts"), TYPES_CHECK);
  await run("node", [
    tsc,
    "--noEmit",
    "--strict",
    "--exactOptionalPropertyTypes",
    "--target",
    "es2022",
    "--module",
    "node16",
    "--moduleResolution",
    "node16",
    "types.mts",
    "types.cts",
  ], { cwd: consumerDir });
  console.log("types: ok");
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}

/**
 * Packs `npmDir`, checks the tarball's files and contents, then installs it
 * in a clean temporary project and loads and type-checks both entry points.
 *
 * @param npmDir The built package folder.
 * @param names The runtime exports the package must have, sorted.
 */
export async function packCheck(
  npmDir: string,
  names: readonly string[],
): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "socket-activation-pack-" });
  try {
    const [packed] = JSON.parse(
      await capture("npm", ["pack", "--json", "--pack-destination", tmp], {
        cwd: npmDir,
      }),
    ) as PackResult[];
    if (packed === undefined) throw new BuildError("npm pack packed nothing");
    const tarball = join(tmp, packed.filename);
    console.log(`packed ${packed.files.length} files into ${packed.filename}`);
    checkFileList(packed.files.map((file) => file.path));

    const extracted = join(tmp, "extracted");
    await Deno.mkdir(extracted);
    await run("tar", ["-xzf", tarball, "-C", extracted]);
    await checkContents(join(extracted, "package"));
    console.log("contents: ok");

    const tsc = join(npmDir, "node_modules", "typescript", "bin", "tsc");
    const { devDependencies } = JSON.parse(
      await Deno.readTextFile(join(npmDir, "package.json")),
    ) as { devDependencies: Record<string, string> };
    await checkConsumer(
      tarball,
      join(tmp, "consumer"),
      tsc,
      names,
      devDependencies["@types/node"]!,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
