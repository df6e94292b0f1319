// The clients of the restart and hand-over tests: each makes one request
// after another, a new connection each, until stopped, and every answer and
// every failure is counted (the target is no failure at all).

import { within } from "./_activator.ts";

/** Clients running against a server that the test restarts meanwhile. */
export interface ClientLoop<T> {
  /** Every answer, in the order they came. */
  readonly answers: readonly T[];
  /** What went wrong with each failed request. */
  readonly failures: readonly string[];
  /** Resolves once `count` more requests were answered, or one failed. */
  after(count: number): Promise<void>;
  /** Resolves once an answer matches, or a request failed. */
  answered(match: (answer: T) => boolean, what: string): Promise<void>;
  /** Lets each client finish its request in flight, then stops them. */
  stop(): Promise<void>;
}

// Enough failures to tell what went wrong: the clients stop there.
const MAX_FAILURES = 100;

/**
 * Starts `clients` clients that each call `request` (which throws for a
 * failed request) in a loop.
 */
export function clientLoop<T>(
  clients: number,
  request: () => Promise<T>,
): ClientLoop<T> {
  const answers: T[] = [];
  const failures: string[] = [];
  const waiting: (() => void)[] = [];
  let running = true;
  async function client(): Promise<void> {
    while (running) {
      try {
        answers.push(await request());
      } catch (error) {
        failures.push(String(error));
        if (failures.length >= MAX_FAILURES) running = false;
      }
      for (const wake of waiting.splice(0)) wake();
    }
  }
  const done = Promise.all(Array.from({ length: clients }, client));
  function until(holds: () => boolean, what: string): Promise<void> {
    return within(
      new Promise((resolve) => {
        const check = () =>
          holds() || failures.length > 0 ? resolve() : waiting.push(check);
        check();
      }),
      what,
    );
  }
  return {
    answers,
    failures,
    after(count) {
      const goal = answers.length + count;
      return until(() => answers.length >= goal, `${count} more answers`);
    },
    answered(match, what) {
      let checked = 0;
      return until(() => {
        for (; checked < answers.length; checked++) {
          if (match(answers[checked]!)) return true;
        }
        return false;
      }, what);
    },
    async stop() {
      running = false;
      await done;
    },
  };
}
