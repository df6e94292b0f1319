// Reading and removing environment variables on both runtimes through
// node:process, with Deno's permission error turned into one that names the
// flag to add.

import process from "node:process";
import { ActivationError } from "./errors.ts";

function permissionError(variable: string, error: unknown): unknown {
  // Deno 2 throws NotCapable for a variable that --allow-env does not cover.
  if (error instanceof Error && error.name === "NotCapable") {
    return new ActivationError(
      "ENV_UNAVAILABLE",
      `Cannot read ${variable}: run Deno with --allow-env`,
      { cause: error },
    );
  }
  return error;
}

/** The value of `variable`, or `undefined` when it is not set. */
export function readEnv(variable: string): string | undefined {
  try {
    return process.env[variable];
  } catch (error) {
    throw permissionError(variable, error);
  }
}

/** Removes `variable` from the environment (unsetenv). */
export function unsetEnv(variable: string): void {
  try {
    delete process.env[variable];
  } catch (error) {
    throw permissionError(variable, error);
  }
}
