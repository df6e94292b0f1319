import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  ActivationError,
  type Endpoint,
  formatEndpoint,
  parseEndpoint,
} from "./_lib.ts";

// Any UTF-16 code unit sequence: code points of the whole Unicode range and,
// one time in five, half a surrogate pair on its own.
const anyCodeUnit = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) =>
      String.fromCharCode(unit)
    ),
  },
);

// The seed connector's own cases (SPEC section 4), with what they parse to.
const ROUND_TRIPS: [string, Endpoint][] = [
  ["http://127.0.0.1", { kind: "http", host: "127.0.0.1", port: 80 }],
  ["http://127.0.0.1:8888", { kind: "http", host: "127.0.0.1", port: 8888 }],
  ["http://[::1]", { kind: "http", host: "::1", port: 80 }],
  ["http://[::1]:8888", { kind: "http", host: "::1", port: 8888 }],
  ["http://localhost", { kind: "http", host: "localhost", port: 80 }],
  ["http://localhost:8888", { kind: "http", host: "localhost", port: 8888 }],
  ["unix:///run/aziot/keyd.sock", {
    kind: "unix",
    path: "/run/aziot/keyd.sock",
  }],
  ["fd://3", { kind: "fd", fd: 3 }],
  ["fd://web", { kind: "fdname", name: "web" }],
  ["fd://my%20socket", { kind: "fdname", name: "my socket" }],
  ["fd://%342", { kind: "fdname", name: "42" }],
  ["unix:///tmp/a%20b%3Fc", { kind: "unix", path: "/tmp/a b?c" }],
];

for (const [uri, endpoint] of ROUND_TRIPS) {
  test(`parseEndpoint() reads ${uri} and formatEndpoint() gives it back`, () => {
    assert.deepEqual(parseEndpoint(uri), endpoint);
    assert.equal(formatEndpoint(endpoint), uri);
  });
}

const CANONICAL: [string, string][] = [
  ["http://127.0.0.1:80", "http://127.0.0.1"],
  ["http://LocalHost:8080/", "http://localhost:8080"],
  ["HTTP://[::FFFF:127.0.0.1]", "http://[::ffff:127.0.0.1]"],
  ["fd://003", "fd://3"],
];

for (const [uri, canonical] of CANONICAL) {
  test(`formatEndpoint(parseEndpoint(${JSON.stringify(uri)})) is ${canonical}`, () => {
    assert.equal(formatEndpoint(parseEndpoint(uri)), canonical);
  });
}

const INVALID: [string, string][] = [
  ["ftp://127.0.0.1", "unknown scheme"],
  ["unix://run/app.sock", "no host"],
  ["unix://relative", "no host"],
  ["unix:///", "names no file"],
  ["unix:///run/", "names no file"],
  ["http://user@host", "user info"],
  ["http://host/?a=1", "query"],
  ["http://host#top", "fragment"],
  ["http://host/path", "no path"],
  ["http://host:", "not a port"],
  ["http://host:65536", "not a port"],
  ["http://host:-1", "not a port"],
  ["http://[::1", "unclosed"],
  ["http://[nope]", "not an IPv6 address"],
  ["http://", "host is empty"],
  ["http://a b", "not a host name"],
  ["fd://2", "not a passed fd"],
  ["fd://0", "not a passed fd"],
  ["fd://", "empty"],
  ["fd://a%3Ab", "without ':'"],
  ["fd://%zz", "percent-encoding"],
  ["fd://3/x", "no path"],
  ["/run/app.sock", "expected scheme"],
  ["", "expected scheme"],
  // A Linux path is bytes; half a surrogate pair has no UTF-8 form.
  ["unix:///tmp/a\ud800b.sock", "lone UTF-16 surrogate (U+D800)"],
  ["unix:///tmp/\udfff", "lone UTF-16 surrogate (U+DFFF)"],
  ["unix:///tmp/\udc00\ud800", "lone UTF-16 surrogate (U+DC00)"],
  ["unix:///tmp/%ED%A0%80", "percent-encoding"],
];

for (const [uri, reason] of INVALID) {
  test(`parseEndpoint(${JSON.stringify(uri)}) is INVALID_ENDPOINT quoting the URI`, () => {
    assert.throws(() => parseEndpoint(uri), (error: unknown) => {
      assert.ok(error instanceof ActivationError);
      assert.equal(error.code, "INVALID_ENDPOINT");
      assert.ok(error.message.includes(JSON.stringify(uri)), error.message);
      assert.ok(error.message.includes(reason), error.message);
      return true;
    });
  });
}

test("formatEndpoint() refuses a record no URI describes", () => {
  for (
    const endpoint of [
      { kind: "fd", fd: 2 },
      { kind: "unix", path: "relative.sock" },
      { kind: "http", host: "h", port: 70000 },
      { kind: "http", host: "", port: 80 },
      { kind: "fdname", name: "a:b" },
      { kind: "fdname", name: "" },
    ] as Endpoint[]
  ) {
    assert.throws(() => formatEndpoint(endpoint), { code: "INVALID_ENDPOINT" });
  }
});

test("formatEndpoint() refuses a unix path with a lone surrogate, naming it, instead of writing U+FFFD", () => {
  assert.throws(() => formatEndpoint({ kind: "unix", path: "/tmp/a\ud800" }), {
    name: "ActivationError",
    code: "INVALID_ENDPOINT",
    message:
      'Invalid endpoint "unix:///tmp/a\\ud800": the path holds a lone UTF-16 surrogate (U+D800), which no file name can hold',
  });
  // A well-formed pair is one code point, written as its four UTF-8 bytes.
  assert.equal(
    formatEndpoint({ kind: "unix", path: "/tmp/\ud83d\ude00" }),
    "unix:///tmp/%F0%9F%98%80",
  );
});

test("parseEndpoint() throws nothing but ActivationError on arbitrary strings", () => {
  const prefixes = fc.constantFrom(
    "",
    "http://",
    "unix://",
    "fd://",
    "HTTP://",
    "unix:///",
  );
  fc.assert(
    fc.property(
      prefixes,
      fc.string({ unit: "binary", maxLength: 40 }),
      (prefix, rest) => {
        try {
          parseEndpoint(prefix + rest);
        } catch (error) {
          if (!(error instanceof ActivationError)) throw error;
          assert.equal(error.code, "INVALID_ENDPOINT");
        }
      },
    ),
    { numRuns: 5000, seed: 20261128 },
  );
});

test("formatEndpoint(parseEndpoint(x)) is stable: parsing the canonical URI gives the same endpoint", () => {
  const name = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) =>
      String.fromCharCode(c)
    ),
    minLength: 1,
    maxLength: 20,
  })
    .filter((s) => !s.includes(":"));
  const endpoint: fc.Arbitrary<Endpoint> = fc.oneof(
    fc.record({
      kind: fc.constant("http" as const),
      host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
      port: fc.integer({ min: 0, max: 65535 }),
    }),
    fc.record({
      kind: fc.constant("unix" as const),
      path: fc.string({ unit: anyCodeUnit, maxLength: 60 }).map((s) => "/" + s),
    }),
    fc.record({
      kind: fc.constant("fd" as const),
      fd: fc.integer({ min: 3, max: 2 ** 31 - 1 }),
    }),
    fc.record({ kind: fc.constant("fdname" as const), name }),
  );
  fc.assert(
    fc.property(endpoint, (value) => {
      let uri: string;
      try {
        uri = formatEndpoint(value);
      } catch (error) {
        // Only records that cannot be written: a path over 107 bytes, with
        // a NUL byte or a lone surrogate, or ending with /.
        assert.ok(error instanceof ActivationError);
        assert.equal(error.code, "INVALID_ENDPOINT");
        assert.ok(value.kind === "unix", error.message);
        assert.match(
          error.message,
          /longer than 107 bytes|NUL byte|lone UTF-16 surrogate|names no file/,
        );
        return;
      }
      const parsed = parseEndpoint(uri);
      assert.equal(formatEndpoint(parsed), uri);
      assert.equal(parsed.kind, value.kind);
      // fast-check builds records without a prototype; parseEndpoint() does not.
      if (value.kind === "unix") assert.deepEqual(parsed, { ...value });
    }),
    { numRuns: 3000, seed: 20261128 },
  );
});

test("Every URI parseEndpoint() accepts formats to a URI that parses to the same endpoint, over full Unicode", () => {
  // Tails mixing any code point, lone surrogates, percent-encoded bytes
  // (valid UTF-8 or not) and the characters URIs treat specially.
  const piece = fc.oneof(
    fc.string({ unit: anyCodeUnit, minLength: 1, maxLength: 1 }),
    fc.integer({ min: 0, max: 255 }).map((byte) =>
      `%${byte.toString(16).padStart(2, "0")}`
    ),
    fc.constantFrom(
      ..."/%:@[]?#. \0\n\u00e9\u{1f600}".split(""),
      "%2F",
      "%25",
      "%3A",
      "%C3%A9",
      "%F0%9F%98%80",
    ),
    fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 4 }),
  );
  const prefix = fc.constantFrom(
    "unix:///",
    "UNIX:///tmp/",
    "fd://",
    "fd://%3",
    "http://",
    "http://[",
    "http://localhost:",
  );
  let accepted = 0;
  fc.assert(
    fc.property(
      prefix,
      fc.array(piece, { maxLength: 24 }).map((parts) => parts.join("")),
      (head, tail) => {
        let endpoint: Endpoint;
        try {
          endpoint = parseEndpoint(head + tail);
        } catch (error) {
          assert.ok(error instanceof ActivationError, String(error));
          return;
        }
        accepted++;
        const uri = formatEndpoint(endpoint);
        const again = parseEndpoint(uri);
        assert.deepEqual(again, endpoint, uri);
        assert.equal(formatEndpoint(again), uri);
      },
    ),
    { numRuns: 20000, seed: 20261202 },
  );
  // The property held on URIs that parse, not only on refusals.
  assert.ok(accepted > 1000, `only ${accepted} URIs were accepted`);
});
