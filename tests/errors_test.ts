// The errors of listenFds() and getSystemdSocket() in a real process: a closed
// fd inside the announced range, malformed variables, and `unsetEnv` on every
// path, errors included (SPEC section 2, step 7).

import assert from "node:assert/strict";
import { test } from "node:test";
import type { LaunchFd } from "./_launch.ts";
import { runtime } from "./_runtime.ts";
import {
  type ProbeReport,
  type ProbeSpec,
  runProbe,
} from "./fixtures/probe_launch.ts";
import { LISTEN_VARIABLES } from "./_env.ts";
import { EBADF, EINVAL, ERANGE } from "./_errno.ts";

const TCP: LaunchFd = { type: "tcp" };
const CALLS = ["listenFds", "getSystemdSocket"] as const;

function errorOf(report: ProbeReport) {
  assert.ok(
    report.error,
    `Expected an error, got ${JSON.stringify(report.result)}`,
  );
  return report.error;
}

for (const call of CALLS) {
  test(`${call}() fails with CLOEXEC_FAILED naming a closed fd inside the range`, async () => {
    // The hole is made inside the probe: both runtimes take free low fds at
    // start-up, so an fd the launcher leaves out would not stay closed.
    const report = await runProbe(
      { inspect: 3, close: 4, call },
      { fds: [TCP, TCP, TCP], env: { LISTEN_PID: "$PID", LISTEN_FDS: "3" } },
    );
    const error = errorOf(report);
    assert.equal(error.name, "ActivationError");
    assert.equal(error.code, "CLOEXEC_FAILED");
    assert.equal(error.errno, EBADF);
    assert.match(error.message, /\bfd 4\b/);
    assert.match(error.message, /EBADF/);
    assert.equal(report.before[1], null);
    // The fd before the hole got the flag; libsystemd stops at the first
    // failure, so on Deno the one after it did not.
    assert.equal(report.after[0], true);
    assert.equal(report.after[1], null);
    assert.equal(report.after[2], runtime === "node");
  });
}

interface BadCase {
  title: string;
  env: Record<string, string>;
  code: string;
  errno: number;
  /** Texts the message must contain. */
  mentions: string[];
}

const BAD: BadCase[] = [
  {
    title: "LISTEN_PID is not a number",
    env: { LISTEN_PID: "abc", LISTEN_FDS: "1" },
    code: "INVALID_LISTEN_PID",
    errno: EINVAL,
    mentions: ["LISTEN_PID", '"abc"'],
  },
  {
    title: "LISTEN_PID is 0",
    env: { LISTEN_PID: "0", LISTEN_FDS: "1" },
    code: "INVALID_LISTEN_PID",
    errno: ERANGE,
    mentions: ["LISTEN_PID", '"0"'],
  },
  {
    title: "LISTEN_PIDFDID is not a number",
    env: { LISTEN_PID: "$PID", LISTEN_PIDFDID: "x1", LISTEN_FDS: "1" },
    code: "INVALID_LISTEN_PIDFDID",
    errno: EINVAL,
    mentions: ["LISTEN_PIDFDID", '"x1"'],
  },
  {
    title: "LISTEN_FDS has trailing junk",
    env: { LISTEN_PID: "$PID", LISTEN_FDS: "2x" },
    code: "INVALID_LISTEN_FDS",
    errno: EINVAL,
    mentions: ["LISTEN_FDS", '"2x"'],
  },
  {
    title: "LISTEN_FDS is negative",
    env: { LISTEN_PID: "$PID", LISTEN_FDS: "-1" },
    code: "INVALID_LISTEN_FDS",
    errno: EINVAL,
    mentions: ["LISTEN_FDS", '"-1"'],
  },
  {
    title: "LISTEN_FDS overflows",
    env: { LISTEN_PID: "$PID", LISTEN_FDS: "99999999999" },
    code: "INVALID_LISTEN_FDS",
    errno: ERANGE,
    mentions: ["LISTEN_FDS", '"99999999999"'],
  },
  {
    // Names are split before the pid is checked, as libsystemd does.
    title: "LISTEN_FDNAMES ends with a lone backslash, even for another pid",
    env: { LISTEN_PID: "1", LISTEN_FDS: "1", LISTEN_FDNAMES: "web\\" },
    code: "INVALID_LISTEN_FDNAMES",
    errno: EINVAL,
    mentions: ["LISTEN_FDNAMES", '"web\\\\"'],
  },
  {
    title: "LISTEN_FDNAMES has more names than fds",
    env: { LISTEN_PID: "$PID", LISTEN_FDS: "2", LISTEN_FDNAMES: "a:b:c" },
    code: "NAME_COUNT_MISMATCH",
    errno: EINVAL,
    mentions: ["2 fds", "3 names"],
  },
];

// getSystemdSocket() shares listenFds()'s parsing: one case per code is
// enough to show it reports the same errors.
const BAD_FOR: Record<(typeof CALLS)[number], BadCase[]> = {
  listenFds: BAD,
  getSystemdSocket: BAD.filter((bad, index) =>
    BAD.findIndex((other) => other.code === bad.code) === index
  ),
};

for (const call of CALLS) {
  for (const bad of BAD_FOR[call]) {
    test(`${call}() fails with ${bad.code} when ${bad.title}`, async () => {
      const report = await runProbe(
        { call, name: "a" },
        { fds: [TCP, TCP], env: bad.env },
      );
      const error = errorOf(report);
      assert.equal(error.name, "ActivationError");
      assert.equal(error.code, bad.code);
      assert.equal(error.errno, bad.errno);
      for (const text of bad.mentions) {
        assert.ok(
          error.message.includes(text),
          `${JSON.stringify(error.message)} does not mention ${text}`,
        );
      }
      assert.match(error.message, /^[A-Z]/);
      assert.doesNotMatch(error.message, /\.$/);
    });
  }
}

test("listenFds() makes the fds close-on-exec before it reports a name count mismatch", async () => {
  const report = await runProbe(
    { inspect: 2, call: "listenFds" },
    {
      fds: [TCP, TCP],
      env: { LISTEN_PID: "$PID", LISTEN_FDS: "2", LISTEN_FDNAMES: "a" },
    },
  );
  assert.equal(errorOf(report).code, "NAME_COUNT_MISMATCH");
  assert.deepEqual(report.after, [true, true]);
});

test("listenFds() fails with INVALID_LISTEN_FDS when LISTEN_FDS is 0", async () => {
  // libsystemd's rule; getSystemdSocket() takes 0 as "no socket" instead.
  const report = await runProbe(
    { call: "listenFds" },
    { fds: [TCP], env: { LISTEN_PID: "$PID", LISTEN_FDS: "0" } },
  );
  const error = errorOf(report);
  assert.equal(error.code, "INVALID_LISTEN_FDS");
  assert.equal(error.errno, EINVAL);
  assert.ok(error.message.includes('LISTEN_FDS "0"'), error.message);
});

const VARIABLES = LISTEN_VARIABLES;
const UNSET = Object.fromEntries(VARIABLES.map((name) => [name, null]));

interface Path {
  title: string;
  spec: ProbeSpec;
  env: Record<string, string>;
  /** The error code expected, or undefined for a return. */
  code: string | undefined;
}

// One of each way out of the library. $PIDFDID is the probe's real pidfd id,
// so every path has all four variables set.
const PATHS: Path[] = [
  {
    title: "a success",
    spec: { call: "listenFds" },
    env: {
      LISTEN_PID: "$PID",
      LISTEN_PIDFDID: "$PIDFDID",
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "a:b",
    },
    code: undefined,
  },
  {
    title: "variables meant for another process",
    spec: { call: "listenFds" },
    env: {
      LISTEN_PID: "1",
      LISTEN_PIDFDID: "1",
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "a:b",
    },
    code: undefined,
  },
  {
    title: "another process's pidfd id",
    spec: { call: "listenFds" },
    env: {
      LISTEN_PID: "$PID",
      LISTEN_PIDFDID: "1",
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "a:b",
    },
    code: undefined,
  },
  {
    title: "a bad LISTEN_FDNAMES",
    spec: { call: "listenFds" },
    env: {
      LISTEN_PID: "$PID",
      LISTEN_PIDFDID: "$PIDFDID",
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "a\\",
    },
    code: "INVALID_LISTEN_FDNAMES",
  },
  {
    title: "a bad LISTEN_PID",
    spec: { call: "listenFds" },
    env: {
      LISTEN_PID: "x",
      LISTEN_PIDFDID: "$PIDFDID",
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "a:b",
    },
    code: "INVALID_LISTEN_PID",
  },
  {
    title: "a bad LISTEN_FDS",
    spec: { call: "listenFds" },
    env: {
      LISTEN_PID: "$PID",
      LISTEN_PIDFDID: "$PIDFDID",
      LISTEN_FDS: "two",
      LISTEN_FDNAMES: "a:b",
    },
    code: "INVALID_LISTEN_FDS",
  },
  {
    title: "a closed fd",
    spec: { call: "listenFds", close: 4 },
    env: {
      LISTEN_PID: "$PID",
      LISTEN_PIDFDID: "$PIDFDID",
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "a:b",
    },
    code: "CLOEXEC_FAILED",
  },
  {
    title: "a name count mismatch",
    spec: { call: "listenFds" },
    env: {
      LISTEN_PID: "$PID",
      LISTEN_PIDFDID: "$PIDFDID",
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "a",
    },
    code: "NAME_COUNT_MISMATCH",
  },
  {
    title: "a name getSystemdSocket() does not find",
    spec: { call: "getSystemdSocket", name: "c" },
    env: {
      LISTEN_PID: "$PID",
      LISTEN_PIDFDID: "$PIDFDID",
      LISTEN_FDS: "2",
      LISTEN_FDNAMES: "a:b",
    },
    code: "NAME_NOT_FOUND",
  },
  {
    title: "LISTEN_FDS=0 in getSystemdSocket()",
    spec: { call: "getSystemdSocket" },
    env: {
      LISTEN_PID: "$PID",
      LISTEN_PIDFDID: "$PIDFDID",
      LISTEN_FDS: "0",
      LISTEN_FDNAMES: "",
    },
    code: undefined,
  },
];

for (const path of PATHS) {
  test(`unsetEnv removes all four variables after ${path.title}`, async () => {
    const report = await runProbe(
      { ...path.spec, unsetEnv: true, env: true },
      { fds: [TCP, TCP], env: path.env },
    );
    assert.equal(report.error?.code, path.code);
    assert.deepEqual(report.env, UNSET);
  });
}

// The default is to keep them: checked on a return and on an error.
const KEEPING: [boolean | undefined, Path[]][] = [
  [
    false,
    PATHS.filter((path) =>
      /another process$|bad LISTEN_FDNAMES|closed fd|not find/.test(path.title)
    ),
  ],
  [
    undefined,
    PATHS.filter((path) => /another process$|bad LISTEN_FDS/.test(path.title)),
  ],
];

for (const [unsetEnv, paths] of KEEPING) {
  for (const path of paths) {
    test(`unsetEnv ${unsetEnv} keeps the variables after ${path.title}`, async () => {
      const report = await runProbe(
        {
          ...path.spec,
          ...(unsetEnv === undefined ? {} : { unsetEnv }),
          env: true,
        },
        { fds: [TCP, TCP], env: path.env },
      );
      assert.equal(report.error?.code, path.code);
      for (const variable of VARIABLES) {
        assert.notEqual(report.env?.[variable], null, variable);
      }
      assert.equal(report.env?.LISTEN_FDS, path.env.LISTEN_FDS);
      assert.equal(report.env?.LISTEN_FDNAMES, path.env.LISTEN_FDNAMES);
    });
  }
}

test("unsetEnv false keeps the variables after a success", async () => {
  const report = await runProbe(
    { call: "listenFds", unsetEnv: false, env: true },
    {
      fds: [TCP, TCP],
      env: { LISTEN_PID: "$PID", LISTEN_FDS: "2", LISTEN_FDNAMES: "a:b" },
    },
  );
  assert.equal(report.error, undefined);
  assert.deepEqual(report.result, [{ fd: 3, name: "a" }, { fd: 4, name: "b" }]);
  assert.match(report.env?.LISTEN_PID ?? "", /^[1-9][0-9]*$/);
  assert.equal(report.env?.LISTEN_FDS, "2");
  assert.equal(report.env?.LISTEN_FDNAMES, "a:b");
});

const CHILD_CASES = [
  [true, "unsetEnv hides the variables from a child started afterwards"],
  [false, "unsetEnv false leaves the variables to a child started afterwards"],
] as const;

for (const [unsetEnv, title] of CHILD_CASES) {
  test(title, async () => {
    const report = await runProbe(
      { call: "listenFds", unsetEnv, child: true },
      {
        fds: [TCP, TCP],
        env: {
          LISTEN_PID: "$PID",
          LISTEN_PIDFDID: "$PIDFDID",
          LISTEN_FDS: "2",
          LISTEN_FDNAMES: "a:b",
        },
      },
    );
    assert.equal(report.error, undefined);
    const names = (report.childEnv ?? []).map((line) => line.split("=")[0]);
    assert.deepEqual(names.sort(), unsetEnv ? [] : [...VARIABLES].sort());
  });
}
