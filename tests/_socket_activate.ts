// Runs the socket-activate command as users get it: on Deno through the
// "./cli" export of deno.json, on Node through the bin of the built npm
// package (run as an executable, so its shebang and mode are tested too).

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { within } from "./_activator.ts";
import { lineReader } from "./_launch.ts";
import { runtime } from "./_runtime.ts";

/** The argv that runs socket-activate in this runtime. */
export function socketActivateCommand(): string[] {
  if (runtime === "deno") {
    const config = new URL("../deno.json", import.meta.url);
    const { exports } = JSON.parse(readFileSync(config, "utf8")) as {
      exports: Record<string, string>;
    };
    return [
      process.execPath,
      "run",
      "-A",
      fileURLToPath(new URL(exports["./cli"]!, config)),
    ];
  }
  // npm/esm/mod.js, from the package's "exports": its root is two up.
  const root = dirname(dirname(
    fileURLToPath(import.meta.resolve("socket-activation")),
  ));
  const { bin } = JSON.parse(
    readFileSync(join(root, "package.json"), "utf8"),
  ) as { bin: Record<string, string> };
  return [join(root, bin["socket-activate"]!)];
}

/** A running socket-activate. */
export interface Cli {
  readonly child: ChildProcess;
  /**
   * Resolves with the first event line (stderr, without its
   * `socket-activate: ` prefix) after the last one a previous call
   * returned that matches `pattern`.
   */
  event(pattern: RegExp): Promise<string>;
  /**
   * Resolves once any event line so far matches `pattern`, whatever came
   * before it, for events whose order is not fixed.
   */
  seen(pattern: RegExp): Promise<string>;
  /** Every event line so far. */
  events(): string[];
  /** Its stderr so far, for failure messages. */
  stderr(): string;
  /** The next line on stdout (the children's). */
  nextLine(): Promise<string>;
  /** Everything on stdout so far. */
  stdout(): string;
  /** The exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
}

/** Starts socket-activate with `args`, in this environment plus `env`. */
export function startCli(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Cli {
  const [program, ...prefix] = socketActivateCommand();
  const child = spawn(program!, [...prefix, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
  let stderr = "";
  const lines: string[] = [];
  let seen = 0;
  const waiters: (() => void)[] = [];
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    const complete = stderr.split("\n").slice(0, -1);
    lines.splice(
      0,
      lines.length,
      ...complete.filter((line) => line.startsWith("socket-activate: ")).map(
        (line) => line.slice("socket-activate: ".length),
      ),
    );
    for (const waiter of waiters.splice(0)) waiter();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => {
      resolve(code ?? signal ?? "unknown");
    })
  );
  let ended = false;
  void exited.then(() => {
    ended = true;
    for (const waiter of waiters.splice(0)) waiter();
  });
  const stdout = lineReader(child);
  let output = "";
  child.stdout!.setEncoding("utf8").on(
    "data",
    (chunk: string) => output += chunk,
  );
  function find(pattern: RegExp, from: () => number): Promise<number> {
    const found = new Promise<number>((resolve, reject) => {
      const look = () => {
        const start = from();
        const index = lines.findIndex((line, at) =>
          at >= start && pattern.test(line)
        );
        if (index >= 0) resolve(index);
        else if (ended) {
          reject(
            new Error(`socket-activate exited before ${pattern}:\n${stderr}`),
          );
        } else waiters.push(look);
      };
      look();
    });
    return within(found, `${pattern} from socket-activate:\n${stderr}`);
  }
  return {
    child,
    async event(pattern) {
      const index = await find(pattern, () => seen);
      seen = index + 1;
      return lines[index]!;
    },
    async seen(pattern) {
      return lines[await find(pattern, () => 0)]!;
    },
    events: () => [...lines],
    stderr: () => stderr,
    nextLine: () => stdout.next(),
    stdout: () => output,
    exited,
  };
}
