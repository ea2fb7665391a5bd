/**
 * `planResume`: which jobs a resumed run keeps and which it runs again,
 * change detection by stable identity (job ids + workflow content hashes),
 * and the errors that stop a resume before anything starts. Run directories
 * are written with the real `RunWriter`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Job, Workflow } from '../../../src/workflow/types.js';
import type { JobStatus } from '../../../src/results/types.js';
import { RunWriter, planRecordFromJobs } from '../../../src/results/run-writer.js';
import { readSummary } from '../../../src/results/read-results.js';
import {
  comparePlans,
  describeChange,
  describeResume,
  planMembership,
  planResume,
  resumedInfo,
} from '../../../src/engine/resume.js';
import { UserError } from '../../../src/errors.js';
import { makeWorkflow } from '../../helpers/make-workflow.js';
import { makeResult } from '../results/make-result.js';

let out: string;
beforeEach(async () => {
  out = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await fs.rm(out, { recursive: true, force: true });
});

/** Jobs `name[n=1..count]` of a workflow, with global indices from `start`. */
function jobsOf(wf: Workflow, count: number, start = 0): Job[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${wf.name}[n=${i + 1}]`,
    slug: `${wf.name}_n-${i + 1}`,
    workflow: wf,
    index: start + i,
    matrix: { n: i + 1 },
  }));
}

/** Writes a run dir with `plan` and the given results (in order), then finishes it. */
async function writeRun(
  runId: string,
  plan: readonly Job[],
  results: Array<[Job, JobStatus] | [Job, JobStatus, string]>,
  options: { shard?: string | null; finish?: boolean; extra?: Record<string, unknown> } = {},
): Promise<void> {
  const writer = await RunWriter.open({
    outputDir: out,
    runId,
    argv: ['run'],
    version: 'test',
    plan: planRecordFromJobs(plan),
    options: { shard: options.shard ?? null, ...options.extra },
    fsync: false,
  });
  for (const [job, status, hash] of results) {
    await writer.recordJob(
      makeResult({
        id: job.id,
        slug: job.slug,
        workflow: job.workflow.name,
        index: job.index,
        status,
        workflowHash: hash ?? job.workflow.hash,
      }),
    );
  }
  if (options.finish !== false) await writer.finish({ exitCode: 0 });
}

const ids = (jobs: readonly Job[]): string[] => jobs.map((j) => j.id);

describe('planResume: what runs again', () => {
  it('keeps verdicts, re-runs missing / error / cancelled / skipped jobs, last result wins', async () => {
    const wf = makeWorkflow('a', { hash: 'h1' });
    const jobs = jobsOf(wf, 8);
    const [j1, j2, j3, j4, j5, j6, j7] = jobs as [Job, Job, Job, Job, Job, Job, Job, Job];
    await writeRun('r1', jobs, [
      [j1, 'passed'],
      [j2, 'failed'],
      [j3, 'timed-out'],
      [j4, 'error'],
      [j5, 'cancelled'],
      [j6, 'skipped'],
      // Last wins: an error after a pass re-runs; a pass after an error is kept.
      [j7, 'passed'],
      [j7, 'error'],
      [j4, 'passed'],
      // jobs[7] never finished.
    ]);
    const d = await planResume({ outputDir: out, jobs });
    expect(d.runId).toBe('r1');
    expect(d.runDir).toBe(path.join(out, 'r1'));
    expect(ids(d.rerun)).toEqual(['a[n=5]', 'a[n=6]', 'a[n=7]', 'a[n=8]']);
    expect(d.reasons).toEqual({ missing: 1, error: 1, cancelled: 1, skipped: 1, changed: 0 });
    expect(d.kept).toBe(4);
    expect(d.keptByStatus).toEqual({ passed: 2, failed: 1, 'timed-out': 1 });
    expect(d.changes).toEqual([]);
    expect(d.notes).toEqual([]);
    expect(resumedInfo(d)).toEqual({
      kept: 4,
      keptByStatus: { passed: 2, failed: 1, 'timed-out': 1 },
      rerun: 4,
      reasons: d.reasons,
    });
    expect(describeResume(d)).toBe(
      'resuming run r1: 4 jobs kept (2 passed, 1 failed, 1 timed-out); 4 jobs to run (1 missing, 1 error, 1 cancelled, 1 skipped)',
    );
    // Re-run jobs come back in plan order.
    expect(d.rerun.map((j) => j.index)).toEqual([4, 5, 6, 7]);
  });

  it('defaults to the latest run; an explicit id picks that run', async () => {
    const wf = makeWorkflow('a', { hash: 'h1' });
    const jobs = jobsOf(wf, 2);
    await writeRun('older', jobs, [[jobs[0]!, 'passed']]);
    // `latestRunId` compares session start times; make sure they differ.
    await new Promise((r) => setTimeout(r, 5));
    await writeRun('newer', jobs, []);
    expect((await planResume({ outputDir: out, jobs })).runId).toBe('newer');
    const older = await planResume({ outputDir: out, jobs, runId: 'older' });
    expect(older.runId).toBe('older');
    expect(ids(older.rerun)).toEqual(['a[n=2]']);
  });

  it('a result made by another version of the workflow runs again (interrupted --force)', async () => {
    const wf = makeWorkflow('a', { hash: 'h2' });
    const jobs = jobsOf(wf, 3);
    await writeRun('r1', jobs, [
      [jobs[0]!, 'passed', 'h2'],
      [jobs[1]!, 'passed', 'h1'],
      [jobs[2]!, 'failed', 'h1'],
    ]);
    const d = await planResume({ outputDir: out, jobs });
    expect(ids(d.rerun)).toEqual(['a[n=2]', 'a[n=3]']);
    expect(d.reasons.changed).toBe(2);
    expect(d.keepsResult({ id: 'a[n=1]', workflowHash: 'h2' })).toBe(true);
    expect(d.keepsResult({ id: 'a[n=2]', workflowHash: 'h1' })).toBe(false);
    expect(d.keepsResult({ id: 'gone', workflowHash: 'h2' })).toBe(false);
  });

  it('reports a torn last line of results.jsonl instead of failing', async () => {
    const wf = makeWorkflow('a', { hash: 'h1' });
    const jobs = jobsOf(wf, 2);
    await writeRun('r1', jobs, [[jobs[0]!, 'passed']], { finish: false });
    await fs.appendFile(path.join(out, 'r1', 'results.jsonl'), '{"id":"a[n=2]","sta');
    const d = await planResume({ outputDir: out, jobs });
    expect(ids(d.rerun)).toEqual(['a[n=2]']);
    expect(d.notes).toEqual([expect.stringContaining('cut short')]);
  });
});

describe('planResume: refusals (exit 2, nothing started)', () => {
  it('no run at all, and a run id that does not exist', async () => {
    const jobs = jobsOf(makeWorkflow('a'), 1);
    await expect(planResume({ outputDir: path.join(out, 'none'), jobs })).rejects.toThrow(
      /there is no run to resume in .*none/,
    );
    await writeRun('r1', jobs, []);
    const e = await planResume({ outputDir: out, jobs, runId: 'r2' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toBe(`--resume r2: no such run in ${out} (runs in ${out}: r1)`);
  });

  it('a changed workflow is explained, and --force re-runs its jobs while keeping the others', async () => {
    const a1 = makeWorkflow('a', { hash: 'a1', file: 'flows/a.yaml' });
    const b1 = makeWorkflow('b', { hash: 'b1', file: 'flows/b.yaml' });
    const before = [...jobsOf(a1, 3), ...jobsOf(b1, 2, 3)];
    await writeRun(
      'r1',
      before,
      before.map((j) => [j, 'passed'] as [Job, JobStatus]),
    );
    // a: content changed and its matrix lost n=3 and gained n=4,5; b: unchanged.
    const a2 = makeWorkflow('a', { hash: 'a2', file: 'flows/a.yaml' });
    const now = [
      ...jobsOf(a2, 2),
      { ...jobsOf(a2, 5)[3]!, index: 2 },
      { ...jobsOf(a2, 5)[4]!, index: 3 },
      ...jobsOf(b1, 2, 4),
    ];
    const e = await planResume({ outputDir: out, jobs: now }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toBe(
      [
        '--resume r1: the workflows changed since the run started, so its results no longer match the plan:',
        '  flows/a.yaml (a): content changed; 2 jobs added (a[n=4], a[n=5]); 1 job removed (a[n=3])',
        'Resuming would mix results of different versions. Re-run with --force to run every job of the',
        'changed workflows again (keeping the results of the others), or start a new run without --resume.',
      ].join('\n'),
    );

    const d = await planResume({ outputDir: out, jobs: now, force: true });
    expect(ids(d.rerun)).toEqual(['a[n=1]', 'a[n=2]', 'a[n=4]', 'a[n=5]']);
    expect(d.reasons).toEqual({ missing: 0, error: 0, cancelled: 0, skipped: 0, changed: 4 });
    expect(d.kept).toBe(2);
    expect(d.changes.map((c) => c.workflow)).toEqual(['a']);
    // Old results of a (and the removed job) stop counting; b's still count.
    expect(d.keepsResult({ id: 'a[n=1]', workflowHash: 'a1' })).toBe(false);
    expect(d.keepsResult({ id: 'a[n=3]', workflowHash: 'a1' })).toBe(false);
    expect(d.keepsResult({ id: 'b[n=1]', workflowHash: 'b1' })).toBe(true);
  });

  it('workflows added or left out are changes too', async () => {
    const a = makeWorkflow('a', { hash: 'a1' });
    const b = makeWorkflow('b', { hash: 'b1' });
    const c = makeWorkflow('c', { hash: 'c1' });
    await writeRun('r1', [...jobsOf(a, 1), ...jobsOf(b, 2, 1)], []);
    const now = [...jobsOf(a, 1), ...jobsOf(c, 1, 1)];
    const e = await planResume({ outputDir: out, jobs: now }).catch((x: unknown) => x);
    expect((e as Error).message).toContain('  c.yaml (c): not part of the run (1 job would be added)\n');
    expect((e as Error).message).toContain('  b.yaml (b): part of the run but not given now (2 jobs)\n');
    const d = await planResume({ outputDir: out, jobs: now, force: true });
    expect(ids(d.rerun)).toEqual(['a[n=1]', 'c[n=1]']);
    expect(d.reasons).toEqual({ missing: 1, error: 0, cancelled: 0, skipped: 0, changed: 1 });
    expect(d.keepsResult({ id: 'b[n=1]', workflowHash: 'b1' })).toBe(false);
  });

  it('the shard must match the one the run was started with', async () => {
    const jobs = jobsOf(makeWorkflow('a'), 4);
    await writeRun('s', jobs.slice(1, 2), [], { shard: '2/3' });
    await writeRun('whole', jobs, []);
    await expect(planResume({ outputDir: out, jobs: jobs.slice(0, 1), runId: 's' })).rejects.toThrow(
      '--resume s: the run was shard 2/3; resume it with --shard 2/3',
    );
    await expect(
      planResume({ outputDir: out, jobs: jobs.slice(0, 1), runId: 's', shard: { index: 1, total: 3 } }),
    ).rejects.toThrow('resume it with --shard 2/3');
    await expect(
      planResume({ outputDir: out, jobs, runId: 'whole', shard: { index: 1, total: 2 } }),
    ).rejects.toThrow('--resume whole: the run covered the whole plan; resume it without --shard');
    const ok = await planResume({
      outputDir: out,
      jobs: jobs.slice(1, 2),
      runId: 's',
      shard: { index: 2, total: 3 },
    });
    expect(ids(ok.rerun)).toEqual(['a[n=2]']);
  });

  it('a merged run cannot be resumed', async () => {
    const jobs = jobsOf(makeWorkflow('a'), 1);
    await writeRun('m', jobs, [], { extra: { mergedFrom: ['/x'] } });
    await expect(planResume({ outputDir: out, jobs })).rejects.toThrow(/made by 'rho-flow merge'/);
  });
});

describe('plan identity helpers', () => {
  it('comparePlans only looks at ids and hashes (not file paths or timestamps)', () => {
    const wf = makeWorkflow('a', { hash: 'h' });
    const jobs = jobsOf(wf, 2);
    const recorded = planRecordFromJobs(jobs);
    const moved = jobsOf(makeWorkflow('a', { hash: 'h', file: 'elsewhere/a.yaml' }), 2);
    expect(comparePlans(recorded, moved)).toEqual([]);
    const changed = comparePlans(recorded, jobsOf(makeWorkflow('a', { hash: 'x' }), 2));
    expect(changed).toEqual([
      {
        workflow: 'a',
        file: 'a.yaml',
        kind: 'modified',
        contentChanged: true,
        jobsAdded: [],
        jobsRemoved: [],
      },
    ]);
    expect(describeChange(changed[0]!)).toBe('a.yaml (a): content changed; same jobs');
    const more = comparePlans(recorded, jobsOf(wf, 9));
    expect(describeChange(more[0]!)).toBe(
      'a.yaml (a): same content, different jobs; 7 jobs added (a[n=3], a[n=4], a[n=5], a[n=6], a[n=7], … 2 more)',
    );
  });

  it('planMembership: planned id and the planned workflow hash', () => {
    const jobs = jobsOf(makeWorkflow('a', { hash: 'h' }), 1);
    const belongs = planMembership(planRecordFromJobs(jobs));
    expect(belongs({ id: 'a[n=1]', workflowHash: 'h' })).toBe(true);
    expect(belongs({ id: 'a[n=1]', workflowHash: 'old' })).toBe(false);
    expect(belongs({ id: 'a[n=1]' })).toBe(false);
    expect(belongs({ id: 'b', workflowHash: 'h' })).toBe(false);
  });
});

describe('RunWriter read-back with keepResult', () => {
  it('results that no longer belong to the plan stay in results.jsonl but leave the summary', async () => {
    const a1 = makeWorkflow('a', { hash: 'a1' });
    const first = jobsOf(a1, 3);
    await writeRun(
      'r1',
      first,
      first.map((j) => [j, 'passed'] as [Job, JobStatus]),
    );
    const a2 = makeWorkflow('a', { hash: 'a2' });
    const now = jobsOf(a2, 2);
    const d = await planResume({ outputDir: out, jobs: now, force: true });
    const writer = await RunWriter.open({
      outputDir: out,
      runId: d.runId,
      argv: ['run', '--resume'],
      version: 'test',
      plan: planRecordFromJobs(now),
      options: {},
      resume: true,
      keepResult: d.keepsResult,
      fsync: false,
    });
    expect(writer.counts.passed).toBe(0);
    await writer.recordJob(
      makeResult({
        id: 'a[n=1]',
        slug: 'a_n-1',
        workflow: 'a',
        index: 0,
        status: 'failed',
        workflowHash: 'a2',
      }),
    );
    await writer.finish({ exitCode: 1 });
    const summary = await readSummary(path.join(out, 'r1'));
    expect(summary.jobs.map((j) => [j.id, j.status])).toEqual([['a[n=1]', 'failed']]);
    const lines = (await fs.readFile(path.join(out, 'r1', 'results.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(4);
  });
});
