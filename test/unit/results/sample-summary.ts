/** A run summary with every status, repeats, tokens and awkward characters, for golden tests. */
import { SummaryBuilder } from '../../../src/results/summary.js';
import type { RunSummary } from '../../../src/results/types.js';
import { makeResult, step } from './make-result.js';

export function sampleSummary(options: { failures?: number } = {}): RunSummary {
  const b = new SummaryBuilder();
  let i = 0;
  const usage = (n: number): { inputTokens: number; outputTokens: number; cachedInputTokens: number } => ({
    inputTokens: 1000 * n,
    outputTokens: 100 * n,
    cachedInputTokens: 250 * n,
  });
  for (const n of [1, 2, 3]) {
    b.add(
      makeResult({
        id: `fix[task=flaky]#${n}`,
        slug: `fix_task-flaky_${n}`,
        workflow: 'fix',
        file: 'workflows/fix.yaml',
        index: i++,
        status: n === 2 ? 'failed' : 'passed',
        repeat: { index: n, total: 3 },
        durationMs: 60_000 + n * 1000,
        usage: usage(n),
        costUsd: 0.01 * n,
      }),
    );
  }
  b.add(
    makeResult({
      id: 'fix[task=pipes|and%percent]#1',
      slug: 'fix_task-pipes_1',
      workflow: 'fix',
      file: 'workflows/fix.yaml',
      index: i++,
      status: 'failed',
      repeat: { index: 1, total: 3 },
      durationMs: 5_400,
      steps: [
        step({
          id: 'verify',
          status: 'failed',
          exitCode: 2,
          error: { kind: 'step', message: 'assert a|b, got 100%: c\r\nsecond line <b>not bold</b>' },
        }),
      ],
    }),
  );
  b.add(
    makeResult({
      id: 'lint',
      slug: 'lint',
      workflow: 'lint',
      file: 'workflows/lint.yaml',
      index: i++,
      status: 'timed-out',
      durationMs: 120_000,
    }),
  );
  b.add(
    makeResult({
      id: 'deploy',
      slug: 'deploy',
      workflow: 'deploy',
      file: 'workflows/deploy.yaml',
      index: i++,
      status: 'error',
      attempts: 3,
      durationMs: 3_000,
    }),
  );
  b.add(
    makeResult({
      id: 'docs',
      slug: 'docs',
      workflow: 'docs',
      file: 'workflows/docs.yaml',
      index: i++,
      status: 'cancelled',
      durationMs: 800,
    }),
  );
  b.add(
    makeResult({
      id: 'skip-me',
      slug: 'skip-me',
      workflow: 'docs',
      file: 'workflows/docs.yaml',
      index: i++,
      status: 'skipped',
      durationMs: 0,
    }),
  );
  for (let k = 0; k < (options.failures ?? 0); k++) {
    b.add(
      makeResult({
        id: `bulk[n=${k}]`,
        slug: `bulk_n-${k}`,
        workflow: 'bulk',
        file: 'workflows/bulk.yaml',
        index: i++,
        status: 'failed',
        durationMs: 1000 + k,
      }),
    );
  }
  return b.build({
    runId: '20250101-120000-ab12',
    startedAt: '2025-01-01T12:00:00.000Z',
    endedAt: '2025-01-01T12:03:25.000Z',
    exitCode: 3,
  });
}
