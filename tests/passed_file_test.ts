// readPassedFile(): a FIFO, a regular file and a character device (a pty's
// terminal, which waits for data) opened as ListenFIFO= and ListenSpecial=
// open them, passed at fd 3 to tests/fixtures/read_passed.ts in this
// runtime; and the fds it refuses.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { stop, within } from "./_activator.ts";
import {
  launch,
  type Launched,
  type LaunchFd,
  startPython,
} from "./_launch.ts";
import { ActivationError, readPassedFile } from "./_lib.ts";
import { fixtureCommand } from "./_runtime.ts";

// Nothing but the variables and the system calls.
const DENO_FLAGS = ["--allow-env", "--allow-ffi", "--allow-read"];

const root = mkdtempSync(join(tmpdir(), "passed-file-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Starts the fixture with `fd` passed as fd 3, named "input". */
function launchReader(
  fd: LaunchFd,
  uri = "fd://input",
  path?: string,
): Promise<Launched> {
  return launch({
    argv: [
      ...fixtureCommand("read_passed", { denoFlags: DENO_FLAGS }),
      uri,
      ...(path === undefined ? [] : [path]),
    ],
    fds: [fd],
    env: { LISTEN_PID: "$PID", LISTEN_FDS: "1", LISTEN_FDNAMES: "input" },
  });
}

async function event(
  launched: Launched,
  what: string,
): Promise<Record<string, unknown>> {
  const line = await within(
    launched.nextLine().catch((error: Error) => {
      throw new Error(`${error.message}\n${launched.stderr()}`);
    }),
    what,
  );
  return JSON.parse(line);
}

/** The data events until their text holds `expected`; the text. */
async function readUntil(launched: Launched, expected: string) {
  let text = "";
  while (!text.includes(expected)) {
    const next = await event(launched, JSON.stringify(expected));
    assert.equal(next.event, "data", JSON.stringify(next));
    text += next.text;
  }
  return text;
}

test("readPassedFile() streams a FIFO opened as ListenFIFO= opens it, writer after writer, until destroyed", async () => {
  const fifo = join(root, "control.fifo");
  execFileSync("mkfifo", [fifo]);
  const launched = await launchReader(
    { type: "fifo", path: fifo },
    "fd://input",
    fifo,
  );
  try {
    assert.deepEqual(await event(launched, "reading"), {
      event: "reading",
      fifo: true,
      special: false,
    });
    // Each write opens the FIFO, writes and closes it: a writer going away
    // does not end the stream, since the fd is open for writing too.
    writeFileSync(fifo, "first writer\n");
    assert.equal(await readUntil(launched, "first writer\n"), "first writer\n");
    writeFileSync(fifo, "second writer\n");
    assert.equal(
      await readUntil(launched, "second writer\n"),
      "second writer\n",
    );
    writeFileSync(fifo, "stop\n");
    await readUntil(launched, "stop\n");
    assert.deepEqual(await event(launched, "closed"), { event: "closed" });
    assert.equal(
      await within(launched.exited, "the exit"),
      0,
      launched.stderr(),
    );
  } finally {
    await stop(launched);
  }
});

test("readPassedFile() reads a regular file opened as ListenSpecial= opens it, to its end", async () => {
  const file = join(root, "status");
  const content = "line 1\n".repeat(20_000); // several reads of 64 KiB
  writeFileSync(file, content);
  const launched = await launchReader(
    { type: "file", path: file },
    "fd://3",
    file,
  );
  try {
    assert.deepEqual(await event(launched, "reading"), {
      event: "reading",
      fifo: false,
      special: true,
    });
    let text = "";
    for (;;) {
      const next = await event(launched, "data or end");
      if (next.event === "end") break;
      assert.equal(next.event, "data");
      text += next.text;
    }
    assert.ok(text === content, `${text.length} characters read`);
    assert.deepEqual(await event(launched, "closed"), { event: "closed" });
    assert.equal(
      await within(launched.exited, "the exit"),
      0,
      launched.stderr(),
    );
  } finally {
    await stop(launched);
  }
});

// Holds a pty and writes each line of its stdin to the master side; the
// terminal side, a character device, is what the fixture reads.
const PTY = String.raw`
import json, os, sys
master, terminal = os.openpty()
print(json.dumps({"path": os.ttyname(terminal)}), flush=True)
for line in sys.stdin:
    os.write(master, line.encode())
    print(json.dumps({"wrote": line}), flush=True)
`;

test("readPassedFile() waits on a character device opened as ListenSpecial= opens it, and reads what arrives", async () => {
  const pty = startPython(PTY, {}, "pipe");
  let launched: Launched | undefined;
  try {
    const { path } = JSON.parse(await within(pty.lines.next(), "the pty"));
    launched = await launchReader({ type: "file", path }, "fd://input", path);
    assert.deepEqual(await event(launched, "reading"), {
      event: "reading",
      fifo: false,
      special: true,
    });
    // Nothing to read yet: the reader waits in poll() until a line comes.
    pty.child.stdin!.write("hello terminal\n");
    assert.equal(
      await readUntil(launched, "hello terminal\n"),
      "hello terminal\n",
    );
    pty.child.stdin!.write("stop\n");
    await readUntil(launched, "stop\n");
    assert.deepEqual(await event(launched, "closed"), { event: "closed" });
    assert.equal(
      await within(launched.exited, "the exit"),
      0,
      launched.stderr(),
    );
  } finally {
    pty.child.stdin!.end();
    if (launched !== undefined) await stop(launched);
    await stop(pty);
  }
});

test("readPassedFile() refuses a socket or a directory with UNSUITABLE_SOCKET saying what it is", async () => {
  const socket = await launchReader({ type: "tcp" });
  try {
    const failure = await event(socket, "the error");
    assert.deepEqual(failure, {
      event: "error",
      name: "ActivationError",
      code: "UNSUITABLE_SOCKET",
      message:
        "Cannot read fd://input: fd 3 is a socket, not a FIFO or a special file; listen() and listenDatagram() serve sockets",
    });
  } finally {
    await stop(socket);
  }
  const dir = join(root, "dir");
  mkdirSync(dir);
  const directory = await launchReader({ type: "file", path: dir });
  try {
    assert.deepEqual(await event(directory, "the error"), {
      event: "error",
      name: "ActivationError",
      code: "UNSUITABLE_SOCKET",
      message:
        "Cannot read fd://input: fd 3 is a directory, not a FIFO or a special file",
    });
  } finally {
    await stop(directory);
  }
});

test("readPassedFile() refuses a POSIX message queue (ListenMessageQueue=) with UNSUPPORTED: read() would give its status line, not its messages", async () => {
  const launched = await launchReader({
    type: "mqueue",
    name: `socket-activation-test-${process.pid}`,
  });
  try {
    assert.deepEqual(await event(launched, "the error"), {
      event: "error",
      name: "ActivationError",
      code: "UNSUPPORTED",
      message:
        "Cannot read fd://input: fd 3 is a POSIX message queue (ListenMessageQueue=), whose messages neither Deno nor Node can receive",
    });
  } finally {
    await stop(launched);
  }
});

test("readPassedFile() takes fd:// endpoints only, and only passed ones", () => {
  const cases: [string, string, RegExp][] = [
    [
      "unix:///run/app.fifo",
      "INVALID_ENDPOINT",
      /named fd:\/\/N or fd:\/\/name$/,
    ],
    ["fd://3", "FD_NOT_PASSED", /^Cannot read fd:\/\/3: systemd passed no fds/],
    ["fd://control", "NAME_NOT_FOUND", /systemd passed no fds/],
  ];
  for (const [uri, code, message] of cases) {
    assert.throws(() => readPassedFile(uri), (error: unknown) => {
      assert.ok(error instanceof ActivationError);
      assert.equal(error.code, code, error.message);
      assert.match(error.message, message);
      return true;
    });
  }
});
