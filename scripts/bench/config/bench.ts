// parseConfig() against smol-toml's own parse() of the same text, over
// document size (1 KB to 1 MB, valid, and with an error on the last line,
// which makes parseConfig() look for the line) and over nesting (inline
// tables and arrays nested thousands deep, a table header and a dotted key
// of 16,000 parts). The ratio is the cost of the schema and of the error
// positions on top of the TOML parser itself, measured in the same run.
//
// It imports the library through `tests/_lib.ts`: the section (section.ts)
// runs it in the runner's Deno process, and compiled with that file mapped
// to the built package on Node (node_bench.ts).

import process from "node:process";
import { parse } from "smol-toml";
import { parseConfig } from "../../../tests/_lib.ts";

/** What to measure; every field has a default. */
export interface ConfigBenchOptions {
  /** Document sizes in bytes. Default: 1 KB, 10 KB, 100 KB, 1 MB. */
  readonly sizes?: readonly number[];
  /**
   * Nesting depths of inline tables and of arrays. Default: 10, 990 (the
   * issue's case) and 10,000.
   */
  readonly depths?: readonly number[];
  /** Parts of a table header and of a dotted key. Default: 1,000 and 16,000. */
  readonly parts?: readonly number[];
  /** Rounds; the arms alternate within each. Default: 5. */
  readonly rounds?: number;
  /** Time each arm gets per round, in ms. Default: 100. */
  readonly roundMs?: number;
}

/** One document, timed with both parsers. */
export interface ConfigBenchRow {
  /** What the document is: `size`, `depth` or `parts`. */
  readonly series: "size" | "depth" | "parts";
  /** The document, as a table cell: `100 KB, valid`. */
  readonly label: string;
  /** Its length in UTF-16 code units (its bytes: it is ASCII). */
  readonly bytes: number;
  /** What parseConfig() did: `valid`, or the start of its error. */
  readonly outcome: string;
  /** The median time of one parseConfig() call, in ms. */
  readonly parseConfigMs: number;
  /** The median time of one smol-toml parse() call, in ms. */
  readonly smolMs: number;
  /** parseConfigMs / smolMs. */
  readonly ratio: number;
}

/** The benchmark's result: the runtime and a row per document. */
export interface ConfigBenchResult {
  /** `Deno 2.9.6` or `Node v20.20.2`. */
  readonly runtime: string;
  readonly rounds: number;
  readonly rows: readonly ConfigBenchRow[];
}

interface Document {
  readonly series: ConfigBenchRow["series"];
  readonly label: string;
  readonly text: string;
}

function sizeLabel(bytes: number): string {
  return bytes >= 1e6 ? `${bytes / 1e6} MB` : `${bytes / 1e3} KB`;
}

/** A valid configuration of about `bytes` bytes: URIs and inline tables. */
function sizedDocument(bytes: number): string {
  const lines = ["[listen]"];
  let size = lines[0]!.length + 1;
  for (let i = 0; size < bytes; i++) {
    const line = i % 2 === 0
      ? `web${i} = "http://127.0.0.1:${1024 + i % 60000}"`
      : `admin${i} = { uri = "unix:///run/app/admin${i}.sock", mode = "0600", name = "admin${i}" }`;
    lines.push(line);
    size += line.length + 1;
  }
  return lines.join("\n") + "\n";
}

function documents(options: ConfigBenchOptions): Document[] {
  const sizes = options.sizes ?? [1e3, 1e4, 1e5, 1e6];
  const depths = options.depths ?? [10, 990, 10_000];
  const parts = options.parts ?? [1_000, 16_000];
  const found: Document[] = [];
  for (const bytes of sizes) {
    const text = sizedDocument(bytes);
    found.push({ series: "size", label: `${sizeLabel(bytes)}, valid`, text });
    // The last entry's mode is not octal: the error needs its line.
    found.push({
      series: "size",
      label: `${sizeLabel(bytes)}, error on the last line`,
      text: `${text}bad = { uri = "unix:///run/bad.sock", mode = "0999" }\n`,
    });
  }
  for (const depth of depths) {
    found.push({
      series: "depth",
      label: `${depth} nested inline tables`,
      text: `[listen]\nweb = ${"{ a = ".repeat(depth)}1${" }".repeat(depth)}\n`,
    });
    found.push({
      series: "depth",
      label: `${depth} nested arrays`,
      text: `[listen]\nweb = ${"[".repeat(depth)}1${"]".repeat(depth)}\n`,
    });
  }
  for (const count of parts) {
    const key = Array.from({ length: count }, (_, i) => `p${i}`).join(".");
    found.push({
      series: "parts",
      label: `a table header of ${count} parts`,
      text: `[listen.${key}]\nuri = "http://127.0.0.1:8080"\n`,
    });
    found.push({
      series: "parts",
      label: `a dotted key of ${count} parts`,
      text: `[listen]\n${key} = "http://127.0.0.1:8080"\n`,
    });
  }
  return found;
}

/** Runs `call`, ignoring what it throws: both outcomes are timed. */
function attempt(call: () => unknown): void {
  try {
    call();
  } catch {
    // An invalid document is a case like any other.
  }
}

/** ms per call of `call`, over as many calls as fit in `ms` (at least 1). */
function timeFor(call: () => unknown, ms: number): number {
  const start = performance.now();
  let calls = 0;
  let elapsed = 0;
  do {
    attempt(call);
    calls++;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return elapsed / calls;
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[middle]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function outcomeOf(text: string): string {
  try {
    parseConfig(text);
    return "valid";
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = (error as { code?: unknown }).code;
    // The key path of a 16,000-part header would fill the table.
    const shown = message.length > 90 ? `${message.slice(0, 87)}...` : message;
    return `${typeof code === "string" ? code : "error"}: ${shown}`;
  }
}

function runtimeName(): string {
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  return deno === undefined
    ? `Node ${process.version}`
    : `Deno ${deno.version.deno}`;
}

/**
 * Times parseConfig() and smol-toml's parse() on each document, the two
 * arms alternating (their order swapped every round), and keeps the median
 * of the rounds.
 *
 * @param options Documents, rounds and time per round.
 * @returns A row per document, with the ratio of the two medians.
 */
export function runConfigBench(
  options: ConfigBenchOptions = {},
): ConfigBenchResult {
  const rounds = options.rounds ?? 5;
  const roundMs = options.roundMs ?? 100;
  const rows: ConfigBenchRow[] = [];
  for (const document of documents(options)) {
    const arms = [
      () => parseConfig(document.text),
      () => parse(document.text),
    ] as const;
    // A warm-up call each, so that the first round does not time the JIT.
    for (const arm of arms) timeFor(arm, roundMs / 4);
    const times: [number[], number[]] = [[], []];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [1, 0] as const : [0, 1] as const;
      for (const index of order) {
        times[index].push(timeFor(arms[index], roundMs));
      }
    }
    const parseConfigMs = medianOf(times[0]);
    const smolMs = medianOf(times[1]);
    rows.push({
      series: document.series,
      label: document.label,
      bytes: document.text.length,
      outcome: outcomeOf(document.text),
      parseConfigMs,
      smolMs,
      ratio: parseConfigMs / smolMs,
    });
  }
  return { runtime: runtimeName(), rounds, rows };
}

function milliseconds(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

/**
 * The benchmark as a markdown section: how it was measured, then for each
 * runtime a table of both parsers' times and their ratio per document.
 *
 * @param results What {@linkcode runConfigBench} returned on each runtime.
 * @returns The section, from its `##` heading, ending with a newline.
 */
export function renderConfigSection(
  results: readonly ConfigBenchResult[],
): string {
  const lines = [
    "## parseConfig() against smol-toml",
    "",
    "Each document is parsed by parseConfig() (smol-toml, then the schema; the",
    "line of an error from toml-eslint-parser) and by smol-toml's own parse(),",
    `the two alternating; the median of ${
      results[0]?.rounds
    } rounds. The ratio`,
    "is parseConfig() over parse(): what the schema and the error positions add",
    "to the TOML parser. parseConfig() refuses inline tables and arrays nested",
    "deeper than 32, and smol-toml's parse() deeper than 1000.",
  ];
  for (const result of results) {
    lines.push(
      "",
      `### ${result.runtime}`,
      "",
      "| document | bytes | parseConfig() | smol-toml parse() | ratio | parseConfig() gives |",
      "| --- | ---: | ---: | ---: | ---: | --- |",
    );
    for (const row of result.rows) {
      const cells = [
        row.label,
        String(row.bytes),
        `${milliseconds(row.parseConfigMs)} ms`,
        `${milliseconds(row.smolMs)} ms`,
        row.ratio.toFixed(2),
        row.outcome.replaceAll("|", "\\|"),
      ];
      lines.push(`| ${cells.join(" | ")} |`);
    }
  }
  return lines.join("\n") + "\n";
}
