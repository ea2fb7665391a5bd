/**
 * Abort reasons used across the engine. Every `AbortSignal` in rho-flow is
 * aborted with one of these, so code downstream can tell *why* it stopped.
 */
export type AbortKind = 'cancelled' | 'step-timeout' | 'job-timeout' | 'teardown';

/** The reason object attached to every abort rho-flow performs itself. */
export class AbortReason extends Error {
  readonly kind: AbortKind;
  constructor(kind: AbortKind, message?: string) {
    super(message ?? kind);
    this.name = 'AbortReason';
    this.kind = kind;
  }
}

/** Returns the `AbortReason` carried by an aborted signal, if it is one of ours. */
export function abortKind(signal: AbortSignal | undefined): AbortKind | undefined {
  if (!signal?.aborted) return undefined;
  const reason: unknown = signal.reason;
  return reason instanceof AbortReason ? reason.kind : 'cancelled';
}

/** True for errors produced by an aborted signal (DOM AbortError or one of our reasons). */
export function isAbortError(err: unknown): boolean {
  if (err instanceof AbortReason) return true;
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'APIUserAbortError')) return true;
  return false;
}

/** Combine signals, ignoring `undefined`. */
export function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length === 1 && present[0]) return present[0];
  return AbortSignal.any(present);
}

/**
 * A signal that aborts after `ms` with the given reason kind, plus a `clear`
 * function. The timer is `unref`'d so it never keeps the process alive.
 */
export function timeoutSignal(ms: number, kind: AbortKind): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new AbortReason(kind, `${kind} after ${ms} ms`)), ms);
  timer.unref();
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
