// Not a test. toml-eslint-parser, which src/_config_positions.ts uses for the
// lines of config errors, publishes declarations that import eslint's types
// (for its ESLint entry point, which this library does not call). The npm
// build type-checks the declarations of dependencies, so it needs those
// types: deno.json maps "eslint" to @types/eslint, and this import is what
// makes the build install it as a devDependency (a package only tests/
// imports, scripts/_build_deps.ts). The published package needs nothing of
// it: its own declarations never name toml-eslint-parser.
export type { Linter } from "eslint";
