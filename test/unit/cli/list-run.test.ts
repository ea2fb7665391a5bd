import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runInProcess } from '../../helpers/cli.js';

let dir: string;

const MATRIX = `name: mx
vars: { suite: unit }
strategy:
  matrix:
    task: [flaky, types]
    include: [{ task: perf, extra: x }]
  repeat: 2
steps:
  - run: echo \${{ matrix.task }} \${{ vars.suite }}
`;

const DATASET = `name: ds
strategy:
  dataset: ./items.jsonl
steps:
  - run: echo \${{ item.q }}
`;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  await fs.writeFile(path.join(dir, 'mx.yaml'), MATRIX);
  await fs.writeFile(path.join(dir, 'ds.yaml'), DATASET);
  await fs.writeFile(path.join(dir, 'items.jsonl'), '{"id":"django-1","q":1}\n\n{"q":"two words"}\n');
  await fs.writeFile(path.join(dir, 'bad.yaml'), 'name: bad\nsteps: []\n');
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const cli = (...args: string[]): ReturnType<typeof runInProcess> => runInProcess(args, { cwd: dir });

describe('list', () => {
  test('a table in run order, then the vars; the count on stderr', async () => {
    const r = await cli('list', 'mx.yaml', 'ds.yaml');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        '#  JOB                      WORKFLOW  FILE     MATRIX             ITEM         REPEAT',
        '0  mx[task=flaky]#1         mx        mx.yaml  task=flaky                      1/2',
        '1  mx[task=flaky]#2         mx        mx.yaml  task=flaky                      2/2',
        '2  mx[task=types]#1         mx        mx.yaml  task=types                      1/2',
        '3  mx[task=types]#2         mx        mx.yaml  task=types                      2/2',
        '4  mx[task=perf,extra=x]#1  mx        mx.yaml  task=perf extra=x               1/2',
        '5  mx[task=perf,extra=x]#2  mx        mx.yaml  task=perf extra=x               2/2',
        '6  ds[id=django-1]          ds        ds.yaml                     id=django-1',
        '7  ds[line=3]               ds        ds.yaml                     line=3',
        '',
        'VARS',
        'mx  suite=unit',
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe('8 jobs from 2 workflows\n');
  });

  test('--var changes the vars shown', async () => {
    const r = await cli('list', 'mx.yaml', '--var', 'suite=e2e');
    expect(r.stdout).toContain('\nmx  suite=e2e\n');
  });

  test('--json: an array with ids, slugs, values and vars', async () => {
    const r = await cli('list', 'ds.yaml', 'mx.yaml', '--json');
    expect(r.code).toBe(0);
    const jobs = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(jobs).toHaveLength(8);
    expect(jobs[0]).toEqual({
      index: 0,
      id: 'ds[id=django-1]',
      slug: 'ds_id_django-1',
      workflow: 'ds',
      file: 'ds.yaml',
      item: { id: 'django-1', q: 1 },
      itemLine: 1,
      vars: {},
    });
    expect(jobs[1]).toMatchObject({ id: 'ds[line=3]', itemLine: 3, item: { q: 'two words' } });
    expect(jobs[6]).toEqual({
      index: 6,
      id: 'mx[task=perf,extra=x]#1',
      slug: 'mx_task_perf_extra_x_1',
      workflow: 'mx',
      file: 'mx.yaml',
      matrix: { task: 'perf', extra: 'x' },
      repeat: { index: 1, total: 2 },
      vars: { suite: 'unit' },
    });
  });

  test('invalid input: diagnostics on stderr, nothing on stdout, exit 2', async () => {
    const r = await cli('list', 'bad.yaml', 'mx.yaml');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^bad\.yaml:2:8: error: steps: /);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe('1 error: no plan');
  });
});

describe('run', () => {
  test('--dry-run prints the plan and creates nothing', async () => {
    const out = path.join(dir, 'results');
    const r = await cli('run', 'mx.yaml', '--dry-run', '-o', out);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[1]).toBe(
      '0  mx[task=flaky]#1         mx        mx.yaml  task=flaky         1/2',
    );
    expect(r.stderr).toBe('dry run: 6 jobs from 1 workflow; nothing was created\n');
    await expect(fs.access(out)).rejects.toThrow();
  });

  test('--dry-run with --shard shows that shard only', async () => {
    const r = await cli('run', 'mx.yaml', 'ds.yaml', '--dry-run', '--shard', '2/3', '--reporter', 'json');
    expect(r.code).toBe(0);
    const jobs = JSON.parse(r.stdout) as Array<{ index: number }>;
    expect(jobs.map((j) => j.index)).toEqual([1, 4, 7]);
    expect(r.stderr).toBe('dry run: 3 jobs from 2 workflows (shard 2/3: 3 of 8 jobs); nothing was created\n');
  });

  test('invalid files: diagnostics, nothing started, exit 2', async () => {
    const r = await cli('run', 'bad.yaml', '--dry-run');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe('1 error: nothing was started');
  });

  test('bad flag values are usage errors before anything is loaded', async () => {
    const r = await cli('run', 'does-not-exist.yaml', '--shard', '3/2');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--shard must be i/n with 1 ≤ i ≤ n (e.g. 2/4) or 'auto', got '3/2'");
  });

  test('no files is a usage error', async () => {
    const r = await cli('run', '--dry-run');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing workflow files to run');
  });
});
