import { activate, nameCountMismatch } from "./_activate.ts";
import { ActivationError } from "./errors.ts";
import { SD_LISTEN_FDS_START } from "./listen_env.ts";
import type { ListenFdsOptions } from "./listen_fds.ts";

/**
 * Picks the fd a server should listen on among those systemd passed, by
 * socket name (SPEC section 3):
 * - nothing passed to this process, or `LISTEN_FDS=0`: `undefined`;
 * - exactly one fd: fd 3, whatever its name;
 * - several fds and no `socketName`, or no `LISTEN_FDNAMES` to match it
 *   against: `undefined`;
 * - otherwise the first fd whose name is `socketName`.
 *
 * Every passed fd is made close-on-exec first, not only the one returned.
 *
 * @param socketName The `FileDescriptorName=` to look for.
 * @param options Whether to unset the variables afterwards.
 * @returns The fd number, or `undefined` when there is no socket to use.
 * @throws {ActivationError} `NAME_NOT_FOUND` when the name is not among
 * several named fds, `NAME_COUNT_MISMATCH` when names and fds differ in
 * number, and the errors of {@linkcode listenFds} for a bad environment.
 *
 * @tags allow-env, allow-ffi
 *
 * @example Serving on the socket named "web"
 * ```ts ignore
 * import { createServer } from "node:http";
 * import { getSystemdSocket } from "@socket-activation/socket-activation";
 *
 * const fd = getSystemdSocket("web");
 * const server = createServer((_request, response) => response.end("hi\n"));
 * if (fd === undefined) server.listen(8080);
 * else server.listen({ fd });
 * ```
 */
export function getSystemdSocket(
  socketName?: string,
  options: ListenFdsOptions = {},
): number | undefined {
  const plan = activate(options.unsetEnv ?? false, true);
  if (plan.count === 0) return undefined;
  // A single socket needs no name: the service has only one.
  if (plan.count === 1) return SD_LISTEN_FDS_START;
  if (socketName === undefined || plan.names === undefined) return undefined;
  if (plan.names.length !== plan.count) throw nameCountMismatch(plan);
  const index = plan.names.indexOf(socketName);
  if (index < 0) {
    throw new ActivationError(
      "NAME_NOT_FOUND",
      `Cannot find socket ${
        JSON.stringify(socketName)
      } in LISTEN_FDNAMES: the names are ${
        plan.names.map((name) => JSON.stringify(name)).join(", ")
      }`,
    );
  }
  return SD_LISTEN_FDS_START + index;
}
