import type { Job } from '../workflow/types.js';
import type { JobResult, JobStatus } from '../results/types.js';
import type { EngineOptions } from './engine-options.js';
import { backendFor } from './engine-options.js';
import { JobPool } from './pool.js';
import { SandboxTracker } from './sandbox-tracker.js';
import { runJobAttempt } from './job-runner.js';
import { AbortReason, sleep } from '../util/abort.js';
import { ZERO_USAGE } from '../agent/model.js';
import { errorMessage } from '../errors.js';
import { safeListener } from './safe-listener.js';

export interface EngineOutcome {
  /** Highest number of sandboxes alive at once. */
  peakConcurrency: number;
  counts: Record<JobStatus, number>;
  /** Sandboxes that could not be deleted (after a forced teardown). */
  leftBehind: string[];
}

/**
 * Runs a plan of jobs: one queue for all of them under `concurrency` (and
 * per-workflow `max-parallel`), one sandbox per job attempt, infrastructure
 * retries, `--max-failures`, cancellation through `options.signal`. Each
 * job's result is on disk (`results.recordJob` resolved) before its slot is
 * released. Emits `RunEvent`s; never touches the terminal.
 */
export class Engine {
  readonly #o: EngineOptions;
  readonly #pool: JobPool;
  readonly #tracker: SandboxTracker;
  readonly #force = new AbortController();
  #failures = 0;
  #stopReason: string | undefined;
  readonly #counts: Record<JobStatus, number> = {
    passed: 0,
    failed: 0,
    'timed-out': 0,
    error: 0,
    cancelled: 0,
    skipped: 0,
  };

  constructor(options: EngineOptions) {
    const onEvent = safeListener(options.onEvent);
    this.#o = { ...options, onEvent };
    this.#pool = new JobPool(options.concurrency);
    this.#tracker = new SandboxTracker((message) => onEvent({ type: 'warning', message }));
  }

  /** Sandboxes currently alive. */
  get liveSandboxes(): number {
    return this.#tracker.liveCount;
  }

  /** Runs every job; resolves when all have a final result on disk. */
  async run(): Promise<EngineOutcome> {
    const o = this.#o;
    const onAbort = (): void => {
      this.#stopReason ??= 'the run was cancelled';
      this.#pool.stop();
    };
    if (o.signal.aborted) onAbort();
    o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.all(
        o.jobs.map((job) =>
          this.#pool.run((started) => this.#runJob(job, started), {
            key: job.workflow.absPath,
            limit: job.workflow.strategy.maxParallel,
          }),
        ),
      );
    } finally {
      o.signal.removeEventListener('abort', onAbort);
    }
    return {
      peakConcurrency: this.#pool.peak,
      counts: { ...this.#counts },
      leftBehind: this.#tracker.liveIds(),
    };
  }

  /**
   * Forced shutdown (second signal, grace period over, uncaught exception):
   * aborts `finally` steps and artifact downloads, deletes every sandbox
   * still alive in parallel. Resolves with the ids that could not be deleted.
   */
  async forceTeardown(timeoutMs: number): Promise<string[]> {
    this.#stopReason ??= 'the run was stopped';
    this.#pool.stop();
    this.#force.abort(new AbortReason('teardown', 'forced teardown'));
    return this.#tracker.disposeAll(timeoutMs);
  }

  async #runJob(job: Job, started: boolean): Promise<void> {
    const o = this.#o;
    let result: JobResult;
    if (!started) {
      result = this.#notStarted(job, this.#stopReason ?? 'not started');
    } else {
      result = await this.#attempts(job);
    }
    try {
      await o.results.recordJob(result);
    } catch (e) {
      o.onEvent({
        type: 'warning',
        jobId: job.id,
        message: `could not write the result of ${job.id}: ${errorMessage(e)}`,
      });
    }
    this.#counts[result.status]++;
    o.onEvent({ type: 'job', reason: 'finished', result });
    if (result.status === 'failed' || result.status === 'timed-out') {
      this.#failures++;
      if (o.maxFailures !== undefined && this.#failures >= o.maxFailures && !this.#pool.stopped) {
        this.#stopReason = `not started: --max-failures ${o.maxFailures} reached`;
        this.#pool.stop();
        o.onEvent({
          type: 'warning',
          message: `--max-failures ${o.maxFailures} reached: no new jobs will start`,
        });
      }
    }
  }

  async #attempts(job: Job): Promise<JobResult> {
    const o = this.#o;
    const retry = job.workflow.retry;
    for (let attempt = 1; ; attempt++) {
      o.onEvent({ type: 'job', reason: 'started', jobId: job.id, attempt });
      let result: JobResult;
      try {
        result = await runJobAttempt(job, attempt, o, this.#tracker, this.#force.signal);
      } catch (e) {
        // runJobAttempt never throws for job problems; this is a bug or a broken disk.
        result = this.#notStarted(job, `internal error: ${errorMessage(e)}`);
        result = {
          ...result,
          status: 'error',
          attempts: attempt,
          error: { kind: 'internal', message: `internal error: ${errorMessage(e)}`, retryable: false },
        };
      }
      const limit =
        result.status === 'error'
          ? result.error?.retryable === false
            ? 0
            : retry?.on.includes('error')
              ? retry.limit
              : o.retries
          : (result.status === 'failed' || result.status === 'timed-out') && retry?.on.includes(result.status)
            ? retry.limit
            : 0;
      if (attempt > limit || o.signal.aborted || this.#force.signal.aborted) return result;
      const delayMs = o.retryDelayMs(attempt + 1);
      o.onEvent({
        type: 'job',
        reason: 'retrying',
        jobId: job.id,
        attempt: attempt + 1,
        error: result.error?.message ?? result.status,
        delayMs,
      });
      try {
        await sleep(delayMs, o.signal);
      } catch {
        return result;
      }
    }
  }

  #notStarted(job: Job, reason: string): JobResult {
    const now = new Date().toISOString();
    return {
      runId: this.#o.runId,
      id: job.id,
      slug: job.slug,
      workflow: job.workflow.name,
      file: job.workflow.file,
      index: job.index,
      ...(job.matrix ? { matrix: job.matrix } : {}),
      ...(job.item ? { item: job.item } : {}),
      ...(job.repeat ? { repeat: job.repeat } : {}),
      status: 'cancelled',
      attempts: 0,
      startedAt: now,
      endedAt: now,
      durationMs: 0,
      backend: backendFor(job.workflow, this.#o.backendOverride),
      steps: [],
      artifacts: [],
      usage: ZERO_USAGE,
      error: { kind: 'step', code: 'not-started', message: reason },
      workflowHash: job.workflow.hash,
    };
  }
}
