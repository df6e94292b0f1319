// The library under test. The npm build replaces this file, so that the same
// tests run on Node against the built package's ESM or CommonJS entry point.
export * from "../mod.ts";
