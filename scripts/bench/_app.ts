// The bench's temporary folder: the npm packages the sections ask for (the
// load generator, the servers compared with), installed into
// `<folder>/node_modules`, and a throwaway Node application in
// `<folder>/app` with the built package installed as a user's would be:
// `app/node_modules/socket-activation` (from npm/) and its dependencies.
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

async function copy(from: string, to: string): Promise<void> {
  await capture("cp", ["-a", from, to]);
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
 * later runs fast), then copies the package in `npmDir` and its
 * dependencies into the app.
 */
export async function stageApp(
  npmDir: string,
  tools: readonly string[],
): Promise<BenchApp> {
  const root = await Deno.makeTempDir({ prefix: "socket_activation_bench_" });
  try {
    await installTools(root, tools);
    const dir = join(root, "app");
    const modules = join(dir, "node_modules");
    const pkg = join(modules, "socket-activation");
    await Deno.mkdir(pkg, { recursive: true });
    for (const entry of ["package.json", "esm", "script"]) {
      await copy(join(npmDir, entry), join(pkg, entry));
    }
    // The package's dependencies (koffi, smol-toml), and koffi's prebuilt
    // binary package, as npm would hoist them.
    const manifest = JSON.parse(
      await Deno.readTextFile(join(npmDir, "package.json")),
    ) as { dependencies?: Record<string, string> };
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      // A scoped name needs its scope folder.
      await Deno.mkdir(join(modules, name).replace(/\/[^/]*$/, ""), {
        recursive: true,
      });
      await copy(join(npmDir, "node_modules", name), join(modules, name));
    }
    await copy(
      join(npmDir, "node_modules", "@koromix"),
      join(modules, "@koromix"),
    );
    await Deno.writeTextFile(
      join(dir, "package.json"),
      JSON.stringify({ private: true, type: "module" }) + "\n",
    );
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
