// socket-activate end to end, as users run it: through the ./cli export on
// Deno and the npm bin on Node (tests/_socket_activate.ts), with real
// children: shells, Python, tests/fixtures/notify_sender.ts and the serve()
// service of tests/fixtures/activated.ts. The tests wait on the events it
// prints, one per line on stderr.

import assert from "node:assert/strict";
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { httpGet, within } from "./_activator.ts";
import { REPORT, type Report } from "./_fd_report.ts";
import { PYTHON } from "./_launch.ts";
import { notify } from "./_lib.ts";
import { fixtureCommand } from "./_runtime.ts";
import { type Cli, startCli } from "./_socket_activate.ts";
import type { Step } from "./fixtures/notify_launch.ts";

const folder = mkdtempSync(join(tmpdir(), "socket-activate-test-"));
after(() => rmSync(folder, { recursive: true, force: true }));
let files = 0;
/** A path in this file's temporary folder, new each time. */
function fresh(name: string): string {
  return join(folder, `${files++}-${name}`);
}

/** The command that runs tests/fixtures/notify_sender.ts with `steps`. */
function sender(steps: Step[]): string[] {
  return [
    ...fixtureCommand("notify_sender", {
      denoFlags: ["--allow-env", "--allow-ffi"],
    }),
    JSON.stringify({ steps, natural: false }),
  ];
}

function pidOf(line: string): number {
  return Number(/pid (\d+)/.exec(line)![1]);
}

async function terminate(cli: Cli, signal: NodeJS.Signals = "SIGTERM") {
  if (cli.child.exitCode === null && cli.child.signalCode === null) {
    process.kill(cli.child.pid!, signal);
  }
  return await cli.exited;
}

// Usage errors: one line on stderr, exit status 2; the others 1.
const ERRORS: { args: string[]; status: number; message: RegExp }[] = [
  { args: ["--bogus", "--", "true"], status: 2, message: /--bogus/ },
  { args: ["-l"], status: 2, message: /--listen/ },
  { args: ["-l", "8080"], status: 2, message: /No COMMAND/ },
  { args: ["--", "true"], status: 2, message: /Nothing to listen on/ },
  {
    args: ["-l", "0", "--stop-timeout", "5x", "--", "true"],
    status: 2,
    message: /--stop-timeout "5x" is not a duration/,
  },
  {
    args: ["-l", "0", "--restart", "sometimes", "--", "true"],
    status: 2,
    message: /--restart "sometimes" is not a policy/,
  },
  {
    args: ["-l", "0", "--watchdog", "1s", "--", "true"],
    status: 2,
    message: /--watchdog needs --notify/,
  },
  {
    args: ["-l", "nowhere", "--", "true"],
    status: 2,
    message: /Invalid listen address "nowhere"/,
  },
  {
    args: ["-l", "0", "--fdname", "a:b", "--", "true"],
    status: 2,
    message: /2 names for 1 sockets/,
  },
  {
    args: ["-l", "0", "--fdname", "a b\u0001", "--", "true"],
    status: 2,
    message: /Invalid socket name/,
  },
  {
    args: ["-l", "127.0.0.1:0", "--", "no-such-program-here"],
    status: 1,
    message: /Cannot start "no-such-program-here": not found in PATH/,
  },
];

for (const { args, status, message } of ERRORS) {
  test(
    `socket-activate ${
      args.join(" ")
    } fails with one line and exit status ${status}`,
    async () => {
      const cli = startCli(args);
      assert.equal(await cli.exited, status);
      const lines = cli.stderr().trimEnd().split("\n");
      assert.equal(lines.length, 1, cli.stderr());
      assert.match(lines[0]!, /^socket-activate: /);
      assert.match(lines[0]!, message);
    },
  );
}

test("socket-activate --help shows the usage and real examples on stdout", async () => {
  const cli = startCli(["--help"]);
  assert.equal(await cli.exited, 0);
  assert.match(cli.stdout(), /^Usage: socket-activate \[OPTIONS\.\.\.\]/);
  assert.match(
    cli.stdout(),
    /socket-activate -l 8080 --fdname web --notify --watch src -- node server\.mjs/,
  );
  assert.match(cli.stdout(), /deno run --allow-env --allow-ffi/);
  assert.equal(cli.stderr(), "");
});

test("socket-activate opens every address form at fd 3, 4, … in order, named, and removes its unix sockets on exit", async () => {
  const path = fresh("web.sock");
  const uriPath = fresh("uri.sock");
  const abstract = `socket-activate-test-${process.pid}`;
  const forms = [
    "127.0.0.1:0",
    "[::1]:0",
    path,
    `@${abstract}`,
    "http://127.0.0.1:0",
    `unix://${uriPath}`,
    "0",
  ];
  const names = ["v4", "v6", "path", "abstract", "http", "uri", "any"];
  const cli = startCli([
    ...forms.flatMap((form) => ["-l", form]),
    "--fdname",
    names.join(":"),
    "--",
    PYTHON,
    "-c",
    REPORT,
  ]);
  const report = JSON.parse(
    await within(cli.nextLine(), "the report"),
  ) as Report;
  assert.equal(await cli.exited, 0);
  assert.deepEqual(report.env, {
    LISTEN_PID: String(report.pid),
    LISTEN_FDS: "7",
    LISTEN_FDNAMES: names.join(":"),
  });
  // The events name the real ports; the child sees the same addresses.
  const listening = cli.events().filter((line) => line.startsWith("listening"))
    .map((line) => /^listening on (.*) as fd (\d+) \((.*)\)$/.exec(line)!);
  assert.deepEqual(listening.map((match) => match[3]), names);
  const passed = report.fds.filter((fd) => fd.fd > 2);
  assert.deepEqual(passed.map((fd) => fd.fd), [3, 4, 5, 6, 7, 8, 9]);
  const shown = passed.map((fd) =>
    Array.isArray(fd.address)
      ? fd.family === "AF_INET6"
        ? `[${fd.address[0]}]:${fd.address[1]}`
        : `${fd.address[0]}:${fd.address[1]}`
      : fd.address
  );
  assert.deepEqual(shown, listening.map((match) => match[1]));
  assert.deepEqual(shown.slice(2, 4), [path, `@${abstract}`]);
  assert.equal(shown[5], uriPath);
  assert.match(shown[6]!, /^\[::\]:\d+$/);
  for (const fd of passed) {
    assert.equal(fd.type, "SOCK_STREAM");
    assert.equal(fd.listening, 1);
    assert.equal(fd.inheritable, true);
  }
  // Nothing else than stdio and the sockets reached the child.
  assert.deepEqual(report.fds.map((fd) => fd.fd), [
    0,
    1,
    2,
    ...passed.map((fd) => fd.fd),
  ]);
  assert.equal(existsSync(path), false);
  assert.equal(existsSync(uriPath), false);
});

test("socket-activate --config opens every [listen] entry, named by its key or name, with its mode", async () => {
  const admin = fresh("admin.sock");
  const config = fresh("app.toml");
  writeFileSync(
    config,
    `[listen]
web = "http://127.0.0.1:0"
admin = { uri = "unix://${admin}", mode = "0600" }
metrics = { uri = "http://127.0.0.1:0", name = "prometheus" }
`,
  );
  const cli = startCli([
    "--config",
    config,
    "--",
    "sh",
    "-c",
    `stat -c %a ${admin}; echo "$LISTEN_FDS $LISTEN_FDNAMES"`,
  ]);
  assert.equal(await within(cli.nextLine(), "the mode"), "600");
  assert.equal(await cli.nextLine(), "3 web:admin:prometheus");
  assert.equal(await cli.exited, 0);
  assert.equal(existsSync(admin), false);
});

test("socket-activate -E sets variables for the child, and -E VAR passes this one's", async () => {
  const cli = startCli(
    [
      "-l",
      "127.0.0.1:0",
      "-E",
      "FOO=bar=baz",
      "-E",
      "PASSED",
      "--",
      "sh",
      "-c",
      'echo "$FOO|$PASSED"',
    ],
    { PASSED: "from the caller" },
  );
  assert.equal(
    await within(cli.nextLine(), "the variables"),
    "bar=baz|from the caller",
  );
  assert.equal(await cli.exited, 0);
});

test("socket-activate leaves a file at a unix socket path untouched and fails", async () => {
  const path = fresh("file.sock");
  writeFileSync(path, "not a socket");
  const cli = startCli(["-l", path, "--", "true"]);
  assert.equal(await cli.exited, 1);
  assert.match(
    cli.stderr(),
    /is a regular file, not a stale socket; it is left untouched/,
  );
  assert.equal(readFileSync(path, "utf8"), "not a socket");
});

test("socket-activate refuses a unix socket path a live server listens on, and leaves it", async () => {
  const path = fresh("live.sock");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    const before = lstatSync(path).ino;
    const cli = startCli(["-l", path, "--", "true"]);
    assert.equal(await cli.exited, 1);
    assert.match(cli.stderr(), /a server already listens on/);
    assert.equal(lstatSync(path).ino, before);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test("socket-activate replaces a stale socket at its path", async () => {
  const path = fresh("stale.sock");
  // A socket file nobody listens on any more (a server killed outright).
  const { execFileSync } = await import("node:child_process");
  execFileSync(PYTHON, [
    "-c",
    `import socket; socket.socket(socket.AF_UNIX).bind(${
      JSON.stringify(path)
    })`,
  ]);
  assert.ok(lstatSync(path).isSocket());
  const cli = startCli(["-l", path, "--", "sh", "-c", 'echo "$LISTEN_FDS"']);
  assert.equal(await within(cli.nextLine(), "the child"), "1");
  assert.equal(await cli.exited, 0);
  assert.equal(existsSync(path), false);
});

// A child that serves one connection on fd 3, then exits.
const SERVE_ONCE = String.raw`
import os, socket
listener = socket.socket(fileno=3)
connection, _ = listener.accept()
connection.sendall(("%s %s\n" % (os.environ["LISTEN_FDS"], os.getpid())).encode())
connection.close()
`;

test("socket-activate --on-demand starts the child on the first connection, and waits again after it exits", async () => {
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--on-demand",
    "--",
    PYTHON,
    "-c",
    SERVE_ONCE,
  ]);
  const address = /^listening on (.*):(\d+) as fd 3$/.exec(
    await cli.event(/^listening on/),
  )!;
  await cli.event(/^waiting for a connection$/);
  assert.equal(cli.events().some((line) => line.startsWith("started")), false);
  for (let round = 0; round < 2; round++) {
    const answer = await within(
      new Promise<string>((resolve, reject) => {
        let text = "";
        const connection = connect({
          host: address[1]!,
          port: Number(address[2]),
        });
        connection.setEncoding("utf8");
        connection.on("data", (chunk: string) => text += chunk);
        connection.on("end", () => resolve(text));
        connection.on("error", reject);
      }),
      "the answer",
    );
    const pid = pidOf(await cli.event(/^started pid \d+ with fd 3$/));
    assert.equal(answer, `1 ${pid}\n`);
    await cli.event(new RegExp(`^stopped pid ${pid} \\(exit 0\\)$`));
    await cli.event(/^waiting for a connection$/);
  }
  assert.equal(await terminate(cli), 0);
});

test("socket-activate passes SIGTERM to the child and exits with its status", async () => {
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--notify",
    "--",
    "sh",
    "-c",
    'trap "exit 42" TERM; systemd-notify --ready; while :; do sleep 1; done',
  ]);
  const pid = pidOf(await cli.event(/^ready pid/));
  process.kill(cli.child.pid!, "SIGTERM");
  await cli.event(new RegExp(`^stopping pid ${pid} \\(SIGTERM\\)$`));
  await cli.event(new RegExp(`^stopped pid ${pid} \\(exit 42\\)$`));
  assert.equal(await cli.exited, 42);
});

test("socket-activate passes SIGINT to the child and exits with 128 + the signal that ended it", async () => {
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--notify",
    "--",
    "sh",
    "-c",
    "systemd-notify --ready; exec sleep 60",
  ]);
  const pid = pidOf(await cli.event(/^ready pid/));
  process.kill(cli.child.pid!, "SIGINT");
  await cli.event(new RegExp(`^stopped pid ${pid} \\(signal SIGINT\\)$`));
  assert.equal(await cli.exited, 130);
});

test("socket-activate exits with the status of a child that exits by itself", async () => {
  const cli = startCli(["-l", "127.0.0.1:0", "--", "sh", "-c", "exit 3"]);
  assert.equal(await cli.exited, 3);
  assert.match(cli.stderr(), /stopped pid \d+ \(exit 3\)/);
});

test("socket-activate --stop-timeout kills a child that ignores SIGTERM", async () => {
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--notify",
    "--stop-timeout",
    "300ms",
    "--",
    "sh",
    "-c",
    'trap "" TERM; systemd-notify --ready; while :; do sleep 1; done',
  ]);
  const pid = pidOf(await cli.event(/^ready pid/));
  process.kill(cli.child.pid!, "SIGTERM");
  await cli.event(
    new RegExp(`^killing pid ${pid}: still running 300 ms after SIGTERM$`),
  );
  await cli.event(new RegExp(`^stopped pid ${pid} \\(signal SIGKILL\\)$`));
  assert.equal(await cli.exited, 137);
});

test("socket-activate --restart on-failure restarts a failing child, and gives up after 5 restarts within 10 s", async () => {
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--restart",
    "on-failure",
    "--",
    "sh",
    "-c",
    "exit 1",
  ]);
  await cli.event(/^giving up: 5 restarts within 10 s$/);
  assert.equal(await cli.exited, 1);
  const events = cli.events();
  assert.equal(events.filter((line) => line.startsWith("started")).length, 6);
  assert.equal(
    events.filter((line) =>
      /^restarting: pid \d+ exited \(exit 1\)$/.test(line)
    ).length,
    5,
  );
});

test("socket-activate --restart on-failure does not restart a child that exits with 0; always does", async () => {
  const clean = startCli([
    "-l",
    "127.0.0.1:0",
    "--restart",
    "on-failure",
    "--",
    "true",
  ]);
  assert.equal(await clean.exited, 0);
  assert.equal(
    clean.events().filter((line) => line.startsWith("started")).length,
    1,
  );
  const always = startCli([
    "-l",
    "127.0.0.1:0",
    "--restart",
    "always",
    "--",
    "true",
  ]);
  await always.event(/^giving up/);
  assert.equal(await always.exited, 0);
  assert.equal(
    always.events().filter((line) => line.startsWith("started")).length,
    6,
  );
});

test("socket-activate --notify reports what the child says, and answers its barrier", async () => {
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--fdname",
    "web",
    "--notify",
    "--",
    ...sender([
      { env: ["NOTIFY_SOCKET", "LISTEN_PID", "WATCHDOG_USEC"] },
      { call: "status", arg: "Starting" },
      { call: "ready" },
      { call: "reloading" },
      { call: "ready" },
      { call: "mainPid", arg: 4242 },
      { call: "errno", arg: 2 },
      { call: "extendTimeout", arg: 1_000_000 },
      { call: "notifyBarrier", timeoutMs: 5000 },
      { call: "stopping" },
    ]),
  ]);
  const env = JSON.parse(await within(cli.nextLine(), "the variables"))
    .env as Record<string, string | null>;
  assert.match(env.NOTIFY_SOCKET!, /^\/.*\/notify-1$/);
  assert.equal(env.WATCHDOG_USEC, null);
  const pid = Number(env.LISTEN_PID);
  for (
    const pattern of [
      `pid ${pid}: STATUS=Starting`,
      `ready pid ${pid} \\(\\d+ ms after start\\)`,
      `pid ${pid}: RELOADING=1`,
      `pid ${pid}: MAINPID=4242`,
      `pid ${pid}: ERRNO=2`,
      `pid ${pid}: EXTEND_TIMEOUT_USEC=1000000`,
      `pid ${pid}: STOPPING=1`,
      `stopped pid ${pid} \\(exit 0\\)`,
    ]
  ) {
    await cli.event(new RegExp(`^${pattern}$`));
  }
  const outcomes = cli.stdout().trim().split("\n").map((line) =>
    JSON.parse(line)
  );
  // The barrier returned: the activator closed its pipe.
  assert.deepEqual(outcomes.find((outcome) => outcome.step === 8), {
    step: 8,
    result: true,
  });
  assert.equal(await cli.exited, 0);
  // The notify socket and its folder are gone.
  assert.equal(existsSync(env.NOTIFY_SOCKET!), false);
});

test("socket-activate --notify gives each child its own NOTIFY_SOCKET: an old child cannot make the new one ready", async () => {
  const mark = fresh("started");
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--notify",
    "--",
    "sh",
    "-c",
    // The first child says READY=1; the next ones do not.
    `echo "$NOTIFY_SOCKET"; if [ ! -e ${mark} ]; then touch ${mark}; systemd-notify --ready; fi; exec sleep 60`,
  ]);
  const old = pidOf(await cli.event(/^ready pid/));
  const oldSocket = await cli.nextLine();
  process.kill(cli.child.pid!, "SIGHUP");
  await cli.event(/^restarting: SIGHUP$/);
  const fresh_ = pidOf(await cli.event(/^started pid/));
  const newSocket = await cli.nextLine();
  assert.notEqual(newSocket, oldSocket);
  const saved = process.env.NOTIFY_SOCKET;
  try {
    // READY=1 on the old child's socket counts for the old child only; the
    // STATUS= after it shows it was handled.
    process.env.NOTIFY_SOCKET = oldSocket;
    notify("READY=1\nSTATUS=from the old socket");
    await cli.event(new RegExp(`^pid ${old}: STATUS=from the old socket$`));
    assert.equal(
      cli.events().some((line) => line.startsWith(`ready pid ${fresh_}`)),
      false,
    );
    process.env.NOTIFY_SOCKET = newSocket;
    notify("READY=1");
    await cli.event(new RegExp(`^ready pid ${fresh_}`));
    await cli.event(new RegExp(`^stopping pid ${old} \\(SIGTERM\\)$`));
  } finally {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
  }
  assert.equal(await terminate(cli), 128 + 15);
});

test("socket-activate keeps the old child when the new one fails before READY=1", async () => {
  const mark = fresh("started");
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--notify",
    "--",
    "sh",
    "-c",
    `if [ -e ${mark} ]; then exit 1; fi; touch ${mark}; systemd-notify --ready; exec sleep 60`,
  ]);
  const old = pidOf(await cli.event(/^ready pid/));
  process.kill(cli.child.pid!, "SIGHUP");
  const failed = pidOf(await cli.event(/^started pid/));
  await cli.event(new RegExp(`^stopped pid ${failed} \\(exit 1\\)$`));
  await cli.event(new RegExp(`^restart failed: pid ${old} keeps serving$`));
  assert.equal(await terminate(cli), 128 + 15);
  assert.match(
    cli.stderr(),
    new RegExp(`stopped pid ${old} \\(signal SIGTERM\\)`),
  );
});

test("socket-activate --start-timeout stops a child that is not ready in time, and EXTEND_TIMEOUT_USEC= gives it more", async () => {
  const late = startCli([
    "-l",
    "127.0.0.1:0",
    "--notify",
    "--start-timeout",
    "2s",
    "--",
    ...sender([{ hold: 3000 }, { call: "ready" }]),
  ]);
  const pid = pidOf(await late.event(/^started pid/));
  await late.event(
    new RegExp(`^pid ${pid} did not say READY=1 within 2000 ms$`),
  );
  await late.event(new RegExp(`^stopping pid ${pid} \\(SIGTERM\\)$`));
  assert.equal(await late.exited, 128 + 15);

  const extended = startCli([
    "-l",
    "127.0.0.1:0",
    "--notify",
    "--start-timeout",
    "2s",
    "--",
    ...sender([
      { call: "extendTimeout", arg: 30_000_000 },
      { hold: 3000 },
      { call: "ready" },
      { call: "stopping" },
    ]),
  ]);
  const extendedPid = pidOf(await extended.event(/^ready pid/));
  await extended.event(new RegExp(`^stopped pid ${extendedPid} \\(exit 0\\)$`));
  assert.equal(await extended.exited, 0);
  assert.equal(
    extended.events().some((line) => line.includes("did not say READY=1")),
    false,
  );
});

test("socket-activate --watchdog sets WATCHDOG_USEC and WATCHDOG_PID, and restarts a child that stops pinging", async () => {
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--notify",
    "--watchdog",
    "1s",
    "--",
    ...sender([
      { env: ["WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID"] },
      { call: "ready" },
      { hold: 60_000 },
    ]),
  ]);
  const { env } = JSON.parse(await within(cli.nextLine(), "the variables"));
  assert.equal(env.WATCHDOG_USEC, "1000000");
  assert.equal(env.WATCHDOG_PID, env.LISTEN_PID);
  const pid = Number(env.LISTEN_PID);
  await cli.event(new RegExp(`^ready pid ${pid}`));
  await cli.event(
    new RegExp(`^watchdog timeout: pid ${pid} sent no WATCHDOG=1 in time$`),
  );
  await cli.event(new RegExp(`^stopping pid ${pid} \\(SIGABRT\\)$`));
  await cli.event(new RegExp(`^stopped pid ${pid} \\(signal SIGABRT\\)$`));
  await cli.event(new RegExp(`^restarting: watchdog timeout of pid ${pid}$`));
  const next = pidOf(await cli.event(/^started pid/));
  assert.notEqual(next, pid);
  assert.equal(await terminate(cli), 128 + 15);
});

test("socket-activate keeps an fd stored with FDSTORE=1 across a SIGKILL of the child and passes it to the next one under its name", async () => {
  const state = fresh("state");
  writeFileSync(state, "kept across restarts");
  const cli = startCli(
    [
      "-l",
      "127.0.0.1:0",
      "--fdname",
      "web",
      "--notify",
      "--restart",
      "on-failure",
      "--",
      ...fixtureCommand("activated", { denoFlags: ["--allow-all"] }),
    ],
    { ACTIVATED_STORE: state },
  );
  const port = Number(/:(\d+) as fd 3/.exec(await cli.event(/^listening/))![1]);
  await cli.event(/^stored fd "state"$/);
  const first = pidOf(await cli.event(/^ready pid/));
  process.kill(first, "SIGKILL");
  await cli.event(new RegExp(`^stopped pid ${first} \\(signal SIGKILL\\)$`));
  await cli.event(
    new RegExp(`^restarting: pid ${first} exited \\(signal SIGKILL\\)$`),
  );
  const second = pidOf(
    await cli.event(/^started pid \d+ with web=fd 3, state=fd 4$/),
  );
  await cli.event(new RegExp(`^ready pid ${second}`));
  const answer = JSON.parse((await httpGet({ port }, "/")).body);
  assert.equal(answer.pid, second);
  assert.deepEqual(answer.env.LISTEN_FDNAMES, "web:state");
  assert.equal(answer.env.LISTEN_FDS, "2");
  // The child's fd 4 is the file the first child opened.
  assert.equal(readlinkSync(`/proc/${second}/fd/4`), state);
  assert.equal(
    readFileSync(`/proc/${second}/fd/4`, "utf8"),
    "kept across restarts",
  );
  assert.equal(await terminate(cli), 0);
});

// A child in Python (socket.send_fds) that stores two pipes whose write
// ends it closed at once: "hup" is dropped on POLLHUP, "kept" (FDPOLL=0)
// is not. The next child removes "kept" with FDSTOREREMOVE=1.
const STORE_PIPES = String.raw`
import os, socket, time
names = os.environ.get("LISTEN_FDNAMES", "")
print(names, flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
if "kept" in names.split(":"):
    s.send(b"FDSTOREREMOVE=1\nFDNAME=kept")
else:
    hup_r, hup_w = os.pipe()
    kept_r, kept_w = os.pipe()
    os.close(hup_w)
    os.close(kept_w)
    socket.send_fds(s, [b"FDSTORE=1\nFDNAME=hup"], [hup_r])
    socket.send_fds(s, [b"FDSTORE=1\nFDNAME=kept\nFDPOLL=0"], [kept_r])
s.send(b"READY=1")
time.sleep(60)
`;

test("socket-activate drops a stored fd that hangs up unless FDPOLL=0, and removes one on FDSTOREREMOVE=1", async () => {
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--fdname",
    "web",
    "--notify",
    "--",
    PYTHON,
    "-c",
    STORE_PIPES,
  ]);
  assert.equal(await within(cli.nextLine(), "the first names"), "web");
  await cli.event(/^stored fd "hup"$/);
  await cli.event(/^stored fd "kept"$/);
  // The hang-up is seen on the next poll: before or after READY=1.
  await cli.seen(/^removed fd "hup" \(POLLHUP\)$/);
  await cli.seen(/^ready pid/);
  process.kill(cli.child.pid!, "SIGHUP");
  await cli.event(/^started pid \d+ with web=fd 3, kept=fd 4$/);
  assert.equal(await cli.nextLine(), "web:kept");
  await cli.event(/^removed fd "kept" \(FDSTOREREMOVE=1\)$/);
  await cli.event(/^ready pid/);
  process.kill(cli.child.pid!, "SIGHUP");
  await cli.event(/^started pid \d+ with web=fd 3$/);
  assert.equal(await cli.nextLine(), "web");
  assert.equal(await terminate(cli), 128 + 15);
  assert.equal(
    cli.events().some((line) => line.includes('removed fd "kept" (POLLHUP)')),
    false,
  );
});

test("socket-activate --watch restarts the child when a file changes", async () => {
  const watched = fresh("src");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(watched);
  const cli = startCli([
    "-l",
    "127.0.0.1:0",
    "--watch",
    watched,
    "--",
    "sleep",
    "60",
  ]);
  const first = pidOf(await cli.event(/^started pid/));
  await cli.event(/^ready pid/);
  writeFileSync(join(watched, "app.ts"), "changed");
  await cli.event(new RegExp(`^restarting: ${watched}/app\\.ts changed$`));
  await cli.event(/^started pid/);
  await cli.event(new RegExp(`^stopping pid ${first} \\(SIGTERM\\)$`));
  assert.equal(await terminate(cli), 128 + 15);
});

test("socket-activate gives a unix socket mode 0660, as the library binds it", async () => {
  const path = fresh("mode.sock");
  const cli = startCli(["-l", path, "--", "stat", "-c", "%a %F", path]);
  assert.equal(await within(cli.nextLine(), "the mode"), "660 socket");
  assert.equal(await cli.exited, 0);
});
