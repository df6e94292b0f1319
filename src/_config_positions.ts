// Where a key path stands in a TOML text, for the messages of parseConfig().
// smol-toml, which reads the values, gives a position for a syntax error
// only; toml-eslint-parser gives every key and value its location. It is
// about ten times slower than smol-toml (scripts/bench/config.ts), so it runs
// only when a message needs a line or a mode needs its text as written, and
// then once per document. Everything here is linear in the document: the
// keys go into a tree walked with an explicit stack, so neither a header of
// 16,000 parts nor deep inline tables cost more than their length.

import { type AST, parseTOML } from "toml-eslint-parser";

/** Where a key path was found: its line, and its value as written. */
export interface KeyPosition {
  /** The line of the path's first appearance, from 1. */
  readonly line: number;
  /** The value as written (`0o660`, `"0660"`), when the path has one. */
  readonly raw?: string;
}

/** The positions of a document's key paths, found on first use. */
export interface KeyPositions {
  /** The position of `path`, or undefined where it cannot be told. */
  get(path: readonly string[]): KeyPosition | undefined;
}

/** A key path's place: where it first appears, its children by key. */
interface KeyNode {
  readonly line: number;
  /** The value's offsets in the text, for a `key = value`. */
  value?: readonly [number, number];
  readonly children: Map<string, KeyNode>;
}

function keyNode(line: number): KeyNode {
  return { line, children: new Map() };
}

function keyNames(key: AST.TOMLKey): string[] {
  return key.keys.map((part) =>
    part.type === "TOMLBare" ? part.name : part.value
  );
}

/** The node of `names` under `from`, made on `line` where it is new. */
function descend(
  from: KeyNode,
  names: readonly string[],
  line: number,
): KeyNode {
  let node = from;
  for (const name of names) {
    let child = node.children.get(name);
    if (child === undefined) {
      child = keyNode(line);
      node.children.set(name, child);
    }
    node = child;
  }
  return node;
}

/** Adds `key = value` pairs under `table`, inline tables included. */
function addPairs(pairs: readonly AST.TOMLKeyValue[], table: KeyNode): void {
  // An explicit stack in document order: nesting as deep as the parser
  // allows never grows the call stack.
  const stack: [AST.TOMLKeyValue, KeyNode][] = [];
  const push = (from: readonly AST.TOMLKeyValue[], under: KeyNode) => {
    for (let index = from.length - 1; index >= 0; index--) {
      stack.push([from[index]!, under]);
    }
  };
  push(pairs, table);
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [pair, under] = next;
    const node = descend(under, keyNames(pair.key), pair.loc.start.line);
    node.value = pair.value.range;
    if (pair.value.type === "TOMLInlineTable") push(pair.value.body, node);
  }
}

function keyTree(text: string): KeyNode | undefined {
  let program: AST.TOMLProgram;
  try {
    // TOML 1.1, as smol-toml reads it (newlines in inline tables, \e, …).
    program = parseTOML(text, { tomlVersion: "1.1" });
  } catch {
    // Text smol-toml accepted and this parser does not: the lines are
    // unknown, which the messages say, rather than wrong.
    return undefined;
  }
  const root = keyNode(1);
  for (const item of program.body[0].body) {
    if (item.type === "TOMLKeyValue") {
      addPairs([item], root);
      continue;
    }
    const table = descend(root, keyNames(item.key), item.loc.start.line);
    // The keys of an array element have no path of their own (the schema
    // refuses arrays before it would ask), so they go nowhere reachable.
    addPairs(item.body, item.kind === "array" ? keyNode(0) : table);
  }
  return root;
}

/**
 * The positions of the key paths of `text`, a document smol-toml parsed:
 * a path is found at its first appearance (a `[table]` header, the first
 * dotted key through it, or its `key = value`). Nothing is parsed until the
 * first {@linkcode KeyPositions.get}.
 *
 * @param text The TOML text.
 * @returns The positions, found on first use.
 */
export function keyPositions(text: string): KeyPositions {
  let tree: KeyNode | undefined | null = null;
  return {
    get(path) {
      if (tree === null) tree = keyTree(text);
      let node = tree;
      for (const name of path) node = node?.children.get(name);
      if (node === undefined) return undefined;
      return node.value === undefined
        ? { line: node.line }
        : { line: node.line, raw: text.slice(...node.value) };
    },
  };
}
