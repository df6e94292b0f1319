// socket-activate against the real systemd-socket-activate: for the same
// arguments, the child must see the same LISTEN_* variables (LISTEN_PID
// being its own pid) and the same open fds, each the same kind of socket
// on the same address. The child is tests/_fd_report.ts's Python program,
// so that no runtime's own fds get in the way.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { activate, freePort, stop, within } from "./_activator.ts";
import { PYTHON } from "./_launch.ts";
import { REPORT, type Report } from "./_fd_report.ts";
import { startCli } from "./_socket_activate.ts";

/** The report without the pid, after checking LISTEN_PID against it. */
function check(line: string): Omit<Report, "pid"> {
  const { pid, env, fds } = JSON.parse(line) as Report;
  assert.equal(env.LISTEN_PID, String(pid), line);
  return { env: { ...env, LISTEN_PID: "(own pid)" }, fds };
}

async function underSystemd(
  listen: readonly string[],
  extra: { names?: string[]; env?: Record<string, string> },
): Promise<Omit<Report, "pid">> {
  const activated = await activate([PYTHON, "-c", REPORT], {
    listen,
    names: extra.names,
    env: extra.env,
  });
  try {
    // systemd-socket-activate starts the child on the first connection.
    const [host, port] = listen[0]!.split(":") as [string, string];
    const trigger = connect({ host, port: Number(port) });
    trigger.on("error", () => {});
    const line = await within(activated.nextLine(), "the child's report");
    trigger.destroy();
    return check(line);
  } finally {
    await stop(activated);
  }
}

async function underSocketActivate(
  args: readonly string[],
): Promise<Omit<Report, "pid">> {
  const cli = startCli([...args, "--", PYTHON, "-c", REPORT]);
  try {
    return check(await within(cli.nextLine(), "the child's report"));
  } finally {
    if (cli.child.exitCode === null) process.kill(cli.child.pid!, "SIGTERM");
    await cli.exited;
  }
}

const CASES: {
  what: string;
  listen: (port: number, folder: string) => string[];
  names?: string[];
  env?: Record<string, string>;
}[] = [
  { what: "one TCP socket, no names", listen: (port) => [`127.0.0.1:${port}`] },
  {
    what: "TCP, IPv6 and unix sockets with a name each",
    listen: (port, folder) => [
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      join(folder, "web.sock"),
    ],
    names: ["web", "v6", "local"],
  },
  {
    what: "one name for two sockets, one abstract, and a variable",
    listen: (port) => [
      `127.0.0.1:${port}`,
      `@socket-activate-test-${process.pid}`,
    ],
    names: ["shared"],
    env: { FOO: "bar" },
  },
];

for (const { what, listen, names, env } of CASES) {
  test(`socket-activate gives the child the variables and fds systemd-socket-activate gives it: ${what}`, async () => {
    const folder = mkdtempSync(join(tmpdir(), "socket-activate-test-"));
    try {
      const port = await freePort();
      const addresses = listen(port, folder);
      const expected = await underSystemd(addresses, {
        ...names ? { names } : {},
        ...env ? { env } : {},
      });
      // systemd-socket-activate leaves its unix socket behind: a stale one,
      // which socket-activate replaces.
      const args = addresses.flatMap((address) => ["-l", address]);
      if (names) args.push("--fdname", names.join(":"));
      for (const [key, value] of Object.entries(env ?? {})) {
        args.push("-E", `${key}=${value}`);
      }
      assert.deepEqual(await underSocketActivate(args), expected);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
}
