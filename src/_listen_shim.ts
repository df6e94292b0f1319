// TEMPORARY stand-in for src/listen.ts's listenOn() until it lands.

import type { Server } from "node:net";
import { type Endpoint, parseEndpoint } from "./endpoint.ts";
import { ActivationError } from "./errors.ts";
import { listenFds } from "./listen_fds.ts";

export interface ListenOptions {
  name?: string;
  mode?: number;
  createParents?: boolean;
  unixOnly?: boolean;
}

export interface ListenedOn {
  readonly source: "systemd" | "bound";
  readonly fd?: number;
  readonly name?: string;
  readonly endpoint: Endpoint;
}

export async function listenOn<S extends Server>(
  server: S,
  endpoint: Endpoint | string,
  options: ListenOptions = {},
): Promise<ListenedOn> {
  const parsed = typeof endpoint === "string"
    ? parseEndpoint(endpoint)
    : endpoint;
  const passed = listenFds();
  const name = parsed.kind === "fdname" ? parsed.name : options.name;
  const pick = parsed.kind === "fd"
    ? passed.find((p) => p.fd === parsed.fd)
    : name !== undefined
    ? passed.find((p) => p.name === name)
    : passed[0];
  const listen = (arg: object | string) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(arg, () => {
        server.off("error", reject);
        resolve();
      });
    });
  if (pick !== undefined) {
    await listen({ fd: pick.fd });
    return {
      source: "systemd",
      fd: pick.fd,
      name: pick.name,
      endpoint: { kind: "fd", fd: pick.fd },
    };
  }
  if (parsed.kind === "http") {
    await listen({ host: parsed.host, port: parsed.port });
    const address = server.address();
    const port = typeof address === "object" && address !== null
      ? address.port
      : parsed.port;
    return { source: "bound", endpoint: { ...parsed, port } };
  }
  if (parsed.kind === "unix") {
    await listen(parsed.path);
    return { source: "bound", endpoint: parsed };
  }
  throw new ActivationError("NAME_NOT_FOUND", "No passed socket");
}
