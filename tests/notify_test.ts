// sd_notify(3) end to end: a sender process calls the library and a real
// unix datagram receiver (tests/_receiver.ts) reports what arrived: the
// bytes, the credentials the kernel attached and the fds, read on its side.
// Each "nothing is sent" case is followed by a valid datagram, which must be
// the first one the receiver gets.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe, test } from "node:test";
import { within } from "./_activator.ts";
import { queueRoom, startReceiver, withReceiver } from "./_receiver.ts";
import {
  runSender,
  startSender,
  type Step,
  stopSender,
} from "./fixtures/notify_launch.ts";
import {
  E2BIG,
  EAGAIN,
  EBADF,
  ECONNREFUSED,
  EINVAL,
  ENAMETOOLONG,
  ENOENT,
  ETIMEDOUT,
} from "./_errno.ts";

function uniqueName(label: string): string {
  return `socket-activation-test-${label}-${process.pid}-${
    Math.random().toString(36).slice(2)
  }`;
}

const own = { uid: process.getuid!(), gid: process.getgid!() };

// CAP_SYS_ADMIN (capability 21) lets a process put another pid in
// SCM_CREDENTIALS (the kernel's scm_check_creds()); the sender runs with
// the test's capabilities.
function hasCapSysAdmin(): boolean {
  const status = readFileSync("/proc/self/status", "utf8");
  const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return match !== null && ((BigInt(`0x${match[1]}`) >> 21n) & 1n) === 1n;
}

for (const kind of ["path", "abstract"] as const) {
  const article = kind === "path" ? "a" : "an";
  test(`notify() sends the exact bytes with the sender's credentials to ${article} ${kind} socket`, async () => {
    await withReceiver(async (receiver) => {
      if (kind === "abstract") assert.match(receiver.address, /^@/);
      else assert.match(receiver.address, /^\//);
      const state = "READY=1\nSTATUS=Serving on fd 3 — ünïcode ✓";
      const sender = startSender({
        steps: [{ call: "notify", arg: state }],
        env: { NOTIFY_SOCKET: receiver.address },
      });
      assert.deepEqual(await sender.next(), { step: 0, result: true });
      const datagram = await receiver.next();
      assert.deepEqual(datagram.data, new TextEncoder().encode(state));
      assert.deepEqual(datagram.credentials, { pid: sender.pid, ...own });
      assert.deepEqual(datagram.fds, []);
      assert.equal(datagram.truncated, false);
      assert.equal(await sender.exited, 0);
    }, kind === "abstract" ? { abstract: uniqueName("abstract") } : {});
  });
}

test("notify() to a manager that does not read fails at once with EAGAIN once its queue is full, timers keep ticking, and it sends again once the manager reads", async () => {
  // A blocking send, as libsystemd makes, would never return from the call
  // after these: no outcome, no tick.
  const fits = queueRoom();
  const calls = fits + 3;
  await withReceiver(async (receiver) => {
    const steps: Step[] = [{ ticker: true }];
    for (let i = 0; i < calls; i++) {
      steps.push({ call: "notify", arg: `N=${i}` }, { tick: true });
    }
    steps.push({ waitLine: true }, { call: "notify", arg: "AFTER=1" });
    const sender = startSender({
      steps,
      env: { NOTIFY_SOCKET: receiver.address },
    });
    try {
      let ticks = -1;
      for (let i = 0; i < calls; i++) {
        const outcome = await within(sender.next(), `notify N=${i}`);
        assert.equal(outcome.step, 1 + 2 * i);
        if (i < fits) {
          assert.equal(outcome.result, true, JSON.stringify(outcome));
        } else {
          assert.equal(outcome.error?.code, "NOTIFY_FAILED");
          assert.equal(outcome.error?.errno, EAGAIN);
          assert.match(
            outcome.error!.message,
            /sendmsg\(\) failed with EAGAIN \(resource temporarily unavailable\), its queue is full/,
          );
        }
        // The interval timer fired after the call returned.
        const tick = await within(sender.next(), `the tick after N=${i}`);
        assert.equal(tick.step, 2 + 2 * i);
        assert.ok((tick.result as number) > ticks, JSON.stringify(tick));
        ticks = tick.result as number;
      }
      assert.equal(await receiver.received(), 0);
      await receiver.resume();
      // What was queued arrives in order; what failed was not sent.
      for (let i = 0; i < fits; i++) {
        assert.equal((await within(receiver.next(), `N=${i}`)).text, `N=${i}`);
      }
      sender.send("go");
      assert.deepEqual(await within(sender.next(), "AFTER=1"), {
        step: 2 + 2 * calls,
        result: true,
      });
      assert.equal((await within(receiver.next(), "AFTER=1")).text, "AFTER=1");
      assert.equal(await within(sender.exited, "the exit"), 0);
    } finally {
      await stopSender(sender);
    }
  }, { paused: true });
});

test("notify() returns false and sends nothing when NOTIFY_SOCKET is unset", async () => {
  await withReceiver(async (receiver) => {
    const outcomes = await runSender({
      steps: [
        { call: "notify", arg: "FIRST=1" },
        { call: "notifyWithFds", arg: "FDSTORE=1", fds: [1] },
        { set: { NOTIFY_SOCKET: receiver.address } },
        { call: "notify", arg: "NEXT=1" },
      ],
    });
    assert.deepEqual(outcomes, [
      { step: 0, result: false },
      { step: 1, result: false },
      { step: 3, result: true },
    ]);
    assert.equal((await receiver.next()).text, "NEXT=1");
  });
});

test("each helper sends exactly its assignment", async () => {
  const cases: [Step, string][] = [
    [{ call: "ready" }, "READY=1"],
    [{ call: "stopping" }, "STOPPING=1"],
    [{ call: "status", arg: "Serving 3 clients" }, "STATUS=Serving 3 clients"],
    [{ call: "status", arg: "" }, "STATUS="],
    [{ call: "errno", arg: 2 }, "ERRNO=2"],
    [{ call: "errno", arg: 0 }, "ERRNO=0"],
    [{ call: "mainPid", arg: 4242 }, "MAINPID=4242"],
    [
      { call: "extendTimeout", arg: 10_000_000 },
      "EXTEND_TIMEOUT_USEC=10000000",
    ],
    [
      { call: "extendTimeout", arg: { bigint: "18446744073709551615" } },
      "EXTEND_TIMEOUT_USEC=18446744073709551615",
    ],
    [{ call: "watchdogPing" }, "WATCHDOG=1"],
    [{ call: "notify", arg: "" }, ""],
    // libsystemd sends strlen(state) bytes: a NUL ends the state.
    [{ call: "notify", arg: "READY=1\u0000STATUS=cut" }, "READY=1"],
  ];
  await withReceiver(async (receiver) => {
    // As many at a time as the receiver's queue holds: notify() does not
    // wait for a receiver that falls behind.
    for (let start = 0; start < cases.length; start += queueRoom()) {
      const chunk = cases.slice(start, start + queueRoom());
      const outcomes = await runSender({
        steps: chunk.map(([step]) => step),
        env: { NOTIFY_SOCKET: receiver.address },
      });
      assert.deepEqual(
        outcomes,
        chunk.map((_, step) => ({ step, result: true })),
      );
      for (const [step, expected] of chunk) {
        const datagram = await receiver.next();
        assert.equal(datagram.text, expected, JSON.stringify(step));
        assert.deepEqual(datagram.fds, []);
      }
    }
    assert.equal(await receiver.pending(), false);
  });
});

test("reloading() sends RELOADING=1 with MONOTONIC_USEC read from CLOCK_MONOTONIC", async () => {
  await withReceiver(async (receiver) => {
    // The sender reads the clock after this and before the receiver reads
    // the datagram: both bounds hold on any machine, however slow.
    const before = await receiver.clock();
    const outcomes = await runSender({
      steps: [{ call: "reloading" }],
      env: { NOTIFY_SOCKET: receiver.address },
    });
    assert.deepEqual(outcomes, [{ step: 0, result: true }]);
    const datagram = await receiver.next();
    const match = /^RELOADING=1\nMONOTONIC_USEC=([1-9][0-9]*)$/.exec(
      datagram.text,
    );
    assert.ok(match, datagram.text);
    const usec = Number(match[1]);
    assert.ok(
      before <= usec && usec <= datagram.at,
      `MONOTONIC_USEC=${usec} is not between ${before} and ${datagram.at}`,
    );
  });
});

test("helpers refuse a newline or an invalid number and send nothing", async () => {
  const invalid: [Step, string][] = [
    [{ call: "status", arg: "two\nlines" }, "TypeError"],
    [{ call: "status", arg: "READY=1\n" }, "TypeError"],
    [{ call: "errno", arg: -1 }, "RangeError"],
    [{ call: "errno", arg: 1.5 }, "RangeError"],
    [{ call: "mainPid", arg: -1 }, "RangeError"],
    [{ call: "extendTimeout", arg: -1 }, "RangeError"],
    [{ call: "extendTimeout", arg: { bigint: "-1" } }, "RangeError"],
  ];
  await withReceiver(async (receiver) => {
    const outcomes = await runSender({
      steps: [
        ...invalid.map(([step]) => step),
        { call: "notify", arg: "NEXT=1" },
      ],
      env: { NOTIFY_SOCKET: receiver.address },
    });
    invalid.forEach(([step, name], index) => {
      assert.equal(outcomes[index]?.error?.name, name, JSON.stringify(step));
    });
    assert.equal(outcomes[invalid.length]?.result, true);
    assert.equal((await receiver.next()).text, "NEXT=1");
  });
});

describe("notifyWithFds()", () => {
  const folder = mkdtempSync(join(tmpdir(), "notify-fds-"));
  const file = join(folder, "stored.txt");
  writeFileSync(file, "file content\n");
  after(() => rmSync(folder, { recursive: true, force: true }));

  test("notifyWithFds() passes readable fds of the right files", async () => {
    await withReceiver(async (receiver) => {
      const sender = startSender({
        steps: [{
          call: "notifyWithFds",
          arg: "FDSTORE=1\nFDNAME=x",
          fds: [3, 4, 3],
        }],
        env: { NOTIFY_SOCKET: receiver.address },
        fds: [{ pipe: "pipe bytes" }, { file }],
      });
      assert.deepEqual(await sender.next(), { step: 0, result: true });
      const datagram = await receiver.next();
      assert.equal(datagram.text, "FDSTORE=1\nFDNAME=x");
      assert.deepEqual(datagram.credentials, { pid: sender.pid, ...own });
      const [pipe, stored, again] = datagram.fds;
      assert.equal(datagram.fds.length, 3);
      assert.equal(pipe?.kind, "fifo");
      assert.equal(pipe?.access, "r");
      assert.match(pipe!.target, /^pipe:\[\d+\]$/);
      assert.equal(new TextDecoder().decode(pipe!.bytes), "pipe bytes");
      assert.equal(stored?.kind, "file");
      assert.equal(stored?.target, file);
      assert.equal(new TextDecoder().decode(stored!.bytes), "file content\n");
      // The same fd twice arrives as two fds of one pipe.
      assert.equal(again?.target, pipe.target);
      assert.notEqual(again?.fd, pipe.fd);
      assert.equal(await sender.exited, 0);
    });
  });

  test("notifyWithFds() with no fds sends the state alone", async () => {
    await withReceiver(async (receiver) => {
      const outcomes = await runSender({
        steps: [{ call: "notifyWithFds", arg: "FDSTORE=1", fds: [] }],
        env: { NOTIFY_SOCKET: receiver.address },
      });
      assert.deepEqual(outcomes, [{ step: 0, result: true }]);
      const datagram = await receiver.next();
      assert.equal(datagram.text, "FDSTORE=1");
      assert.deepEqual(datagram.fds, []);
    });
  });

  test("notifyWithFds() sends 253 fds, the kernel's limit", async () => {
    await withReceiver(async (receiver) => {
      const outcomes = await runSender({
        steps: [{
          call: "notifyWithFds",
          arg: "FDSTORE=1",
          fds: Array(253).fill(3),
        }],
        env: { NOTIFY_SOCKET: receiver.address },
        fds: [{ file }],
      });
      assert.deepEqual(outcomes, [{ step: 0, result: true }]);
      const datagram = await receiver.next();
      assert.equal(datagram.controlTruncated, false);
      assert.equal(datagram.fds.length, 253);
      assert.ok(datagram.fds.every((fd) => fd.target === file));
      const { held } = await receiver.closeFds();
      assert.deepEqual(held, []);
    }, { peekBytes: 1 });
  });

  test("notifyWithFds() refuses 254 fds with E2BIG and a closed fd with EBADF, sending nothing", async () => {
    await withReceiver(async (receiver) => {
      const outcomes = await runSender({
        steps: [
          { call: "notifyWithFds", arg: "FDSTORE=1", fds: Array(254).fill(1) },
          { call: "notifyWithFds", arg: "FDSTORE=1", fds: [1, 987] },
          { call: "notify", arg: "NEXT=1" },
        ],
        env: { NOTIFY_SOCKET: receiver.address },
      });
      assert.equal(outcomes[0]?.error?.code, "NOTIFY_FAILED");
      assert.equal(outcomes[0]?.error?.errno, E2BIG);
      assert.equal(outcomes[1]?.error?.code, "NOTIFY_FAILED");
      assert.equal(outcomes[1]?.error?.errno, EBADF);
      assert.equal(outcomes[2]?.result, true);
      const datagram = await receiver.next();
      assert.equal(datagram.text, "NEXT=1");
    });
  });
});

test("notify() refuses a NOTIFY_SOCKET that is not an absolute path or @name", async () => {
  // libsystemd 252's sockaddr_un_set_path(): EINVAL, except for a file
  // system path too long for sun_path with its NUL, which is ENAMETOOLONG
  // ("might be connectible via O_PATH indirection", which 252's
  // sd_notify() does not try). Checked against libsystemd.so.0 (252).
  const values: [string, number][] = [
    ["", EINVAL],
    ["@", EINVAL],
    ["/", EINVAL],
    ["relative/path", EINVAL],
    ["vsock:2:1", EINVAL],
    ["@" + "a".repeat(107), EINVAL], // 108 bytes: no room for the NUL
    ["/" + "a".repeat(107), ENAMETOOLONG],
    ["/" + "é".repeat(54), ENAMETOOLONG], // 109 bytes, 55 characters
  ];
  const steps: Step[] = values.flatMap(([value]): Step[] => [
    { set: { NOTIFY_SOCKET: value } },
    { call: "notify", arg: "READY=1" },
  ]);
  const outcomes = await runSender({ steps });
  assert.equal(outcomes.length, values.length);
  outcomes.forEach((outcome, index) => {
    const [value, errno] = values[index]!;
    assert.equal(outcome.error?.code, "INVALID_NOTIFY_SOCKET", value);
    assert.equal(outcome.error?.errno, errno, value);
  });
});

test("notify() reaches a path or an abstract name of 107 bytes, the longest", async () => {
  const folder = mkdtempSync(join(tmpdir(), "notify-long-"));
  try {
    const path = join(folder, "s".repeat(107 - folder.length - 1));
    assert.equal(new TextEncoder().encode(path).length, 107);
    const abstract = uniqueName("long").padEnd(106, "x");
    for (const options of [{ path }, { abstract }]) {
      await withReceiver(async (receiver) => {
        assert.equal(receiver.address.length, 107);
        const outcomes = await runSender({
          steps: [{ call: "notify", arg: "READY=1" }],
          env: { NOTIFY_SOCKET: receiver.address },
        });
        assert.deepEqual(outcomes, [{ step: 0, result: true }]);
        assert.equal((await receiver.next()).text, "READY=1");
      }, options);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("notify() fails with the kernel's errno where nothing listens", async () => {
  const folder = mkdtempSync(join(tmpdir(), "notify-gone-"));
  try {
    // A socket file whose receiver has gone: connection refused.
    const stale = join(folder, "stale");
    const receiver = await startReceiver({ path: stale });
    await receiver.close();
    const cases: [string, number][] = [
      [join(folder, "missing"), ENOENT],
      [stale, ECONNREFUSED],
      ["@" + uniqueName("nobody"), ECONNREFUSED],
    ];
    const outcomes = await runSender({
      steps: cases.flatMap(([value]): Step[] => [
        { set: { NOTIFY_SOCKET: value } },
        { call: "notify", arg: "READY=1" },
      ]),
    });
    cases.forEach(([value, errno], index) => {
      assert.equal(outcomes[index]?.error?.code, "NOTIFY_FAILED", value);
      assert.equal(outcomes[index]?.error?.errno, errno, value);
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("notify() with unsetEnv removes NOTIFY_SOCKET after success and after an error, and keeps it otherwise", async () => {
  await withReceiver(async (receiver) => {
    const outcomes = await runSender({
      steps: [
        { call: "notify", arg: "KEPT=1", options: { unsetEnv: false } },
        { env: ["NOTIFY_SOCKET"] },
        { call: "notify", arg: "UNSET=1", options: { unsetEnv: true } },
        { env: ["NOTIFY_SOCKET"] },
        { set: { NOTIFY_SOCKET: "relative" } },
        { call: "ready", options: { unsetEnv: false } },
        { env: ["NOTIFY_SOCKET"] },
        { call: "ready", options: { unsetEnv: true } },
        { env: ["NOTIFY_SOCKET"] },
        { set: { NOTIFY_SOCKET: receiver.address } },
        {
          call: "notifyWithFds",
          arg: "FDSTORE=1",
          fds: [999],
          options: { unsetEnv: true },
        },
        { env: ["NOTIFY_SOCKET"] },
      ],
      env: { NOTIFY_SOCKET: receiver.address },
    });
    assert.deepEqual(outcomes.map((o) => o.result ?? o.error?.code ?? o.env), [
      true,
      { NOTIFY_SOCKET: receiver.address },
      true,
      { NOTIFY_SOCKET: null },
      "INVALID_NOTIFY_SOCKET",
      { NOTIFY_SOCKET: "relative" },
      "INVALID_NOTIFY_SOCKET",
      { NOTIFY_SOCKET: null },
      "NOTIFY_FAILED",
      { NOTIFY_SOCKET: null },
    ]);
    assert.equal((await receiver.next()).text, "KEPT=1");
    assert.equal((await receiver.next()).text, "UNSET=1");
  });
});

test("notify() with { pid } sends in the name of that pid when privileged", async () => {
  // Putting another pid in SCM_CREDENTIALS needs CAP_SYS_ADMIN. Without it
  // (a non-root user) the kernel refuses with EPERM and the library sends
  // again with its own credentials, as libsystemd does: the receiver then
  // sees the sender's pid. A pid that does not exist fails with ESRCH even
  // for root, and falls back the same way.
  const privileged = hasCapSysAdmin();
  await withReceiver(async (receiver) => {
    const sender = startSender({
      steps: [
        { call: "notify", arg: "OTHER=1", options: { pid: process.pid } },
        { call: "ready", options: { pid: 0x3ffffff0 } },
        { call: "notify", arg: "SELF=1", options: { pid: 0 } },
      ],
      env: { NOTIFY_SOCKET: receiver.address },
    });
    for (let step = 0; step < 3; step++) {
      assert.deepEqual(await sender.next(), { step, result: true });
    }
    const other = await receiver.next();
    assert.equal(other.text, "OTHER=1");
    assert.deepEqual(other.credentials, {
      pid: privileged ? process.pid : sender.pid,
      ...own,
    });
    const missing = await receiver.next();
    assert.equal(missing.text, "READY=1");
    assert.deepEqual(missing.credentials, { pid: sender.pid, ...own });
    const self = await receiver.next();
    assert.equal(self.text, "SELF=1");
    assert.deepEqual(self.credentials, { pid: sender.pid, ...own });
    assert.equal(await sender.exited, 0);
  });
  if (own.uid === 0) assert.ok(privileged, "root here has CAP_SYS_ADMIN");
});

describe("notifyBarrier()", () => {
  test("notifyBarrier() resolves true once the receiver closes the pipe", async () => {
    await withReceiver(async (receiver) => {
      const sender = startSender({
        steps: [
          { call: "notifyBarrier", timeoutMs: 60_000 },
          { call: "notify", arg: "AFTER=1" },
        ],
        env: { NOTIFY_SOCKET: receiver.address },
      });
      let settled = false;
      const outcome = sender.next().finally(() => settled = true);
      const barrier = await receiver.next();
      assert.equal(barrier.text, "BARRIER=1");
      assert.deepEqual(barrier.credentials, { pid: sender.pid, ...own });
      assert.equal(barrier.fds.length, 1);
      assert.equal(barrier.fds[0]?.kind, "fifo");
      assert.equal(barrier.fds[0]?.access, "w");
      // Still waiting: a barrier that did not wait would have printed its
      // result and sent AFTER=1 well within this window.
      assert.equal(await receiver.quiet(300), true);
      assert.equal(settled, false);
      const closed = await receiver.closeFds();
      // Nothing after BARRIER=1 had arrived when the pipe was closed.
      assert.equal(closed.received, 1);
      assert.equal(closed.pendingBefore, false);
      assert.deepEqual(closed.held, []);
      assert.deepEqual(await outcome, { step: 0, result: true });
      assert.equal((await receiver.next()).text, "AFTER=1");
      assert.equal(await sender.exited, 0);
    });
  });

  test("notifyBarrier() resolves true at once with a receiver that closes fds as it reads them", async () => {
    await withReceiver(async (receiver) => {
      const outcomes = await runSender({
        steps: [{ call: "notifyBarrier", timeoutMs: 60_000 }],
        env: { NOTIFY_SOCKET: receiver.address },
      });
      assert.deepEqual(outcomes, [{ step: 0, result: true }]);
      assert.equal((await receiver.next()).text, "BARRIER=1");
    }, { closeFds: true });
  });

  test("notifyBarrier() rejects with NOTIFY_TIMEOUT while the receiver holds the pipe", async () => {
    await withReceiver(async (receiver) => {
      const outcomes = await runSender({
        steps: [
          { call: "notifyBarrier", timeoutMs: 100 },
          { call: "notify", arg: "AFTER=1" },
        ],
        env: { NOTIFY_SOCKET: receiver.address },
      });
      assert.equal(outcomes[0]?.error?.code, "NOTIFY_TIMEOUT");
      assert.equal(outcomes[0]?.error?.errno, ETIMEDOUT);
      assert.equal(outcomes[1]?.result, true);
      const barrier = await receiver.next();
      assert.equal(barrier.text, "BARRIER=1");
      assert.equal((await receiver.next()).text, "AFTER=1");
      // The receiver held the write end the whole time.
      const closed = await receiver.closeFds();
      assert.equal(closed.held.length, 0);
    });
  });

  test("notifyBarrier() returns false without NOTIFY_SOCKET", async () => {
    const outcomes = await runSender({
      steps: [{ call: "notifyBarrier", timeoutMs: 1000 }],
    });
    assert.deepEqual(outcomes, [{ step: 0, result: false }]);
  });
});
