// The I/O around the pure resolver, shared by listenFds() and
// getSystemdSocket(): read the variables, make the passed fds close-on-exec,
// and unset the variables on every path when asked (sd_listen_fds()).

import process from "node:process";
import { readEnv, unsetEnv as unsetEnvVariable } from "./_env.ts";
import { describeErrno, EINVAL } from "./_errno.ts";
import { once, readPidfdId } from "./_sys.common.ts";
import { sys } from "./_sys.deno.ts";
import { ActivationError } from "./errors.ts";
import {
  type ListenEnv,
  type ListenPlan,
  resolveListenEnv,
  SD_LISTEN_FDS_START,
} from "./listen_env.ts";

const VARIABLES = [
  "LISTEN_PID",
  "LISTEN_PIDFDID",
  "LISTEN_FDS",
  "LISTEN_FDNAMES",
] as const;

function readListenEnv(): ListenEnv {
  const env: Record<string, string | undefined> = {};
  for (const variable of VARIABLES) env[variable] = readEnv(variable);
  return env;
}

/** Removes the four LISTEN_* variables from the environment. */
export function unsetListenEnv(): void {
  VARIABLES.forEach(unsetEnvVariable);
}

// This process's pidfd id does not change: read it once, and only when a
// LISTEN_PIDFDID asks for it.
const ownPidfdId = once(() => readPidfdId(sys.libc(), process.pid));

/**
 * Resolves the environment of this process and makes the announced fds
 * close-on-exec, stopping at the first that fails.
 */
export function activate(
  unsetEnv: boolean,
  zeroFdsIsNone: boolean,
): ListenPlan {
  try {
    const plan = resolveListenEnv(readListenEnv(), process.pid, {
      pidfdId: ownPidfdId,
      zeroFdsIsNone,
    });
    for (
      let fd = SD_LISTEN_FDS_START;
      fd < SD_LISTEN_FDS_START + plan.count;
      fd++
    ) {
      const errno = sys.setCloexec(fd);
      if (errno !== 0) {
        throw new ActivationError(
          "CLOEXEC_FAILED",
          `Cannot set close-on-exec on fd ${fd}: ${describeErrno(errno)}`,
          { errno },
        );
      }
    }
    return plan;
  } finally {
    if (unsetEnv) unsetListenEnv();
  }
}

/** The error for names whose count differs from the fd count. */
export function nameCountMismatch(plan: ListenPlan): ActivationError {
  return new ActivationError(
    "NAME_COUNT_MISMATCH",
    `Mismatch between LISTEN_FDS and LISTEN_FDNAMES: there are ${plan.count} fds, and ${plan.names?.length} names`,
    { errno: EINVAL },
  );
}
