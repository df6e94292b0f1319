// Compiles a Node bench harness and what it imports into the bench's app
// (scripts/bench/_app.ts), as they are (TypeScript erased, `.ts` specifiers
// made `.js`), with `tests/_lib` made the built package's ESM entry point,
// as in the npm build's own tests. For the sections whose Node side is a
// harness (scripts/bench/listen_fds/, scripts/bench/notify/).

import ts from "npm:typescript@5.9.3";
import { join } from "node:path";
import { ROOT } from "./_util.ts";

/**
 * Writes each of `sources` (paths from the repository root) compiled to
 * `dir`, at the same path with `.js`, and `dir/tests/_lib.js`.
 */
export async function compileNodeHarness(
  dir: string,
  sources: readonly string[],
): Promise<void> {
  for (const source of sources) {
    const { outputText } = ts.transpileModule(
      await Deno.readTextFile(join(ROOT, source)),
      {
        fileName: source,
        compilerOptions: {
          module: ts.ModuleKind.ESNext,
          target: ts.ScriptTarget.ES2022,
          rewriteRelativeImportExtensions: true,
        },
      },
    );
    const target = `${dir}/${source.replace(/\.ts$/, ".js")}`;
    await Deno.mkdir(target.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(target, outputText);
  }
  await Deno.mkdir(`${dir}/tests`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/tests/_lib.js`,
    `export * from "socket-activation";\n`,
  );
}

/** The last line of a harness's output: the JSON result it prints. */
export function lastJsonLine<T>(output: string): T {
  return JSON.parse(output.trim().split("\n").at(-1)!) as T;
}
