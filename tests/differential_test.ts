// listenFds() against the real libsystemd: thousands of generated
// environments, each run through sd_listen_fds_with_names() and through
// listenFds() in the same process (tests/fixtures/differential.ts), comparing
// the return value, the names, which fds end up close-on-exec and which
// variables remain.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { launch } from "./_launch.ts";
import { native } from "./_native.deno.ts";
import { fixtureCommand } from "./_runtime.ts";

const CASES = 12_000;
const SEED = 20_250_252;

type Case = [
  pid: string | null,
  fds: string | null,
  names: string | null,
  unset: boolean,
];

/** The digits of one number in each base the parsers know. */
interface Digits {
  dec: string;
  hex: string;
  hexUpper: string;
  oct: string;
  bin: string;
}

function digitsOf(value: bigint): Digits {
  const hex = value.toString(16);
  return {
    dec: value.toString(10),
    hex,
    hexUpper: hex.toUpperCase(),
    oct: value.toString(8),
    bin: value.toString(2),
  };
}

// The fixture spells its own pid from these placeholders.
const OWN_PID: Digits = {
  dec: "$PID",
  hex: "$PID16",
  hexUpper: "$PID16U",
  oct: "$PID8",
  bin: "$PID2",
};

function weighted<T>(
  ...entries: [number, fc.Arbitrary<T>][]
): fc.Arbitrary<T> {
  return fc.oneof(
    ...entries.map(([weight, arbitrary]) => ({ weight, arbitrary })),
  );
}

// strtol() skips isspace() (" \t\n\v\f\r"), systemd's own skip only " \t\n\r".
const leadingSpace = weighted(
  [5, fc.constant("")],
  [2, fc.string({ unit: fc.constantFrom(..." \t\n\r\v\f"), maxLength: 3 })],
);
const sign = fc.constantFrom("", "", "", "", "+", "+", "-", "+ ", "-+");
const trailing = weighted(
  [10, fc.constant("")],
  [3, fc.constantFrom(" ", "\t", "\n", "\r", "\v", "x", "0", "9", ".", "junk")],
);

// Every way of writing the same number: decimal, decimal with a leading zero
// (then read as octal), hex, octal with a leading 0 or 0o, binary with 0b.
function spelled(digits: Digits): fc.Arbitrary<string> {
  const body = weighted(
    [6, fc.constant(digits.dec)],
    [1, fc.constant(`0${digits.dec}`)],
    [
      4,
      fc.constantFrom(
        `0x${digits.hex}`,
        `0X${digits.hexUpper}`,
        `0x${digits.hexUpper}`,
        `0x00${digits.hex}`,
      ),
    ],
    [3, fc.constantFrom(`0${digits.oct}`, `00${digits.oct}`)],
    [
      3,
      fc.constantFrom(`0o${digits.oct}`, `0O${digits.oct}`, `0o0${digits.oct}`),
    ],
    [3, fc.constantFrom(`0b${digits.bin}`, `0B${digits.bin}`)],
  );
  return fc.tuple(leadingSpace, sign, body, trailing).map((parts) =>
    parts.join("")
  );
}

// Text made of the characters that matter to the number parsers.
const numberJunk = fc.string({
  unit: fc.constantFrom(..."0123456789abfxXoObB+- \t\v"),
  maxLength: 10,
});

const LIMITS = [
  "0",
  "-0",
  "00",
  "0x",
  "0X",
  "0b",
  "0o",
  "0x0",
  "-1",
  "",
  " ",
  "abc",
  "2147483644", // INT_MAX - 3
  "2147483645",
  "2147483647", // INT_MAX
  "2147483648",
  "-2147483648",
  "-2147483649",
  "4294967295",
  "4294967296",
  "4294967299",
  "9223372036854775807", // LONG_MAX
  "9223372036854775808",
  "-9223372036854775808",
  "-9223372036854775809",
  "18446744073709551615", // ULONG_MAX
  "18446744073709551616",
  "99999999999999999999999",
  "0x7fffffff",
  "0x80000000",
  "0xffffffffffffffff",
  "0x10000000000000000",
  "0b" + "1".repeat(64),
  "0o" + "7".repeat(22),
];

const pidArbitrary: fc.Arbitrary<string | null> = weighted(
  [6, fc.constant("$PID")],
  [10, spelled(OWN_PID)],
  [
    2,
    fc.constantFrom("$PIDNEXT", "$PIDWRAP", "+$PIDWRAP", "1", "$PID$PID"),
  ],
  [2, fc.constantFrom(...LIMITS)],
  [
    2,
    fc.bigInt({ min: 0n, max: 1n << 70n }).chain((value) =>
      spelled(digitsOf(value))
    ),
  ],
  [1, numberJunk],
  [1, fc.constant(null)],
);

// Counts around the open fds: the launcher passes four, the runtime holds a
// dozen or two more, and past them the first closed fd gives EBADF.
const countArbitrary = weighted(
  [6, fc.integer({ min: 1, max: 8 })],
  [2, fc.integer({ min: 9, max: 24 })],
  [2, fc.integer({ min: 25, max: 60 })],
);

function fdsArbitrary(count: number): fc.Arbitrary<string | null> {
  return weighted(
    [6, fc.constant(String(count))],
    [10, spelled(digitsOf(BigInt(count)))],
    [2, fc.constantFrom(...LIMITS)],
    [1, numberJunk],
    [1, fc.constant(null)],
  );
}

// A name without a bare ':' and without a lone '\', so that `count` of them
// joined by ':' split back into exactly `count` names. The escapes are kept:
// "\:" and "\\" are taken literally, "\x" gives "x".
const cleanName = fc.string({
  unit: weighted(
    [8, fc.constantFrom(..."abz09 _-.\"'\té=")],
    [2, fc.constantFrom("\\:", "\\\\", "\\x", "\\n", "\\'", '\\"', "\\ ")],
  ),
  maxLength: 5,
});

function namesArbitrary(count: number): fc.Arbitrary<string | null> {
  return weighted(
    [6, fc.array(cleanName, { minLength: count, maxLength: count })],
    [
      2,
      fc.array(cleanName, {
        minLength: Math.max(0, count - 1),
        maxLength: count + 1,
      }),
    ],
  ).map((names) => names.join(":")).chain((joined) =>
    weighted(
      [8, fc.constant(joined)],
      // A trailing lone backslash is an error even for another process.
      [1, fc.constant(`${joined}\\`)],
    )
  ).chain((names) =>
    weighted(
      [5, fc.constant<string | null>(names)],
      [
        1,
        fc.string({
          unit: fc.constantFrom(..."ab:\\\"' \té"),
          maxLength: 12,
        }),
      ],
      [1, fc.constant("")],
      [3, fc.constant(null)],
    )
  );
}

const caseArbitrary: fc.Arbitrary<Case> = countArbitrary.chain((count) =>
  fc.tuple(
    pidArbitrary,
    fdsArbitrary(count),
    namesArbitrary(count),
    fc.boolean(),
  )
);

test("listenFds() agrees with libsystemd's sd_listen_fds_with_names() on generated environments", async (t) => {
  if (!native.libsystemdAvailable()) {
    t.skip("libsystemd.so.0 not found");
    return;
  }
  const corpus = fc.sample(caseArbitrary, { seed: SEED, numRuns: CASES });
  const directory = mkdtempSync(join(tmpdir(), "differential-"));
  try {
    const corpusPath = join(directory, "corpus.json");
    writeFileSync(corpusPath, JSON.stringify(corpus));
    const started = performance.now();
    const child = await launch({
      argv: [...fixtureCommand("differential"), corpusPath],
      fds: [
        { type: "tcp" },
        { type: "unix", path: join(directory, "socket") },
        "pipe",
        "pipe",
      ],
    });
    const line = await child.nextLine().catch((error: Error) => {
      throw new Error(`${error.message}\n${child.stderr()}`);
    });
    assert.equal(await child.exited, 0, child.stderr());
    const seconds = (performance.now() - started) / 1000;
    const summary = JSON.parse(line) as {
      cases: number;
      disagreements: number;
      examples: unknown[];
      outcomes: Record<string, number>;
      openFds: number[];
    };
    console.log(
      `differential: ${summary.cases} environments, ${summary.disagreements} disagreements in ${
        seconds.toFixed(1)
      } s (libsystemd outcomes ${JSON.stringify(summary.outcomes)}, open fds ${
        summary.openFds.join(",")
      })`,
    );
    assert.ok(summary.cases >= 10_000, `only ${summary.cases} cases`);
    assert.equal(
      summary.disagreements,
      0,
      `disagreements, first ones:\n${
        JSON.stringify(summary.examples, null, 2)
      }`,
    );
    // The corpus must reach every path of sd_listen_fds_with_names(): fds
    // found, nothing for us, and each errno it returns.
    for (const kind of ["positive", "0", "-22", "-34", "-9"]) {
      assert.ok(
        (summary.outcomes[kind] ?? 0) >= 500,
        `too few cases with result ${kind}: ${
          JSON.stringify(summary.outcomes)
        }`,
      );
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
