import { describe, expect, test } from 'vitest';
import {
  backoffConfig,
  backoffDelay,
  classifyError,
  retryAfterFromHeaders,
  withBackoff,
  type RetryPolicy,
} from '../../../src/sandbox/backoff.js';
import { RateLimiter } from '../../../src/sandbox/rate-limiter.js';
import { AbortReason } from '../../../src/util/abort.js';

/** An error shaped like the SDK's `DaytonaError`. */
function sdkError(
  name: string,
  message: string,
  statusCode?: number,
  headers?: Record<string, string>,
): Error {
  const err = new Error(message) as Error & { statusCode?: number; headers?: Record<string, string> };
  err.name = name;
  if (statusCode !== undefined) err.statusCode = statusCode;
  if (headers) err.headers = headers;
  return err;
}

describe('classifyError', () => {
  test.each([
    [sdkError('DaytonaRateLimitError', 'Too Many Requests', 429), 'rate-limit'],
    [sdkError('DaytonaError', 'whatever', 429), 'rate-limit'],
    [sdkError('DaytonaInternalServerError', 'Sandbox resource limit reached (16)', 500), 'rate-limit'],
    [sdkError('DaytonaForbiddenError', 'Total CPU limit exceeded', 403), 'rate-limit'],
    [new Error('no capacity in region us'), 'rate-limit'],
    [sdkError('DaytonaInternalServerError', 'boom', 500), 'transient'],
    [sdkError('DaytonaBadGatewayError', 'bad gateway', 502), 'transient'],
    [sdkError('DaytonaServiceUnavailableError', 'unavailable', 503), 'transient'],
    [sdkError('DaytonaTimeoutError', 'Failed to create and start sandbox within 2 seconds.'), 'transient'],
    [sdkError('DaytonaConnectionError', 'connect ECONNREFUSED 127.0.0.1:9'), 'transient'],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'transient'],
    [sdkError('DaytonaValidationError', 'bad request', 400), 'fatal'],
    [sdkError('DaytonaUnprocessableEntityError', 'nope', 422), 'fatal'],
    [sdkError('DaytonaAuthenticationError', 'Unauthorized', 401), 'fatal'],
    [sdkError('DaytonaAuthorizationError', 'Forbidden', 403), 'fatal'],
    [
      sdkError('DaytonaError', 'Sandbox x failed to start with status: build_failed, error reason: y'),
      'fatal',
    ],
    [new TypeError('x is not a function'), 'fatal'],
    [new AbortReason('cancelled'), 'cancelled'],
  ])('%s → %s', (err, kind) => {
    expect(classifyError(err).kind).toBe(kind);
  });

  test('build failures are flagged, rate limits carry Retry-After', () => {
    expect(classifyError(new Error('state build_failed')).buildFailed).toBe(true);
    const c = classifyError(sdkError('DaytonaRateLimitError', 'slow down', 429, { 'retry-after': '7' }));
    expect(c).toMatchObject({ kind: 'rate-limit', status: 429, retryAfterMs: 7000 });
  });
});

describe('retryAfterFromHeaders', () => {
  test('seconds, milliseconds, HTTP dates, Headers objects', () => {
    expect(retryAfterFromHeaders({ 'Retry-After': '3' })).toBe(3000);
    expect(retryAfterFromHeaders({ 'retry-after-ms': '250', 'retry-after': '9' })).toBe(250);
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(retryAfterFromHeaders({ 'retry-after': 'Tue, 01 Jan 2030 00:00:05 GMT' }, now)).toBe(5000);
    expect(retryAfterFromHeaders(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterFromHeaders({ 'retry-after': 'soon' })).toBeUndefined();
    expect(retryAfterFromHeaders(undefined)).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  const policy: RetryPolicy = { retries: 5, baseMs: 100, maxMs: 1000, jitter: 0.5, maxRetryAfterMs: 3000 };

  test('doubles, caps, jitters ±jitter/2', () => {
    expect(backoffDelay(policy, 1, undefined, () => 0.5)).toBe(100);
    expect(backoffDelay(policy, 3, undefined, () => 0.5)).toBe(400);
    expect(backoffDelay(policy, 10, undefined, () => 0.5)).toBe(1000);
    expect(backoffDelay(policy, 1, undefined, () => 0)).toBe(75);
    expect(backoffDelay(policy, 1, undefined, () => 1)).toBe(125);
  });

  test('honours Retry-After up to its cap', () => {
    expect(backoffDelay(policy, 1, 2000, () => 0.5)).toBe(2000);
    expect(backoffDelay(policy, 1, 60_000, () => 0.5)).toBe(3000);
  });

  test('defaults: long rate-limit schedule, short transient one', () => {
    const d = backoffConfig();
    expect(d.rateLimit.retries).toBeGreaterThan(d.transient.retries);
    expect(d.rateLimit.baseMs).toBeGreaterThan(d.transient.baseMs);
    expect(backoffConfig({ transient: { retries: 1 } }).transient).toMatchObject({
      retries: 1,
      baseMs: d.transient.baseMs,
    });
  });
});

describe('withBackoff', () => {
  const config = backoffConfig({
    rateLimit: { retries: 3, baseMs: 1, maxMs: 2 },
    transient: { retries: 2, baseMs: 1, maxMs: 2 },
  });

  test('retries transient errors, then succeeds', async () => {
    let calls = 0;
    const retries: number[] = [];
    const value = await withBackoff(
      () => {
        calls++;
        if (calls < 3) return Promise.reject(sdkError('DaytonaBadGatewayError', 'bad gateway', 502));
        return Promise.resolve('ok');
      },
      { config, onRetry: (i) => retries.push(i.retry) },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  test('gives up after the class budget and never retries fatal errors', async () => {
    let calls = 0;
    await expect(
      withBackoff(
        () => {
          calls++;
          return Promise.reject(sdkError('DaytonaInternalServerError', 'boom', 500));
        },
        { config },
      ),
    ).rejects.toThrow('boom');
    expect(calls).toBe(3);

    calls = 0;
    await expect(
      withBackoff(
        () => {
          calls++;
          return Promise.reject(sdkError('DaytonaValidationError', 'bad', 400));
        },
        { config },
      ),
    ).rejects.toThrow('bad');
    expect(calls).toBe(1);
  });

  test('an abort stops the waiting at once with the reason', async () => {
    const controller = new AbortController();
    const slow = backoffConfig({ transient: { retries: 5, baseMs: 10_000, maxMs: 10_000 } });
    const started = Date.now();
    const p = withBackoff(() => Promise.reject(sdkError('DaytonaInternalServerError', 'boom', 500)), {
      config: slow,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new AbortReason('cancelled')), 20);
    await expect(p).rejects.toBeInstanceOf(AbortReason);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('RateLimiter (creation token bucket)', () => {
  test('lets a burst through, then paces at the configured rate', async () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 600, burst: 2, now: () => now });
    await limiter.take();
    await limiter.take();
    let third = false;
    const p = limiter.take().then(() => {
      third = true;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(third).toBe(false);
    expect(limiter.pending).toBe(1);
    now += 100; // 600/min = one token per 100 ms
    await p;
    expect(third).toBe(true);
  });

  test('serves waiters in order and measures real time', async () => {
    const limiter = new RateLimiter({ perMinute: 60_000, burst: 1 }); // 1 per ms
    const order: number[] = [];
    const started = Date.now();
    await Promise.all([1, 2, 3, 4, 5].map((i) => limiter.take().then(() => order.push(i))));
    expect(order).toEqual([1, 2, 3, 4, 5]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('an aborted waiter leaves the queue with the abort reason', async () => {
    const limiter = new RateLimiter({ perMinute: 1, burst: 1 });
    await limiter.take();
    const controller = new AbortController();
    const p = limiter.take(controller.signal);
    expect(limiter.pending).toBe(1);
    controller.abort(new AbortReason('job-timeout'));
    await expect(p).rejects.toMatchObject({ kind: 'job-timeout' });
    expect(limiter.pending).toBe(0);
  });

  test('Infinity disables pacing', async () => {
    const limiter = new RateLimiter({ perMinute: Infinity });
    for (let i = 0; i < 1000; i++) await limiter.take();
    expect(limiter.pending).toBe(0);
  });
});
