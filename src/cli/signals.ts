/**
 * Two-stage interrupt handling for `rho-flow run` (product.md §6.1,
 * ci-conventions.md §4.7). The first SIGINT/SIGTERM/SIGHUP starts a graceful
 * stop; the second forces teardown and exit. Only `main.ts` touches
 * `process`; commands get an `Interrupts` through `CliIo` so tests can drive
 * them in-process.
 */
import type { InterruptSignal } from '../engine/run-exit-code.js';

export interface InterruptHandlers {
  /** First signal: stop scheduling, cancel running jobs, let teardown run. */
  onFirst(signal: InterruptSignal): void;
  /** Second signal: tear down what is left at once, then exit. */
  onSecond(signal: InterruptSignal): void;
  /** An uncaught exception or unhandled rejection: tear down what is left, then exit. */
  onFatal?(error: unknown): void;
}

export interface Interrupts {
  /** Takes over SIGINT/SIGTERM/SIGHUP until the returned function is called. */
  install(handlers: InterruptHandlers): () => void;
  /** Ends the process at once (after a forced teardown). */
  exit(code: number): void;
}

const SIGNALS: readonly InterruptSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The real thing, over `process`. */
export function processInterrupts(proc: NodeJS.Process = process): Interrupts {
  return {
    install(handlers) {
      let count = 0;
      const listener = (signal: NodeJS.Signals): void => {
        count++;
        const sig = signal as InterruptSignal;
        if (count === 1) handlers.onFirst(sig);
        else handlers.onSecond(sig);
      };
      let fatal = false;
      const onFatal = (error: unknown): void => {
        // Once: a second fatal error during the forced teardown must not start another.
        if (fatal || !handlers.onFatal) return;
        fatal = true;
        handlers.onFatal(error);
      };
      for (const s of SIGNALS) proc.on(s, listener);
      if (handlers.onFatal) {
        proc.on('uncaughtException', onFatal);
        proc.on('unhandledRejection', onFatal);
      }
      return () => {
        for (const s of SIGNALS) proc.off(s, listener);
        proc.off('uncaughtException', onFatal);
        proc.off('unhandledRejection', onFatal);
      };
    },
    exit(code) {
      proc.exit(code);
    },
  };
}
