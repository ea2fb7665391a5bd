import type { Job } from '../workflow/types.js';
import type { Sandbox, SandboxSpec } from '../sandbox/sandbox.js';
import type { ErrorInfo, JobResult, JobStatus, StepResult } from '../results/types.js';
import type { EngineOptions } from './engine-options.js';
import { backendFor } from './engine-options.js';
import { runStep, type JobState } from './step-runner.js';
import { collectArtifacts, type ArtifactOutcome } from './artifacts.js';
import { classifyError } from './classify.js';
import {
  resolveSandboxEnv,
  resolveSandboxImage,
  resolveUploads,
  staticContexts,
  type RunInfo,
} from '../workflow/job-context.js';
import { ZERO_USAGE } from '../agent/model.js';
import { AbortReason, abortKind, anySignal, timeoutSignal } from '../util/abort.js';
import { errorMessage } from '../errors.js';
import type { ExprValue } from '../expr/evaluate.js';
import type { SandboxTracker } from './sandbox-tracker.js';

const MINUTE = 60_000;

/** Builds the sandbox spec of a job: evaluated image/env, the workflow's secrets injected into the env. */
export function sandboxSpecFor(
  job: Job,
  run: RunInfo & { secrets: Readonly<Record<string, string>> },
): SandboxSpec {
  const wf = job.workflow;
  const env = resolveSandboxEnv(job, run);
  for (const [name, value] of Object.entries(run.secrets)) env[name] = value;
  const { image, snapshot } = resolveSandboxImage(job, run);
  return {
    runId: run.runId,
    jobId: job.id,
    jobSlug: job.slug,
    attempt: run.attempt,
    ...(image ? { image } : {}),
    ...(snapshot ? { snapshot } : {}),
    ...(wf.sandbox.resources ? { resources: wf.sandbox.resources } : {}),
    workingDir: wf.sandbox.workingDir,
    network: wf.sandbox.network,
    env,
    autoStopMinutes: Math.max(1, Math.ceil((wf.sandbox.autoStopMs ?? 30 * MINUTE) / MINUTE)),
    autoDeleteMinutes: Math.max(0, Math.ceil((wf.sandbox.autoDeleteMs ?? 60 * MINUTE) / MINUTE)),
    labels: { 'rho-flow.workflow': wf.name },
  };
}

/**
 * Runs one attempt of a job: create sandbox → uploads → steps → finally →
 * artifacts → teardown. Teardown runs in `finally`, whatever happened. Never
 * throws: the outcome is the returned result (status + error).
 */
export async function runJobAttempt(
  job: Job,
  attempt: number,
  engine: EngineOptions,
  tracker: SandboxTracker,
  force: AbortSignal,
): Promise<JobResult> {
  const wf = job.workflow;
  const startedAt = new Date();
  const backendName = backendFor(wf, engine.backendOverride);
  const backend = engine.backends.get(backendName);
  const sinks = await engine.openJobSinks(job);
  const jobTimer = timeoutSignal(wf.timeoutMs, 'job-timeout');
  const jobSignal = anySignal(engine.signal, jobTimer.signal, force);
  const emitPhase = (phase: 'create' | 'upload' | 'steps' | 'finally' | 'artifacts' | 'teardown'): void =>
    engine.onEvent({ type: 'job', reason: 'phase', jobId: job.id, phase });

  let sandbox: Sandbox | undefined;
  const steps: StepResult[] = [];
  let status: JobStatus = 'passed';
  let error: ErrorInfo | undefined;
  let artifacts: ArtifactOutcome | undefined;
  let teardownError: string | undefined;
  let teardown: Promise<void> | undefined;
  /** Deletes the sandbox — or keeps it (`--keep-sandboxes on-failure`, once the status is final). Once. */
  const tearDown = (): Promise<void> => (teardown ??= disposeOrKeep());
  const disposeOrKeep = async (): Promise<void> => {
    emitPhase('teardown');
    if (!sandbox) return;
    if (engine.keepSandboxes === 'on-failure' && status !== 'passed') {
      tracker.release(sandbox);
      engine.onEvent({
        type: 'warning',
        jobId: job.id,
        message: `kept sandbox ${sandbox.id} for debugging (--keep-sandboxes on-failure)`,
      });
      return;
    }
    try {
      await tracker.dispose(sandbox);
    } catch (e) {
      teardownError = errorMessage(e);
      engine.onEvent({
        type: 'warning',
        jobId: job.id,
        message: `teardown of sandbox ${sandbox.id} failed: ${teardownError}`,
      });
    }
  };
  // Only this workflow's own secrets are visible to its jobs.
  const secrets: Record<string, string> = {};
  for (const name of Object.keys(wf.secrets)) {
    const v = engine.secrets[name];
    if (v !== undefined) secrets[name] = v;
  }
  const run = { runId: engine.runId, attempt, secrets };
  let baseContexts: Record<string, ExprValue> = { secrets };
  const state: Partial<JobState> &
    Pick<JobState, 'steps' | 'failed' | 'aborted' | 'usage' | 'costUsd' | 'tokensLeft'> = {
    job,
    attempt,
    sinks,
    baseContexts,
    steps: {},
    failed: false,
    aborted: false,
    usage: ZERO_USAGE,
    costUsd: 0,
    tokensLeft: wf.maxTokens,
  };

  sinks.log(`${attempt > 1 ? '\n' : ''}═══ ${job.id} · attempt ${attempt} · ${backendName} ═══\n`);
  sinks.transcript({
    type: 'job-start',
    job: job.id,
    attempt,
    backend: backendName,
    time: startedAt.toISOString(),
  });
  try {
    if (!backend) throw new Error(`backend '${backendName}' was not prepared`);
    baseContexts = { ...staticContexts(job, run), secrets };
    state.baseContexts = baseContexts;
    emitPhase('create');
    const spec = sandboxSpecFor(job, run);
    sandbox = await tracker.create(backend, spec, jobSignal);
    state.sandbox = sandbox;
    await engine.hooks?.afterCreate?.(job);

    emitPhase('upload');
    for (const up of resolveUploads(job, run)) {
      const stats = await sandbox.upload(up.from, up.to, { exclude: up.exclude, signal: jobSignal });
      sinks.transcript({
        type: 'upload',
        from: up.from,
        to: up.to,
        ...stats,
        time: new Date().toISOString(),
      });
    }

    emitPhase('steps');
    const full = state as JobState;
    for (const step of wf.steps) {
      if (jobSignal.aborted) state.aborted = true;
      const r = await runStep(step, full, { engine, signal: jobSignal, isFinally: false });
      steps.push(r);
      engine.onEvent({ type: 'step', reason: 'finished', jobId: job.id, result: r });
      if (jobSignal.aborted) state.aborted = true;
    }
  } catch (e) {
    // After an abort, what failed is a consequence of the abort: report the abort.
    const c = classifyError(jobSignal.aborted ? jobSignal.reason : e);
    status = c.status;
    error = c.error;
    if (c.status === 'cancelled' || c.status === 'timed-out') state.aborted = true;
  }

  // `finally` steps and artifacts: after an abort they get the grace period.
  const grace = jobSignal.aborted ? timeoutSignal(engine.gracePeriodMs, 'teardown') : undefined;
  const tailSignal = grace ? anySignal(grace.signal, force) : jobSignal;
  try {
    if (sandbox && wf.finally.length > 0) {
      emitPhase('finally');
      for (const step of wf.finally) {
        const r = await runStep(step, state as JobState, { engine, signal: tailSignal, isFinally: true });
        steps.push(r);
        engine.onEvent({ type: 'step', reason: 'finished', jobId: job.id, result: r });
      }
    }
    if (!error) ({ status, error } = verdict(steps, jobSignal, engine.signal));
    if (wf.artifacts.length > 0) {
      emitPhase('artifacts');
      // Artifacts get the grace period even when the job's own time ran out during `finally`.
      const artSignal = tailSignal.aborted
        ? anySignal(timeoutSignal(engine.gracePeriodMs, 'teardown').signal, force)
        : tailSignal;
      artifacts = await collectArtifacts({
        specs: wf.artifacts,
        sandbox,
        artifactsDir: sinks.artifactsDir,
        jobStatus: status,
        ctx: { contexts: { ...baseContexts, steps: state.steps as unknown as ExprValue } },
        signal: artSignal,
        // Once the last artifact is fetched the sandbox is no longer needed: delete it while the
        // files are being written locally (unless it may have to be kept, which depends on them).
        ...(engine.keepSandboxes === 'never' ? { onSandboxDone: () => void tearDown() } : {}),
      });
      for (const w of artifacts.warnings) engine.onEvent({ type: 'warning', jobId: job.id, message: w });
      // The job's timeout covers artifact collection too: if it ran out there, the job timed out.
      if (status === 'passed' && abortKind(jobSignal) === 'job-timeout') {
        const reason = jobSignal.reason instanceof AbortReason ? jobSignal.reason.message : 'job timeout';
        status = 'timed-out';
        error = { kind: 'step', code: 'job-timeout', message: `${reason} (while collecting artifacts)` };
      }
      if (status === 'passed' && artifacts.requiredMissing.length > 0) {
        status = 'failed';
        error = {
          kind: 'step',
          code: 'artifact-missing',
          message: `required artifact not found: ${artifacts.requiredMissing.join(', ')}`,
        };
      }
    }
  } catch (e) {
    // A bug in the tail must not skip teardown.
    if (!error) ({ status, error } = classifyError(e));
  } finally {
    grace?.clear();
    jobTimer.clear();
    await tearDown();
  }

  const endedAt = new Date();
  const result: JobResult = {
    runId: engine.runId,
    id: job.id,
    slug: job.slug,
    workflow: wf.name,
    file: wf.file,
    index: job.index,
    ...(job.matrix ? { matrix: job.matrix } : {}),
    ...(job.item ? { item: job.item } : {}),
    ...(job.repeat ? { repeat: job.repeat } : {}),
    status,
    attempts: attempt,
    startedAt: startedAt.toISOString(),
    endedAt: endedAt.toISOString(),
    durationMs: endedAt.getTime() - startedAt.getTime(),
    backend: backendName,
    ...(sandbox ? { sandboxId: sandbox.id } : {}),
    steps,
    artifacts: artifacts?.results ?? [],
    usage: state.usage,
    ...(state.costUsd > 0 ? { costUsd: state.costUsd } : {}),
    ...(error ? { error } : {}),
    ...(teardownError ? { teardownError } : {}),
    workflowHash: wf.hash,
  };
  sinks.transcript({ type: 'job-end', job: job.id, status, time: endedAt.toISOString() });
  await sinks.close();
  return engine.redactor.redactValue(result);
}

/** The job's status from its steps, once no setup error happened. */
function verdict(
  steps: readonly StepResult[],
  jobSignal: AbortSignal,
  runSignal: AbortSignal,
): { status: JobStatus; error?: ErrorInfo } {
  const kind = abortKind(jobSignal);
  if (runSignal.aborted || kind === 'cancelled' || kind === 'teardown') {
    const cancelledStep = steps.find((s) => s.status === 'cancelled');
    if (cancelledStep || steps.some((s) => !s.finally && s.status === 'cancelled')) {
      return {
        status: 'cancelled',
        error: { kind: 'step', code: 'cancelled', message: 'the run was cancelled' },
      };
    }
  }
  if (kind === 'job-timeout') {
    const reason = jobSignal.reason instanceof AbortReason ? jobSignal.reason.message : 'job timeout';
    return { status: 'timed-out', error: { kind: 'step', code: 'job-timeout', message: reason } };
  }
  const bad = steps.find((s) => !s.continueOnError && s.status !== 'passed' && s.status !== 'skipped');
  if (!bad) return { status: 'passed' };
  const status: JobStatus = bad.status === 'cancelled' ? 'cancelled' : bad.status;
  return {
    status,
    error: bad.error ?? { kind: 'step', message: `step '${bad.id}' ${bad.status}` },
  };
}
