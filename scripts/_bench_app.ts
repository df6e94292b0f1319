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

/** Copies the package in `npmDir`, its koffi, and the Node server. */
export async function stageApp(npmDir: string): Promise<BenchApp> {
  const dir = await Deno.makeTempDir({ prefix: "socket_activation_bench_" });
  const modules = `${dir}/node_modules`;
  const pkg = `${modules}/socket-activation`;
  await Deno.mkdir(pkg, { recursive: true });
  for (const entry of ["package.json", "esm", "script"]) {
    await copy(`${npmDir}/${entry}`, `${pkg}/${entry}`);
  }
  // koffi and its prebuilt binary package, as npm would hoist them.
  await copy(`${npmDir}/node_modules/koffi`, `${modules}/koffi`);
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
