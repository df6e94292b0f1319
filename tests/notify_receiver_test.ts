// createNotifyReceiver() against the library's own senders (notify(),
// notifyWithFds(), notifyBarrier() in tests/fixtures/notify_sender.ts, a
// process of its own), and against the Python receiver of
// tests/_receiver.ts: both must read the same datagrams the same way.

import assert from "node:assert/strict";
import { existsSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { within } from "./_activator.ts";
import { createNotifyReceiver, type NotifyReceiver } from "./_lib.ts";
import { startReceiver } from "./_receiver.ts";
import {
  runSender,
  type SenderFd,
  startSender,
  type Step,
} from "./fixtures/notify_launch.ts";

const own = { uid: process.getuid!(), gid: process.getgid!() };

async function withReceiver(
  run: (receiver: NotifyReceiver) => Promise<void>,
): Promise<void> {
  const receiver = createNotifyReceiver();
  try {
    await run(receiver);
  } finally {
    await receiver.close();
  }
}

async function send(
  receiver: NotifyReceiver,
  steps: Step[],
  fds: SenderFd[] = [],
) {
  return await runSender({ steps, env: { ...receiver.env }, fds });
}

test("createNotifyReceiver() makes a NOTIFY_SOCKET in a private folder, and close() removes both", async () => {
  const receiver = createNotifyReceiver();
  assert.deepEqual(receiver.env, { NOTIFY_SOCKET: receiver.path });
  assert.ok(statSync(receiver.path).isSocket());
  assert.equal(statSync(dirname(receiver.path)).mode & 0o777, 0o700);
  await receiver.close();
  assert.equal(existsSync(receiver.path), false);
  assert.equal(existsSync(dirname(receiver.path)), false);
  await assert.rejects(receiver.next(), /ended/);
});

test("createNotifyReceiver() receives notify()'s fields with the sender's credentials", async () => {
  await withReceiver(async (receiver) => {
    const sender = startSender({
      steps: [
        { call: "notify", arg: "READY=1\nSTATUS=Serving — ünïcode\nNOEQUALS" },
        { call: "status", arg: "second" },
      ],
      env: { ...receiver.env },
    });
    const first = await within(receiver.next(), "the first notification");
    assert.deepEqual(first.fields, {
      READY: "1",
      STATUS: "Serving — ünïcode",
    });
    assert.equal(first.text, "READY=1\nSTATUS=Serving — ünïcode\nNOEQUALS");
    assert.deepEqual([first.pid, first.uid, first.gid], [
      sender.pid,
      own.uid,
      own.gid,
    ]);
    assert.equal(first.fdCount, 0);
    const second = await within(receiver.next(), "the second notification");
    assert.equal(second.pid, first.pid);
    assert.deepEqual(second.fields, { STATUS: "second" });
    assert.equal(await sender.exited, 0);
  });
});

test("createNotifyReceiver() answers notifyBarrier() once it has read what came before", async () => {
  await withReceiver(async (receiver) => {
    const outcomes = await send(receiver, [
      { call: "notify", arg: "STATUS=before" },
      { call: "notifyBarrier", timeoutMs: 5000 },
    ]);
    assert.deepEqual(outcomes[1], { step: 1, result: true });
    assert.deepEqual((await receiver.next()).fields, { STATUS: "before" });
    const barrier = await receiver.next();
    assert.deepEqual(barrier.fields, { BARRIER: "1" });
    assert.equal(barrier.fdCount, 1);
    assert.deepEqual(receiver.fds, []);
  });
});

test("createNotifyReceiver() keeps FDSTORE=1 fds under their FDNAME= (stored by default), and drops them on FDSTOREREMOVE=1", async () => {
  const folder = mkdtempSync(join(tmpdir(), "notify-receiver-test-"));
  const file = join(folder, "state");
  writeFileSync(file, "state");
  try {
    await withReceiver(async (receiver) => {
      await send(receiver, [
        // FDPOLL=0: a pipe whose writer is gone hangs up at once.
        {
          call: "notifyWithFds",
          arg: "FDSTORE=1\nFDNAME=pipe\nFDPOLL=0",
          fds: [3],
        },
        { call: "notifyWithFds", arg: "FDSTORE=1", fds: [4] },
        { call: "notifyWithFds", arg: "NOT_STORED=1", fds: [4] },
        { call: "notify", arg: "STATUS=done" },
      ], [{ pipe: "data" }, { file }]);
      const counts = [];
      for (let index = 0; index < 4; index++) {
        counts.push((await receiver.next()).fdCount);
      }
      assert.deepEqual(counts, [1, 1, 1, 0]);
      const stored = receiver.fds;
      assert.deepEqual(stored.map((entry) => entry.name), ["pipe", "stored"]);
      // The fds are the receiver's (this process's), and what was sent.
      assert.match(readlinkSync(`/proc/self/fd/${stored[0]!.fd}`), /^pipe:/);
      assert.equal(readlinkSync(`/proc/self/fd/${stored[1]!.fd}`), file);
      await send(receiver, [
        { call: "notify", arg: "FDSTOREREMOVE=1\nFDNAME=pipe" },
      ]);
      await receiver.next();
      assert.deepEqual(receiver.fds.map((entry) => entry.name), ["stored"]);
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("createNotifyReceiver()'s messages end when it closes", async () => {
  const receiver = createNotifyReceiver();
  await send(receiver, [{ call: "ready" }]);
  const seen: Record<string, string>[] = [];
  const reading = (async () => {
    for await (const message of receiver.messages) {
      seen.push({ ...message.fields });
      if (message.fields.READY === "1") await receiver.close();
    }
  })();
  await within(reading, "the end of the messages");
  assert.deepEqual(seen, [{ READY: "1" }]);
});

// The same datagrams to both receivers: what each says it got must agree.
const STATES = [
  "READY=1",
  "STATUS=a\nb=c\n\nMAINPID=7",
  "STATUS=ünïcode ✓",
  "X=" + "y".repeat(4000),
];

test("createNotifyReceiver() reads datagrams as the Python receiver of the tests does", async () => {
  const python = await startReceiver({ closeFds: true });
  const receiver = createNotifyReceiver();
  try {
    const steps: Step[] = [];
    for (const state of STATES) {
      steps.push(
        { set: { NOTIFY_SOCKET: python.address } },
        { call: "notifyWithFds", arg: state, fds: [3] },
        { set: { NOTIFY_SOCKET: receiver.path } },
        { call: "notifyWithFds", arg: state, fds: [3] },
      );
    }
    await runSender({ steps, fds: [{ pipe: "" }] });
    for (const state of STATES) {
      const theirs = await python.next();
      const ours = await receiver.next();
      assert.equal(ours.text, theirs.text);
      assert.equal(ours.text, state);
      assert.deepEqual(
        { pid: ours.pid, uid: ours.uid, gid: ours.gid },
        theirs.credentials,
      );
      assert.equal(ours.fdCount, theirs.fds.length);
    }
  } finally {
    await receiver.close();
    await python.close();
  }
});
