/**
 * A token bucket that paces sandbox *creations* (Daytona: 600 creates per
 * minute per organisation). It is separate from the engine's concurrency
 * limit: `--concurrency` bounds live sandboxes, this bounds how fast new ones
 * are requested, so a large batch starting at once (or a wave of retries)
 * does not trip the provider's rate limit.
 */

export interface RateLimiterOptions {
  /** Sustained rate. `Infinity` (or ≤ 0) disables the limiter. */
  perMinute: number;
  /** Bucket size: how many may start back to back. Default: 10 seconds' worth, at least 1. */
  burst?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * FIFO token bucket. `take()` resolves when a token is available; waiters are
 * served in order. Aborting a waiter's signal removes it from the queue and
 * rejects with the signal's reason.
 */
export class RateLimiter {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;
  readonly #queue: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RateLimiterOptions) {
    const perMinute = options.perMinute > 0 ? options.perMinute : Infinity;
    this.#perMs = perMinute / 60_000;
    this.#burst = Number.isFinite(perMinute)
      ? Math.max(1, options.burst ?? Math.ceil(perMinute / 6))
      : Infinity;
    this.#now = options.now ?? Date.now;
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }

  /** Waiters not yet served. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Resolves once a token has been taken for the caller. */
  take(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (!Number.isFinite(this.#burst)) return Promise.resolve();
    this.#refill();
    if (this.#queue.length === 0 && this.#tokens >= 1) {
      this.#tokens -= 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#queue.indexOf(waiter);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(signal.reason as Error);
          if (this.#queue.length === 0) this.#clearTimer();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#queue.push(waiter);
      this.#schedule();
    });
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    this.#last = now;
  }

  #drain(): void {
    this.#timer = undefined;
    this.#refill();
    while (this.#queue.length > 0 && this.#tokens >= 1) {
      const w = this.#queue.shift();
      if (!w) break;
      this.#tokens -= 1;
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.resolve();
    }
    if (this.#queue.length > 0) this.#schedule();
  }

  #schedule(): void {
    if (this.#timer) return;
    const wait = Math.max(1, Math.ceil((1 - this.#tokens) / this.#perMs));
    // Not unref'd: a caller is waiting on it, so the process should stay up.
    this.#timer = setTimeout(() => this.#drain(), wait);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
