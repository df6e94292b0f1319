// Small helpers shared by the npm build scripts: where the repo is, running
// commands, walking folders. Nothing here knows about the library itself.

import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: this file lives in `<root>/scripts/build/`. */
export const ROOT: string = fileURLToPath(new URL("../..", import.meta.url))
  .replace(/\/$/, "");

/** A failure whose message says it all: printed without a stack trace. */
export class BuildError extends Error {
  /**
   * Makes an error for a failed build step.
   *
   * @param message What failed, naming the file or command.
   */
  constructor(message: string) {
    super(message);
    this.name = "BuildError";
  }
}

/** Prints a step heading, so a long log shows where it failed. */
export function step(title: string): void {
  console.log(`\n%c==> ${title}`, "color: cyan; font-weight: bold");
}

/** Prints a warning that does not stop the build. */
export function warn(message: string): void {
  console.warn(`%cwarning:%c ${message}`, "color: yellow", "");
}

/** Options of {@linkcode run} and {@linkcode capture}. */
export interface RunOptions {
  /** The working folder. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

function describe(command: string, args: readonly string[], cwd?: string) {
  const where = cwd === undefined ? "" : ` (in ${relative(ROOT, cwd) || "."})`;
  return `${[command, ...args].join(" ")}${where}`;
}

/** Runs a command with the output shown; throws unless it exits with 0. */
export async function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<void> {
  const { code } = await new Deno.Command(command, {
    args: [...args],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
    ...options,
  }).output();
  if (code !== 0) {
    throw new BuildError(
      `${describe(command, args, options.cwd)} failed with exit code ${code}`,
    );
  }
}

/** Runs a command and returns its standard output; throws unless it exits with 0. */
export async function capture(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...options,
  }).output();
  const decoder = new TextDecoder();
  if (code !== 0) {
    throw new BuildError(
      `${
        describe(command, args, options.cwd)
      } failed with exit code ${code}:\n${decoder.decode(stderr)}${
        decoder.decode(stdout)
      }`,
    );
  }
  return decoder.decode(stdout);
}

/** Every file under `dir`, as paths relative to it, sorted; none if it is missing. */
export async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  async function visit(relativeDir: string): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(join(dir, relativeDir)));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(relativeDir, entry.name);
      if (entry.isDirectory) await visit(path);
      else if (entry.isFile) files.push(path);
    }
  }
  await visit("");
  return files.sort();
}

/** Copies the folder `from` to `to`, which must not exist yet. */
export async function copyDir(from: string, to: string): Promise<void> {
  for (const file of await listFiles(from)) {
    await Deno.mkdir(dirname(join(to, file)), { recursive: true });
    await Deno.copyFile(join(from, file), join(to, file));
  }
}

/** Writes a file, making its folder first. */
export async function writeFile(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, text);
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Takes an exclusive lock on `<dir>/.build.lock`, waiting for another build
 * in the same folder to finish first: two builds emptying and filling one
 * npm/ at once break each other. The lock goes with the process.
 *
 * @param dir The build folder, made if missing.
 * @returns The lock file, to close when done.
 */
export async function lockDir(dir: string): Promise<Deno.FsFile> {
  await Deno.mkdir(dir, { recursive: true });
  const file = await Deno.open(join(dir, LOCK_FILE), {
    write: true,
    create: true,
  });
  const locked = file.lock(true);
  const waiting = setTimeout(() => {
    console.log(`Waiting for another build in ${relative(ROOT, dir)}/ to end`);
  }, 1000);
  try {
    await locked;
  } finally {
    clearTimeout(waiting);
  }
  return file;
}

/** The name of the lock file {@linkcode lockDir} takes. */
export const LOCK_FILE = ".build.lock";
