import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  backoffPolicy,
  DEFAULT_BACKOFF,
  parseRetryAfter,
  retryDelay,
  transientStatus,
  withRetry,
  type RetryEvent,
} from '../../../src/agent/retry.js';
import { AbortReason } from '../../../src/util/abort.js';

class Failure extends Error {
  constructor(
    message: string,
    readonly retryable = true,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const fast = backoffPolicy({ baseDelayMs: 1, maxDelayMs: 4 });

describe('backoff', () => {
  it('doubles from the base delay up to the cap; jitter only shortens', () => {
    const p = backoffPolicy({ baseDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 });
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, p, () => 0))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    expect(backoffDelay(3, p, () => 1)).toBe(200);
    expect(backoffDelay(3, p, () => 0.5)).toBe(300);
  });

  it('defaults to 5 attempts and rejects nonsense', () => {
    expect(backoffPolicy()).toEqual(DEFAULT_BACKOFF);
    expect(backoffPolicy({ maxAttempts: undefined }).maxAttempts).toBe(5);
    expect(() => backoffPolicy({ maxAttempts: 0 })).toThrow(RangeError);
    expect(() => backoffPolicy({ jitter: 2 })).toThrow(RangeError);
    expect(() => backoffPolicy({ baseDelayMs: -1 })).toThrow(RangeError);
  });

  it('uses a server-requested wait instead of the backoff, capped at maxRetryAfterMs', () => {
    const p = backoffPolicy({ baseDelayMs: 5000, maxRetryAfterMs: 60_000 });
    expect(retryDelay(1, p, 2000, () => 0)).toBe(2000);
    expect(retryDelay(1, p, 2000, () => 1)).toBe(2200);
    expect(retryDelay(1, p, 3_600_000, () => 0.5)).toBe(60_000);
    expect(retryDelay(1, p, 0, () => 0)).toBe(0);
    expect(retryDelay(1, p, undefined, () => 0)).toBe(5000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('reads seconds, HTTP dates and retry-after-ms', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(parseRetryAfter(new Headers({ 'retry-after': '1.5' }), now)).toBe(1500);
    expect(parseRetryAfter(new Headers({ 'Retry-After': 'Wed, 01 Jan 2025 00:00:07 GMT' }), now)).toBe(7000);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Tue, 31 Dec 2024 23:00:00 GMT' }), now)).toBe(0);
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(250);
    expect(parseRetryAfter({ 'Retry-After': '4' }, now)).toBe(4000);
    expect(parseRetryAfter({ 'retry-after': ['5'] }, now)).toBe(5000);
  });
  it('ignores absent or garbage values', () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter(new Headers())).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after': '-3' }))).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': 'x', 'retry-after': '2' }), now)).toBe(2000);
  });
});

describe('transientStatus', () => {
  it('classifies statuses', () => {
    expect(transientStatus(429)).toBe('rate-limited');
    expect(transientStatus(408)).toBe('timeout');
    expect([409, 500, 502, 503, 504, 529].map(transientStatus)).toEqual(Array(6).fill('server'));
    expect([400, 401, 403, 404, 422].map(transientStatus)).toEqual(Array(5).fill(undefined));
  });
});

describe('withRetry', () => {
  const options = {
    policy: fast,
    normalize: (e: unknown) => (e instanceof Failure ? e : new Failure(String(e), false)),
    classify: (e: Failure) => ({
      retryable: e.retryable,
      ...(e.retryAfterMs === undefined ? {} : { retryAfterMs: e.retryAfterMs }),
    }),
  };

  it('retries until success and reports each retry', async () => {
    const events: Array<RetryEvent<Failure>> = [];
    let calls = 0;
    const value = await withRetry(
      (attempt) => {
        calls++;
        return attempt < 3 ? Promise.reject(new Failure(`fail ${attempt}`)) : Promise.resolve('ok');
      },
      { ...options, onRetry: (e) => events.push(e) },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
    expect(events.map((e) => [e.attempt, e.maxAttempts, e.error.message])).toEqual([
      [1, 5, 'fail 1'],
      [2, 5, 'fail 2'],
    ]);
  });

  it('throws the last error after maxAttempts, and at once when not retryable', async () => {
    let calls = 0;
    await expect(
      withRetry(() => {
        calls++;
        return Promise.reject(new Failure(`fail ${calls}`));
      }, options),
    ).rejects.toThrow('fail 5');
    expect(calls).toBe(5);

    calls = 0;
    await expect(
      withRetry(() => {
        calls++;
        return Promise.reject(new Error('plain'));
      }, options),
    ).rejects.toMatchObject({ message: 'Error: plain', retryable: false });
    expect(calls).toBe(1);
  });

  it('an abort during the wait rejects with the signal reason', async () => {
    const controller = new AbortController();
    const reason = new AbortReason('job-timeout');
    const started = Date.now();
    const p = withRetry(() => Promise.reject(new Failure('busy', true, 10_000)), {
      ...options,
      signal: controller.signal,
      onRetry: () => setTimeout(() => controller.abort(reason), 20),
    });
    await expect(p).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('an abort while the call is in flight wins over the call error', async () => {
    const controller = new AbortController();
    const reason = new AbortReason('cancelled');
    const p = withRetry(
      () =>
        new Promise<never>((_, reject) => {
          controller.abort(reason);
          reject(new Failure('connection reset'));
        }),
      { ...options, signal: controller.signal },
    );
    await expect(p).rejects.toBe(reason);
  });
});
