import pLimit, { type LimitFunction } from 'p-limit';

/**
 * Concurrency for a run, in one place: a global limit (`--concurrency`, the
 * number of live sandboxes across everything) and an optional per-workflow
 * limit (`strategy.max-parallel`). A job first waits for its workflow's slot,
 * then for a global slot, so a job blocked by its workflow limit never holds
 * a global slot. Slots are released when `task` settles (p-limit does this in
 * its own `finally`).
 *
 * Stopping (`stop()`) does not cancel running tasks: queued tasks still get
 * called, but with `started === false`, so every promise settles and the
 * caller can record them as not run (no hanging `Promise.all`).
 */
export class JobPool {
  readonly #global: LimitFunction;
  readonly #perGroup = new Map<string, LimitFunction>();
  #stopped = false;
  #active = 0;
  #peak = 0;

  constructor(concurrency: number) {
    this.#global = pLimit(Math.max(1, concurrency));
  }

  /** Stop starting new tasks; queued ones will be called with `started === false`. */
  stop(): void {
    this.#stopped = true;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Tasks currently holding a global slot. */
  get active(): number {
    return this.#active;
  }

  /** Highest number of tasks that held a global slot at once. */
  get peak(): number {
    return this.#peak;
  }

  /**
   * Schedules `task` under the global limit and, when `group` is given, under
   * that group's `groupLimit`.
   */
  run<T>(
    task: (started: boolean) => Promise<T>,
    group?: { key: string; limit: number | undefined },
  ): Promise<T> {
    const inGlobal = (): Promise<T> =>
      this.#global(async () => {
        if (this.#stopped) return task(false);
        this.#active++;
        this.#peak = Math.max(this.#peak, this.#active);
        try {
          return await task(true);
        } finally {
          this.#active--;
        }
      });
    if (!group?.limit) return inGlobal();
    let limit = this.#perGroup.get(group.key);
    if (!limit) {
      limit = pLimit(group.limit);
      this.#perGroup.set(group.key, limit);
    }
    return limit(() => (this.#stopped ? task(false) : inGlobal()));
  }
}
