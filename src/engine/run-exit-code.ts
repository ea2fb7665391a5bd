import type { RunCounts } from '../results/types.js';

export type InterruptSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/** 128 + the signal number, as shells report it. */
export function signalExitCode(signal: InterruptSignal): number {
  switch (signal) {
    case 'SIGINT':
      return 130;
    case 'SIGTERM':
      return 143;
    case 'SIGHUP':
      return 129;
  }
}

/**
 * The exit code of a run (product.md §4): interrupted (130/143/129) > an
 * infrastructure error (3) > a failed or timed-out job (1) > 0. With
 * `minPassRate`, failures alone exit 0 when the pass rate reaches it;
 * infrastructure errors still exit 3.
 */
export function runExitCode(options: {
  counts: RunCounts;
  passRate: number | null;
  interrupted?: InterruptSignal;
  minPassRate?: number;
}): number {
  const { counts, passRate, interrupted, minPassRate } = options;
  if (interrupted) return signalExitCode(interrupted);
  if (counts.error > 0) return 3;
  if (counts.failed + counts.timedOut > 0) {
    if (minPassRate !== undefined && passRate !== null && passRate >= minPassRate) return 0;
    return 1;
  }
  return 0;
}
