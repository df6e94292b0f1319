import assert from "node:assert/strict";
import { test } from "node:test";
import { ActivationError, type ListenEnv, parseListenEnv } from "./_lib.ts";
import { EINVAL, ERANGE } from "./_errno.ts";

const PID = 4242;

type Expected =
  | { count: number; names?: readonly string[] }
  | { code: string; errno: number };

// SPEC section 2, "Observed on libsystemd 252", row by row, plus the name
// splitting rules of step 1.
const CASES: [string, ListenEnv, Expected][] = [
  ["no LISTEN_PID", { LISTEN_FDS: "1" }, { count: 0 }],
  ["another pid", { LISTEN_PID: String(PID + 1), LISTEN_FDS: "1" }, {
    count: 0,
  }],
  ["no LISTEN_FDS", { LISTEN_PID: String(PID) }, { count: 0 }],
  ['LISTEN_PID ""', { LISTEN_PID: "", LISTEN_FDS: "1" }, {
    code: "INVALID_LISTEN_PID",
    errno: EINVAL,
  }],
  ["LISTEN_PID abc", { LISTEN_PID: "abc", LISTEN_FDS: "1" }, {
    code: "INVALID_LISTEN_PID",
    errno: EINVAL,
  }],
  ["LISTEN_PID with a trailing space", {
    LISTEN_PID: `${PID} `,
    LISTEN_FDS: "1",
  }, { code: "INVALID_LISTEN_PID", errno: EINVAL }],
  ["LISTEN_PID with a trailing tab", {
    LISTEN_PID: `${PID}\t`,
    LISTEN_FDS: "1",
  }, { code: "INVALID_LISTEN_PID", errno: EINVAL }],
  ["LISTEN_PID 0", { LISTEN_PID: "0", LISTEN_FDS: "1" }, {
    code: "INVALID_LISTEN_PID",
    errno: ERANGE,
  }],
  ["LISTEN_PID -5", { LISTEN_PID: "-5", LISTEN_FDS: "1" }, {
    code: "INVALID_LISTEN_PID",
    errno: ERANGE,
  }],
  ["LISTEN_PID with a leading space", {
    LISTEN_PID: ` ${PID}`,
    LISTEN_FDS: "1",
  }, { count: 1 }],
  ["LISTEN_PID with a plus", { LISTEN_PID: `+${PID}`, LISTEN_FDS: "1" }, {
    count: 1,
  }],
  ["LISTEN_PID in hex", {
    LISTEN_PID: `0x${PID.toString(16)}`,
    LISTEN_FDS: "1",
  }, { count: 1 }],
  ["LISTEN_PID too large for pid_t", {
    LISTEN_PID: String(2 ** 32 + PID),
    LISTEN_FDS: "1",
  }, { code: "INVALID_LISTEN_PID", errno: ERANGE }],
  ["LISTEN_FDS 0", { LISTEN_PID: String(PID), LISTEN_FDS: "0" }, {
    code: "INVALID_LISTEN_FDS",
    errno: EINVAL,
  }],
  ["LISTEN_FDS -1", { LISTEN_PID: String(PID), LISTEN_FDS: "-1" }, {
    code: "INVALID_LISTEN_FDS",
    errno: EINVAL,
  }],
  ['LISTEN_FDS ""', { LISTEN_PID: String(PID), LISTEN_FDS: "" }, {
    code: "INVALID_LISTEN_FDS",
    errno: EINVAL,
  }],
  ["LISTEN_FDS 2x", { LISTEN_PID: String(PID), LISTEN_FDS: "2x" }, {
    code: "INVALID_LISTEN_FDS",
    errno: EINVAL,
  }],
  [
    "LISTEN_FDS with a newline",
    { LISTEN_PID: String(PID), LISTEN_FDS: "1\n" },
    { code: "INVALID_LISTEN_FDS", errno: EINVAL },
  ],
  ["LISTEN_FDS with a leading space", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: " 2",
  }, { count: 2 }],
  ["LISTEN_FDS +2", { LISTEN_PID: String(PID), LISTEN_FDS: "+2" }, {
    count: 2,
  }],
  ["LISTEN_FDS 0x2", { LISTEN_PID: String(PID), LISTEN_FDS: "0x2" }, {
    count: 2,
  }],
  ["LISTEN_FDS 0o2", { LISTEN_PID: String(PID), LISTEN_FDS: "0o2" }, {
    count: 2,
  }],
  ["LISTEN_FDS 0b10", { LISTEN_PID: String(PID), LISTEN_FDS: "0b10" }, {
    count: 2,
  }],
  ["LISTEN_FDS 010 (octal)", { LISTEN_PID: String(PID), LISTEN_FDS: "010" }, {
    count: 8,
  }],
  ["LISTEN_FDS 2147483644", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "2147483644",
  }, { count: 2147483644 }],
  ["LISTEN_FDS 2147483645", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "2147483645",
  }, { code: "INVALID_LISTEN_FDS", errno: EINVAL }],
  ["LISTEN_FDS 99999999999", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "99999999999",
  }, { code: "INVALID_LISTEN_FDS", errno: ERANGE }],
  ["LISTEN_FDS past long", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "99999999999999999999x",
  }, { code: "INVALID_LISTEN_FDS", errno: ERANGE }],
  ["LISTEN_FDS 0x without digits", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "0x",
  }, { code: "INVALID_LISTEN_FDS", errno: EINVAL }],
  ["escaped colon", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "1",
    LISTEN_FDNAMES: "a\\:b",
  }, { count: 1, names: ["a:b"] }],
  ["escaped backslash", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "1",
    LISTEN_FDNAMES: "a\\\\b",
  }, { count: 1, names: ["a\\b"] }],
  ["no C escapes", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "1",
    LISTEN_FDNAMES: "\\x41",
  }, { count: 1, names: ["x41"] }],
  ["quotes are literal", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "1",
    LISTEN_FDNAMES: "'a b'",
  }, { count: 1, names: ["'a b'"] }],
  ["empty names kept", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "1",
    LISTEN_FDNAMES: "",
  }, { count: 1, names: [""] }],
  ["trailing empty name", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "2",
    LISTEN_FDNAMES: "a:",
  }, { count: 2, names: ["a", ""] }],
  ["three names", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "3",
    LISTEN_FDNAMES: "a::b",
  }, { count: 3, names: ["a", "", "b"] }],
  ["count mismatch left to the caller", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "1",
    LISTEN_FDNAMES: "a:b",
  }, { count: 1, names: ["a", "b"] }],
  ["trailing backslash, our pid", {
    LISTEN_PID: String(PID),
    LISTEN_FDS: "1",
    LISTEN_FDNAMES: "a\\",
  }, { code: "INVALID_LISTEN_FDNAMES", errno: EINVAL }],
  ["trailing backslash, another pid", {
    LISTEN_PID: String(PID + 1),
    LISTEN_FDS: "1",
    LISTEN_FDNAMES: "a\\",
  }, { code: "INVALID_LISTEN_FDNAMES", errno: EINVAL }],
  ["trailing backslash, no LISTEN_PID", { LISTEN_FDNAMES: "\\" }, {
    code: "INVALID_LISTEN_FDNAMES",
    errno: EINVAL,
  }],
];

for (const [title, env, expected] of CASES) {
  test(`parseListenEnv(): ${title}`, () => {
    if ("code" in expected) {
      assert.throws(() => parseListenEnv(env, PID), (error: unknown) => {
        assert.ok(error instanceof ActivationError);
        assert.equal(error.code, expected.code);
        assert.equal(error.errno, expected.errno);
        return true;
      });
    } else {
      const plan = parseListenEnv(env, PID);
      assert.equal(plan.count, expected.count);
      assert.deepEqual(plan.names, expected.names);
    }
  });
}

test("parseListenEnv() names the variable and quotes the value in errors", () => {
  assert.throws(
    () => parseListenEnv({ LISTEN_PID: String(PID), LISTEN_FDS: "2x" }, PID),
    {
      message:
        'Invalid LISTEN_FDS "2x": not an integer, EINVAL (invalid argument)',
    },
  );
});

test("parseListenEnv() compares LISTEN_PIDFDID only when asked, and skips it without pidfs", () => {
  const env = {
    LISTEN_PID: String(PID),
    LISTEN_PIDFDID: "77",
    LISTEN_FDS: "1",
  };
  assert.equal(parseListenEnv(env, PID).count, 1);
  assert.equal(parseListenEnv(env, PID, { pidfdId: () => 77n }).count, 1);
  assert.equal(parseListenEnv(env, PID, { pidfdId: () => 78n }).count, 0);
  assert.equal(parseListenEnv(env, PID, { pidfdId: () => undefined }).count, 1);
  assert.throws(
    () => parseListenEnv({ ...env, LISTEN_PIDFDID: "-1" }, PID),
    { code: "INVALID_LISTEN_PIDFDID", errno: ERANGE },
  );
  assert.throws(
    () => parseListenEnv({ ...env, LISTEN_PIDFDID: "x" }, PID),
    { code: "INVALID_LISTEN_PIDFDID", errno: EINVAL },
  );
});

test("parseListenEnv() reads LISTEN_PIDFDID only for our pid", () => {
  let asked = false;
  const plan = parseListenEnv(
    { LISTEN_PID: String(PID + 1), LISTEN_PIDFDID: "garbage", LISTEN_FDS: "1" },
    PID,
    { pidfdId: () => (asked = true, 1n) },
  );
  assert.equal(plan.count, 0);
  assert.equal(asked, false);
});
