// sd_watchdog_enabled() and the pinger, in real processes: WATCHDOG_PID must
// name a real pid, and the pings must reach a real receiver, whose own clock
// times them.

import assert from "node:assert/strict";
import { test } from "node:test";
import { queueRoom, startReceiver, withReceiver } from "./_receiver.ts";
import { within } from "./_activator.ts";
import {
  runSender,
  startSender,
  type Step,
  stopSender,
} from "./fixtures/notify_launch.ts";
import { EAGAIN, EINVAL, ENOENT, ERANGE } from "./_errno.ts";

type Expected = bigint | undefined | { code: string; errno: number };

// [WATCHDOG_USEC, WATCHDOG_PID, outcome], null for unset; `$PID` is the
// sender's own pid. Each row was checked against libsystemd.so.0 (252).
const CASES: [string | null, string | null, Expected][] = [
  [null, null, undefined],
  [null, "1", undefined],
  [null, "x", undefined], // WATCHDOG_PID is not read without WATCHDOG_USEC
  ["200000", null, 200000n],
  ["200000", "$PID", 200000n],
  ["1", "$PID", 1n],
  ["18446744073709551614", null, 18446744073709551614n],
  [" 5", null, 5n], // safe_atou64() skips leading whitespace
  ["0x10", null, 16n], // and takes strtoull()'s base prefixes
  ["200000", "1", undefined], // meant for another process (init)
  ["0", null, { code: "INVALID_WATCHDOG_USEC", errno: EINVAL }],
  ["18446744073709551615", null, {
    code: "INVALID_WATCHDOG_USEC",
    errno: EINVAL,
  }],
  ["18446744073709551616", null, {
    code: "INVALID_WATCHDOG_USEC",
    errno: ERANGE,
  }],
  ["", null, { code: "INVALID_WATCHDOG_USEC", errno: EINVAL }],
  ["x", null, { code: "INVALID_WATCHDOG_USEC", errno: EINVAL }],
  ["-1", null, { code: "INVALID_WATCHDOG_USEC", errno: ERANGE }],
  ["-0", null, { code: "INVALID_WATCHDOG_USEC", errno: EINVAL }],
  ["x", "1", { code: "INVALID_WATCHDOG_USEC", errno: EINVAL }],
  ["0", "x", { code: "INVALID_WATCHDOG_USEC", errno: EINVAL }],
  ["5", "0", { code: "INVALID_WATCHDOG_PID", errno: ERANGE }],
  ["5", "-1", { code: "INVALID_WATCHDOG_PID", errno: ERANGE }],
  ["5", "x", { code: "INVALID_WATCHDOG_PID", errno: EINVAL }],
  ["5", "", { code: "INVALID_WATCHDOG_PID", errno: EINVAL }],
];

function expectedOutcome(expected: Expected): unknown {
  if (expected === undefined) return { result: null };
  if (typeof expected === "bigint") {
    return { result: { bigint: String(expected) } };
  }
  return { error: expected };
}

for (const unsetEnv of [false, true]) {
  test(`watchdogEnabled() reads WATCHDOG_USEC and WATCHDOG_PID as libsystemd does (unsetEnv: ${unsetEnv})`, async () => {
    const steps: Step[] = CASES.flatMap(([usec, pid]): Step[] => [
      { set: { WATCHDOG_USEC: usec, WATCHDOG_PID: pid } },
      { call: "watchdogEnabled", options: { unsetEnv } },
      { env: ["WATCHDOG_USEC", "WATCHDOG_PID"] },
    ]);
    const outcomes = await runSender({ steps });
    assert.equal(outcomes.length, 2 * CASES.length);
    CASES.forEach(([usec, pid, expected], index) => {
      const row = JSON.stringify([usec, pid]);
      const outcome = outcomes[2 * index]!;
      const seen = outcome.error
        ? { error: { code: outcome.error.code, errno: outcome.error.errno } }
        : { result: outcome.result };
      assert.deepEqual(seen, expectedOutcome(expected), row);
      // Both are removed whatever the outcome, or both are kept; the pid
      // stands for itself here, so compare with what was set only when
      // it is not "$PID".
      const env = outcomes[2 * index + 1]!.env!;
      if (unsetEnv) {
        assert.deepEqual(env, { WATCHDOG_USEC: null, WATCHDOG_PID: null }, row);
      } else {
        assert.equal(env.WATCHDOG_USEC, usec, row);
        if (pid === "$PID") assert.match(env.WATCHDOG_PID!, /^[1-9]\d*$/, row);
        else assert.equal(env.WATCHDOG_PID, pid, row);
      }
    });
  });
}

test("startWatchdog() returns undefined without WATCHDOG_USEC or for another pid, and throws for an invalid one", async () => {
  const outcomes = await runSender({
    steps: [
      { call: "startWatchdog" },
      { set: { WATCHDOG_USEC: "200000", WATCHDOG_PID: "1" } },
      { call: "startWatchdog" },
      { set: { WATCHDOG_USEC: "0", WATCHDOG_PID: null } },
      { call: "startWatchdog" },
    ],
  });
  assert.deepEqual(outcomes[0], { step: 0, result: null });
  assert.deepEqual(outcomes[1], { step: 2, result: null });
  assert.equal(outcomes[2]?.error?.code, "INVALID_WATCHDOG_USEC");
  assert.equal(outcomes[2]?.error?.errno, EINVAL);
});

test("startWatchdog() pings every half interval until stop()", async () => {
  await withReceiver(async (receiver) => {
    const sender = startSender({
      steps: [
        { call: "startWatchdog" },
        { waitLine: true },
        { call: "stopWatchdog" },
        { call: "notify", arg: "STOPPED=1" },
        // Five ping intervals in which no ping may come.
        { hold: 500 },
        { call: "notify", arg: "EXITING=1" },
      ],
      env: { NOTIFY_SOCKET: receiver.address, WATCHDOG_USEC: "200000" },
    });
    try {
      assert.deepEqual(await sender.next(), {
        step: 0,
        result: { intervalUsec: { bigint: "200000" }, pingEveryMs: 100 },
      });
      const pings: number[] = [];
      for (let i = 0; i < 6; i++) {
        const ping = await within(receiver.next(), `Ping ${i + 1}`);
        assert.equal(ping.text, "WATCHDOG=1");
        assert.deepEqual(ping.credentials?.pid, sender.pid);
        pings.push(ping.at);
      }
      // The receiver's own timestamps, in µs: the cadence, not our speed.
      const spacings = pings.slice(1).map((at, i) => (at - pings[i]!) / 1000)
        .sort((a, b) => a - b);
      const median = spacings[Math.floor(spacings.length / 2)]!;
      assert.ok(
        median >= 60 && median <= 200,
        `Median spacing ${median} ms (${spacings.join(", ")})`,
      );
      sender.send("stop");
      assert.deepEqual(await sender.next(), { step: 2, result: true });
      // Pings sent before stop() may still be on their way; none after.
      let datagram = await within(receiver.next(), "STOPPED=1");
      while (datagram.text === "WATCHDOG=1") {
        datagram = await within(receiver.next(), "STOPPED=1");
      }
      assert.equal(datagram.text, "STOPPED=1");
      const exiting = await within(receiver.next(), "EXITING=1");
      assert.equal(exiting.text, "EXITING=1");
      assert.ok(
        exiting.at - datagram.at >= 400_000,
        `The window was ${(exiting.at - datagram.at) / 1000} ms`,
      );
      assert.equal(await within(sender.exited, "Exit"), 0);
    } finally {
      await stopSender(sender);
    }
  });
});

test("startWatchdog()'s timer does not keep the process alive", async () => {
  await withReceiver(async (receiver) => {
    // A ping every 30 s: a timer that held the process would hold it
    // long past the guard.
    const sender = startSender({
      steps: [{ call: "startWatchdog" }],
      env: { NOTIFY_SOCKET: receiver.address, WATCHDOG_USEC: "60000000" },
      natural: true,
    });
    sender.child.stdin!.end();
    try {
      assert.deepEqual(await sender.next(), {
        step: 0,
        result: { intervalUsec: { bigint: "60000000" }, pingEveryMs: 30000 },
      });
      assert.equal(
        await within(sender.exited, "The sender's exit"),
        0,
        sender.stderr(),
      );
      assert.equal(await receiver.pending(), false);
    } finally {
      await stopSender(sender);
    }
  });
});

test("startWatchdog() skips a ping that fails, reports each failure to onError and goes on", async () => {
  // Nothing listens at NOTIFY_SOCKET: every ping fails (ENOENT).
  const sender = startSender({
    steps: [
      { call: "startWatchdog", reportErrors: true },
      { waitLine: true },
      { call: "stopWatchdog" },
    ],
    env: {
      NOTIFY_SOCKET: "/nonexistent/socket-activation-test",
      WATCHDOG_USEC: "20000",
    },
  });
  try {
    assert.deepEqual(await within(sender.next(), "startWatchdog()"), {
      step: 0,
      result: { intervalUsec: { bigint: "20000" }, pingEveryMs: 10 },
    });
    // A pinger that stopped at the first failure would report one.
    for (let i = 0; i < 3; i++) {
      const { step, error } = await within(sender.next(), `failure ${i + 1}`);
      assert.equal(step, 0);
      assert.equal(error?.code, "NOTIFY_FAILED");
      assert.equal(error?.errno, ENOENT);
      assert.match(error!.message, /ENOENT \(no such file or directory\)/);
    }
    sender.send("stop");
    let outcome = await within(sender.next(), "stopWatchdog()");
    while (outcome.step === 0) outcome = await within(sender.next(), "stop");
    assert.deepEqual(outcome, { step: 2, result: true });
    assert.equal(await within(sender.exited, "the exit"), 0);
  } finally {
    await stopSender(sender);
  }
});

test("startWatchdog() survives a manager that stops reading: pings fail with EAGAIN while its queue is full and go out again once it reads", async () => {
  const fits = queueRoom();
  const receiver = await startReceiver({ paused: true });
  const sender = startSender({
    steps: [
      { call: "startWatchdog", reportErrors: true },
      { waitLine: true },
      { call: "stopWatchdog" },
      { call: "notify", arg: "STOPPED=1" },
    ],
    env: { NOTIFY_SOCKET: receiver.address, WATCHDOG_USEC: "20000" },
  });
  try {
    assert.equal((await within(sender.next(), "startWatchdog()")).step, 0);
    for (let i = 0; i < 2; i++) {
      const { step, error } = await within(sender.next(), `EAGAIN ${i + 1}`);
      assert.equal(step, 0);
      assert.equal(error?.code, "NOTIFY_FAILED");
      assert.equal(error?.errno, EAGAIN);
      assert.match(error!.message, /EAGAIN .*its queue is full/);
    }
    assert.equal(await receiver.received(), 0);
    await receiver.resume();
    // The pings queued before it stopped reading, then at least one sent
    // after: the pinger is still running.
    for (let i = 0; i <= fits; i++) {
      const ping = await within(receiver.next(), `ping ${i + 1}`);
      assert.equal(ping.text, "WATCHDOG=1");
      assert.equal(ping.credentials?.pid, sender.pid);
    }
    sender.send("stop");
    let datagram = await within(receiver.next(), "STOPPED=1");
    while (datagram.text === "WATCHDOG=1") {
      datagram = await within(receiver.next(), "STOPPED=1");
    }
    assert.equal(datagram.text, "STOPPED=1");
    assert.equal(await within(sender.exited, "the exit"), 0);
  } finally {
    await stopSender(sender);
    await receiver.close();
  }
});
