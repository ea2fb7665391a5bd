/**
 * Issue 6 acceptance, sharding and merge: `--shard 1/3`, `2/3`, `3/3` of a
 * plan run disjoint sets whose union is the plan; `rho-flow merge` of the
 * three equals one full run (counts, pass rate, pass@k, JUnit test cases
 * parsed with junit2json); the merge's exit code gates like a run's
 * (`--min-pass-rate`); duplicates across runs are reported; a killed shard's
 * missing jobs make the merge exit 3; GitHub output of a merge matches the
 * golden files. The runs are real CLI processes on bwrap; the merges run the
 * CLI in-process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import path from 'node:path';
import { RunRig } from '../helpers/run-rig.js';
import { runInProcess, type CliResult } from '../helpers/cli.js';
import { expectGolden } from '../unit/results/golden.js';
import type { RunSummary } from '../../src/results/types.js';
import { junitCases, lastResults, readJsonFile, readSummaryFile, resultLines } from './ci-helpers.js';

const EVALS = `name: evals
strategy:
  matrix:
    task: [a, b, c]
  repeat: 3
steps:
  - id: work
    run: |
      echo "task \${{ matrix.task }} try \${{ repeat.index }}"
      test "\${{ matrix.task }}" = a || { test "\${{ matrix.task }}" = b && test \${{ repeat.index }} = 1; }
`;
const LINT = 'name: lint\nsteps:\n  - id: check\n    run: echo clean\n';
const SLOW = 'name: slow\nsteps:\n  - id: wait\n    run: sleep 5\n    timeout: 1s\n';

/** Durations vary run to run; golden files hold a placeholder. */
function normalize(text: string): string {
  return text.replace(/\b\d+h\d{2}m\b|\b\d+m\d{2}s\b|\b\d+\.\d+s\b/g, '<dur>');
}

let rig: RunRig;
let full: CliResult;
let shards: CliResult[];
const merge = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
  runInProcess(['merge', ...args], { cwd: rig.dir, env });

beforeAll(async () => {
  rig = await RunRig.create();
  await rig.write('flows/evals.yaml', EVALS);
  await rig.write('flows/lint.yaml', LINT);
  await rig.write('flows/slow.yaml', SLOW);
  const common = ['run', 'flows/', '-j', '2', '--reporter', 'plain', '--grace-period', '2s'];
  [full, ...shards] = await Promise.all([
    rig.run([...common, '-o', 'full', '--run-id', 'full'], {}, 90_000),
    ...[1, 2, 3].map((i) =>
      rig.run([...common, '-o', `s${i}`, '--run-id', 'ci-7', '--shard', `${i}/3`], {}, 90_000),
    ),
  ]);
}, 120_000);

afterAll(async () => {
  await rig[Symbol.asyncDispose]();
});

describe('--shard i/n', () => {
  it('three shards run disjoint sets whose union is the whole plan, each with its own report', async () => {
    expect(full.code, full.stderr).toBe(1);
    for (const s of shards) expect(s.code, s.stderr).toBe(1);
    const fullIds = (await resultLines(path.join(rig.dir, 'full', 'full'))).map((r) => r.id);
    expect(fullIds).toHaveLength(11);
    const shardIds: string[][] = [];
    for (const i of [1, 2, 3]) {
      const dir = path.join(rig.dir, `s${i}`, 'ci-7');
      shardIds.push((await resultLines(dir)).map((r) => r.id));
      const summary = await readSummaryFile(dir);
      expect(summary.shard).toEqual({ index: i, total: 3 });
      expect(summary.runId).toBe('ci-7');
      await expect(fs.access(path.join(dir, `junit-${i}-of-3.xml`))).resolves.toBeUndefined();
      await expect(fs.access(path.join(dir, 'junit.xml'))).rejects.toThrow();
      const record = await readJsonFile<{ options: { shard: string } }>(path.join(dir, 'run.json'));
      expect(record.options.shard).toBe(`${i}/3`);
    }
    expect(shardIds.map((ids) => ids.length)).toEqual([4, 4, 3]);
    const all = shardIds.flat();
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual([...fullIds].sort());
    expect(shards[0]?.stdout).toContain('rho-flow run ci-7: 4 jobs (7 skipped)');
  });
});

describe('rho-flow merge', () => {
  it('the merge of the three shards equals the full run: counts, pass@k, jobs and JUnit test cases', async () => {
    const r = await merge(['s1/ci-7', 's2/ci-7', 's3/ci-7', '-o', 'merged']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('merged 3 run(s) (s1/ci-7, s2/ci-7, s3/ci-7) into merged/ci-7');
    const mergedDir = path.join(rig.dir, 'merged', 'ci-7');
    const merged = await readSummaryFile(mergedDir);
    const whole = await readSummaryFile(path.join(rig.dir, 'full', 'full'));
    expect(merged.counts).toEqual(whole.counts);
    expect(merged.counts).toEqual({ passed: 5, failed: 5, timedOut: 1, error: 0, cancelled: 0, skipped: 0 });
    expect(merged.passRate).toBe(whole.passRate);
    expect(merged.passAtK).toEqual(whole.passAtK);
    expect(merged.passAtK).toMatchObject({ k: 3, groups: 3 });
    expect(merged.passAtK?.passAt1).toBeCloseTo(4 / 9, 10);
    expect(merged.passAtK?.anyPass).toBeCloseTo(2 / 3, 10);
    expect(merged.groups).toEqual(whole.groups);
    const brief = (s: RunSummary): unknown[] =>
      s.jobs.map((j) => [j.id, j.slug, j.workflow, j.status, j.attempts]);
    expect(brief(merged)).toEqual(brief(whole));
    expect(merged.shard).toBeUndefined();
    expect(merged.exitCode).toBe(1);

    const a = await junitCases(path.join(mergedDir, 'junit.xml'));
    const b = await junitCases(path.join(rig.dir, 'full', 'full', 'junit.xml'));
    expect(a.cases).toEqual(b.cases);
    expect(a.cases).toHaveLength(11);
    expect(a.doc.tests).toBe(11);
    expect(a.doc.failures).toBe(6);
    expect(a.cases.filter((c) => c.outcome === 'failure')).toHaveLength(6);

    // results.jsonl: one line per job; logs travelled with the results.
    const lines = await resultLines(mergedDir);
    expect(lines.map((l) => l.id).sort()).toEqual(whole.jobs.map((j) => j.id).sort());
    for (const j of merged.jobs) {
      const log = await fs.readFile(path.join(mergedDir, 'jobs', j.slug!, 'log.txt'), 'utf8');
      expect(log).toContain(j.id);
    }
    const record = await readJsonFile<{ options: { mergedFrom: string[] }; plan: { jobs: unknown[] } }>(
      path.join(mergedDir, 'run.json'),
    );
    expect(record.options.mergedFrom).toEqual([1, 2, 3].map((i) => path.join(rig.dir, `s${i}`, 'ci-7')));
    expect(record.plan.jobs).toHaveLength(11);
  });

  it('gates on --min-pass-rate like a run (5/11 verdicts passed)', async () => {
    const met = await merge([
      's1',
      's2',
      's3',
      '-o',
      'merged',
      '--run-id',
      'gate-met',
      '--min-pass-rate',
      '0.45',
    ]);
    expect(met.code, met.stderr).toBe(0);
    const missed = await merge([
      's1',
      's2',
      's3',
      '-o',
      'merged',
      '--run-id',
      'gate-no',
      '--min-pass-rate',
      '0.5',
    ]);
    expect(missed.code).toBe(1);
    const bad = await merge(['s1', '-o', 'merged', '--min-pass-rate', '2']);
    expect(bad.code).toBe(2);
  });

  it('reports duplicate job ids across runs; the result that ended last wins', async () => {
    // A copy of shard 1 where one passed job was run again later and failed.
    const copy = path.join(rig.dir, 'rerun', 'ci-7');
    await fs.cp(path.join(rig.dir, 's1', 'ci-7'), copy, { recursive: true });
    const lines = await resultLines(copy);
    const target = lines.find((l) => l.status === 'passed')!;
    const later = { ...target, status: 'failed', endedAt: new Date(Date.now() + 60_000).toISOString() };
    // A result made by another version of the workflow (an interrupted --force resume) never counts.
    const stale = {
      ...target,
      status: 'error',
      workflowHash: 'old',
      endedAt: new Date(Date.now() + 120_000).toISOString(),
    };
    await fs.appendFile(
      path.join(copy, 'results.jsonl'),
      JSON.stringify(later) + '\n' + JSON.stringify(stale) + '\n',
    );

    const r = await merge(['s1/ci-7', 's2/ci-7', 's3/ci-7', 'rerun/ci-7', '-o', 'dups', '--run-id', 'd']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('4 job id(s) have results in more than one run (1 with different statuses)');
    expect(r.stderr).toContain('ignored 1 result(s) that belong to another version of their workflow');
    expect(r.stderr).toContain(
      `  conflict: ${target.id} in s1/ci-7 (passed), rerun/ci-7 (failed); using rerun/ci-7`,
    );
    const others = lines.filter((l) => l.id !== target.id).map((l) => l.id);
    for (const id of others) expect(r.stderr).toContain(`  duplicate: ${id} in s1/ci-7`);
    const last = await lastResults(path.join(rig.dir, 'dups', 'd'));
    expect(last.size).toBe(11);
    expect(last.get(target.id)?.status).toBe('failed');
  });

  it('a shard that was killed before finishing: its missing jobs are cancelled and the merge exits 3', async () => {
    const cut = path.join(rig.dir, 'cut', 'ci-7');
    await fs.cp(path.join(rig.dir, 's3', 'ci-7'), cut, { recursive: true });
    const lines = (await fs.readFile(path.join(cut, 'results.jsonl'), 'utf8')).split('\n');
    // Keep one full record and a torn one; drop summary.json as a SIGKILL would.
    await fs.writeFile(path.join(cut, 'results.jsonl'), `${lines[0]}\n${lines[1]?.slice(0, 40)}`);
    await fs.rm(path.join(cut, 'summary.json'));
    const r = await merge(['s1/ci-7', 's2/ci-7', 'cut/ci-7', '-o', 'partial', '--run-id', 'p']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('cut/ci-7 has no summary.json (the run did not finish)');
    expect(r.stderr).toContain(
      '2 planned job(s) have no result in any run; recorded as cancelled (no-result)',
    );
    const summary = await readSummaryFile(path.join(rig.dir, 'partial', 'p'));
    expect(summary.counts.cancelled).toBe(2);
    expect(summary.jobs).toHaveLength(11);
    const { cases } = await junitCases(path.join(rig.dir, 'partial', 'p', 'junit.xml'));
    expect(cases.filter((c) => c.outcome === 'skipped')).toHaveLength(2);
  });

  it('refuses what it cannot merge (exit 2) and writes nothing', async () => {
    const exists = await merge(['s1/ci-7', '-o', 'full', '--run-id', 'full']);
    expect(exists.code).toBe(2);
    expect(exists.stderr).toContain('already exists; choose another --run-id or -o');
    const notRun = await merge(['flows', '-o', 'x']);
    expect(notRun.code).toBe(2);
    expect(notRun.stderr).toContain('flows: not a run directory (no run.json in it or below it)');
    const twice = await merge(['s1', 's1/ci-7', '-o', 'x']);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('is given twice');
    const none = await merge([]);
    expect(none.code).toBe(2);
    await expect(fs.access(path.join(rig.dir, 'x'))).rejects.toThrow();
  });

  it('under GitHub Actions writes the step summary and annotations of the merged run (golden)', async () => {
    const stepSummary = path.join(rig.dir, 'step-summary.md');
    const r = await merge(['s1/ci-7', 's2/ci-7', 's3/ci-7', '-o', 'gh', '--run-id', 'gh-merged'], {
      GITHUB_ACTIONS: 'true',
      GITHUB_STEP_SUMMARY: stepSummary,
    });
    expect(r.code).toBe(1);
    await expectGolden('ci-merge-step-summary.md', normalize(await fs.readFile(stepSummary, 'utf8')));
    const annotations = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('::'))
      .join('\n');
    await expectGolden('ci-merge-annotations.txt', normalize(annotations) + '\n');
  });
});
