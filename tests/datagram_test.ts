// listenDatagram(): datagram sockets passed by the real
// systemd-socket-activate --datagram to tests/fixtures/datagram_echo.ts in
// this runtime (UDP over IPv4 and IPv6, unix datagram sockets), the datagram
// that started the service included; UDP sockets bound here; and the kinds
// it refuses.

import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { activate, type Activated, stop, within } from "./_activator.ts";
import { launch, type LaunchFd, startPython } from "./_launch.ts";
import { ActivationError, listenDatagram } from "./_lib.ts";
import { fixtureCommand, runtime } from "./_runtime.ts";

const DENO_FLAGS = ["--allow-env", "--allow-ffi", "--allow-net"];

const root = mkdtempSync(join(tmpdir(), "datagram-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
let paths = 0;
function socketPath(): string {
  return join(root, `${paths++}.sock`);
}

/** A UDP port free right now on `host`. */
async function freeUdpPort(host: string): Promise<number> {
  const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: host, port: 0 }, resolve);
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** A UDP client: sends, and reads the answers in order. */
async function udpClient(host: string) {
  const socket: Socket = createSocket(host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: host, port: 0 }, resolve);
  });
  const answers: { text: string; port: number }[] = [];
  const waiting: (() => void)[] = [];
  socket.on("message", (message, remote) => {
    answers.push({ text: message.toString(), port: remote.port });
    waiting.shift()?.();
  });
  return {
    port: socket.address().port,
    send(text: string, port: number): Promise<void> {
      return new Promise((resolve, reject) =>
        socket.send(
          text,
          port,
          host,
          (error) => error ? reject(error) : resolve(),
        )
      );
    },
    async answer(): Promise<{ text: string; port: number }> {
      if (answers.length === 0) {
        await within(
          new Promise<void>((resolve) => waiting.push(resolve)),
          "an answer",
        );
      }
      return answers.shift()!;
    },
    close(): Promise<void> {
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
}

/** The next JSON line of the fixture. */
async function event(
  server: { nextLine(): Promise<string>; stderr(): string },
  what: string,
): Promise<Record<string, unknown>> {
  const line = await within(
    server.nextLine().catch((error: Error) => {
      throw new Error(`${error.message}\n${server.stderr()}`);
    }),
    what,
  );
  return JSON.parse(line);
}

function activateEcho(
  listen: string[],
  options: { names?: string[]; args?: string[] } = {},
): Promise<Activated> {
  return activate(
    [
      ...fixtureCommand("datagram_echo", { denoFlags: DENO_FLAGS }),
      ...(options.args ?? ["udp://127.0.0.1:9"]),
    ],
    { listen, type: "datagram", names: options.names },
  );
}

for (const host of ["127.0.0.1", "::1"]) {
  test(`listenDatagram() receives the datagram that started the service (systemd-socket-activate -d, ${host}), answers, and exits once closed`, async () => {
    const port = await freeUdpPort(host);
    const server = await activateEcho([
      host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`,
    ]);
    const client = await udpClient(host);
    try {
      // This datagram makes systemd-socket-activate start the fixture.
      await client.send("first", port);
      assert.deepEqual(await event(server, "listening"), {
        event: "listening",
        address: {
          address: host,
          family: host.includes(":") ? "IPv6" : "IPv4",
          port,
        },
        // Deno's node:dgram cannot take an fd: the system calls serve it.
        native: runtime === "node",
      });
      assert.deepEqual(await event(server, "the first datagram"), {
        event: "message",
        text: "first",
        remote: {
          address: host,
          family: host.includes(":") ? "IPv6" : "IPv4",
          port: client.port,
          size: 5,
        },
      });
      const first = await client.answer();
      const pid = Number(first.text.split(" ")[0]);
      assert.deepEqual(first, { text: `${pid} first`, port });
      assert.equal(pid, server.child.pid);
      await client.send("second", port);
      assert.deepEqual(await client.answer(), { text: `${pid} second`, port });
      assert.equal((await event(server, "second")).text, "second");
      await client.send("close", port);
      assert.equal((await event(server, "close")).text, "close");
      assert.deepEqual(await event(server, "closed"), { event: "closed" });
      // Nothing is left waiting: the process ends by itself.
      assert.equal(await within(server.exited, "the exit"), 0, server.stderr());
    } finally {
      await client.close();
      await stop(server);
    }
  });
}

// A unix datagram client in Python (node:dgram has no unix sockets): binds
// its own path, sends each message, prints each answer as a JSON line.
const UNIX_CLIENT = String.raw`
import json, socket, sys
spec = json.loads(sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(spec["path"])
s.settimeout(10)
for text in spec["send"]:
    s.sendto(text.encode(), spec["server"])
    if text != "close":
        data, sender = s.recvfrom(1 << 20)
        print(json.dumps({"text": data.decode(), "from": sender}), flush=True)
`;

test("listenDatagram() serves a unix datagram socket systemd-socket-activate -d passed, on both runtimes through the system calls", async () => {
  const server = socketPath();
  const client = socketPath();
  const activated = await activateEcho([server], {
    names: ["echo"],
    args: ["fd://echo"],
  });
  const python = startPython(UNIX_CLIENT, {
    server,
    path: client,
    send: ["first", "x".repeat(100_000), "close"],
  });
  try {
    assert.deepEqual(await event(activated, "listening"), {
      event: "listening",
      address: { address: server, family: "unix", port: 0 },
      native: false,
    });
    const first = await event(activated, "the first datagram");
    assert.deepEqual(first, {
      event: "message",
      text: "first",
      remote: { address: client, family: "unix", port: 0, size: 5 },
    });
    const answer = JSON.parse(await within(python.lines.next(), "an answer"));
    const pid = activated.child.pid;
    assert.deepEqual(answer, { text: `${pid} first`, from: server });
    // A datagram larger than UDP's limit arrives whole.
    const big = await event(activated, "the big datagram");
    assert.equal((big.remote as { size: number }).size, 100_000);
    const bigAnswer = JSON.parse(await within(python.lines.next(), "answer"));
    assert.ok(
      bigAnswer.text === `${pid} ${"x".repeat(100_000)}`,
      `an answer of ${bigAnswer.text.length} characters`,
    );
    assert.equal((await event(activated, "close")).text, "close");
    assert.deepEqual(await event(activated, "closed"), { event: "closed" });
    assert.equal(
      await within(activated.exited, "the exit"),
      0,
      activated.stderr(),
    );
    assert.equal(await python.exited, 0, python.stderr());
  } finally {
    await stop(activated);
    await stop(python);
  }
});

test("listenDatagram() picks the passed socket named by options.name among several", async () => {
  const ports = [
    await freeUdpPort("127.0.0.1"),
    await freeUdpPort("127.0.0.1"),
  ];
  const server = await activateEcho(
    ports.map((port) => `127.0.0.1:${port}`),
    {
      names: ["a", "b"],
      args: ["udp://127.0.0.1:9", JSON.stringify({ name: "b" })],
    },
  );
  const client = await udpClient("127.0.0.1");
  try {
    // A datagram on either socket starts the service.
    await client.send("to b", ports[1]!);
    const listening = await event(server, "listening");
    assert.deepEqual(listening.address, {
      address: "127.0.0.1",
      family: "IPv4",
      port: ports[1],
    });
    assert.equal((await client.answer()).port, ports[1]);
  } finally {
    await client.close();
    await stop(server);
  }
});

for (const host of ["127.0.0.1", "::1"]) {
  test(`listenDatagram() binds udp:// on ${host} when nothing was passed`, async () => {
    const uri = host.includes(":") ? `udp://[${host}]:0` : `udp://${host}:0`;
    const socket = await listenDatagram(uri);
    const client = await udpClient(host);
    try {
      const { address, port } = socket.address();
      assert.equal(address, host);
      assert.ok(port > 0);
      const received = new Promise<[string, number]>((resolve) =>
        socket.once(
          "message",
          (message, remote) => resolve([message.toString(), remote.port]),
        )
      );
      await client.send("hello", port);
      assert.deepEqual(await within(received, "the datagram"), [
        "hello",
        client.port,
      ]);
    } finally {
      await client.close();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    }
  });
}

test("listenDatagram() fails with ADDRESS_IN_USE on a UDP port in use", async () => {
  const socket = await listenDatagram("udp://127.0.0.1:0");
  try {
    const { port } = socket.address();
    await assert.rejects(
      listenDatagram(`udp://127.0.0.1:${port}`),
      (error: unknown) => {
        assert.ok(error instanceof ActivationError);
        assert.equal(error.code, "ADDRESS_IN_USE");
        assert.match(
          error.message,
          new RegExp(`^Cannot listen on udp://127\\.0\\.0\\.1:${port}: `),
        );
        return true;
      },
    );
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
});

test("listenDatagram() refuses endpoints it cannot serve without a passed socket", async () => {
  const cases: [string, string, RegExp][] = [
    [
      "unix:///run/app/log.sock",
      "UNSUPPORTED",
      /binding a unix datagram socket is not supported \(let systemd pass it: ListenDatagram=\/run\/app\/log\.sock\)$/,
    ],
    [
      "http://127.0.0.1:8080",
      "INVALID_ENDPOINT",
      /a datagram endpoint is udp:/,
    ],
    ["fd://3", "FD_NOT_PASSED", /systemd passed no fds/],
    ["fd://log", "NAME_NOT_FOUND", /systemd passed no fds/],
  ];
  for (const [uri, code, message] of cases) {
    await assert.rejects(listenDatagram(uri), (error: unknown) => {
      assert.ok(error instanceof ActivationError);
      assert.equal(error.code, code, error.message);
      assert.match(error.message, message);
      return true;
    });
  }
});

/** What the echo fixture says when started with `fds` passed. */
async function fixtureError(
  uri: string,
  fds: LaunchFd[],
): Promise<{ event: Record<string, unknown>; ports: (number | undefined)[] }> {
  const launched = await launch({
    argv: [...fixtureCommand("datagram_echo", { denoFlags: DENO_FLAGS }), uri],
    fds,
    env: { LISTEN_PID: "$PID", LISTEN_FDS: String(fds.length) },
  });
  try {
    return {
      event: await event(launched, "the fixture's line"),
      ports: launched.fds.map((fd) => fd.port),
    };
  } finally {
    await stop(launched);
  }
}

test("listenDatagram() refuses a passed stream socket with UNSUITABLE_SOCKET naming listen()", async () => {
  const { event, ports } = await fixtureError("udp://127.0.0.1:9", [
    { type: "tcp" },
  ]);
  assert.deepEqual(event, {
    event: "error",
    name: "ActivationError",
    code: "UNSUITABLE_SOCKET",
    message:
      `Cannot listen on udp://127.0.0.1:9 through the socket systemd passed: fd 3 is a listening stream ipv4 socket on 127.0.0.1:${
        ports[0]
      }, not a datagram socket; listen() serves stream sockets`,
  });
});

// Connects a SOCK_SEQPACKET client to `path`, which makes
// systemd-socket-activate start the fixture, and waits until it is closed.
const SEQPACKET_CLIENT = String.raw`
import json, socket, sys
spec = json.loads(sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(spec["path"])
print("connected", flush=True)
s.settimeout(10)
s.recv(10)
`;

for (const fixture of ["datagram_echo", "listen_echo"]) {
  const name = fixture === "datagram_echo" ? "listenDatagram()" : "listen()";
  test(`${name} refuses a seqpacket socket (ListenSequentialPacket=) with UNSUPPORTED naming the kind`, async () => {
    const path = socketPath();
    const activated = await activate(
      [...fixtureCommand(fixture, { denoFlags: DENO_FLAGS }), "fd://3"],
      { listen: [path], type: "seqpacket" },
    );
    const client = startPython(SEQPACKET_CLIENT, { path });
    try {
      const failure = await event(activated, "the error");
      assert.equal(failure.code, "UNSUPPORTED");
      assert.equal(
        failure.message,
        `Cannot listen on fd://3: fd 3 is a listening seqpacket unix socket at ${path}, and neither Deno nor Node can use SOCK_SEQPACKET sockets (ListenSequentialPacket=)`,
      );
    } finally {
      await stop(activated);
      await stop(client);
    }
  });
}

// Sends "burst N" to the service, then reads nothing until told to on
// stdin; then reads the N datagrams and prints how many came, in order.
const BURST_CLIENT = String.raw`
import json, socket, sys
spec = json.loads(sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(spec["path"])
s.settimeout(10)
s.sendto(("burst %d" % spec["count"]).encode(), spec["server"])
sys.stdin.readline()
numbers = [int(s.recv(2000).decode().rstrip(".")) for _ in range(spec["count"])]
print(json.dumps({"received": len(numbers), "inOrder": numbers == list(range(spec["count"]))}), flush=True)
`;

test("listenDatagram()'s send() on a unix datagram socket waits while the peer's queue is full, and loses nothing", async () => {
  const server = socketPath();
  const client = socketPath();
  const activated = await activateEcho([server], { args: ["fd://3"] });
  // Far more than a unix datagram queue holds (max_dgram_qlen, 512 by
  // default, and the sender's buffer): most sends must wait for room.
  const count = 3000;
  const python = startPython(
    BURST_CLIENT,
    { server, path: client, count },
    "pipe",
  );
  try {
    assert.equal((await event(activated, "listening")).event, "listening");
    assert.equal((await event(activated, "the burst")).event, "message");
    assert.deepEqual(await event(activated, "the sends queued"), {
      event: "burst-queued",
      count,
    });
    // Only now does the client start reading.
    python.child.stdin!.write("read\n");
    assert.deepEqual(
      JSON.parse(await within(python.lines.next(), "the datagrams")),
      { received: count, inOrder: true },
    );
    assert.deepEqual(await event(activated, "the sends done"), {
      event: "burst-sent",
      count,
    });
  } finally {
    python.child.stdin!.end();
    await stop(activated);
    await stop(python);
  }
});
