/** Synthetic job results for results/reporter tests. */
import type { JobResult, JobStatus, StepResult } from '../../../src/results/types.js';

export function step(overrides: Partial<StepResult> & { id: string }): StepResult {
  return {
    name: overrides.id,
    kind: 'run',
    finally: false,
    status: 'passed',
    continueOnError: false,
    durationMs: 1000,
    ...overrides,
  };
}

/** A job result; `status` decides sensible steps and errors unless overridden. */
export function makeResult(overrides: Partial<JobResult> & { id: string; status?: JobStatus }): JobResult {
  const status = overrides.status ?? 'passed';
  const slug = overrides.slug ?? overrides.id.replace(/[^A-Za-z0-9._-]+/g, '_');
  const steps: StepResult[] =
    overrides.steps ??
    (status === 'passed'
      ? [step({ id: 'build' }), step({ id: 'test' })]
      : status === 'failed'
        ? [
            step({ id: 'build' }),
            step({ id: 'test', status: 'failed', exitCode: 1, output: 'running tests\n1 failed\n' }),
          ]
        : status === 'timed-out'
          ? [
              step({
                id: 'build',
                status: 'timed-out',
                error: { kind: 'step', code: 'step-timeout', message: 'step-timeout after 2000 ms' },
              }),
            ]
          : []);
  const error =
    status === 'error'
      ? {
          kind: 'sandbox' as const,
          code: 'create-failed',
          message: 'sandbox create failed: 503 Service Unavailable',
        }
      : status === 'cancelled'
        ? { kind: 'step' as const, code: 'cancelled', message: 'cancelled by SIGINT' }
        : undefined;
  return {
    runId: 'run-1',
    slug,
    workflow: 'wf',
    file: 'workflows/wf.yaml',
    index: 0,
    status,
    attempts: 1,
    startedAt: '2025-01-01T00:00:00.000Z',
    endedAt: '2025-01-01T00:00:01.000Z',
    durationMs: 1000,
    backend: 'local',
    steps,
    artifacts: [],
    usage: { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 },
    workflowHash: 'hash-1',
    ...(error ? { error } : {}),
    ...overrides,
  };
}
