// The bench's temporary folder: the npm packages the sections ask for (the
// load generator, the servers compared with), installed into
// `<folder>/node_modules`, and a throwaway Node application in
// `<folder>/app` with the built package installed as a user's would be:
// npm/ packed, and the tarball installed with its whole dependency tree.
// Node resolves from `app/` into both. The Node benchmarks run from this
// copy, so a rebuild of npm/ during a run cannot change what they measure.

import { join } from "node:path";
import { capture } from "./_util.ts";

/** The staged folder; `remove()` deletes it. */
export interface BenchApp {
  /** The temporary folder, whose node_modules holds the npm tools. */
  readonly root: string;
  /** The app, whose node_modules holds the built package. */
  readonly dir: string;
  remove(): Promise<void>;
}

/** Installs `packages` (`name@version`) into `dir/node_modules`. */
async function installTools(
  dir: string,
  packages: readonly string[],
): Promise<void> {
  if (packages.length === 0) return;
  await capture("npm", [
    "install",
    "--prefix",
    dir,
    "--no-audit",
    "--no-fund",
    "--no-save",
    "--no-package-lock",
    "--prefer-offline",
    "--loglevel=error",
    ...packages,
  ]);
}

/**
 * Makes the temporary folder: installs `tools` from npm (npm's cache makes
 * later runs fast), then packs the package in `npmDir` and installs the
 * tarball into the app, dependencies and all.
 */
export async function stageApp(
  npmDir: string,
  tools: readonly string[],
): Promise<BenchApp> {
  const root = await Deno.makeTempDir({ prefix: "socket_activation_bench_" });
  try {
    await installTools(root, tools);
    const dir = join(root, "app");
    await Deno.mkdir(dir);
    await Deno.writeTextFile(
      join(dir, "package.json"),
      JSON.stringify({ private: true, type: "module" }) + "\n",
    );
    const tarball = (await capture("npm", [
      "pack",
      "--pack-destination",
      root,
      "--loglevel=error",
    ], { cwd: npmDir })).trim().split("\n").at(-1)!;
    await capture("npm", [
      "install",
      "--prefix",
      dir,
      "--no-audit",
      "--no-fund",
      "--no-package-lock",
      "--prefer-offline",
      "--loglevel=error",
      join(root, tarball),
    ]);
    return {
      root,
      dir,
      remove: () => Deno.remove(root, { recursive: true }),
    };
  } catch (error) {
    await Deno.remove(root, { recursive: true });
    throw error;
  }
}
