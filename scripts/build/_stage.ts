// Staging: copies the sources the Node build compiles into one folder, with
// the runtime split resolved for Node. The per-runtime files follow dax's
// convention: `x.deno.ts` and `x.node.ts` implement the same interface, the
// sources import the Deno one, and the Node build imports the Node one
// instead. Only import specifiers change, and ".deno" and ".node" have the
// same length, so compiler messages about staged files point at the same
// line and column as in the repository.

import ts from "npm:typescript@5.9.3";
import { dirname, join, relative, sep } from "node:path";
import { BuildError, exists, listFiles, ROOT, writeFile } from "./_util.ts";

/** What {@linkcode stageSources} put where. */
export interface StagedSources {
  /** The staging folder, laid out as the repository (`mod.ts`, `src/`, `tests/`). */
  readonly dir: string;
  /** The staged test sources, relative to `<dir>/tests`. */
  readonly testSources: readonly string[];
  /** The other files under `tests/` (fixture data), relative to it. */
  readonly testAssets: readonly string[];
}

// What the staged tests/_lib.ts becomes: the package by its own name, so the
// tests exercise the built package (and its declarations), not the sources.
const TEST_LIB = `export * from "socket-activation";\n`;

function isDenoOnly(path: string): boolean {
  return /\.deno\.[cm]?ts$/.test(path) || /_deno_test\.[cm]?ts$/.test(path);
}

function isTypeScript(path: string): boolean {
  return /\.[cm]?ts$/.test(path) && !/\.d\.[cm]?ts$/.test(path);
}

function isRelative(specifier: string): boolean {
  return specifier.startsWith("./") || specifier.startsWith("../");
}

/** The string literals of a module's import and export specifiers. */
export function moduleSpecifiers(
  path: string,
  text: string,
): ts.StringLiteralLike[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const found: ts.StringLiteralLike[] = [];
  function add(node: ts.Node | undefined): void {
    if (node !== undefined && ts.isStringLiteralLike(node)) found.push(node);
  }
  function visit(node: ts.Node): void {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword
    ) {
      add(node.arguments[0]); // import("./x.deno.ts")
    } else if (ts.isImportTypeNode(node)) {
      const argument = node.argument;
      if (ts.isLiteralTypeNode(argument)) add(argument.literal); // import("./x").T
    }
    ts.forEachChild(node, visit);
  }
  visit(source);
  return found;
}

/** Rewrites every relative `*.deno.ts` specifier of a module to `*.node.ts`. */
export function useNodeFiles(path: string, text: string): string {
  let result = text;
  // From the end, so the earlier offsets stay valid.
  for (const literal of moduleSpecifiers(path, text).reverse()) {
    const specifier = literal.text;
    if (!isRelative(specifier) || !specifier.endsWith(".deno.ts")) continue;
    const replacement = specifier.replace(/\.deno\.ts$/, ".node.ts");
    // getStart() is the opening quote; keep the quotes as written.
    const start = literal.getStart() + 1;
    result = result.slice(0, start) + replacement +
      result.slice(literal.getEnd() - 1);
  }
  return result;
}

async function checkNodeCounterparts(
  dir: string,
  file: string,
  text: string,
): Promise<void> {
  for (const literal of moduleSpecifiers(file, text)) {
    const specifier = literal.text;
    if (!isRelative(specifier) || !specifier.endsWith(".node.ts")) continue;
    const target = join(dirname(join(dir, file)), specifier);
    if (!await exists(target)) {
      throw new BuildError(
        `${file} imports ${specifier.replace(/\.node\.ts$/, ".deno.ts")}, but ${
          relative(dir, target)
        } does not exist for the Node build`,
      );
    }
  }
}

// The tests must reach the library through tests/_lib.ts only: that is the
// module the build swaps for the package, so a direct import of ../src/x.ts
// would test the sources instead of the package (and break rootDir).
function checkTestImports(file: string, text: string): void {
  for (const literal of moduleSpecifiers(file, text)) {
    const specifier = literal.text;
    if (!isRelative(specifier)) continue;
    const target = join("tests", dirname(file), specifier);
    if (!target.startsWith(`tests${sep}`)) {
      throw new BuildError(
        `tests/${file} imports ${specifier}: tests reach the library only through tests/_lib.ts, which the npm build replaces with the package`,
      );
    }
  }
}

async function checkTestLib(): Promise<void> {
  const path = join(ROOT, "tests", "_lib.ts");
  if (!await exists(path)) return;
  const text = await Deno.readTextFile(path);
  const specifiers = moduleSpecifiers(path, text).map((literal) =>
    literal.text
  );
  if (specifiers.length !== 1 || specifiers[0] !== "../mod.ts") {
    throw new BuildError(
      `tests/_lib.ts must only re-export ../mod.ts (the npm build replaces it with the package), but it imports ${
        JSON.stringify(specifiers)
      }`,
    );
  }
}

/** The repository files the Node build compiles, relative to the root. */
async function sourceFiles(): Promise<string[]> {
  const files = ["mod.ts"];
  for (const folder of ["src", "tests"]) {
    for (const file of await listFiles(join(ROOT, folder))) {
      files.push(join(folder, file));
    }
  }
  return files;
}

/**
 * Copies `mod.ts`, `src/` and `tests/` into `dir` for the Node build: without
 * the Deno-only files, with `.deno.ts` imports pointing at the `.node.ts`
 * files, and with `tests/_lib.ts` importing the package by name.
 */
export async function stageSources(dir: string): Promise<StagedSources> {
  await checkTestLib();
  const testSources: string[] = [];
  const testAssets: string[] = [];
  for (const file of await sourceFiles()) {
    if (isDenoOnly(file)) continue;
    const isTest = file.startsWith(`tests${sep}`);
    const inTests = isTest ? relative("tests", file) : file;
    if (!isTypeScript(file)) {
      if (isTest) testAssets.push(inTests);
      continue;
    }
    if (isTest && inTests === "_lib.ts") continue;
    const text = useNodeFiles(
      file,
      await Deno.readTextFile(join(ROOT, file)),
    );
    if (isTest) {
      checkTestImports(inTests, text);
      testSources.push(inTests);
    }
    await writeFile(join(dir, file), text);
  }
  // Checked once all files are staged, so the check sees the staged tree.
  for (const file of await listFiles(dir)) {
    await checkNodeCounterparts(
      dir,
      file,
      await Deno.readTextFile(join(dir, file)),
    );
  }
  await writeFile(join(dir, "tests", "_lib.ts"), TEST_LIB);
  testSources.push("_lib.ts");
  return { dir, testSources, testAssets };
}
