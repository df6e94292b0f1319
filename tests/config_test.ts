// The TOML configuration: the schema, its errors with key path and line, the
// round trip through stringifyConfig(), and loadConfig() on real files.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import {
  ActivationError,
  type Config,
  type Endpoint,
  formatEndpoint,
  type ListenEntry,
  loadConfig,
  parseConfig,
  stringifyConfig,
} from "./_lib.ts";

const EXAMPLE =
  `# Endpoints this service listens on. The key is the systemd socket name
# (FileDescriptorName=) to prefer when activated.
[listen]
web = "http://127.0.0.1:8080"                                  # a URI alone
admin = { uri = "unix:///run/app/admin.sock", mode = "0600" }  # or a table
metrics = { uri = "http://[::1]:9100", name = "prometheus" }

# Endpoints this service talks to.
[connect]
database = "unix:///run/postgresql/.s.PGSQL.5432"
cache = { uri = "http://localhost:6379" }
`;

const EXAMPLE_CONFIG: Config = {
  listen: {
    web: { endpoint: { kind: "http", host: "127.0.0.1", port: 8080 } },
    admin: {
      endpoint: { kind: "unix", path: "/run/app/admin.sock" },
      mode: 0o600,
    },
    metrics: {
      endpoint: { kind: "http", host: "::1", port: 9100 },
      name: "prometheus",
    },
  },
  connect: {
    database: { kind: "unix", path: "/run/postgresql/.s.PGSQL.5432" },
    cache: { kind: "http", host: "localhost", port: 6379 },
  },
};

function configError(text: string): ActivationError {
  try {
    parseConfig(text);
  } catch (error) {
    assert.ok(error instanceof ActivationError, String(error));
    assert.equal(error.code, "INVALID_CONFIG", error.message);
    return error;
  }
  assert.fail(`Expected INVALID_CONFIG for:\n${text}`);
}

test("parseConfig() reads the full example: URIs, tables with mode and name, both sections", () => {
  assert.deepEqual(parseConfig(EXAMPLE), EXAMPLE_CONFIG);
});

test("parseConfig() takes both tables as optional", () => {
  assert.deepEqual(parseConfig(""), { listen: {}, connect: {} });
  assert.deepEqual(parseConfig("# nothing yet\n[listen]\n"), {
    listen: {},
    connect: {},
  });
  assert.deepEqual(parseConfig('[connect]\ndb = "fd://db"\n'), {
    listen: {},
    connect: { db: { kind: "fdname", name: "db" } },
  });
});

const ADMIN: ListenEntry = {
  endpoint: { kind: "unix", path: "/run/admin.sock" },
  mode: 0o640,
};

const LAYOUTS: [string, string][] = [
  [
    "an inline table",
    '[listen]\nadmin = { uri = "unix:///run/admin.sock", mode = "0640" }',
  ],
  [
    "a [listen.admin] table",
    '[listen.admin]\nuri = "unix:///run/admin.sock"\nmode = "640"',
  ],
  [
    "dotted keys under [listen]",
    '[listen]\nadmin.uri = "unix:///run/admin.sock"\nadmin.mode = 0o640',
  ],
  [
    "dotted keys from the top",
    "listen.admin.uri = 'unix:///run/admin.sock'\nlisten . admin . mode = 0o0_640",
  ],
  [
    "quoted keys",
    '["listen"]\n\'admin\' = { "uri" = """unix:///run/admin.sock""", mode = "0640" }',
  ],
];

for (const [layout, text] of LAYOUTS) {
  test(`parseConfig() reads an entry written as ${layout}`, () => {
    assert.deepEqual(parseConfig(text), {
      listen: { admin: ADMIN },
      connect: {},
    });
  });
}

test("parseConfig() keeps keys as written, even __proto__", () => {
  const config = parseConfig(
    '[connect]\n"__proto__" = "fd://3"\n"with space" = "fd://4"\n',
  );
  assert.deepEqual(Object.keys(config.connect), ["__proto__", "with space"]);
  assert.deepEqual(Object.getPrototypeOf(config.connect), Object.prototype);
  assert.deepEqual(config.connect["__proto__"], { kind: "fd", fd: 3 });
});

test("parseConfig() reads modes as octal strings and TOML octal integers", () => {
  const cases: [string, number][] = [
    ['"0660"', 0o660],
    ['"660"', 0o660],
    ['"0"', 0],
    ['"0777"', 0o777],
    ["0o600", 0o600],
    ["0o7_77", 0o777],
  ];
  for (const [written, mode] of cases) {
    const config = parseConfig(
      `[listen]\na = { uri = "unix:///a", mode = ${written} }\n`,
    );
    assert.equal(config.listen.a?.mode, mode, written);
  }
});

// [what, text, message]: the whole message, so that key path and line are
// both checked.
const ERRORS: [string, string, string][] = [
  [
    "an unknown top-level key",
    'name = "app"\n[listen]\n',
    "Invalid config: name (line 1): unknown key, expected listen or connect",
  ],
  [
    "a typo in a table name",
    '\n[lisen]\nweb = "http://127.0.0.1:8080"\n',
    "Invalid config: lisen (line 2): unknown key, expected listen or connect (did you mean listen?)",
  ],
  [
    "an unknown key in an inline table",
    '[listen]\nweb = "http://x"\nadmin = { uri = "unix:///a", mdoe = "0600" }\n',
    "Invalid config: listen.admin.mdoe (line 3): unknown key, expected uri, mode or name (did you mean mode?)",
  ],
  [
    "an unknown key in a [listen.NAME] table",
    '[listen.admin]\nuri = "unix:///a"\n\n# the socket\'s owner\nowner = "app"\n',
    "Invalid config: listen.admin.owner (line 5): unknown key, expected uri, mode or name",
  ],
  [
    "an unknown key in a dotted key",
    'listen.web.uri = "http://x"\nlisten.web.port = 80\n',
    "Invalid config: listen.web.port (line 2): unknown key, expected uri, mode or name",
  ],
  [
    "an option on a [connect] entry",
    '[connect]\ndb = { uri = "unix:///db", mode = "0600" }\n',
    "Invalid config: connect.db.mode (line 2): unknown key, expected uri",
  ],
  [
    "a quoted key with a typo",
    '[listen]\n"my socket" = { uri = "http://x", "nme" = "web" }\n',
    'Invalid config: listen."my socket".nme (line 2): unknown key, expected uri, mode or name (did you mean name?)',
  ],
  [
    "[listen] as a string",
    'listen = "http://x"\n',
    "Invalid config: listen (line 1): expected a table, not a string",
  ],
  [
    "[listen] as an array of tables",
    '[[listen]]\nuri = "http://x"\n',
    "Invalid config: listen (line 1): expected a table, not an array",
  ],
  [
    "an entry as a number",
    "[listen]\n\nweb = 8080\n",
    'Invalid config: listen.web (line 3): expected a URI string or a table with "uri", not a number',
  ],
  [
    "a [connect] entry as a boolean",
    "[connect]\ndb = true\n",
    'Invalid config: connect.db (line 2): expected a URI string or a table with "uri", not a boolean',
  ],
  [
    "a uri as an array",
    '[listen]\nweb = { uri = ["http://x"] }\n',
    "Invalid config: listen.web.uri (line 2): expected a URI string, not an array",
  ],
  [
    "a table without uri",
    '[listen.web]\nmode = "0600"\n',
    'Invalid config: listen.web (line 1): the table has no "uri"',
  ],
  [
    "a bad URI",
    '[listen]\nweb = "ftp://127.0.0.1"\n',
    'Invalid config: listen.web (line 2): Invalid endpoint "ftp://127.0.0.1": unknown scheme "ftp", expected http, udp, unix or fd',
  ],
  [
    "a bad URI in a table",
    '[connect]\n\ndb = { uri = "unix://run/db.sock" }\n',
    'Invalid config: connect.db.uri (line 3): Invalid endpoint "unix://run/db.sock": a unix endpoint is unix:///absolute/path, with no host',
  ],
  [
    "a mode with a digit that is not octal",
    '[listen]\nweb = "http://x"\nadmin = { uri = "unix:///a", mode = "0999" }\n',
    'Invalid config: listen.admin.mode (line 3): "0999" is not an octal file mode, such as "0660"',
  ],
  [
    "a mode beyond 0777",
    '[listen]\nadmin = { uri = "unix:///a", mode = "1777" }\n',
    'Invalid config: listen.admin.mode (line 2): "1777" is not a file mode from 0000 to 0777',
  ],
  [
    "an octal integer mode beyond 0777",
    '[listen]\nadmin = { uri = "unix:///a", mode = 0o1000 }\n',
    "Invalid config: listen.admin.mode (line 2): 0o1000 is not a file mode from 0000 to 0777",
  ],
  [
    "a decimal integer mode",
    '[listen.admin]\nuri = "unix:///a"\nmode = 660\n',
    'Invalid config: listen.admin.mode (line 3): 660 is not an octal integer; write the mode as "0660" or 0o660',
  ],
  [
    "a decimal mode that would read as a valid octal one",
    '[listen]\nadmin.uri = "unix:///a"\nadmin.mode = 420\n',
    'Invalid config: listen.admin.mode (line 3): 420 is not an octal integer; write the mode as "0420" or 0o420',
  ],
  [
    "a hexadecimal mode",
    '[listen]\nadmin = { uri = "unix:///a", mode = 0x1b6 }\n',
    'Invalid config: listen.admin.mode (line 2): 0x1b6 is not an octal integer; write the mode as "0660" or 0o660',
  ],
  [
    "a mode as a boolean",
    '[listen]\nadmin = { uri = "unix:///a", mode = true }\n',
    'Invalid config: listen.admin.mode (line 2): expected an octal file mode string such as "0660", not a boolean',
  ],
  [
    "a mode on a TCP endpoint",
    '[listen]\nweb = { uri = "http://x", mode = "0600" }\n',
    "Invalid config: listen.web.mode (line 2): a mode applies to unix:// endpoints only",
  ],
  [
    "a name with a colon",
    '[listen]\nweb = { uri = "http://x", name = "a:b" }\n',
    `Invalid config: listen.web.name (line 2): "a:b" is not printable ASCII without ':': not a socket name (FileDescriptorName=)`,
  ],
  [
    "a key that is no socket name and no name given",
    '[listen]\n"web:1" = "http://x"\n',
    `Invalid config: listen."web:1" (line 2): the key is the socket name to prefer (FileDescriptorName=) and is not printable ASCII without ':'; add name = "…"`,
  ],
  [
    "an error after multi-line strings",
    `[listen]\nweb = { uri = "http://x", name = """\nweb""" }\nadmin = { uri = '''\nunix:///a''', mode = "0999" }\n`,
    'Invalid config: listen.admin.mode (line 5): "0999" is not an octal file mode, such as "0660"',
  ],
  [
    "a TOML syntax error",
    '[listen]\nweb = "http://x"\nadmin = { uri = "unix:///a", mode = }\n',
    "Invalid config: line 3, column 37: invalid value",
  ],
  [
    "a key defined twice",
    '[listen]\nweb = "http://x"\nweb = "http://y"\n',
    "Invalid config: line 3, column 1: trying to redefine an already defined table or value",
  ],
  [
    "an unclosed string",
    '[listen]\nweb = "http://x\n',
    "Invalid config: line 2, column 16: control characters are not allowed in strings",
  ],
];

for (const [what, text, message] of ERRORS) {
  test(`parseConfig() fails with INVALID_CONFIG, key path and line for ${what}`, () => {
    assert.equal(configError(text).message, message);
  });
}

test("parseConfig() counts lines past multi-line strings and arrays", () => {
  const text = `[listen]
web = { uri = """
http://\\
  x""", name = "web" }
[connect]
x = { uri = "fd://3" }
list = [
  1,
  2,
]
`;
  assert.equal(
    configError(text).message,
    'Invalid config: connect.list (line 7): expected a URI string or a table with "uri", not an array',
  );
});

test("parseConfig() gives lines in TOML 1.1 layouts: an inline table over several lines, with comments", () => {
  const text = `[listen]
admin = {
  uri = "unix:///a",  # the socket
  mode = "0999",
}
`;
  assert.equal(
    configError(text).message,
    'Invalid config: listen.admin.mode (line 4): "0999" is not an octal file mode, such as "0660"',
  );
});

// --- Deep and large documents: correct, and refused where no config goes ---

/** `[listen]` then `web = ` the value nested `depth` deep around `inner`. */
function nested(kind: "table" | "array", depth: number, inner = "1"): string {
  const [open, close] = kind === "table" ? ["{ a = ", " }"] : ["[", "]"];
  return `[listen]\nweb = ${open.repeat(depth)}${inner}${
    close.repeat(depth)
  }\n`;
}

test("parseConfig() reads inline tables and arrays nested 32 deep, and gives the schema's error", () => {
  assert.equal(
    configError(nested("table", 32)).message,
    "Invalid config: listen.web.a (line 2): unknown key, expected uri, mode or name",
  );
  assert.equal(
    configError(nested("array", 32)).message,
    'Invalid config: listen.web (line 2): expected a URI string or a table with "uri", not an array',
  );
});

test("parseConfig() refuses nesting deeper than 32 with INVALID_CONFIG at the line and column, however deep", () => {
  for (const depth of [33, 990, 100_000]) {
    const table = configError(nested("table", depth));
    assert.equal(
      table.message,
      "Invalid config: line 2, column 199: inline tables and arrays nest deeper than 32 levels",
    );
    const array = configError(nested("array", depth));
    assert.equal(
      array.message,
      "Invalid config: line 2, column 39: inline tables and arrays nest deeper than 32 levels",
    );
  }
});

test("parseConfig() finds the line after a table header and a dotted key of 16,000 parts", () => {
  const key = Array.from({ length: 16_000 }, (_, i) => `p${i}`).join(".");
  assert.equal(
    configError(`# a comment\n[listen.${key}]\nuri = "http://x"\n`).message,
    "Invalid config: listen.p0.p1 (line 2): unknown key, expected uri, mode or name",
  );
  assert.equal(
    configError(`[listen]\n\n${key} = "http://x"\n`).message,
    "Invalid config: listen.p0.p1 (line 3): unknown key, expected uri, mode or name",
  );
  // The same inside an inline table, and 16,000 tables declared one by one.
  assert.equal(
    configError(`[listen]\nweb = { uri = "http://x", ${key} = 1 }\n`).message,
    "Invalid config: listen.web.p0 (line 2): unknown key, expected uri, mode or name",
  );
  const headers = Array.from(
    { length: 16_000 },
    (_, i) => `[listen.w${i}]\nuri = "http://x"\n`,
  ).join("");
  assert.equal(
    configError(`${headers}[listen.last]\nuri = "http://x"\nport = 1\n`)
      .message,
    "Invalid config: listen.last.port (line 32003): unknown key, expected uri, mode or name",
  );
});

test("parseConfig() reads a 1 MB configuration, and gives the right line of an error at its end", () => {
  const entries: string[] = [];
  const expected: Record<string, ListenEntry> = {};
  let size = 0;
  for (let i = 0; size < 1_000_000; i++) {
    // Every 100th name is a multi-line string over two lines (its line-ending
    // backslash drops the newline), which must not shift the line count.
    const name = i % 100 === 1 ? `"""\\\n  a${i}"""` : `"a${i}"`;
    const entry = i % 2 === 0
      ? `web${i} = "http://127.0.0.1:${1024 + i % 60000}"`
      : `admin${i} = { uri = "unix:///run/admin${i}.sock", mode = 0o600, name = ${name} }`;
    expected[i % 2 === 0 ? `web${i}` : `admin${i}`] = i % 2 === 0
      ? {
        endpoint: { kind: "http", host: "127.0.0.1", port: 1024 + i % 60000 },
      }
      : {
        endpoint: { kind: "unix", path: `/run/admin${i}.sock` },
        mode: 0o600,
        name: `a${i}`,
      };
    entries.push(entry);
    size += entry.length + 1;
  }
  const text = `[listen]\n${entries.join("\n")}\n`;
  assert.ok(text.length >= 1_000_000);
  assert.deepEqual(parseConfig(text), { listen: expected, connect: {} });
  // The bad entry is on the line after the last one.
  const line = text.split("\n").length;
  assert.equal(
    configError(`${text}last = { uri = "unix:///last.sock", mode = 660 }\n`)
      .message,
    `Invalid config: listen.last.mode (line ${line}): 660 is not an octal integer; write the mode as "0660" or 0o660`,
  );
});

test("parseConfig() keeps the endpoint's error as the cause of a bad URI", () => {
  const error = configError('[connect]\ndb = "unix://relative"\n');
  assert.ok(error.cause instanceof ActivationError);
  assert.equal(error.cause.code, "INVALID_ENDPOINT");
  assert.ok(error.message.endsWith(error.cause.message), error.message);
});

test("parseConfig() throws TypeError for a value that is not a string", () => {
  assert.throws(() => parseConfig(42 as unknown as string), TypeError);
});

test("stringifyConfig() writes plain URIs, inline tables for options, octal modes", () => {
  assert.equal(
    stringifyConfig(EXAMPLE_CONFIG),
    `[listen]
web = "http://127.0.0.1:8080"
admin = { uri = "unix:///run/app/admin.sock", mode = "0600" }
metrics = { uri = "http://[::1]:9100", name = "prometheus" }

[connect]
database = "unix:///run/postgresql/.s.PGSQL.5432"
cache = "http://localhost:6379"
`,
  );
  assert.equal(stringifyConfig({ listen: {}, connect: {} }), "");
  assert.equal(
    stringifyConfig({
      listen: {},
      connect: { "a b": { kind: "fd", fd: 3 }, "é\x7f": { kind: "fd", fd: 4 } },
    }),
    '[connect]\n"a b" = "fd://3"\n"é\\u007F" = "fd://4"\n',
  );
});

test("stringifyConfig() refuses what no config file can hold", () => {
  const unix: Endpoint = { kind: "unix", path: "/a" };
  const cases: [Config, string][] = [
    [
      { listen: { a: { endpoint: unix, mode: 0o1000 } }, connect: {} },
      "Invalid config: listen.a.mode: 512 is not a file mode from 0 to 0o777",
    ],
    [
      { listen: { a: { endpoint: unix, mode: 1.5 } }, connect: {} },
      "Invalid config: listen.a.mode: 1.5 is not a file mode from 0 to 0o777",
    ],
    [
      {
        listen: {
          a: { endpoint: { kind: "fd", fd: 3 }, mode: 0o600 },
        },
        connect: {},
      },
      "Invalid config: listen.a.mode: a mode applies to unix:// endpoints only",
    ],
    [
      { listen: { "a:b": { endpoint: unix } }, connect: {} },
      `Invalid config: listen."a:b": the key is the socket name to prefer (FileDescriptorName=) and is not printable ASCII without ':'; add name = "…"`,
    ],
    [
      { listen: { a: { endpoint: unix, name: "" } }, connect: {} },
      'Invalid config: listen.a.name: "" is empty: not a socket name (FileDescriptorName=)',
    ],
    [
      { listen: {}, connect: { "\ud800": unix } },
      'Invalid config: connect."\\ud800": the key holds a lone UTF-16 surrogate',
    ],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => stringifyConfig(config), (error) => {
      assert.ok(error instanceof ActivationError);
      assert.equal(error.code, "INVALID_CONFIG");
      assert.equal(error.message, message);
      return true;
    });
  }
  assert.throws(
    () =>
      stringifyConfig({ listen: {}, connect: { a: { kind: "fd", fd: 2 } } }),
    (error) => {
      assert.ok(error instanceof ActivationError);
      assert.equal(error.code, "INVALID_CONFIG");
      assert.equal(
        error.message,
        'Invalid config: connect.a: Invalid endpoint "fd://2": fd 2 is not a passed fd (they start at 3)',
      );
      assert.ok(error.cause instanceof ActivationError);
      assert.equal(error.cause.code, "INVALID_ENDPOINT");
      return true;
    },
  );
});

// Generated configurations: endpoints formatEndpoint() accepts, in canonical
// form (lower-case hosts), keys of any Unicode, modes on unix entries only.
// parseConfig() returns ordinary objects; deepEqual compares prototypes.
const PLAIN = { noNullPrototype: true } as const;
const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 12,
}).filter((s) => !s.includes(":"));
const anyKey = fc.oneof(
  printable,
  fc.string({ unit: "grapheme", maxLength: 8 }),
  fc.string({ unit: "binary-ascii", maxLength: 8 }),
);
const endpoint: fc.Arbitrary<Endpoint> = fc.oneof(
  fc.record({
    kind: fc.constant("http" as const),
    host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()).map((host) =>
      host.toLowerCase()
    ),
    port: fc.integer({ min: 0, max: 65535 }),
  }, PLAIN),
  fc.record({
    kind: fc.constant("unix" as const),
    path: fc.string({ unit: "grapheme", maxLength: 20 }).map((s) =>
      "/" + s.replaceAll("\0", "")
    ),
  }, PLAIN),
  fc.record({
    kind: fc.constant("fd" as const),
    fd: fc.integer({ min: 3, max: 2 ** 31 - 1 }),
  }, PLAIN),
  fc.record({ kind: fc.constant("fdname" as const), name: printable }, PLAIN),
).filter((value) => {
  try {
    formatEndpoint(value);
    return true;
  } catch {
    return false; // a unix path over 107 bytes
  }
});
const listenEntry = (key: string): fc.Arbitrary<ListenEntry> =>
  fc.record({
    endpoint,
    mode: fc.option(fc.integer({ min: 0, max: 0o777 }), { nil: undefined }),
    name: fc.option(printable, { nil: undefined }),
  }, PLAIN).map(({ endpoint, mode, name }) => {
    let entry: ListenEntry = { endpoint };
    if (mode !== undefined && endpoint.kind === "unix") {
      entry = { ...entry, mode };
    }
    // A key that is no socket name needs a name of its own.
    const keyIsName = key !== "" && /^[\x20-\x7e]*$/.test(key) &&
      !key.includes(":");
    if (name !== undefined || !keyIsName) {
      entry = { ...entry, name: name ?? "n" };
    }
    return entry;
  });
const config: fc.Arbitrary<Config> = fc.record({
  listen: fc.uniqueArray(anyKey, { maxLength: 5 }).chain((keys) =>
    fc.tuple(...keys.map((key) => listenEntry(key).map((e) => [key, e])))
  ).map((entries) => Object.fromEntries(entries as [string, ListenEntry][])),
  connect: fc.uniqueArray(fc.tuple(anyKey, endpoint), {
    maxLength: 5,
    selector: ([key]) => key,
  }).map((entries) => Object.fromEntries(entries)),
}, PLAIN);

test("parseConfig(stringifyConfig(c)) deep-equals c for generated configs", () => {
  fc.assert(
    fc.property(config, (value) => {
      const text = stringifyConfig(value);
      assert.deepEqual(parseConfig(text), value, text);
    }),
    { numRuns: 1000, seed: 20261129 },
  );
});

test("parseConfig() gives the line of a bad key in generated configs", () => {
  fc.assert(
    fc.property(
      config.filter((value) => Object.keys(value.listen).length > 0),
      fc.nat(),
      (value, pick) => {
        // stringifyConfig() writes "[listen]" on line 1, then one entry a
        // line: add an unknown key to one of them.
        const keys = Object.keys(value.listen);
        const index = pick % keys.length;
        const lines = stringifyConfig(value).split("\n");
        const line = lines[index + 1] ?? "";
        lines[index + 1] = line.endsWith(" }")
          ? `${line.slice(0, -2)}, bogus = 1 }`
          : line.replace(/ = (".*")$/, " = { uri = $1, bogus = 1 }");
        const message = configError(lines.join("\n")).message;
        const key = keys[index] ?? "";
        const shown = /^[A-Za-z0-9_-]+$/.test(key)
          ? key
          : JSON.stringify(key).replaceAll("\x7f", "\\u007F");
        assert.ok(
          message.startsWith(
            `Invalid config: listen.${shown}.bogus (line ${index + 2}): `,
          ),
          message,
        );
      },
    ),
    { numRuns: 300, seed: 20261129 },
  );
});

test("parseConfig() throws nothing but INVALID_CONFIG on arbitrary TOML-like text", () => {
  const fragment = fc.constantFrom(
    "[listen]",
    "[connect]",
    "[listen.a]",
    "[[listen]]",
    "listen.a",
    "a",
    '"a b"',
    " = ",
    '"unix:///a"',
    '"http://x:1"',
    '"fd://3"',
    '"ftp://x"',
    "{ uri = ",
    " }",
    ", ",
    "mode = ",
    '"0600"',
    "0o600",
    "600",
    "name = ",
    "[",
    "]",
    '"""',
    "'''",
    "# c",
    "\n",
    "\r\n",
    "true",
    "1979-05-27",
  );
  fc.assert(
    fc.property(fc.array(fragment, { maxLength: 16 }), (parts) => {
      try {
        parseConfig(parts.join(""));
      } catch (error) {
        if (!(error instanceof ActivationError)) throw error;
        assert.equal(error.code, "INVALID_CONFIG", error.message);
        // The locator finds every line in these layouts.
        assert.match(
          error.message,
          /^Invalid config: (line [0-9]+, column [0-9]+|.+ \(line [0-9]+\)): /s,
        );
      }
    }),
    { numRuns: 3000, seed: 20261129 },
  );
});

test("loadConfig() reads a file, and names the file in its errors", async () => {
  const dir = await mkdtemp(join(tmpdir(), "socket-activation-config-"));
  try {
    const good = join(dir, "app.toml");
    await writeFile(good, EXAMPLE);
    assert.deepEqual(await loadConfig(good), EXAMPLE_CONFIG);

    const bad = join(dir, "bad.toml");
    await writeFile(bad, '[listen]\nadmin = { uri = "unix:///a", mode = 9 }\n');
    await assert.rejects(loadConfig(bad), {
      name: "ActivationError",
      code: "INVALID_CONFIG",
      message: `Invalid config ${
        JSON.stringify(bad)
      }: listen.admin.mode (line 2): 9 is not an octal integer; write the mode as "0660" or 0o660`,
    });

    const missing = join(dir, "missing.toml");
    await assert.rejects(loadConfig(missing), {
      name: "ActivationError",
      code: "CONFIG_UNREADABLE",
      errno: 2,
      message: `Cannot read config ${
        JSON.stringify(missing)
      }: ENOENT (no such file or directory)`,
    });
    await assert.rejects(loadConfig(dir), {
      name: "ActivationError",
      code: "CONFIG_UNREADABLE",
      errno: 21,
      message: `Cannot read config ${
        JSON.stringify(dir)
      }: EISDIR (is a directory)`,
    });
  } finally {
    await rm(dir, { recursive: true });
  }
});
