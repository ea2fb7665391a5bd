/**
 * Error classification and retry delays for sandbox-provider APIs (Daytona).
 *
 * Harbor's lesson (peers.md): retry by error *class*, not blindly.
 * - `rate-limit`: 429, the SDK's `DaytonaRateLimitError`, or a message about
 *   limits/capacity/quota → long backoff with jitter, honouring `Retry-After`,
 *   several attempts.
 * - `transient`: 5xx, 408, connection reset/refused, client-side timeouts →
 *   a few exponential retries.
 * - `fatal`: validation (400/422), auth (401/403), not found, build failures,
 *   anything unrecognised → never retried.
 * - `cancelled`: our own abort → never retried (retrying a cancel would keep
 *   creating sandboxes for a job that is being torn down).
 *
 * Nothing here imports an SDK: errors are inspected structurally
 * (`statusCode`/`status`, `headers`, `name`, `code`, `message`). The model edge
 * has its own policy in `agent/retry.ts`; this one is deliberately separate.
 */
import { parseRetryAfter } from '../util/retry-after.js';
import { isAbortError, sleep } from '../util/abort.js';

export type ErrorClass = 'rate-limit' | 'transient' | 'fatal' | 'cancelled';

/** What {@link classifyError} found out about an error. */
export interface Classified {
  kind: ErrorClass;
  /** HTTP status, when the error carried one. */
  status?: number;
  /** Server-requested wait (`retry-after-ms` or `Retry-After`), in ms. */
  retryAfterMs?: number;
  /** Build failure (`build_failed`): the image itself is broken; never retried. */
  buildFailed?: boolean;
  /** Short description for logs and error details. */
  reason: string;
}

/** Retry schedule of one error class. Durations in ms. */
export interface RetryPolicy {
  /** Retries after the first attempt (0 = no retry). */
  retries: number;
  /** Delay before the first retry; doubles each further retry. */
  baseMs: number;
  /** Cap of the computed delay. */
  maxMs: number;
  /** Fraction (0..1) of the delay that is randomised (±jitter/2). */
  jitter: number;
  /** Cap of a server-requested wait (`Retry-After`). */
  maxRetryAfterMs: number;
}

export interface BackoffConfig {
  rateLimit: RetryPolicy;
  transient: RetryPolicy;
}

/**
 * Defaults. Rate limits: 8 retries, 5 s → 60 s (±25 %), Retry-After honoured
 * up to 5 min. Transient: 3 retries, 1 s → 2 s → 4 s (±25 %).
 */
export const DEFAULT_BACKOFF: Readonly<BackoffConfig> = Object.freeze({
  rateLimit: Object.freeze({
    retries: 8,
    baseMs: 5_000,
    maxMs: 60_000,
    jitter: 0.5,
    maxRetryAfterMs: 300_000,
  }),
  transient: Object.freeze({
    retries: 3,
    baseMs: 1_000,
    maxMs: 30_000,
    jitter: 0.5,
    maxRetryAfterMs: 60_000,
  }),
});

/** Merges partial policies over the defaults. */
export function backoffConfig(partial?: {
  rateLimit?: Partial<RetryPolicy>;
  transient?: Partial<RetryPolicy>;
}): BackoffConfig {
  return {
    rateLimit: { ...DEFAULT_BACKOFF.rateLimit, ...defined(partial?.rateLimit) },
    transient: { ...DEFAULT_BACKOFF.transient, ...defined(partial?.transient) },
  };
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  if (!o) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const RATE_LIMIT_PATTERNS = [
  'limit exceeded',
  'too many requests',
  'capacity',
  'rate limit',
  'rate-limit',
  'resource limit',
  'quota exceeded',
];

const TRANSIENT_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

const TRANSIENT_NAMES = new Set([
  'DaytonaConnectionError',
  'DaytonaConnectionTimeoutError',
  'DaytonaTimeoutError',
]);

const TRANSIENT_MESSAGE =
  /socket hang up|econnreset|econnrefused|etimedout|network error|timed out|timeout of \d+ms/;

/** Sorts any thrown value into an {@link ErrorClass}. */
export function classifyError(err: unknown): Classified {
  if (isAbortError(err)) return { kind: 'cancelled', reason: 'cancelled' };
  const e = (err ?? {}) as {
    name?: unknown;
    message?: unknown;
    statusCode?: unknown;
    status?: unknown;
    code?: unknown;
    headers?: unknown;
  };
  const name = typeof e.name === 'string' ? e.name : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  const lower = message.toLowerCase();
  const status =
    typeof e.statusCode === 'number' ? e.statusCode : typeof e.status === 'number' ? e.status : undefined;
  const errno = typeof e.code === 'string' ? e.code : undefined;
  const base = { ...(status !== undefined ? { status } : {}), reason: short(message) };

  if (/build[_ ]failed/.test(lower)) return { ...base, kind: 'fatal', buildFailed: true };
  if (status === 401) return { ...base, kind: 'fatal' };
  if (
    status === 429 ||
    name === 'DaytonaRateLimitError' ||
    RATE_LIMIT_PATTERNS.some((p) => lower.includes(p))
  ) {
    const retryAfterMs = retryAfterFromHeaders(e.headers);
    return { ...base, kind: 'rate-limit', ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
  if (status !== undefined) {
    if (status === 408 || status >= 500) return { ...base, kind: 'transient' };
    return { ...base, kind: 'fatal' };
  }
  if (TRANSIENT_NAMES.has(name)) return { ...base, kind: 'transient' };
  if (errno !== undefined && TRANSIENT_ERRNO.has(errno)) return { ...base, kind: 'transient' };
  if (TRANSIENT_MESSAGE.test(lower)) return { ...base, kind: 'transient' };
  return { ...base, kind: 'fatal' };
}

function short(message: string): string {
  const line = message.split('\n')[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** The server-requested wait (`retry-after-ms`, `Retry-After` seconds or date); see `util/retry-after.ts`. */
export const retryAfterFromHeaders = parseRetryAfter;

/**
 * Delay before retry number `retry` (1-based) under `policy`:
 * `min(maxMs, baseMs·2^(retry-1))` with ±jitter/2, but never less than a
 * server-requested `retryAfterMs` (itself capped at `maxRetryAfterMs`).
 */
export function backoffDelay(
  policy: RetryPolicy,
  retry: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  const jittered = exp * (1 - policy.jitter / 2 + random() * policy.jitter);
  const requested = retryAfterMs === undefined ? 0 : Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return Math.max(0, Math.round(Math.max(jittered, requested)));
}

/** One retry about to happen, for logging. */
export interface RetryInfo {
  retry: number;
  delayMs: number;
  error: unknown;
  classified: Classified;
}

/**
 * Runs `op` and retries it per error class. Fatal and cancelled errors (and
 * an aborted `signal`) are rethrown at once; exhausted retries rethrow the
 * last error. `onRetry` is told about each wait. Use it only for idempotent
 * operations.
 */
export async function withBackoff<T>(
  op: (attempt: number) => Promise<T>,
  options: {
    config: BackoffConfig;
    signal?: AbortSignal;
    onRetry?: (info: RetryInfo) => void;
    classify?: (err: unknown) => Classified;
  },
): Promise<T> {
  const classify = options.classify ?? classifyError;
  let rateRetries = 0;
  let transientRetries = 0;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await op(attempt);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      const c = classify(err);
      let delayMs: number;
      if (c.kind === 'rate-limit' && rateRetries < options.config.rateLimit.retries) {
        rateRetries++;
        delayMs = backoffDelay(options.config.rateLimit, rateRetries, c.retryAfterMs);
      } else if (c.kind === 'transient' && transientRetries < options.config.transient.retries) {
        transientRetries++;
        delayMs = backoffDelay(options.config.transient, transientRetries, c.retryAfterMs);
      } else {
        throw err;
      }
      options.onRetry?.({ retry: rateRetries + transientRetries, delayMs, error: err, classified: c });
      await sleep(delayMs, options.signal);
    }
  }
}
