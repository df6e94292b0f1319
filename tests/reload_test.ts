// onReload() in a real service process (tests/fixtures/notify_reload.ts)
// that gets real SIGHUPs, with a real notify receiver (tests/_receiver.ts)
// reporting every datagram: the exact sequence Type=notify-reload expects,
// the failure path, SIGHUPs during a reload, and the disposer.

import assert from "node:assert/strict";
import { test } from "node:test";
import { within } from "./_activator.ts";
import { onReload } from "./_lib.ts";
import { type Receiver, startReceiver } from "./_receiver.ts";
import {
  type Command,
  type Service,
  startService,
} from "./fixtures/notify_reload_launch.ts";
import { EINVAL, ENOENT } from "./_errno.ts";

async function withService(
  run: (service: Service, receiver: Receiver) => Promise<void>,
  options: { notifySocket?: string | null } = {},
): Promise<void> {
  const receiver = await startReceiver();
  const service = await startService(
    options.notifySocket === undefined
      ? receiver.address
      : options.notifySocket,
  );
  try {
    await run(service, receiver);
  } finally {
    if (service.child.exitCode === null && service.child.signalCode === null) {
      service.child.stdin!.end();
      await within(service.exited, "the service's exit");
    }
    await receiver.close();
  }
}

/** The next datagram, which must be RELOADING=1; returns MONOTONIC_USEC. */
async function nextReloading(receiver: Receiver): Promise<number> {
  const datagram = await within(receiver.next(), "RELOADING=1");
  const match = /^RELOADING=1\nMONOTONIC_USEC=([1-9][0-9]*)$/.exec(
    datagram.text,
  );
  assert.ok(match, JSON.stringify(datagram.text));
  return Number(match[1]);
}

async function nextText(receiver: Receiver): Promise<string> {
  return (await within(receiver.next(), "a datagram")).text;
}

test("onReload() refuses a handler that is not a function", () => {
  assert.throws(() => onReload(42 as never), TypeError);
});

test("onReload() on SIGHUP sends RELOADING=1 with MONOTONIC_USEC, runs the handler, then sends READY=1", async () => {
  await withService(async (service, receiver) => {
    // The clock is read in the service between these two readings.
    const before = await receiver.clock();
    service.hup();
    assert.deepEqual(await service.next(), { event: "handler", count: 1 });
    assert.deepEqual(await service.next(), { event: "signal" });
    const datagram = await within(receiver.next(), "RELOADING=1");
    const usec = Number(/MONOTONIC_USEC=(\d+)$/.exec(datagram.text)?.[1]);
    assert.match(datagram.text, /^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$/);
    assert.ok(
      before <= usec && usec <= datagram.at,
      `MONOTONIC_USEC=${usec} is not between ${before} and ${datagram.at}`,
    );
    assert.equal(datagram.credentials?.pid, service.pid);
    // The handler is still running: READY=1 must not have been sent.
    assert.equal(await receiver.received(), 1);
    assert.equal(await receiver.pending(), false);
    await service.command({ cmd: "finish" });
    assert.equal(await nextText(receiver), "READY=1");
    await service.command({ cmd: "notify", state: "MARKER=1" });
    assert.equal(await nextText(receiver), "MARKER=1");
  });
});

test("onReload() reports a failed reload with STATUS= and ERRNO=, then READY=1, and keeps serving reloads", async () => {
  const long = "x".repeat(2000);
  const cases: [Command, string, number][] = [
    // Node's system errors: a negative errno and a code.
    [
      {
        cmd: "fail",
        error: {
          message: "ENOENT: no such file",
          errno: -ENOENT,
          code: "ENOENT",
        },
      },
      "ENOENT: no such file",
      ENOENT,
    ],
    // ActivationError's errno is positive.
    [{ cmd: "fail", error: { message: "too big", errno: 90 } }, "too big", 90],
    // Only a code.
    [
      { cmd: "fail", error: { message: "denied", code: "EACCES" } },
      "denied",
      13,
    ],
    // A code that names no errno, and lines that become one.
    [
      {
        cmd: "fail",
        error: { message: "Invalid key\n  at line 2", code: "X" },
      },
      "Invalid key at line 2",
      EINVAL,
    ],
    // Not an Error at all.
    [{ cmd: "fail", error: { value: "plain string" } }, "plain string", EINVAL],
    // Cut, on one line.
    [{ cmd: "fail", error: { message: long } }, `${"x".repeat(1023)}…`, EINVAL],
  ];
  await withService(async (service, receiver) => {
    for (const [index, [command, status, errno]] of cases.entries()) {
      service.hup();
      assert.deepEqual(await service.next(), {
        event: "handler",
        count: index + 1,
      });
      assert.deepEqual(await service.next(), { event: "signal" });
      await nextReloading(receiver);
      await service.command(command);
      assert.equal(
        await nextText(receiver),
        `STATUS=Reload failed: ${status}\nERRNO=${errno}\nREADY=1`,
      );
      const reported = await service.next();
      assert.equal(reported.event, "error");
    }
    // A handler that throws before it returns a promise.
    await service.command({
      cmd: "throwNext",
      error: { message: "at once", errno: 5 },
    });
    service.hup();
    const count = cases.length + 1;
    assert.deepEqual(await service.next(), { event: "handler", count });
    assert.equal((await service.next()).event, "error");
    assert.deepEqual(await service.next(), { event: "signal" });
    await nextReloading(receiver);
    assert.equal(
      await nextText(receiver),
      "STATUS=Reload failed: at once\nERRNO=5\nREADY=1",
    );
    // Still alive, and the next reload succeeds.
    service.hup();
    assert.deepEqual(await service.next(), {
      event: "handler",
      count: count + 1,
    });
    assert.deepEqual(await service.next(), { event: "signal" });
    await nextReloading(receiver);
    await service.command({ cmd: "finish" });
    assert.equal(await nextText(receiver), "READY=1");
  });
});

test("onReload() turns SIGHUPs during a reload into one more reload after it", async () => {
  await withService(async (service, receiver) => {
    service.hup();
    assert.deepEqual(await service.next(), { event: "handler", count: 1 });
    assert.deepEqual(await service.next(), { event: "signal" });
    const first = await nextReloading(receiver);
    // One at a time: the kernel merges a signal sent while one is pending.
    for (let i = 0; i < 3; i++) {
      service.hup();
      assert.deepEqual(await service.next(), { event: "signal" });
    }
    assert.equal(await receiver.received(), 1);
    await service.command({ cmd: "finish" });
    assert.deepEqual(await service.next(), { event: "handler", count: 2 });
    assert.equal(await nextText(receiver), "READY=1");
    const second = await nextReloading(receiver);
    assert.ok(second > first, `${second} is not after ${first}`);
    assert.equal(await service.command({ cmd: "finish" }), 2);
    assert.equal(await nextText(receiver), "READY=1");
    // No third reload: the next datagram is the marker, and the count is 2.
    assert.equal(
      await service.command({ cmd: "notify", state: "MARKER=1" }),
      2,
    );
    assert.equal(await nextText(receiver), "MARKER=1");
  });
});

test("onReload()'s disposer removes the listener: a running reload finishes, a waiting one is dropped, and SIGHUP has its default effect again", async () => {
  await withService(async (service, receiver) => {
    service.hup();
    assert.deepEqual(await service.next(), { event: "handler", count: 1 });
    assert.deepEqual(await service.next(), { event: "signal" });
    await nextReloading(receiver);
    service.hup(); // would make one more reload
    assert.deepEqual(await service.next(), { event: "signal" });
    await service.command({ cmd: "dispose" });
    assert.equal(await service.command({ cmd: "finish" }), 1);
    assert.equal(await nextText(receiver), "READY=1");
    // Only the probe listens now.
    service.hup();
    assert.deepEqual(await service.next(), { event: "signal" });
    assert.equal(
      await service.command({ cmd: "notify", state: "MARKER=1" }),
      1,
    );
    assert.equal(await nextText(receiver), "MARKER=1");
    // Nothing listens: SIGHUP ends the process, as it did before.
    await service.command({ cmd: "unprobe" });
    service.hup();
    assert.equal(await within(service.exited, "the exit"), "SIGHUP");
    assert.equal(await receiver.pending(), false);
  });
});

test("onReload() without NOTIFY_SOCKET still runs the handler and reports nothing", async () => {
  await withService(async (service) => {
    service.hup();
    assert.deepEqual(await service.next(), { event: "handler", count: 1 });
    assert.deepEqual(await service.next(), { event: "signal" });
    await service.command({ cmd: "finish" });
    // An error report would come before this command's "done".
    assert.equal(await service.command({ cmd: "unprobe" }), 1);
  }, { notifySocket: null });
});

test("onReload() reports notifications it cannot send to onError and still runs the handler", async () => {
  await withService(async (service) => {
    service.hup();
    const reloading = await service.next();
    assert.equal(reloading.event, "error");
    assert.equal(reloading.event === "error" && reloading.errno, ENOENT);
    assert.equal(
      reloading.event === "error" && reloading.code,
      "NOTIFY_FAILED",
    );
    assert.deepEqual(await service.next(), { event: "handler", count: 1 });
    assert.deepEqual(await service.next(), { event: "signal" });
    await service.command({ cmd: "finish" });
    const ready = await service.next();
    assert.equal(ready.event === "error" && ready.errno, ENOENT);
  }, { notifySocket: "/nonexistent/socket-activation-reload-test" });
});
