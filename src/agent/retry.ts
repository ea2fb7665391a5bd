/**
 * Backoff policy helpers shared by the model edge (and usable by any other
 * HTTP edge, e.g. the Daytona backend): classify an HTTP status, compute an
 * exponential delay with jitter, honour `Retry-After` / `retry-after-ms`, and a
 * small `withRetry` loop that is cancellable and reports every retry.
 *
 * Nothing here knows about a particular SDK: callers translate their errors
 * into a {@link RetryDecision} through `classify`.
 */
import { parseRetryAfter as parseRetryAfterAny } from '../util/retry-after.js';
import { sleep } from '../util/abort.js';

/** How often and how long to retry. All durations are milliseconds. */
export interface BackoffPolicy {
  /** Total attempts including the first one (≥ 1). */
  maxAttempts: number;
  /** Delay before the first retry; doubles for each further retry. */
  baseDelayMs: number;
  /** Cap of the computed exponential delay. */
  maxDelayMs: number;
  /**
   * Cap of a server-requested wait (`Retry-After`). A longer request is cut to
   * the cap, never skipped: the retry still happens after the cap.
   */
  maxRetryAfterMs: number;
  /** Fraction (0..1) of the computed delay that is randomised away (0 = no jitter). */
  jitter: number;
}

/** Defaults: 5 attempts (4 retries), 1 s → 2 s → 4 s → 8 s (±25 %), Retry-After honoured up to 60 s. */
export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 60_000,
  jitter: 0.25,
});

/** Fills the unset fields of a partial policy from {@link DEFAULT_BACKOFF} and checks them. */
export function backoffPolicy(partial: Partial<BackoffPolicy> = {}): BackoffPolicy {
  const p = { ...DEFAULT_BACKOFF, ...stripUndefined(partial) };
  if (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be an integer ≥ 1 (got ${p.maxAttempts})`);
  }
  for (const key of ['baseDelayMs', 'maxDelayMs', 'maxRetryAfterMs'] as const) {
    if (!(p[key] >= 0)) throw new RangeError(`${key} must be ≥ 0 (got ${p[key]})`);
  }
  if (!(p.jitter >= 0 && p.jitter <= 1)) throw new RangeError(`jitter must be within 0..1 (got ${p.jitter})`);
  return p;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The computed (not server-requested) delay before retry number `retry`
 * (1-based: the wait after the first failed attempt is retry 1):
 * `min(maxDelayMs, baseDelayMs · 2^(retry-1))`, reduced by up to `jitter` of itself.
 * `random` is injectable for tests.
 */
export function backoffDelay(
  retry: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(exp * (1 - policy.jitter * random()));
}

/** Header access that works for fetch `Headers`, Node's `IncomingHttpHeaders` and plain records. */
export type HeaderSource =
  | { get(name: string): string | null | undefined }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** See `util/retry-after.ts` (shared with the Daytona backend). */
export function parseRetryAfter(
  headers: HeaderSource | undefined,
  now: number = Date.now(),
): number | undefined {
  return parseRetryAfterAny(headers, now);
}

/**
 * The delay before retry number `retry`: the server's request when there is
 * one (capped at `maxRetryAfterMs`, plus up to 10 % so that many clients told
 * the same thing do not return in lockstep, still within the cap), else the
 * computed backoff.
 */
export function retryDelay(
  retry: number,
  policy: BackoffPolicy,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  if (retryAfterMs === undefined) return backoffDelay(retry, policy, random);
  const wanted = Math.max(0, retryAfterMs);
  return Math.round(Math.min(policy.maxRetryAfterMs, wanted * (1 + 0.1 * random())));
}

/** What kind of transient fault an HTTP status is, or `undefined` when it must not be retried. */
export type TransientKind = 'rate-limited' | 'server' | 'timeout';

/**
 * Classifies an HTTP status: 429 → rate-limited; 408 → timeout; 409 (lock
 * conflicts) and every 5xx → server; anything else (400, 401, 403, 404, 422, …)
 * is not transient.
 */
export function transientStatus(status: number): TransientKind | undefined {
  if (status === 429) return 'rate-limited';
  if (status === 408) return 'timeout';
  if (status === 409 || status >= 500) return 'server';
  return undefined;
}

/** The caller's verdict on one failure. */
export interface RetryDecision {
  retryable: boolean;
  /** A wait the server asked for (e.g. from {@link parseRetryAfter}). */
  retryAfterMs?: number;
}

/** Passed to `onRetry` before each wait. */
export interface RetryEvent<E> {
  /** The attempt that just failed (1-based). The next one is `attempt + 1`. */
  attempt: number;
  maxAttempts: number;
  delayMs: number;
  error: E;
}

export interface WithRetryOptions<E extends Error> {
  policy: BackoffPolicy;
  /** Maps a thrown value to a verdict; `normalize` has already been applied. */
  classify: (error: E) => RetryDecision;
  /** Turns whatever `fn` threw into the error type that is reported and finally thrown. */
  normalize: (error: unknown, attempt: number) => E;
  /** Aborting stops at once — in flight or during a wait — with the signal's reason (never normalized). */
  signal?: AbortSignal | undefined;
  onRetry?: ((event: RetryEvent<E>) => void) | undefined;
  /** Injectable for tests. */
  random?: () => number;
}

/**
 * Runs `fn(attempt)` until it resolves, a failure is not retryable, or the
 * attempts are used up; then throws the normalized last error. An abort of
 * `signal` rejects with `signal.reason` whatever `fn` threw.
 */
export async function withRetry<T, E extends Error>(
  fn: (attempt: number) => Promise<T>,
  options: WithRetryOptions<E>,
): Promise<T> {
  const { policy, signal } = options;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (raw) {
      if (signal?.aborted) throw signal.reason;
      const error = options.normalize(raw, attempt);
      const decision = options.classify(error);
      if (!decision.retryable || attempt >= policy.maxAttempts) throw error;
      const delayMs = retryDelay(attempt, policy, decision.retryAfterMs, options.random);
      options.onRetry?.({ attempt, maxAttempts: policy.maxAttempts, delayMs, error });
      await sleep(delayMs, signal);
    }
  }
}
