// The npm dependencies of the package, derived from deno.json: its "imports"
// map bare names to `npm:NAME@RANGE`, the one place their versions are
// written. A package the library sources import (mod.ts, src/) is a
// dependency of the npm package; one that only the tests import is a
// devDependency of the build; one that neither imports (a benchmark tool
// used by scripts/) is left out.

import { join, relative, sep } from "node:path";
import { moduleSpecifiers } from "./_stage.ts";
import { BuildError, listFiles, ROOT } from "./_util.ts";

/** Package name to version range, as package.json writes them. */
export type DependencyMap = Record<string, string>;

/** The two dependency lists of package.json. */
export interface NpmDependencies {
  readonly dependencies: DependencyMap;
  readonly devDependencies: DependencyMap;
}

interface NpmTarget {
  readonly name: string;
  readonly range: string;
}

/** `npm:smol-toml@^1.9.1` or `npm:@types/node@^20/sub` to name and range. */
function parseNpmTarget(key: string, target: string): NpmTarget | undefined {
  const match = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)(?:@([^/]+))?(?:\/.*)?$/.exec(
    target,
  );
  if (match === null) return undefined;
  const [, name, range] = match;
  if (name === undefined || range === undefined || range === "") {
    throw new BuildError(
      `deno.json maps "${key}" to ${target}, without a version range: write npm:NAME@RANGE, the npm package needs the range`,
    );
  }
  return { name, range };
}

/** The import map entry a bare specifier resolves through, as Deno does. */
function mapEntry(
  imports: Readonly<Record<string, string>>,
  specifier: string,
): [string, string] | undefined {
  const exact = imports[specifier];
  if (exact !== undefined) return [specifier, exact];
  // The longest "prefix/" key wins, as in the import maps standard.
  const prefix = Object.keys(imports)
    .filter((key) => key.endsWith("/") && specifier.startsWith(key))
    .sort((a, b) => b.length - a.length)[0];
  return prefix === undefined ? undefined : [prefix, imports[prefix] ?? ""];
}

function isBare(specifier: string): boolean {
  return !/^(\.{0,2}\/|[a-z][a-z0-9+.-]*:)/i.test(specifier);
}

// The files the Node build drops: they do not count.
function isDenoOnly(path: string): boolean {
  return /\.deno\.[cm]?ts$/.test(path) || /_deno_test\.[cm]?ts$/.test(path);
}

/** The npm packages the TypeScript files under `folders` import. */
async function importedPackages(
  imports: Readonly<Record<string, string>>,
  files: readonly string[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const file of files) {
    if (!/\.[cm]?ts$/.test(file) || isDenoOnly(file)) continue;
    const text = await Deno.readTextFile(join(ROOT, file));
    for (const literal of moduleSpecifiers(file, text)) {
      const specifier = literal.text;
      if (/^(npm|jsr):/.test(specifier)) {
        throw new BuildError(
          `${file} imports ${specifier}: map it to a bare name in deno.json "imports", which the npm build reads the version from`,
        );
      }
      if (!isBare(specifier)) continue;
      const entry = mapEntry(imports, specifier);
      if (entry === undefined) continue;
      const target = parseNpmTarget(...entry);
      if (target === undefined) continue;
      const known = found.get(target.name);
      if (known !== undefined && known !== target.range) {
        throw new BuildError(
          `deno.json maps ${target.name} with two ranges, ${known} and ${target.range}`,
        );
      }
      found.set(target.name, target.range);
    }
  }
  return found;
}

async function filesUnder(folder: string): Promise<string[]> {
  return (await listFiles(join(ROOT, folder))).map((file) =>
    relative(ROOT, join(ROOT, folder, file)).split(sep).join("/")
  );
}

function sorted(entries: Iterable<[string, string]>): DependencyMap {
  return Object.fromEntries(
    [...entries].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
  );
}

/**
 * Reads deno.json's "imports" and sorts the npm packages that `mod.ts` and
 * `src/` import into `dependencies`, and those only `tests/` imports into
 * `devDependencies`, each with the range deno.json gives, then adds the
 * fixed entries the sources cannot show.
 *
 * @param fixed Dependencies that no source imports by name (koffi).
 * @param fixedDev devDependencies of the build itself (typescript).
 */
export async function npmDependencies(
  fixed: DependencyMap,
  fixedDev: DependencyMap,
): Promise<NpmDependencies> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const imports: Record<string, string> = config.imports ?? {};
  const library = await importedPackages(imports, [
    "mod.ts",
    ...await filesUnder("src"),
  ]);
  const tests = await importedPackages(imports, await filesUnder("tests"));
  for (const name of library.keys()) tests.delete(name);
  for (const name of Object.keys(fixed)) {
    if (library.has(name) || tests.has(name)) {
      throw new BuildError(
        `${name} is both a fixed dependency of the build and in deno.json "imports": keep it in one place`,
      );
    }
  }
  return {
    dependencies: sorted([...library, ...Object.entries(fixed)]),
    devDependencies: sorted([...tests, ...Object.entries(fixedDev)]),
  };
}
