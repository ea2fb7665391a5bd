import type { Sandbox, SandboxBackend, SandboxSpec } from '../sandbox/sandbox.js';
import { errorMessage } from '../errors.js';

/**
 * Knows every sandbox of the run that may still exist — created, being
 * created, or being deleted — so a forced shutdown (second signal, grace
 * period over, uncaught exception) can delete all of them at once, outside
 * the job queue.
 */
export class SandboxTracker {
  readonly #live = new Set<Sandbox>();
  readonly #creating = new Set<Promise<Sandbox | undefined>>();
  readonly #onError: (message: string) => void;

  constructor(onError: (message: string) => void) {
    this.#onError = onError;
  }

  /** Number of sandboxes created and not yet deleted. */
  get liveCount(): number {
    return this.#live.size;
  }

  /** Ids of sandboxes that are still alive (for "left behind" reports). */
  liveIds(): string[] {
    return [...this.#live].map((s) => s.id);
  }

  /** Creates a sandbox and tracks it from the moment the backend hands it over. */
  async create(backend: SandboxBackend, spec: SandboxSpec, signal: AbortSignal): Promise<Sandbox> {
    const pending = backend.create(spec, { signal });
    const tracked = pending.then(
      (s) => {
        this.#live.add(s);
        return s;
      },
      () => undefined,
    );
    this.#creating.add(tracked);
    try {
      return await pending;
    } finally {
      this.#creating.delete(tracked);
    }
  }

  /** Deletes `sandbox` (idempotent: the sandbox memoizes its own dispose). */
  async dispose(sandbox: Sandbox): Promise<void> {
    try {
      await sandbox.dispose();
    } finally {
      this.#live.delete(sandbox);
    }
  }

  /** Stops tracking a sandbox deliberately kept (`--keep-sandboxes`). */
  release(sandbox: Sandbox): void {
    this.#live.delete(sandbox);
  }

  /**
   * Deletes everything still alive, in parallel, waiting at most
   * `timeoutMs` for creates in flight to land. Resolves with the ids that
   * could not be deleted.
   */
  async disposeAll(timeoutMs: number): Promise<string[]> {
    const deadline = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), timeoutMs).unref(),
    );
    await Promise.race([Promise.allSettled([...this.#creating]), deadline]);
    const failed: string[] = [];
    await Promise.allSettled(
      [...this.#live].map(async (s) => {
        try {
          const r = await Promise.race([s.dispose().then(() => 'ok' as const), deadline]);
          if (r === 'timeout') throw new Error('timed out');
          this.#live.delete(s);
        } catch (e) {
          failed.push(s.id);
          this.#onError(`could not delete sandbox ${s.id}: ${errorMessage(e)}`);
        }
      }),
    );
    return failed;
  }
}
