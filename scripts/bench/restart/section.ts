// The restart section: socket-activate's SIGHUP-to-READY=1 time against the
// child's own cold start (bench.ts).

import type { BenchContext, Section } from "../_section.ts";
import {
  renderRestartSection,
  type RestartBenchResult,
  runRestartBench,
} from "./bench.ts";

function count(context: BenchContext, option: string): number | undefined {
  const given = context.options[option];
  if (given === undefined) return undefined;
  const value = Number(given);
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Invalid --${option}: ${given}`);
  }
  return value;
}

/** The section: restarts under socket-activate. */
export const restartSection: Section<RestartBenchResult> = {
  id: "restart",
  title: "socket-activate restarts: SIGHUP to the new child's READY=1",
  options: {
    "restart-rounds": {
      type: "string",
      description: "activators per child runtime (default 10)",
    },
    "restart-restarts": {
      type: "string",
      description: "SIGHUPs per activator (default 3)",
    },
  },
  run: (context) =>
    runRestartBench({
      rounds: count(context, "restart-rounds"),
      restarts: count(context, "restart-restarts"),
    }),
  render: renderRestartSection,
};
