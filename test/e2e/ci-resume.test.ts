/**
 * Issue 6 acceptance, resume: SIGKILL the real CLI in the middle of a 30-job
 * batch (twice), then `--resume`. Every job ends with exactly one final
 * result, and jobs that had a verdict were not run again — counted through
 * the fake model server, which sees one request per job run. Also: resume
 * refuses a changed workflow (exit 2) unless `--force`, a run id that does
 * not exist (exit 2), and a shard resumes as its shard.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import path from 'node:path';
import { RunRig, waitFor } from '../helpers/run-rig.js';
import type { RunEvent } from '../../src/events.js';
import {
  COUNTED_PROMPT,
  junitCases,
  lastResults,
  oneTo,
  readJsonFile,
  readSummaryFile,
  resultLines,
  startCountingModel,
} from './ci-helpers.js';

const VERDICTS = new Set(['passed', 'failed', 'timed-out']);

/** 30 jobs: each asks the model once (counted), then works a little; n % 10 == 0 fails. */
const BATCH = `name: batch
strategy:
  matrix:
    n: ${oneTo(30)}
steps:
  - id: ask
    prompt: "${COUNTED_PROMPT}"
    max-turns: 2
  - id: work
    run: sleep 0.25; test $(( \${{ matrix.n }} % 10 )) -ne 0
`;

const jobId = (n: number): string => `batch[n=${n}]`;

describe('--resume after SIGKILL', () => {
  it('finishes a killed 30-job batch in the same run dir without re-running finished jobs', async () => {
    await using rig = await RunRig.create();
    await using model = await startCountingModel();
    await rig.write('batch.yaml', BATCH);
    // Session 1 only: the first attempt of job 2 hits a model outage (status error).
    let session = 1;
    model.failWhen((id) => session === 1 && id === jobId(2));
    const args = ['run', 'batch.yaml', '-o', 'out', '-j', '3', '--retries', '0', '--run-id', 'nightly'];
    const runDir = path.join(rig.out, 'nightly');

    // Session 1: killed once 8 jobs have a result.
    const first = rig.start([...args, '--reporter', 'plain'], model.env);
    await waitFor(async () => (await resultLines(runDir)).length >= 8, 60_000, '8 results');
    first.kill('SIGKILL');
    expect((await first.result()).signal).toBe('SIGKILL');
    const after1 = await lastResults(runDir);
    const counts1 = model.counts();
    expect(after1.get(jobId(2))?.status).toBe('error');
    expect(after1.size).toBeLessThan(30);
    await expect(fs.access(path.join(runDir, 'summary.json'))).rejects.toThrow();

    // Session 2: resume, killed again after a few more results.
    session = 2;
    const lines1 = (await resultLines(runDir)).length;
    const second = rig.start(
      [...args.filter((a) => a !== '--run-id' && a !== 'nightly'), '--resume'],
      model.env,
    );
    await waitFor(async () => (await resultLines(runDir)).length >= lines1 + 5, 60_000, '5 more results');
    second.kill('SIGKILL');
    await second.result();
    const after2 = await lastResults(runDir);
    const counts2 = model.counts();
    // Killed mid-way again: the last session still has work to do.
    expect([...after2.values()].filter((x) => VERDICTS.has(x.status)).length).toBeLessThan(30);

    // Session 3: resume the named run to the end, observed through the json reporter.
    session = 3;
    const r = await rig.run(
      [
        'run',
        'batch.yaml',
        '-o',
        'out',
        '-j',
        '3',
        '--retries',
        '0',
        '--resume',
        'nightly',
        '--reporter',
        'json',
      ],
      model.env,
      90_000,
    );
    expect(r.code, r.stderr).toBe(1);

    // One run directory: resume continued it, no sibling was made.
    expect(await fs.readdir(rig.out)).toEqual(['nightly']);

    // The json reporter's run-started event: only jobs without a verdict run again.
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RunEvent);
    type Started = Extract<RunEvent, { type: 'run'; reason: 'started' }>;
    const started = events.find((e): e is Started => e.type === 'run' && e.reason === 'started');
    if (!started) throw new Error('no run started event');
    const verdictBefore = [...after2.values()].filter((x) => VERDICTS.has(x.status)).map((x) => x.id);
    expect(started.skipped).toBe(verdictBefore.length);
    expect(started.resumed?.kept).toBe(verdictBefore.length);
    expect(started.jobs.map((j) => j.id).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => jobId(i + 1))
        .filter((id) => !verdictBefore.includes(id))
        .sort(),
    );

    // Jobs with a verdict were never run again: their request counts froze when they finished.
    const final = model.counts();
    for (const [id, res] of after1) {
      if (VERDICTS.has(res.status)) expect(final.get(id), id).toBe(counts1.get(id));
    }
    for (const [id, res] of after2) {
      if (VERDICTS.has(res.status)) expect(final.get(id), id).toBe(counts2.get(id));
    }
    // Job 2 errored in session 1 and ran again (once more) in session 2 or 3.
    expect(final.get(jobId(2))).toBe(2);
    for (let n = 1; n <= 30; n++) expect(final.get(jobId(n)) ?? 0, jobId(n)).toBeGreaterThanOrEqual(1);

    // Every job has exactly one final result: last-wins summary, one test case per job.
    const summary = await readSummaryFile(runDir);
    expect(summary.counts).toEqual({
      passed: 27,
      failed: 3,
      timedOut: 0,
      error: 0,
      cancelled: 0,
      skipped: 0,
    });
    expect(summary.jobs.map((j) => j.id)).toEqual(Array.from({ length: 30 }, (_, i) => jobId(i + 1)));
    expect(summary.exitCode).toBe(1);
    const last = await lastResults(runDir);
    for (const j of summary.jobs) expect(last.get(j.id)?.status, j.id).toBe(j.status);
    const { cases } = await junitCases(path.join(runDir, 'junit.xml'));
    expect(cases).toHaveLength(30);
    expect(new Set(cases.map((c) => c.name)).size).toBe(30);
    expect(cases.filter((c) => c.outcome === 'failure').map((c) => c.name)).toEqual([
      jobId(10),
      jobId(20),
      jobId(30),
    ]);
    expect(cases.filter((c) => c.outcome !== 'passed' && c.outcome !== 'failure')).toEqual([]);

    // run.json: one session per invocation, the whole plan, the same run.
    const record = await readJsonFile<{ sessions: Array<{ resumed: boolean }>; plan: { jobs: unknown[] } }>(
      path.join(runDir, 'run.json'),
    );
    expect(record.sessions.map((s) => s.resumed)).toEqual([false, true, true]);
    expect(record.plan.jobs).toHaveLength(30);
    // The killed sessions' workspaces were swept by the next run.
    expect(rig.leftovers()).toEqual([]);
  }, 180_000);
});

describe('--resume refusals and shards', () => {
  it('exit 2 for a run id that does not exist and for a changed workflow; --force re-runs the changed one', async () => {
    await using rig = await RunRig.create();
    await rig.write('a.yaml', 'name: a\nstrategy:\n  matrix:\n    n: [1, 2]\nsteps:\n  - run: echo a\n');
    await rig.write('b.yaml', 'name: b\nsteps:\n  - run: echo b\n');
    const base = ['run', 'a.yaml', 'b.yaml', '-o', 'out', '--reporter', 'plain'];
    expect((await rig.run([...base, '--run-id', 'r1'])).code).toBe(0);

    const missing = await rig.run([...base, '--resume', 'nope']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`--resume nope: no such run in ${rig.out} (runs in ${rig.out}: r1)`);

    const force = await rig.run([...base, '--force']);
    expect(force.code).toBe(2);
    expect(force.stderr).toContain('--force only applies with --resume');

    // Same files: nothing to run again; the summary still counts the kept jobs.
    const again = await rig.run([...base, '--resume']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(
      'rho-flow run r1: 0 jobs (resumed: 3 kept (3 passed), nothing to run again)',
    );
    expect((await readSummaryFile(path.join(rig.out, 'r1'))).counts.passed).toBe(3);

    await rig.write('a.yaml', 'name: a\nstrategy:\n  matrix:\n    n: [1, 3]\nsteps:\n  - run: echo a2\n');
    const changed = await rig.run([...base, '--resume']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain(
      '--resume r1: the workflows changed since the run started, so its results no longer match the plan:\n' +
        '  a.yaml (a): content changed; 1 job added (a[n=3]); 1 job removed (a[n=2])\n',
    );
    expect(changed.stderr).toContain('Re-run with --force');
    expect(changed.stdout).toBe('');

    const forced = await rig.run([...base, '--resume', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('2 jobs (resumed: 1 kept (1 passed), 2 to run again (2 changed))');
    const summary = await readSummaryFile(path.join(rig.out, 'r1'));
    expect(summary.jobs.map((j) => [j.id, j.status])).toEqual([
      ['a[n=1]', 'passed'],
      ['a[n=3]', 'passed'],
      ['b', 'passed'],
    ]);
    expect(await fs.readdir(rig.out)).toEqual(['r1']);
  }, 60_000);

  it('exit 2 for a resume while the run is still going (the run dir is locked); it works once the run ends', async () => {
    await using rig = await RunRig.create();
    await rig.write('slow.yaml', `name: slow\nsteps:\n  - run: ${rig.sleep(600)}\n`);
    const base = ['run', 'slow.yaml', '-o', 'out', '--reporter', 'plain'];
    const first = rig.start([...base, '--run-id', 'busy']);
    await waitFor(() => rig.sleepers().length === 1, 30_000, 'the first run to start its job');
    const concurrent = await rig.run([...base, '--resume', 'busy']);
    expect(concurrent.code).toBe(2);
    expect(concurrent.stderr).toMatch(
      new RegExp(`run directory .*busy is in use by rho-flow pid ${String(first.child.pid)} `),
    );
    // The refused resume changed nothing: the first run still owns its lock and finishes normally.
    first.kill('SIGINT');
    expect((await first.result(30_000)).code).toBe(130);
    await expect(fs.stat(path.join(rig.out, 'busy', '.lock'))).rejects.toMatchObject({ code: 'ENOENT' });
    await rig.write('slow.yaml', 'name: slow\nsteps:\n  - run: echo quick\n');
    const after = await rig.run([...base, '--resume', 'busy', '--force']);
    expect(after.code, after.stderr).toBe(0);
  }, 60_000);

  it('a shard resumes as its shard: only its errored job runs again, reports stay per shard', async () => {
    await using rig = await RunRig.create();
    await using model = await startCountingModel();
    await rig.write(
      'm.yaml',
      `name: m\nstrategy:\n  matrix:\n    n: ${oneTo(6)}\nsteps:\n  - prompt: "${COUNTED_PROMPT}"\n    max-turns: 2\n`,
    );
    // Shard 2/3 holds n=2 and n=5 (round robin over the plan); n=5 hits an outage at first.
    let outage = true;
    model.failWhen((id) => outage && id === 'm[n=5]');
    const args = ['run', 'm.yaml', '-o', 'out', '--shard', '2/3', '--retries', '0', '--reporter', 'plain'];
    const first = await rig.run([...args, '--run-id', 'ci-9'], model.env);
    expect(first.code, first.stderr).toBe(3);
    const runDir = path.join(rig.out, 'ci-9');
    expect((await fs.readdir(runDir)).sort()).toEqual(
      ['jobs', 'junit-2-of-3.xml', 'results.jsonl', 'run.json', 'summary.json'].sort(),
    );

    // Resuming without the shard is refused; with it, only n=5 runs again.
    const wrong = await rig.run(
      args.filter((a) => a !== '--shard' && a !== '2/3').concat('--resume'),
      model.env,
    );
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--resume ci-9: the run was shard 2/3; resume it with --shard 2/3');
    outage = false;
    const resumed = await rig.run([...args, '--resume'], model.env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(
      '1 job (resumed: 1 kept (1 passed), 1 to run again (1 error); 4 in other shards)',
    );
    expect(model.counts()).toEqual(
      new Map([
        ['m[n=2]', 1],
        ['m[n=5]', 2],
      ]),
    );
    const summary = await readSummaryFile(runDir);
    expect(summary.shard).toEqual({ index: 2, total: 3 });
    expect(summary.counts).toMatchObject({ passed: 2, error: 0 });
    const { cases } = await junitCases(path.join(runDir, 'junit-2-of-3.xml'));
    expect(cases.map((c) => [c.name, c.outcome])).toEqual([
      ['m[n=2]', 'passed'],
      ['m[n=5]', 'passed'],
    ]);
    const record = await readJsonFile<{ options: { shard: string } }>(path.join(runDir, 'run.json'));
    expect(record.options.shard).toBe('2/3');
  }, 60_000);
});
