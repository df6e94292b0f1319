/**
 * Builds the npm package `socket-activation` into `npm/`, doing with npm's
 * tools what dnt does: stages the sources with the `.deno.ts` files swapped
 * for the `.node.ts` ones, compiles ESM and CommonJS builds with
 * declarations, writes package.json, runs the tests on Node against both
 * builds, then packs the package and checks it from a clean project.
 *
 * ```sh
 * deno run -A scripts/build/build_npm.ts            # build, test, pack check
 * deno run -A scripts/build/build_npm.ts --no-test  # skip the Node test runs
 * deno run -A scripts/build/build_npm.ts --no-pack  # skip the packaging check
 * deno run -A scripts/build/build_npm.ts --quick    # reuse npm/node_modules
 * ```
 *
 * @module
 */

import ts from "npm:typescript@5.9.3";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { commonJsTestLib, compileLibrary, compileTests } from "./_compile.ts";
import { type NpmDependencies, npmDependencies } from "./_deps.ts";
import { packCheck } from "./_pack_check.ts";
import { stageSources } from "./_stage.ts";
import {
  BuildError,
  copyDir,
  exists,
  listFiles,
  LOCK_FILE,
  lockDir,
  ROOT,
  run,
  step,
  warn,
  writeFile,
} from "./_util.ts";

const USAGE = `Usage: deno run -A scripts/build/build_npm.ts [options]

  --no-test   build and pack-check, but do not run the tests on Node
  --no-pack   do not pack and smoke-test the package
  --quick     keep npm/node_modules and skip npm install when the
              dependencies did not change
  --help      show this help`;

const NPM_DIR = join(ROOT, "npm");
const NODE_MODULES = join(NPM_DIR, "node_modules");
const STAGE_DIR = join(NPM_DIR, ".stage");
const REPOSITORY = "github.com/socket-activation/socket-activation";

// The npm packages the sources import (smol-toml, fast-check) get their
// versions from deno.json "imports" (scripts/build/_deps.ts). These are the
// ones no source imports by name. koffi, for the system calls on Node: it is
// loaded with createRequire() in src/_sys.node.ts only, and it is not in
// deno.json, since the JSR package must not depend on a Node addon. The build
// needs typescript (the consumer type check) and Node's types.
const FIXED_DEPENDENCIES = { koffi: "^3.3.4" };
// @types/eslint: the declarations of toml-eslint-parser (the config's error
// positions) import eslint's types for an entry point this library never
// calls; compiling the library checks them. The published declarations never
// name the parser, so users need nothing of it.
const FIXED_DEV_DEPENDENCIES = {
  "@types/eslint": "^9.6.1",
  "@types/node": "^20.19.0",
  typescript: "5.9.3",
};

interface Flags {
  readonly test: boolean;
  readonly pack: boolean;
  readonly quick: boolean;
}

function parseFlags(args: readonly string[]): Flags {
  const known = ["--no-test", "--no-pack", "--quick", "--help"];
  const unknown = args.filter((arg) => !known.includes(arg));
  if (args.includes("--help") || unknown.length > 0) {
    if (unknown.length > 0) console.error(`Unknown option: ${unknown[0]}`);
    console.log(USAGE);
    Deno.exit(unknown.length > 0 ? 2 : 0);
  }
  return {
    test: !args.includes("--no-test"),
    pack: !args.includes("--no-pack"),
    quick: args.includes("--quick"),
  };
}

/** The version from deno.json, its single source. */
async function readVersion(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  if (typeof config.version !== "string") {
    throw new BuildError("deno.json has no version");
  }
  return config.version;
}

/** The runtime exports of mod.ts, sorted (importing it has no side effects). */
async function libraryExports(): Promise<string[]> {
  const mod = await import(pathToFileURL(join(ROOT, "mod.ts")).href);
  return Object.keys(mod).sort();
}

function packageJson(
  version: string,
  deps: NpmDependencies,
): Record<string, unknown> {
  return {
    name: "socket-activation",
    version,
    description:
      "Systemd socket activation for Node and Deno: sd_listen_fds() with libsystemd's exact parsing of LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES",
    keywords: [
      "systemd",
      "socket-activation",
      "sd_listen_fds",
      "listen-fds",
      "LISTEN_FDS",
      "socket",
      "server",
      "deno",
    ],
    homepage: `https://${REPOSITORY}#readme`,
    bugs: { url: `https://${REPOSITORY}/issues` },
    repository: { type: "git", url: `git+https://${REPOSITORY}.git` },
    license: "MIT",
    type: "module",
    main: "./script/mod.js",
    module: "./esm/mod.js",
    types: "./esm/mod.d.ts",
    exports: {
      ".": {
        import: { types: "./esm/mod.d.ts", default: "./esm/mod.js" },
        require: { types: "./script/mod.d.ts", default: "./script/mod.js" },
      },
    },
    bin: { "socket-activate": "./esm/src/cli.js" },
    files: ["esm/", "script/", "README.md", "LICENSE"],
    engines: { node: ">=20.19" },
    os: ["linux"],
    dependencies: deps.dependencies,
    devDependencies: deps.devDependencies,
  };
}

/**
 * Empties npm/. With `--quick`, node_modules survives when the dependencies
 * are those already installed; returns whether `npm install` must run.
 */
async function emptyNpmDir(
  quick: boolean,
  deps: NpmDependencies,
): Promise<boolean> {
  let reuse = false;
  if (quick && await exists(NODE_MODULES)) {
    try {
      const old = JSON.parse(
        await Deno.readTextFile(join(NPM_DIR, "package.json")),
      );
      reuse = JSON.stringify([old.dependencies, old.devDependencies]) ===
        JSON.stringify([deps.dependencies, deps.devDependencies]);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  const keep = [
    LOCK_FILE,
    ...reuse ? ["node_modules", "package-lock.json"] : [],
  ];
  for await (const entry of Deno.readDir(NPM_DIR)) {
    if (keep.includes(entry.name)) continue;
    await Deno.remove(join(NPM_DIR, entry.name), { recursive: true });
  }
  return !reuse;
}

async function writePackage(
  version: string,
  deps: NpmDependencies,
): Promise<void> {
  await writeFile(
    join(NPM_DIR, "package.json"),
    JSON.stringify(packageJson(version, deps), null, 2) + "\n",
  );
  await Deno.copyFile(join(ROOT, "LICENSE"), join(NPM_DIR, "LICENSE"));
  if (await exists(join(ROOT, "README.md"))) {
    await Deno.copyFile(join(ROOT, "README.md"), join(NPM_DIR, "README.md"));
  } else {
    warn("README.md does not exist yet: the package goes without one");
  }
}

async function buildLibrary(): Promise<void> {
  step("Compiling the ESM build to npm/esm/");
  await compileLibrary(STAGE_DIR, join(NPM_DIR, "esm"), "esm", NODE_MODULES);
  step("Compiling the CommonJS build to npm/script/");
  await compileLibrary(STAGE_DIR, join(NPM_DIR, "script"), "cjs", NODE_MODULES);
  // npm/package.json says "module"; this folder's files are CommonJS.
  await writeFile(
    join(NPM_DIR, "script", "package.json"),
    JSON.stringify({ type: "commonjs" }, null, 2) + "\n",
  );
}

/**
 * The `socket-activate` bin: src/cli.ts as an executable ESM script. It
 * imports only modules of the library, which buildLibrary() compiled; only
 * the entry itself is not reachable from mod.ts.
 */
async function buildCli(): Promise<void> {
  step("Compiling the socket-activate bin to npm/esm/src/cli.js");
  const source = await Deno.readTextFile(join(STAGE_DIR, "src", "cli.ts"));
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      rewriteRelativeImportExtensions: true,
    },
  });
  const path = join(NPM_DIR, "esm", "src", "cli.js");
  await writeFile(path, `#!/usr/bin/env node\n${outputText}`);
  await Deno.chmod(path, 0o755);
}

/**
 * Compiles the tests once to npm/test_esm/, then copies them to
 * npm/test_cjs/ with a `_lib.js` that loads the CommonJS build instead.
 */
async function buildTests(
  testSources: readonly string[],
  testAssets: readonly string[],
  names: readonly string[],
): Promise<void> {
  step("Compiling the tests to npm/test_esm/ and npm/test_cjs/");
  const testEsm = join(NPM_DIR, "test_esm");
  const testCjs = join(NPM_DIR, "test_cjs");
  compileTests(STAGE_DIR, testSources, testEsm, NODE_MODULES);
  for (const asset of testAssets) {
    await writeFile(
      join(testEsm, asset),
      await Deno.readTextFile(join(ROOT, "tests", asset)),
    );
  }
  await copyDir(testEsm, testCjs);
  await writeFile(join(testCjs, "_lib.js"), commonJsTestLib(names));
}

/** What a `node --test` run counted. */
interface TestCounts {
  passed: number;
  failed: number;
  skipped: number;
}

// The summary node's TAP reporter ends with: "# pass 297", "# fail 0", …
function countsFromTap(tap: string): TestCounts {
  const count = (name: string) =>
    Number(new RegExp(`^# ${name} (\\d+)$`, "m").exec(tap)?.[1] ?? 0);
  return {
    passed: count("pass"),
    failed: count("fail"),
    skipped: count("skipped"),
  };
}

/**
 * Runs the `*_test.js` files of a folder with `node --test`, showing the
 * spec report and counting from a TAP report written beside it.
 */
async function runNodeTests(dir: string): Promise<TestCounts> {
  // Node 20 does not search a folder given to --test, so list the files.
  const files = (await listFiles(dir)).filter((file) =>
    file.endsWith("_test.js")
  );
  const where = relative(ROOT, dir);
  if (files.length === 0) {
    warn(`No *_test.js files in ${where}`);
    return { passed: 0, failed: 0, skipped: 0 };
  }
  step(`Running ${files.length} test file(s) on Node in ${where}/`);
  const tapFile = join(dir, "results.tap");
  try {
    await run("node", [
      "--test",
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      "--test-reporter=tap",
      `--test-reporter-destination=${tapFile}`,
      ...files,
    ], { cwd: dir });
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    console.error(error.message);
  }
  const counts = countsFromTap(
    await Deno.readTextFile(tapFile).catch(() => ""),
  );
  // A run that crashed before its summary must not pass for a clean one.
  if (counts.passed + counts.failed === 0) counts.failed = 1;
  return counts;
}

async function main(): Promise<void> {
  const flags = parseFlags(Deno.args);
  const started = performance.now();
  Deno.chdir(ROOT);
  const version = await readVersion();
  const names = await libraryExports();
  const deps = await npmDependencies(
    FIXED_DEPENDENCIES,
    FIXED_DEV_DEPENDENCIES,
  );

  step(`Building socket-activation ${version} in npm/`);
  using _lock = await lockDir(NPM_DIR);
  const mustInstall = await emptyNpmDir(flags.quick, deps);
  // package.json first: the install reads it, and the compiler takes
  // "type": "module" and the "exports" of the self-reference from it.
  await writePackage(version, deps);
  if (mustInstall) {
    step("Installing the dependencies in npm/");
    await run("npm", ["install", "--no-audit", "--no-fund"], { cwd: NPM_DIR });
  }

  step("Staging the sources for Node in npm/.stage/");
  const { testSources, testAssets } = await stageSources(STAGE_DIR);
  await buildLibrary();
  await buildCli();
  await buildTests(testSources, testAssets, names);

  let counts: TestCounts | undefined;
  if (flags.test) {
    // Both runs, even when the first fails: which build fails tells a lot.
    const esm = await runNodeTests(join(NPM_DIR, "test_esm"));
    const cjs = await runNodeTests(join(NPM_DIR, "test_cjs"));
    counts = {
      passed: esm.passed + cjs.passed,
      failed: esm.failed + cjs.failed,
      skipped: esm.skipped + cjs.skipped,
    };
  }
  if (flags.pack) {
    step("Packing npm/ and checking the tarball from a clean project");
    await packCheck(NPM_DIR, names);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  step(`Done in ${seconds} s: npm/ holds socket-activation ${version}`);
  if (counts !== undefined) {
    // The closing line CI reads: both Node runs (ESM and CommonJS) together.
    console.log(
      `node: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`,
    );
    if (counts.failed > 0) throw new BuildError("The tests failed on Node");
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    console.error(`%cerror:%c ${error.message}`, "color: red", "");
    Deno.exit(1);
  }
}
