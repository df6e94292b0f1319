// Where a key stands in a TOML text. smol-toml gives positions for syntax
// errors only, so the config validator finds the line of a key path (and the
// text of its value, to tell `0o660` from `432`) by scanning the document
// itself. It runs on text smol-toml has already accepted, so it only needs to
// follow valid TOML: tables `[a.b]`, arrays of tables `[[a]]`, dotted and
// quoted keys, inline tables, arrays and every string form (a multi-line
// string must not shift the line count). What it cannot follow it leaves out,
// and the caller then says the line is unknown rather than guess one.

/** Where a key was found: its 1-based line, and the raw text of its value. */
export interface KeyLocation {
  /** The line of the key's first appearance, from 1. */
  readonly line: number;
  /** The value as written (`0o660`, `"0660"`), when the key has one. */
  readonly raw?: string;
}

/** The key paths of a TOML document, by {@linkcode pathKey}. */
export type KeyLocations = ReadonlyMap<string, KeyLocation>;

/** The map key of a key path. */
export function pathKey(path: readonly string[]): string {
  return JSON.stringify(path);
}

const BARE_KEY = /[A-Za-z0-9_-]/;
const BASIC_ESCAPES: Readonly<Record<string, string>> = {
  b: "\b",
  t: "\t",
  n: "\n",
  f: "\f",
  r: "\r",
  e: "\x1b",
  '"': '"',
  "\\": "\\",
};

class Scanner {
  #text: string;
  #at = 0;
  #line = 1;
  #found = new Map<string, KeyLocation>();
  #array = 0;

  constructor(text: string) {
    this.#text = text;
  }

  get found(): Map<string, KeyLocation> {
    return this.#found;
  }

  #peek(offset = 0): string {
    return this.#text[this.#at + offset] ?? "";
  }

  #startsWith(token: string): boolean {
    return this.#text.startsWith(token, this.#at);
  }

  #advance(count = 1): void {
    for (let i = 0; i < count && this.#at < this.#text.length; i++) {
      if (this.#text[this.#at] === "\n") this.#line++;
      this.#at++;
    }
  }

  #fail(): never {
    throw new Error(`Cannot follow the TOML text at offset ${this.#at}`);
  }

  #expect(char: string): void {
    if (this.#peek() !== char) this.#fail();
    this.#advance();
  }

  #skipSpaces(): void {
    while (this.#peek() === " " || this.#peek() === "\t") this.#advance();
  }

  /** Spaces, newlines and comments, as allowed between array values. */
  #skipBlank(): void {
    for (;;) {
      const char = this.#peek();
      if (char === " " || char === "\t" || char === "\r" || char === "\n") {
        this.#advance();
      } else if (char === "#") {
        while (this.#peek() !== "\n" && this.#at < this.#text.length) {
          this.#advance();
        }
      } else {
        return;
      }
    }
  }

  #record(path: readonly string[], line: number, raw?: string): void {
    const key = pathKey(path);
    if (this.#found.has(key)) return;
    this.#found.set(key, raw === undefined ? { line } : { line, raw });
  }

  scan(): void {
    let table: string[] = [];
    for (;;) {
      this.#skipBlank();
      if (this.#at >= this.#text.length) return;
      const line = this.#line;
      if (this.#peek() === "[") {
        const isArray = this.#peek(1) === "[";
        this.#advance(isArray ? 2 : 1);
        const path = this.#key();
        this.#expect("]");
        if (isArray) this.#expect("]");
        this.#recordPrefixes(path, line);
        // The keys of an array element have no path the validator asks
        // for (it refuses arrays), but they still need scanning.
        table = isArray ? [...path, `[${this.#array++}]`] : path;
      } else {
        this.#keyValue(table);
      }
    }
  }

  #recordPrefixes(path: readonly string[], line: number): void {
    for (let end = 1; end <= path.length; end++) {
      this.#record(path.slice(0, end), line);
    }
  }

  #keyValue(table: readonly string[]): void {
    const line = this.#line;
    const path = [...table, ...this.#key()];
    this.#expect("=");
    this.#skipSpaces();
    this.#recordPrefixes(path, line);
    const start = this.#at;
    this.#value(path);
    this.#found.set(pathKey(path), {
      line,
      raw: this.#text.slice(start, this.#at).trim(),
    });
  }

  /** A dotted key, `a."b c".'d'`, with the spaces around its dots. */
  #key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.#skipSpaces();
      parts.push(this.#simpleKey());
      this.#skipSpaces();
      if (this.#peek() !== ".") return parts;
      this.#advance();
    }
  }

  #simpleKey(): string {
    const char = this.#peek();
    if (char === '"') return this.#basicString();
    if (char === "'") return this.#literalString();
    const start = this.#at;
    while (BARE_KEY.test(this.#peek())) this.#advance();
    if (this.#at === start) this.#fail();
    return this.#text.slice(start, this.#at);
  }

  #value(path: readonly string[]): void {
    if (this.#startsWith('"""')) return this.#multiLine('"');
    if (this.#startsWith("'''")) return this.#multiLine("'");
    const char = this.#peek();
    if (char === '"') return void this.#basicString();
    if (char === "'") return void this.#literalString();
    if (char === "{") return this.#inlineTable(path);
    if (char === "[") return this.#arrayValue(path);
    // A number, a boolean or a date: up to what ends a value.
    const start = this.#at;
    while (this.#at < this.#text.length && !/[,\]}#\r\n]/.test(this.#peek())) {
      this.#advance();
    }
    if (this.#text.slice(start, this.#at).trim() === "") this.#fail();
  }

  #inlineTable(path: readonly string[]): void {
    this.#expect("{");
    for (;;) {
      // TOML 1.1 allows newlines and comments inside inline tables.
      this.#skipBlank();
      if (this.#peek() === "}") break;
      this.#keyValue(path);
      this.#skipBlank();
      if (this.#peek() === ",") this.#advance();
      else if (this.#peek() !== "}") this.#fail();
    }
    this.#advance();
  }

  #arrayValue(path: readonly string[]): void {
    this.#expect("[");
    for (let index = 0;; index++) {
      this.#skipBlank();
      if (this.#peek() === "]") break;
      const line = this.#line;
      const start = this.#at;
      const item = [...path, `[${index}]`];
      this.#value(item);
      this.#record(item, line, this.#text.slice(start, this.#at).trim());
      this.#skipBlank();
      if (this.#peek() === ",") this.#advance();
      else if (this.#peek() !== "]") this.#fail();
    }
    this.#advance();
  }

  #basicString(): string {
    this.#expect('"');
    let out = "";
    for (;;) {
      const char = this.#peek();
      if (char === "" || char === "\n") this.#fail();
      this.#advance();
      if (char === '"') return out;
      if (char !== "\\") {
        out += char;
        continue;
      }
      const escape = this.#peek();
      this.#advance();
      const simple = BASIC_ESCAPES[escape];
      if (simple !== undefined) {
        out += simple;
        continue;
      }
      const digits = escape === "u"
        ? 4
        : escape === "U"
        ? 8
        : escape === "x"
        ? 2
        : 0;
      const hex = this.#text.slice(this.#at, this.#at + digits);
      if (digits === 0 || !/^[0-9A-Fa-f]+$/.test(hex)) this.#fail();
      this.#advance(digits);
      out += String.fromCodePoint(parseInt(hex, 16));
    }
  }

  #literalString(): string {
    this.#expect("'");
    const end = this.#text.indexOf("'", this.#at);
    const newline = this.#text.indexOf("\n", this.#at);
    if (end < 0 || (newline >= 0 && newline < end)) this.#fail();
    const out = this.#text.slice(this.#at, end);
    this.#advance(end + 1 - this.#at);
    return out;
  }

  #multiLine(quote: string): void {
    this.#advance(3);
    for (;;) {
      if (this.#at >= this.#text.length) this.#fail();
      if (quote === '"' && this.#peek() === "\\") {
        this.#advance(2);
        continue;
      }
      if (this.#startsWith(quote.repeat(3))) {
        // Up to two quotes may end the content right before the delimiter.
        let run = 3;
        while (run < 5 && this.#peek(run) === quote) run++;
        this.#advance(run);
        return;
      }
      this.#advance();
    }
  }
}

/**
 * Finds the line of every key path of a TOML document, for error messages.
 * A path is found at its first appearance (a `[table]` header, the first
 * dotted key through it, or its `key = value`). Scanning stops where the text
 * is not TOML it can follow; the paths found until then are kept.
 *
 * @param text A document smol-toml parsed without error.
 * @returns The locations by {@linkcode pathKey}.
 */
export function locateKeys(text: string): KeyLocations {
  const scanner = new Scanner(text);
  try {
    scanner.scan();
  } catch {
    // Keep what was found: a partial map only makes some lines unknown.
  }
  return scanner.found;
}
