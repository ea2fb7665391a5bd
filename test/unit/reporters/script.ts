/** A scripted event sequence for reporter golden tests: concurrency, retries, failures, warnings. */
import type { RunEvent } from '../../../src/events.js';
import { SummaryBuilder } from '../../../src/results/summary.js';
import type { JobResult } from '../../../src/results/types.js';
import { makeResult, step } from '../results/make-result.js';

export const SECRET = 'ghp_supersecrettoken123';

export function scriptedEvents(): RunEvent[] {
  const a = makeResult({
    id: 'hello[greeting=hi]',
    slug: 'hello_greeting-hi',
    workflow: 'hello',
    file: 'workflows/hello.yaml',
    index: 0,
    status: 'passed',
    durationMs: 4_200,
    steps: [
      step({ id: 'setup', durationMs: 1_200 }),
      step({ id: 'agent', kind: 'prompt', durationMs: 3_000, turns: 3 }),
    ],
    usage: { inputTokens: 1200, outputTokens: 300, cachedInputTokens: 0 },
  });
  const b = makeResult({
    id: 'hello[greeting=hey]',
    slug: 'hello_greeting-hey',
    workflow: 'hello',
    file: 'workflows/hello.yaml',
    index: 1,
    status: 'failed',
    durationMs: 2_500,
    steps: [
      step({ id: 'setup', durationMs: 500 }),
      step({
        id: 'verify',
        name: 'Check the summary',
        status: 'failed',
        exitCode: 1,
        durationMs: 2_000,
        output: `checking\ntoken=${SECRET}\nsummary.md missing\n`,
      }),
    ],
    artifacts: [
      {
        path: '/work/out/summary.md',
        to: '',
        status: 'not-found',
        files: 0,
        bytes: 0,
        message: 'no files matched',
      },
    ],
  });
  const c = makeResult({
    id: 'deploy',
    slug: 'deploy',
    workflow: 'deploy',
    file: 'workflows/deploy.yaml',
    index: 2,
    status: 'error',
    attempts: 2,
    durationMs: 9_000,
    steps: [],
  });
  const results: JobResult[] = [a, b, c];
  const builder = new SummaryBuilder();
  for (const r of results) builder.add(r);
  const summary = builder.build({
    runId: 'run-42',
    startedAt: '2025-01-01T00:00:00.000Z',
    endedAt: '2025-01-01T00:00:15.000Z',
    exitCode: 3,
  });
  return [
    { type: 'warning', message: 'bubblewrap (bwrap) not found: running unjailed' },
    {
      type: 'run',
      reason: 'started',
      runId: 'run-42',
      outputDir: 'out',
      jobs: results.map((r) => ({ id: r.id, slug: r.slug, workflow: r.workflow, file: r.file })),
      skipped: 1,
      concurrency: 2,
      startedAt: '2025-01-01T00:00:00.000Z',
    },
    { type: 'job', reason: 'started', jobId: a.id, attempt: 1 },
    { type: 'job', reason: 'started', jobId: b.id, attempt: 1 },
    { type: 'job', reason: 'phase', jobId: a.id, phase: 'create' },
    { type: 'step', reason: 'started', jobId: a.id, stepId: 'setup', name: 'setup', finally: false },
    { type: 'step', reason: 'started', jobId: b.id, stepId: 'setup', name: 'setup', finally: false },
    { type: 'step', reason: 'output', jobId: a.id, stepId: 'setup', text: 'installing…\n' },
    { type: 'step', reason: 'finished', jobId: a.id, result: a.steps[0]! },
    { type: 'step', reason: 'finished', jobId: b.id, result: b.steps[0]! },
    {
      type: 'step',
      reason: 'started',
      jobId: a.id,
      stepId: 'agent',
      name: 'Summarize the notes',
      finally: false,
    },
    {
      type: 'agent',
      reason: 'turn',
      jobId: a.id,
      stepId: 'agent',
      turn: 1,
      usage: { inputTokens: 400, outputTokens: 100, cachedInputTokens: 0 },
    },
    {
      type: 'agent',
      reason: 'tool-call',
      jobId: a.id,
      stepId: 'agent',
      tool: 'read',
      summary: '/work/input/notes.txt',
    },
    {
      type: 'step',
      reason: 'started',
      jobId: b.id,
      stepId: 'verify',
      name: 'Check the summary',
      finally: false,
    },
    { type: 'step', reason: 'finished', jobId: b.id, result: b.steps[1]! },
    { type: 'job', reason: 'finished', result: b },
    { type: 'job', reason: 'started', jobId: c.id, attempt: 1 },
    { type: 'job', reason: 'phase', jobId: c.id, phase: 'create' },
    {
      type: 'job',
      reason: 'retrying',
      jobId: c.id,
      attempt: 2,
      error: 'sandbox create failed: 503',
      delayMs: 2_000,
    },
    { type: 'step', reason: 'finished', jobId: a.id, result: a.steps[1]! },
    { type: 'job', reason: 'finished', result: a },
    { type: 'job', reason: 'started', jobId: c.id, attempt: 2 },
    { type: 'warning', jobId: c.id, message: `sandbox slow to start (key ${SECRET})` },
    { type: 'job', reason: 'finished', result: c },
    { type: 'run', reason: 'finished', summary, outputDir: 'out' },
  ];
}

/** A writable-ish stream that records what was written. */
export class Capture {
  text = '';
  isTTY: boolean;
  columns = 100;
  rows = 40;
  constructor(isTTY = false) {
    this.isTTY = isTTY;
  }
  write(chunk: string | Uint8Array): boolean {
    this.text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }
}
