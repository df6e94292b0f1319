// Compiling the staged sources with the TypeScript compiler API, as dnt does
// it: ESM and CommonJS builds of the library with declarations, and the
// tests as ESM. Type errors fail the build.

import ts from "npm:typescript@5.9.3";
import { join, relative } from "node:path";
import { moduleSpecifiers } from "./_stage.ts";
import { BuildError, listFiles, ROOT } from "./_util.ts";

/** The output format of the library. */
export type Format = "esm" | "cjs";

// The strict options of deno.json, which Deno checks the sources with, plus
// what a Node build needs: Node's types only (no DOM), and `./x.ts`
// specifiers emitted as `./x.js` (TS 5.7+).
function baseOptions(nodeModules: string): ts.CompilerOptions {
  return {
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2022.d.ts"],
    types: ["node"],
    typeRoots: [join(nodeModules, "@types")],
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    // Deno compiles each file on its own too; keep the sources honest.
    isolatedModules: true,
    forceConsistentCasingInFileNames: true,
    skipLibCheck: false,
    newLine: ts.NewLineKind.LineFeed,
  };
}

// Node16 decides ESM or CommonJS per file from the nearest package.json,
// which for the staging folder is npm/package.json ("type": "module"); it is
// also what Node itself does, so the check matches how the files will load.
// The CommonJS build uses the classic resolution, which needs no
// package.json and lets `import process from "node:process"` work through
// esModuleInterop.
function formatOptions(format: Format): ts.CompilerOptions {
  return format === "esm"
    ? {
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
    }
    : {
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      esModuleInterop: true,
    };
}

// TS1343: "The 'import.meta' meta-property is only allowed when the
// '--module' option is …", reported for the CommonJS build.
const IMPORT_META_IN_COMMONJS = 1343;

function isImportMetaUrl(node: ts.Node): node is ts.PropertyAccessExpression {
  return ts.isPropertyAccessExpression(node) &&
    ts.isMetaProperty(node.expression) &&
    node.expression.keywordToken === ts.SyntaxKind.ImportKeyword &&
    node.name.text === "url";
}

/**
 * Replaces `import.meta.url` by the CommonJS way to the same URL,
 * `require("node:url").pathToFileURL(__filename).href`: `_sys.node.ts` needs
 * it for `createRequire()`, and CommonJS has no `import.meta`.
 */
function importMetaUrlToCommonJs(
  context: ts.TransformationContext,
): ts.Transformer<ts.SourceFile> {
  const f = context.factory;
  function visit(node: ts.Node): ts.Node {
    if (isImportMetaUrl(node)) {
      const requireUrl = f.createCallExpression(
        f.createIdentifier("require"),
        undefined,
        [f.createStringLiteral("node:url")],
      );
      const fileUrl = f.createCallExpression(
        f.createPropertyAccessExpression(requireUrl, "pathToFileURL"),
        undefined,
        [f.createIdentifier("__filename")],
      );
      return f.createPropertyAccessExpression(fileUrl, "href");
    }
    return ts.visitEachChild(node, visit, context);
  }
  return (source) => ts.visitNode(source, visit) as ts.SourceFile;
}

/** `./x.ts` as Node loads it once compiled: `./x.js`. */
function compiledSpecifier(specifier: string): string {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) {
    return specifier;
  }
  if (/\.d\.[cm]?ts$/.test(specifier)) return specifier;
  return specifier.replace(/\.([cm]?)ts$/, ".$1js");
}

/**
 * Rewrites `./x.ts` to `./x.js` in the declarations: TypeScript rewrites the
 * `.js` output only (microsoft/TypeScript#61037), and a `.d.ts` pointing at
 * `.ts` files that are not in the package confuses editors and older
 * compilers.
 */
function declarationSpecifiersToJs(
  context: ts.TransformationContext,
): (node: ts.SourceFile | ts.Bundle) => ts.SourceFile | ts.Bundle {
  const f = context.factory;
  function rewrite(literal: ts.Expression): ts.StringLiteral | undefined {
    if (!ts.isStringLiteral(literal)) return undefined;
    const specifier = compiledSpecifier(literal.text);
    return specifier === literal.text
      ? undefined
      : f.createStringLiteral(specifier);
  }
  function visit(node: ts.Node): ts.Node {
    if (ts.isImportDeclaration(node)) {
      const specifier = rewrite(node.moduleSpecifier);
      if (specifier !== undefined) {
        return f.updateImportDeclaration(
          node,
          node.modifiers,
          node.importClause,
          specifier,
          node.attributes,
        );
      }
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const specifier = rewrite(node.moduleSpecifier);
      if (specifier !== undefined) {
        return f.updateExportDeclaration(
          node,
          node.modifiers,
          node.isTypeOnly,
          node.exportClause,
          specifier,
          node.attributes,
        );
      }
    } else if (
      ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)
    ) {
      const specifier = rewrite(node.argument.literal);
      if (specifier !== undefined) {
        return f.updateImportTypeNode(
          node,
          f.updateLiteralTypeNode(node.argument, specifier),
          node.attributes,
          node.qualifier,
          node.typeArguments,
          node.isTypeOf,
        );
      }
    }
    return ts.visitEachChild(node, visit, context);
  }
  return (node) =>
    ts.isSourceFile(node) ? ts.visitNode(node, visit) as ts.SourceFile : node;
}

// The CommonJS check reports every `import.meta`; drop the reports for
// `import.meta.url`, which the transformer above handles, and keep the rest.
function isHandledImportMeta(diagnostic: ts.Diagnostic): boolean {
  return diagnostic.code === IMPORT_META_IN_COMMONJS &&
    diagnostic.file !== undefined && diagnostic.start !== undefined &&
    diagnostic.file.text.startsWith("import.meta.url", diagnostic.start);
}

const formatHost: ts.FormatDiagnosticsHost = {
  getCanonicalFileName: (fileName) => fileName,
  getCurrentDirectory: () => ROOT,
  getNewLine: () => "\n",
};

interface CompileOptions {
  readonly rootNames: readonly string[];
  readonly options: ts.CompilerOptions;
  readonly what: string;
  readonly transformers?: ts.CustomTransformers;
  readonly ignore?: (diagnostic: ts.Diagnostic) => boolean;
}

function report(what: string, diagnostics: readonly ts.Diagnostic[]): void {
  if (diagnostics.length === 0) return;
  console.error(
    ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost),
  );
  throw new BuildError(
    `Cannot compile ${what}: ${diagnostics.length} error(s) above (npm/.stage/ mirrors the repository, lines and columns included)`,
  );
}

function compile(
  { rootNames, options, what, transformers, ignore }: CompileOptions,
): void {
  const program = ts.createProgram({ rootNames, options });
  // Checked before emitting, so that a failed check writes nothing.
  report(
    what,
    ts.sortAndDeduplicateDiagnostics(ts.getPreEmitDiagnostics(program))
      .filter((diagnostic) => !ignore?.(diagnostic)),
  );
  const emitted = program.emit(
    undefined,
    undefined,
    undefined,
    false,
    transformers,
  );
  report(what, emitted.diagnostics);
  if (emitted.emitSkipped) {
    throw new BuildError(`Cannot compile ${what}: the compiler wrote nothing`);
  }
}

/**
 * Compiles the staged `mod.ts` and what it imports to `outDir`, with `.d.ts`
 * declarations next to the `.js` files.
 *
 * @param stageDir The staging folder (with `mod.ts` at its top).
 * @param outDir Where the `.js` and `.d.ts` files go.
 * @param format ESM or CommonJS.
 * @param nodeModules The folder holding `@types/node`.
 */
export async function compileLibrary(
  stageDir: string,
  outDir: string,
  format: Format,
  nodeModules: string,
): Promise<void> {
  const commonJs = format === "cjs";
  compile({
    rootNames: [join(stageDir, "mod.ts")],
    options: {
      ...baseOptions(nodeModules),
      ...formatOptions(format),
      rootDir: stageDir,
      outDir,
      declaration: true,
    },
    what: `the ${format === "esm" ? "ESM" : "CommonJS"} build`,
    transformers: {
      before: commonJs ? [importMetaUrlToCommonJs] : [],
      afterDeclarations: [declarationSpecifiersToJs],
    },
    ...(commonJs ? { ignore: isHandledImportMeta } : {}),
  });
  await assertLoadable(outDir, commonJs);
}

// A belt to the transformers' braces: `import.meta` left in a CommonJS file
// is a syntax error that only shows when Node loads that file, and a `.ts`
// specifier only when someone's editor opens the declarations.
async function assertLoadable(
  outDir: string,
  commonJs: boolean,
): Promise<void> {
  for (const file of await listFiles(outDir)) {
    const path = join(outDir, file);
    const text = await Deno.readTextFile(path);
    const shown = relative(ROOT, path);
    if (commonJs && file.endsWith(".js") && text.includes("import.meta")) {
      throw new BuildError(`${shown} still uses import.meta`);
    }
    for (const literal of moduleSpecifiers(path, text)) {
      if (compiledSpecifier(literal.text) !== literal.text) {
        throw new BuildError(
          `${shown} still imports ${literal.text} instead of the compiled file`,
        );
      }
    }
  }
}

/**
 * Compiles the staged tests to ESM in `outDir`, keeping their layout. They
 * import the library as the package `socket-activation`, which resolves to
 * the ESM build's declarations through npm/package.json's "exports", so this
 * also type-checks the published declarations.
 *
 * @param stageDir The staging folder (with `tests/` in it).
 * @param testSources The test files, relative to `<stageDir>/tests`.
 * @param outDir Where the compiled tests go.
 * @param nodeModules The folder holding `@types/node` and the test packages.
 */
export function compileTests(
  stageDir: string,
  testSources: readonly string[],
  outDir: string,
  nodeModules: string,
): void {
  const testsDir = join(stageDir, "tests");
  compile({
    rootNames: testSources.map((file) => join(testsDir, file)),
    options: {
      ...baseOptions(nodeModules),
      ...formatOptions("esm"),
      rootDir: testsDir,
      outDir,
    },
    what: "the tests",
  });
}

/**
 * The `_lib.js` of the CommonJS test run: the tests are ESM, so it loads the
 * package with `require()` (the "require" condition, the CommonJS build) and
 * re-exports each export under its name.
 *
 * @param names The runtime exports of `mod.ts`.
 * @returns The module's text.
 */
export function commonJsTestLib(names: readonly string[]): string {
  return `// Generated by scripts/build/build_npm.ts: the tests against the CommonJS build.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const path = require.resolve("socket-activation");
if (!/[\\\\/]script[\\\\/]mod\\.js$/.test(path)) {
  throw new Error(\`Expected the CommonJS build of socket-activation, got \${path}\`);
}
const lib = require("socket-activation");
for (const name of ${JSON.stringify(names)}) {
  if (!(name in lib)) {
    throw new Error(\`The CommonJS build does not export \${name}\`);
  }
}

export const { ${names.join(", ")} } = lib;
`;
}
