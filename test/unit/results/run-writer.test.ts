import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'junit2json';
import {
  RunWriter,
  lineLocator,
  planRecordFromJobs,
  type PlanRecord,
  type RunRecord,
} from '../../../src/results/run-writer.js';
import { isTempName } from '../../../src/results/atomic.js';
import { readResults } from '../../../src/results/read-results.js';
import type { Job } from '../../../src/workflow/types.js';
import type { JobResult, RunSummary } from '../../../src/results/types.js';
import { Redactor } from '../../../src/util/redact.js';
import { UserError } from '../../../src/errors.js';
import { makeResult, step } from './make-result.js';

const SECRET = 'sk-live-0123456789abcdef';
let out: string;
beforeEach(async () => {
  out = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await rm(out, { recursive: true, force: true });
});

const plan: PlanRecord = {
  workflows: [
    { name: 'wf', file: 'workflows/wf.yaml', hash: 'hash-1', line: 1, steps: { build: 12, test: 15 } },
  ],
  jobs: [
    {
      id: 'wf[task=a]',
      slug: 'wf_task_a',
      workflow: 'wf',
      file: 'workflows/wf.yaml',
      index: 0,
      matrix: { task: 'a' },
    },
    {
      id: 'wf[task=b]',
      slug: 'wf_task_b',
      workflow: 'wf',
      file: 'workflows/wf.yaml',
      index: 1,
      matrix: { task: 'b' },
    },
  ],
};

function open(extra: Partial<Parameters<typeof RunWriter.open>[0]> = {}): Promise<RunWriter> {
  return RunWriter.open({
    outputDir: out,
    runId: 'run-1',
    argv: ['run', 'workflows/wf.yaml', '--var', `token=${SECRET}`],
    version: '0.1.0',
    plan,
    options: { concurrency: 4, note: `uses ${SECRET}` },
    redactor: new Redactor([SECRET]),
    startedAt: '2025-01-01T00:00:00.000Z',
    ...extra,
  });
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** Every file under `dir`, recursively. */
async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('RunWriter', () => {
  it('open writes run.json (plan, argv, version, options) atomically, redacted', async () => {
    const w = await open();
    expect(w.runDir).toBe(join(out, 'run-1'));
    const record = await readJson<RunRecord>(w.runJsonPath);
    expect(record).toMatchObject({
      runId: 'run-1',
      version: '0.1.0',
      startedAt: '2025-01-01T00:00:00.000Z',
      plan,
    });
    expect(record.argv).toEqual(['run', 'workflows/wf.yaml', '--var', 'token=***']);
    expect(record.options).toEqual({ concurrency: 4, note: 'uses ***' });
    expect(record.sessions).toHaveLength(1);
    expect((await stat(join(w.runDir, 'jobs'))).isDirectory()).toBe(true);
    await w.finish({ exitCode: 0 });
  });

  it('refuses an existing run dir unless resuming, and rejects unsafe run ids', async () => {
    const w = await open();
    await w.finish({ exitCode: 0 });
    await expect(open()).rejects.toThrow(UserError);
    await expect(open({ runId: '../escape' })).rejects.toThrow(UserError);
    await writeFile(w.runJsonPath, '{torn');
    await expect(open()).rejects.toThrow(/already exists/);
    await expect(open({ resume: true })).rejects.toThrow(/not valid JSON/);
  });

  it('recordJob appends a complete, fsynced line and writes result.json atomically', async () => {
    const w = await open();
    const r = makeResult({
      id: 'wf[task=a]',
      slug: 'wf_task_a',
      steps: [step({ id: 'build', output: `key ${SECRET}` })],
    });
    await w.recordJob(r);
    const lines = (await readFile(w.resultsPath, 'utf8')).split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    const parsed = JSON.parse(lines[0] ?? '') as JobResult;
    expect(parsed.id).toBe('wf[task=a]');
    expect(parsed.steps[0]?.output).toBe('key ***');
    expect(w.debugState().syncs).toBe(1);
    const jobDir = join(w.runDir, 'jobs', 'wf_task_a');
    expect(await readJson<JobResult>(join(jobDir, 'result.json'))).toEqual(parsed);
    expect((await readdir(jobDir)).filter(isTempName)).toEqual([]);
    await w.finish({ exitCode: 0 });
  });

  it('concurrent recordJob calls never interleave lines', async () => {
    const w = await open();
    const big = 'z'.repeat(100_000);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        w.recordJob(makeResult({ id: `j${i}`, index: i, steps: [step({ id: 's', output: big })] })),
      ),
    );
    const { results, stats } = await readResults(w.runDir);
    expect(stats).toMatchObject({ records: 40, torn: false, invalid: [] });
    expect(results.map((r) => r.id)).toEqual(Array.from({ length: 40 }, (_, i) => `j${i}`));
    // Group commit: records that arrive during a write+fsync share the next one.
    expect(w.debugState().syncs).toBeGreaterThanOrEqual(1);
    expect(w.debugState().syncs).toBeLessThan(40);
    await w.finish({ exitCode: 0 });
  });

  it('each concurrent recordJob resolves only once its own line is in results.jsonl', async () => {
    const w = await open();
    const seen: boolean[] = [];
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        w.recordJob(makeResult({ id: `g${i}`, index: i })).then(() => {
          seen[i] = readFileSync(w.resultsPath, 'utf8').includes(`"id":"g${i}"`);
        }),
      ),
    );
    expect(seen).toEqual(Array.from({ length: 12 }, () => true));
    await w.finish({ exitCode: 0 });
  });

  it('finish writes summary.json and junit.xml; the same job twice counts once (last wins)', async () => {
    const w = await open();
    await w.recordJob(makeResult({ id: 'wf[task=a]', slug: 'wf_task_a', status: 'error', attempts: 1 }));
    await w.recordJob(makeResult({ id: 'wf[task=b]', slug: 'wf_task_b', index: 1, status: 'failed' }));
    await w.recordJob(makeResult({ id: 'wf[task=a]', slug: 'wf_task_a', status: 'passed', attempts: 2 }));
    const summary = await w.finish({ endedAt: '2025-01-01T00:00:10.000Z', exitCode: 1 });
    expect(await w.finish({ exitCode: 99 })).toBe(summary);
    expect(summary.counts).toEqual({ passed: 1, failed: 1, timedOut: 0, error: 0, cancelled: 0, skipped: 0 });
    expect(summary.durationMs).toBe(10_000);
    expect(await readJson<RunSummary>(w.summaryPath)).toEqual(summary);
    const junit = await parse(await readFile(w.junitPath, 'utf8'));
    expect(junit).toMatchObject({ name: 'rho-flow', tests: 2, failures: 1, errors: 0 });
    const record = await readJson<RunRecord>(w.runJsonPath);
    expect(record.endedAt).toBe('2025-01-01T00:00:10.000Z');
    expect(record.sessions[0]).toMatchObject({ endedAt: '2025-01-01T00:00:10.000Z', exitCode: 1 });
    await expect(w.recordJob(makeResult({ id: 'late' }))).rejects.toThrow(/after finish/);
  });

  it('no secret value reaches any file of the run dir', async () => {
    const w = await open();
    const files = await w.openJob('wf_task_a');
    files.log(`export TOKEN=${SECRET}\n`);
    files.transcript({ type: 'tool-result', content: `the key is ${SECRET}` });
    await files.close();
    await w.recordJob(
      makeResult({
        id: 'wf[task=a]',
        slug: 'wf_task_a',
        status: 'failed',
        error: { kind: 'step', message: `bad ${SECRET}` },
        steps: [step({ id: 'test', status: 'failed', exitCode: 1, output: `leaked ${SECRET}` })],
      }),
    );
    await w.finish({ exitCode: 1 });
    const all = await walk(w.runDir);
    expect(all.map((f) => f.slice(w.runDir.length + 1)).sort()).toEqual([
      'jobs/wf_task_a/log.txt',
      'jobs/wf_task_a/result.json',
      'jobs/wf_task_a/transcript.jsonl',
      'junit.xml',
      'results.jsonl',
      'run.json',
      'summary.json',
    ]);
    for (const f of all) expect(await readFile(f, 'utf8'), f).not.toContain(SECRET);
    expect(await readFile(w.junitPath, 'utf8')).toContain('export TOKEN=***');
  });

  it('resume reads earlier results back, survives a torn last line, and appends after it', async () => {
    const first = await open();
    await first.recordJob(makeResult({ id: 'wf[task=a]', slug: 'wf_task_a', status: 'passed' }));
    await first.recordJob(makeResult({ id: 'wf[task=b]', slug: 'wf_task_b', index: 1, status: 'error' }));
    // The process dies mid-append: a fragment without newline is left behind (no finish()).
    await appendFile(first.resultsPath, '{"id":"wf[task=b]","slug":"wf_ta');
    // A dead process's lock is taken over (run-lock.test.ts); this one is alive, so drop its lock.
    await rm(join(first.runDir, '.lock'));
    const second = await open({
      resume: true,
      argv: ['run', '--resume'],
      startedAt: '2025-01-02T00:00:00.000Z',
    });
    expect(second.counts).toMatchObject({ passed: 1, error: 1 });
    await second.recordJob(
      makeResult({ id: 'wf[task=b]', slug: 'wf_task_b', index: 1, status: 'passed', attempts: 1 }),
    );
    const summary = await second.finish({ endedAt: '2025-01-02T00:00:05.000Z', exitCode: 0 });
    expect(summary.counts).toMatchObject({ passed: 2, error: 0 });
    expect(summary.startedAt).toBe('2025-01-02T00:00:00.000Z');
    const { results, stats } = await readResults(second.runDir);
    expect(stats.torn).toBe(false);
    expect(stats.invalid).toHaveLength(1); // the old fragment, now a terminated bad line
    expect(results.map((r) => [r.id, r.status])).toEqual([
      ['wf[task=a]', 'passed'],
      ['wf[task=b]', 'passed'],
    ]);
    const record = await readJson<RunRecord>(second.runJsonPath);
    expect(record.startedAt).toBe('2025-01-01T00:00:00.000Z');
    expect(record.argv).toEqual(['run', 'workflows/wf.yaml', '--var', 'token=***']);
    expect(record.sessions.map((s) => s.resumed)).toEqual([false, true]);
    expect(record.sessions[1]?.argv).toEqual(['run', '--resume']);
  });

  it('a 5,000-job batch keeps only compact summary entries in memory', async () => {
    // 10,000 small files: use a RAM disk when there is one, the shared disk is slow under load.
    const fast = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rho-flow-test-'));
    onTestFinished(() => rm(fast, { recursive: true, force: true }));
    const w = await open({ fsync: false, outputDir: fast });
    const big = 'o'.repeat(2_000);
    // Jobs finish concurrently in a real batch too; 50 at a time keeps the test quick.
    for (let batch = 0; batch < 100; batch++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) => {
          const i = batch * 50 + k;
          return w.recordJob(
            makeResult({
              id: `j${i}`,
              index: i,
              status: i % 10 === 0 ? 'failed' : 'passed',
              steps: [step({ id: 's', output: big })],
            }),
          );
        }),
      );
    }
    const state = w.debugState();
    expect(state.entries).toBe(5000);
    expect(state.entryBytes / state.entries).toBeLessThan(600);
    expect(state.entryKeys).not.toContain('steps');
    const summary = await w.finish({ exitCode: 1 });
    expect(summary.counts).toMatchObject({ passed: 4500, failed: 500 });
    const junit = await parse(await readFile(w.junitPath, 'utf8'));
    expect(junit).toMatchObject({ tests: 5000, failures: 500 });
  }, 60_000);

  it('finish waits for records still in flight', async () => {
    const w = await open();
    const pending = w.recordJob(makeResult({ id: 'wf[task=a]', slug: 'wf_task_a', status: 'failed' }));
    const summary = await w.finish({ exitCode: 1 });
    await pending;
    expect(summary.counts.failed).toBe(1);
  });

  it('rejects unsafe slugs', async () => {
    const w = await open();
    await expect(w.recordJob(makeResult({ id: 'x', slug: '../x' }))).rejects.toThrow(/unsafe job slug/);
    expect(() => w.jobDir('a/b')).toThrow(/unsafe/);
    await w.finish({ exitCode: 0 });
  });

  it('uses a custom JUnit file name (shards)', async () => {
    const w = await open({ junitFile: 'junit-2-of-4.xml' });
    await w.finish({ exitCode: 0 });
    expect(w.junitPath).toBe(join(w.runDir, 'junit-2-of-4.xml'));
    await stat(w.junitPath);
  });
});

describe('plan records', () => {
  it('records jobs and step lines from expanded jobs, without dataset items', () => {
    const workflow = {
      name: 'wf',
      file: 'workflows/wf.yaml',
      hash: 'h',
      loc: { file: 'workflows/wf.yaml', line: 2, col: 1 },
      steps: [{ id: 'build', loc: { line: 10 } }],
      finally: [{ id: 'finally-1', loc: { line: 20 } }],
    };
    const jobs = [
      {
        id: 'wf[task=a]#1',
        slug: 'wf_a_1',
        workflow,
        index: 0,
        matrix: { task: 'a' },
        repeat: { index: 1, total: 2 },
      },
      { id: 'wf[x=1]', slug: 'wf_x_1', workflow, index: 1, item: { prompt: 'long text' }, itemLine: 3 },
    ] as unknown as Job[];
    const rec = planRecordFromJobs(jobs);
    expect(rec.workflows).toEqual([
      { name: 'wf', file: 'workflows/wf.yaml', hash: 'h', line: 2, steps: { build: 10, 'finally-1': 20 } },
    ]);
    expect(rec.jobs[1]).toEqual({
      id: 'wf[x=1]',
      slug: 'wf_x_1',
      workflow: 'wf',
      file: 'workflows/wf.yaml',
      index: 1,
      itemLine: 3,
    });
    const locate = lineLocator(rec);
    expect(locate('wf', 'build')).toBe(10);
    expect(locate('wf', 'nope')).toBe(2);
    expect(locate('wf')).toBe(2);
    expect(locate('other')).toBeUndefined();
  });
});

describe('run dir created by hand', () => {
  it('resume of a dir without run.json starts fresh', async () => {
    await mkdir(join(out, 'run-1'), { recursive: true });
    await writeFile(join(out, 'run-1', 'results.jsonl'), '');
    const w = await open({ resume: true });
    expect(w.counts.passed).toBe(0);
    await w.finish({ exitCode: 0 });
  });
});
