// The udp://host:port endpoint: parsed, formatted and read from the TOML
// configuration like the others, with IPv6 in brackets and no default port.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  ActivationError,
  type Endpoint,
  formatEndpoint,
  parseConfig,
  parseEndpoint,
  stringifyConfig,
} from "./_lib.ts";

const ROUND_TRIPS: [string, Endpoint][] = [
  ["udp://127.0.0.1:53", { kind: "udp", host: "127.0.0.1", port: 53 }],
  ["udp://[::1]:5353", { kind: "udp", host: "::1", port: 5353 }],
  ["udp://[::]:0", { kind: "udp", host: "::", port: 0 }],
  ["udp://localhost:8125", { kind: "udp", host: "localhost", port: 8125 }],
];

for (const [uri, endpoint] of ROUND_TRIPS) {
  test(`parseEndpoint() reads ${uri} and formatEndpoint() gives it back`, () => {
    assert.deepEqual(parseEndpoint(uri), endpoint);
    assert.equal(formatEndpoint(endpoint), uri);
  });
}

test("formatEndpoint() writes udp:// canonically: lower case, the port always, IPv6 in brackets", () => {
  assert.equal(
    formatEndpoint(parseEndpoint("UDP://LocalHost:80/")),
    "udp://localhost:80",
  );
  assert.equal(
    formatEndpoint(parseEndpoint("udp://[::FFFF:127.0.0.1]:9")),
    "udp://[::ffff:127.0.0.1]:9",
  );
});

const INVALID: [string, string][] = [
  ["udp://127.0.0.1", "names its port"],
  ["udp://[::1]", "names its port"],
  ["udp://host:", "not a port"],
  ["udp://host:65536", "not a port"],
  ["udp://host:53/x", "a udp endpoint has no path"],
  ["udp://user@host:53", "user info"],
  ["udp://host:53?x", "query"],
  ["udp://[::1:53", "unclosed"],
  ["udp://[nope]:53", "not an IPv6 address"],
  ["udp://:53", "host is empty"],
];

for (const [uri, reason] of INVALID) {
  test(`parseEndpoint(${JSON.stringify(uri)}) is INVALID_ENDPOINT: ${reason}`, () => {
    assert.throws(() => parseEndpoint(uri), (error: unknown) => {
      assert.ok(error instanceof ActivationError);
      assert.equal(error.code, "INVALID_ENDPOINT");
      assert.ok(error.message.includes(JSON.stringify(uri)), error.message);
      assert.ok(error.message.includes(reason), error.message);
      return true;
    });
  });
}

test("formatEndpoint() refuses a udp record no URI describes", () => {
  for (
    const endpoint of [
      { kind: "udp", host: "h", port: 70000 },
      { kind: "udp", host: "", port: 53 },
      { kind: "udp", host: "a b", port: 53 },
    ] as Endpoint[]
  ) {
    assert.throws(() => formatEndpoint(endpoint), { code: "INVALID_ENDPOINT" });
  }
});

test("formatEndpoint(parseEndpoint(x)) is stable for any udp endpoint", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
      fc.integer({ min: 0, max: 65535 }),
      (host, port) => {
        const uri = formatEndpoint({ kind: "udp", host, port });
        const parsed = parseEndpoint(uri);
        assert.equal(parsed.kind, "udp");
        assert.equal(formatEndpoint(parsed), uri);
      },
    ),
    { numRuns: 2000, seed: 20261202 },
  );
});

test("parseConfig() reads udp:// endpoints in [listen] and stringifyConfig() writes them back", () => {
  const config = parseConfig(
    '[listen]\nstatsd = "udp://127.0.0.1:8125"\n' +
      'syslog = { uri = "udp://[::1]:514", name = "log" }\n',
  );
  assert.deepEqual(config.listen, {
    statsd: { endpoint: { kind: "udp", host: "127.0.0.1", port: 8125 } },
    syslog: {
      endpoint: { kind: "udp", host: "::1", port: 514 },
      name: "log",
    },
  });
  assert.deepEqual(parseConfig(stringifyConfig(config)), config);
});

test("parseConfig() refuses a mode on a udp:// endpoint", () => {
  assert.throws(
    () =>
      parseConfig(
        '[listen]\nx = { uri = "udp://127.0.0.1:53", mode = "0600" }\n',
      ),
    (error: unknown) => {
      assert.ok(error instanceof ActivationError);
      assert.equal(error.code, "INVALID_CONFIG");
      assert.match(error.message, /listen\.x\.mode .*unix:\/\/ endpoints only/);
      return true;
    },
  );
});
