/**
 * The library entry point for running a plan: preflight everything (secrets,
 * model credentials, backends) before any sandbox exists, open the run
 * directory, run the engine, write the summary. The CLI adds signals and a
 * reporter on top; library users call `startRun` directly.
 */
import path from 'node:path';
import type { BackendName, Job, Workflow } from '../workflow/types.js';
import type { SandboxBackend } from '../sandbox/sandbox.js';
import type { RunEvent } from '../events.js';
import type { JobResult, RunSummary } from '../results/types.js';
import type { Shard } from '../workflow/plan.js';
import type { ResumedInfo } from '../events.js';
import type { BackoffPolicy } from '../agent/retry.js';
import { loadBackend } from '../sandbox/registry.js';
import { Engine } from './engine.js';
import { safeListener } from './safe-listener.js';
import { backendFor, type EngineHooks, type ModelProvider } from './engine-options.js';
import { resolveSecrets } from './secrets.js';
import { newRunId } from './run-id.js';
import { runExitCode, type InterruptSignal } from './run-exit-code.js';
import { RunWriter, planRecordFromJobs } from '../results/run-writer.js';
import { passRateOf } from '../results/summary.js';
import { DefaultModelProvider, preflightModels } from '../agent/model-config.js';
import { Redactor } from '../util/redact.js';
import { UserError, errorMessage } from '../errors.js';
import { AbortReason } from '../util/abort.js';
import { shardLabel } from './resume.js';

export interface RunOptions {
  /** The jobs to run (a plan, possibly one shard of it), in order. */
  jobs: readonly Job[];
  /** `-o`: results go to `<outputDir>/<runId>/`. */
  outputDir: string;
  /** Default: a new id (see `newRunId`). */
  runId?: string;
  /** Continue an existing run directory (`--resume`): earlier results are kept. */
  resume?: boolean;
  /**
   * With `resume`: which earlier results still count (see `planResume`'s
   * `keepsResult`); default all.
   */
  keepResult?: (result: JobResult) => boolean;
  /**
   * The whole plan of this invocation (this shard's part of it), recorded in
   * run.json as the run's identity. Default `jobs`. With `--resume`, `jobs`
   * is only what runs again while the plan stays the whole.
   */
  planJobs?: readonly Job[];
  /** `--shard i/n`: recorded in run.json and summary.json. */
  shard?: Shard;
  /** What a resume kept and re-runs, for the `run started` event. */
  resumed?: ResumedInfo;
  /** Jobs of the plan not run this time (other shards, resumed ones), for the `run started` event. */
  skipped?: number;
  concurrency?: number;
  backendOverride?: BackendName;
  isolation?: 'auto' | 'strict';
  retries?: number;
  maxFailures?: number;
  minPassRate?: number;
  gracePeriodMs?: number;
  keepSandboxes?: 'never' | 'on-failure';
  modelOverride?: string;
  recordDir?: string;
  replayDir?: string;
  /** JUnit file name inside the run dir (shards: `junit-2-of-4.xml`). */
  junitFile?: string;
  /** Host environment: secrets, credentials, TMPDIR. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** For run.json. */
  argv?: readonly string[];
  version?: string;
  /** Cancels the run gracefully. */
  signal?: AbortSignal;
  /** Which signal caused the cancellation, for the summary and exit code. */
  interruptedBy?: () => InterruptSignal | undefined;
  onEvent?: (event: RunEvent) => void;
  /** Backoff between infrastructure retries of a job. */
  retryDelayMs?: (attempt: number) => number;
  /** Replace the model provider (tests, library users with their own `Model`). */
  models?: ModelProvider;
  /** @internal */
  hooks?: EngineHooks;
}

export interface RunHandle {
  runId: string;
  runDir: string;
  redactor: Redactor;
  writer: RunWriter;
  /** Resolves when every job has a result on disk and the summary is written. */
  done: Promise<{ summary: RunSummary; exitCode: number; peakConcurrency: number; leftBehind: string[] }>;
  /** Live sandboxes right now. */
  liveSandboxes(): number;
  /** Deletes every sandbox still alive at once (second signal); resolves with the ids that survived. */
  forceTeardown(timeoutMs: number): Promise<string[]>;
}

/**
 * Advanced tuning of the model client's own retries, from the environment:
 * `RHO_FLOW_MODEL_RETRIES` (retries of one model call after a 429 / 5xx /
 * connection error, default 4) and `RHO_FLOW_MODEL_RETRY_BASE_MS` (the first
 * backoff, doubled for each further retry; default 1000). Unset or empty
 * variables keep the defaults; anything but a whole number is a `UserError`.
 */
export function modelRetryFromEnv(env: Readonly<Record<string, string | undefined>>): Partial<BackoffPolicy> {
  const policy: Partial<BackoffPolicy> = {};
  const read = (name: string, max: number): number | undefined => {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') return undefined;
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n > max) {
      throw new UserError(`${name} must be a whole number from 0 to ${max}, got '${raw}'`);
    }
    return n;
  };
  const retries = read('RHO_FLOW_MODEL_RETRIES', 100);
  const base = read('RHO_FLOW_MODEL_RETRY_BASE_MS', 600_000);
  if (retries !== undefined) policy.maxAttempts = retries + 1;
  if (base !== undefined) policy.baseDelayMs = base;
  return policy;
}

/** Default backoff between infrastructure retries: 2 s, 4 s, 8 s … capped at 30 s, with jitter. */
export function defaultRetryDelay(attempt: number): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

function workflowsOf(jobs: readonly Job[]): Workflow[] {
  return [...new Set(jobs.map((j) => j.workflow))];
}

/**
 * Checks everything that can be checked before a sandbox exists and returns
 * the prepared backends. Throws one `UserError` listing every problem.
 */
async function preflight(
  options: RunOptions,
  env: Readonly<Record<string, string | undefined>>,
  warn: (message: string) => void,
): Promise<{
  backends: Map<BackendName, SandboxBackend>;
  secrets: Record<string, string>;
  modelRetry: Partial<BackoffPolicy>;
}> {
  const workflows = workflowsOf(options.jobs);
  const problems: string[] = [];
  let secrets: Record<string, string> = {};
  let modelRetry: Partial<BackoffPolicy> = {};
  try {
    modelRetry = modelRetryFromEnv(env);
  } catch (e) {
    problems.push(errorMessage(e));
  }
  try {
    secrets = resolveSecrets(workflows, env);
  } catch (e) {
    problems.push(errorMessage(e));
  }
  // A caller-supplied model provider answers for its own credentials.
  for (const e of options.models
    ? []
    : preflightModels({
        steps: workflows.flatMap((workflow) =>
          [...workflow.steps, ...workflow.finally].map((step) => ({ workflow, step })),
        ),
        env,
        replayDir: options.replayDir,
        recordDir: options.recordDir,
      })) {
    problems.push(e.message);
  }
  const names = [...new Set(workflows.map((w) => backendFor(w, options.backendOverride)))];
  const backends = new Map<BackendName, SandboxBackend>();
  for (const name of names) {
    try {
      const backend = await loadBackend(name, { isolation: options.isolation ?? 'auto', warn, env });
      backends.set(name, backend);
      await backend.preflight();
    } catch (e) {
      problems.push(errorMessage(e));
    }
  }
  const ignored = workflows.filter(
    (w) =>
      backendFor(w, options.backendOverride) === 'local' &&
      (w.sandbox.image ?? w.sandbox.snapshot ?? w.sandbox.resources),
  );
  if (ignored.length > 0) {
    warn(
      `the local backend ignores sandbox image/snapshot/resources (${ignored.map((w) => w.file).join(', ')}); it uses this machine's userland`,
    );
  }
  if (problems.length > 0) {
    await closeBackends(backends.values(), options.gracePeriodMs ?? 10_000);
    throw new UserError(problems.join('\n'));
  }
  return { backends, secrets, modelRetry };
}

/**
 * Preflights, opens the run directory and starts the engine. Rejects with a
 * `UserError` (nothing created) when the input cannot run.
 */
export async function startRun(options: RunOptions): Promise<RunHandle> {
  const env = options.env ?? process.env;
  const emit = safeListener(options.onEvent);
  const warn = (message: string): void => emit({ type: 'warning', message });
  const { backends, secrets, modelRetry } = await preflight(options, env, warn);
  const redactor = new Redactor(Object.values(secrets));
  for (const short of redactor.shortValues) {
    warn(`a secret value is shorter than 4 characters and will not be masked (${short.length} chars)`);
  }
  const runId = options.runId ?? newRunId(env);
  let writer: RunWriter;
  try {
    writer = await RunWriter.open({
      outputDir: options.outputDir,
      runId,
      argv: options.argv ?? [],
      version: options.version ?? 'unknown',
      plan: planRecordFromJobs(options.planJobs ?? options.jobs),
      options: {
        shard: shardLabel(options.shard),
        concurrency: options.concurrency ?? 4,
        backend: options.backendOverride ?? null,
        retries: options.retries ?? 2,
        maxFailures: options.maxFailures ?? null,
        minPassRate: options.minPassRate ?? null,
        model: options.modelOverride ?? null,
      },
      redactor,
      resume: options.resume === true,
      ...(options.keepResult ? { keepResult: options.keepResult } : {}),
      ...(options.shard ? { shard: options.shard } : {}),
      ...(options.junitFile ? { junitFile: options.junitFile } : {}),
    });
  } catch (e) {
    await closeBackends(backends.values(), options.gracePeriodMs ?? 10_000);
    throw e;
  }

  // Workspaces of runs whose owner died (SIGKILL, power loss) go first.
  const local = backends.get('local');
  if (local) {
    try {
      const report = await local.cleanup({});
      if (report.removed.length > 0) {
        warn(`removed ${report.removed.length} leftover workspace(s) of dead runs`);
      }
    } catch (e) {
      warn(`cleanup of leftover workspaces failed: ${errorMessage(e)}`);
    }
  }

  const signal = options.signal ?? new AbortController().signal;
  const concurrency = options.concurrency ?? 4;
  const engine = new Engine({
    jobs: options.jobs,
    runId,
    concurrency,
    backends,
    ...(options.backendOverride ? { backendOverride: options.backendOverride } : {}),
    retries: options.retries ?? 2,
    retryDelayMs: options.retryDelayMs ?? defaultRetryDelay,
    ...(options.maxFailures !== undefined ? { maxFailures: options.maxFailures } : {}),
    gracePeriodMs: options.gracePeriodMs ?? 10_000,
    keepSandboxes: options.keepSandboxes ?? 'never',
    secrets,
    redactor,
    ...(options.modelOverride ? { modelOverride: options.modelOverride } : {}),
    models:
      options.models ??
      new DefaultModelProvider({
        env,
        replayDir: options.replayDir,
        recordDir: options.recordDir,
        redactor,
        retry: modelRetry,
        onRetry: (e) =>
          emit({
            type: 'warning',
            jobId: e.meta.jobId,
            message: `model call of step ${e.meta.stepId} (turn ${e.meta.turn}) failed: ${e.error.message}; retry ${e.attempt}/${e.maxAttempts - 1} in ${e.delayMs} ms`,
          }),
      }),
    signal,
    onEvent: emit,
    results: writer,
    openJobSinks: (job) => writer.openJob(job.slug),
    ...(options.hooks ? { hooks: options.hooks } : {}),
  });

  const runDir = path.join(options.outputDir, runId);
  emit({
    type: 'run',
    reason: 'started',
    runId,
    outputDir: options.outputDir,
    runDir,
    jobs: options.jobs.map((j) => ({
      id: j.id,
      slug: j.slug,
      workflow: j.workflow.name,
      file: j.workflow.file,
    })),
    skipped: options.skipped ?? 0,
    ...(options.resumed ? { resumed: options.resumed } : {}),
    concurrency,
    startedAt: new Date().toISOString(),
  });

  const done = (async () => {
    try {
      const outcome = await engine.run();
      const interrupted = signal.aborted ? (options.interruptedBy?.() ?? interruptOf(signal)) : undefined;
      const counts = writer.counts;
      const exitCode = runExitCode({
        counts,
        passRate: passRateOf(counts),
        ...(interrupted ? { interrupted } : {}),
        ...(options.minPassRate !== undefined ? { minPassRate: options.minPassRate } : {}),
      });
      const summary = await writer.finish({ exitCode, ...(interrupted ? { interrupted } : {}) });
      emit({
        type: 'run',
        reason: 'finished',
        summary,
        outputDir: options.outputDir,
        runDir,
        junitPath: writer.junitPath,
      });
      return { summary, exitCode, peakConcurrency: outcome.peakConcurrency, leftBehind: outcome.leftBehind };
    } finally {
      await closeBackends(backends.values(), options.gracePeriodMs ?? 10_000);
    }
  })();

  return {
    runId,
    runDir,
    redactor,
    writer,
    done,
    liveSandboxes: () => engine.liveSandboxes,
    forceTeardown: (timeoutMs) => engine.forceTeardown(timeoutMs),
  };
}

/**
 * Releases backend clients. Bounded: a backend still deleting a sandbox whose
 * create was cancelled mid-flight may take long; the run does not wait for
 * it past `boundMs` (the sandbox's auto-delete interval is the backstop).
 */
async function closeBackends(backends: Iterable<SandboxBackend>, boundMs: number): Promise<void> {
  const all = Promise.allSettled([...backends].map((b) => b.close()));
  await Promise.race([all, new Promise((r) => setTimeout(r, boundMs).unref())]);
}

function interruptOf(signal: AbortSignal): InterruptSignal | undefined {
  const reason: unknown = signal.reason;
  if (reason instanceof AbortReason) {
    const m = /SIG(INT|TERM|HUP)/.exec(reason.message);
    if (m) return `SIG${m[1]}` as InterruptSignal;
  }
  return undefined;
}
