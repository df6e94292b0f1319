// A throwaway Node application with the built package installed, as a user's
// would be: node_modules/socket-activation (from npm/) and koffi beside it.
// The Node benchmarks run from this copy, so a rebuild of npm/ during a run
// cannot change or break what they measure.

import { fileURLToPath } from "node:url";

/** Where the app lives; `remove()` deletes it. */
export interface BenchApp {
  readonly dir: string;
  remove(): Promise<void>;
}

async function copy(from: string, to: string): Promise<void> {
  const output = await new Deno.Command("cp", {
    args: ["-a", from, to],
    stdin: "null",
  }).output();
  if (!output.success) {
    throw new Error(
      `cp -a ${from} ${to} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
}

/** Copies the package in `npmDir`, its dependencies, and the Node server. */
export async function stageApp(npmDir: string): Promise<BenchApp> {
  const dir = await Deno.makeTempDir({ prefix: "socket_activation_bench_" });
  const modules = `${dir}/node_modules`;
  const pkg = `${modules}/socket-activation`;
  await Deno.mkdir(pkg, { recursive: true });
  for (const entry of ["package.json", "esm", "script"]) {
    await copy(`${npmDir}/${entry}`, `${pkg}/${entry}`);
  }
  // The package's dependencies (koffi, smol-toml), and koffi's prebuilt
  // binary package, as npm would hoist them.
  const manifest = JSON.parse(
    await Deno.readTextFile(`${npmDir}/package.json`),
  ) as { dependencies?: Record<string, string> };
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    // A scoped name needs its scope folder.
    await Deno.mkdir(`${modules}/${name}`.replace(/\/[^/]*$/, ""), {
      recursive: true,
    });
    await copy(`${npmDir}/node_modules/${name}`, `${modules}/${name}`);
  }
  await copy(`${npmDir}/node_modules/@koromix`, `${modules}/@koromix`);
  await Deno.writeTextFile(
    `${dir}/package.json`,
    JSON.stringify({ private: true, type: "module" }) + "\n",
  );
  await copy(
    fileURLToPath(new URL("./_bench_server_node.mjs", import.meta.url)),
    `${dir}/server.mjs`,
  );
  return {
    dir,
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
