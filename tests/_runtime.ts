// What differs between the runtimes for the tests: which one runs them, and
// how to start a fixture script in the same runtime against the same build.

import process from "node:process";
import { fileURLToPath } from "node:url";

/** The runtime running the tests. */
export const runtime: "deno" | "node" = "Deno" in globalThis ? "deno" : "node";

// Compiled tests end in .js; their fixtures were compiled beside them.
const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";

/** The file of `tests/fixtures/NAME.ts` (or its compiled .js). */
export function fixturePath(name: string): string {
  return fileURLToPath(
    new URL(`./fixtures/${name}${extension}`, import.meta.url),
  );
}

/** Options of {@linkcode fixtureCommand}. */
export interface FixtureOptions {
  /**
   * Deno's permission flags for the fixture. Default: `--allow-env`,
   * `--allow-ffi` and `--allow-read`. Ignored on Node.
   */
  denoFlags?: readonly string[];
}

/** The argv that runs fixture `name` in this runtime: `[program, ...args]`. */
export function fixtureCommand(
  name: string,
  options: FixtureOptions = {},
): [string, ...string[]] {
  const path = fixturePath(name);
  if (runtime === "node") return [process.execPath, path];
  const flags = options.denoFlags ??
    ["--allow-env", "--allow-ffi", "--allow-read"];
  return [process.execPath, "run", "--no-prompt", ...flags, path];
}
