// What a section of the benchmarks is: a module that measures something and
// renders what it measured as a section of BENCHMARKS.md. The runner
// (scripts/bench/main.ts) runs the sections listed in
// scripts/bench/sections.ts, in that order, and writes their Markdown one
// after the other under a common heading (the machine, the command).

/** An option of a section, as node:util's parseArgs takes it. */
export interface SectionOption {
  readonly type: "string" | "boolean";
  /** For `--help`. */
  readonly description: string;
}

/** What the runner gives a section to run. */
export interface BenchContext {
  /** The Node binary. */
  readonly nodePath: string;
  /**
   * A throwaway Node app with the built package installed as
   * `node_modules/socket-activation` (scripts/bench/_app.ts); the npm
   * packages the sections asked for resolve from it too.
   */
  readonly appDir: string;
  /** The folder where those npm packages are (`<root>/node_modules/...`). */
  readonly toolsDir: string;
  /** The values of the section's own options (absent when not given). */
  readonly options: Readonly<Record<string, string | boolean | undefined>>;
  /** Whether servers run on CPU 0 and load generators on CPU 1. */
  readonly pinned: boolean;
  /** Prints a progress line on stderr. */
  log(line: string): void;
}

/** One section of the benchmarks. */
export interface Section<Result = unknown> {
  /**
   * A short name: `--only ID` runs this section alone, and its options are
   * named `--ID-...`.
   */
  readonly id: string;
  /** One line for `--help` and the progress output. */
  readonly title: string;
  /** Its own options, each named `ID-...`. */
  readonly options?: Readonly<Record<string, SectionOption>>;
  /**
   * npm packages (`name@version`, pinned) its harnesses need, installed
   * once for the whole run into the bench's temporary folder.
   */
  readonly npm?: readonly string[];
  /** Measures; the result goes to render(). */
  run(context: BenchContext): Promise<Result>;
  /**
   * The section of BENCHMARKS.md, from its `##` heading on (Markdown; the
   * runner formats the file with `deno fmt`).
   */
  render(result: Result, context: BenchContext): string;
}
