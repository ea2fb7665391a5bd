/**
 * The real binary on real files: validate (text, github, json), list (table,
 * json), schema, init (+ validate), run --dry-run and the run stub.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { REPO_ROOT, runBin } from '../helpers/cli.js';

let dir: string;

const GOOD = `# yaml-language-server: $schema=../schemas/workflow.schema.json
name: good
vars: { suite: unit }
strategy:
  matrix:
    task: [a, b]
  repeat: 2
steps:
  - run: echo \${{ matrix.task }} \${{ vars.suite }}
`;

const BAD = `name: bad
sandbox:
  image: "img:\${{ matrix.os }}"
timeout: 5
steps:
  - run: echo hi
    timeot: 1m
`;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  await fs.writeFile(path.join(dir, 'good.yaml'), GOOD);
  await fs.writeFile(path.join(dir, 'bad.yaml'), BAD);
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const BAD_LINES = [
  'bad.yaml:3:26: error: sandbox.image: no strategy.matrix is declared',
  'bad.yaml:4:10: error: timeout: a duration needs a unit: add one, e.g. "5s" or "5m"',
  "bad.yaml:7:5: error: steps[0].timeot: unknown key 'timeot' (did you mean 'timeout'?)",
];

describe('validate', () => {
  test('a valid file: exit 0, summary on stderr', async () => {
    const r = await runBin(['validate', 'good.yaml'], { cwd: dir });
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '1 workflow file valid, 4 jobs\n' });
  });

  test('invalid, text: every problem with its position and an excerpt, exit 2', async () => {
    const r = await runBin(['validate', 'good.yaml', 'bad.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout.split('\n').filter((l) => /^\S+:\d+:\d+: /.test(l))).toEqual(BAD_LINES);
    expect(r.stdout).toContain(' 4 | timeout: 5\n   |          ^\n');
    expect(r.stderr).toBe('3 errors in 1 file\n');
  });

  test('invalid, github: lines and ::error annotations', async () => {
    const r = await runBin(['validate', 'bad.yaml', '--format', 'github'], { cwd: dir });
    expect(r.code).toBe(2);
    const annotations = r.stdout.split('\n').filter((l) => l.startsWith('::'));
    expect(annotations).toHaveLength(3);
    expect(annotations[1]).toBe(
      '::error file=bad.yaml,line=4,col=10::timeout: a duration needs a unit: add one, e.g. "5s" or "5m"',
    );
  });

  test('invalid, json: one document on stdout', async () => {
    const r = await runBin(['validate', 'bad.yaml', 'good.yaml', '--format', 'json'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as {
      valid: boolean;
      files: Array<{ file: string; valid: boolean }>;
      diagnostics: Array<{
        severity: string;
        location: { file: string; start: { line: number; col: number } };
      }>;
    };
    expect(doc.valid).toBe(false);
    expect(doc.files.map((f) => [f.file, f.valid])).toEqual([
      ['bad.yaml', false],
      ['good.yaml', true],
    ]);
    expect(doc.diagnostics.map((d) => [d.location.start.line, d.location.start.col])).toEqual([
      [3, 26],
      [4, 10],
      [7, 5],
    ]);
  });
});

describe('list', () => {
  test('table', async () => {
    const r = await runBin(['list', 'good.yaml', '--var', 'suite=e2e'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      '#  JOB             WORKFLOW  FILE       MATRIX  REPEAT',
      '0  good[task=a]#1  good      good.yaml  task=a  1/2',
      '1  good[task=a]#2  good      good.yaml  task=a  2/2',
      '2  good[task=b]#1  good      good.yaml  task=b  1/2',
      '3  good[task=b]#2  good      good.yaml  task=b  2/2',
      '',
      'VARS',
      'good  suite=e2e',
      '',
    ]);
    expect(r.stderr).toBe('4 jobs from 1 workflow\n');
  });

  test('json', async () => {
    const r = await runBin(['list', 'good.yaml', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const jobs = JSON.parse(r.stdout) as Array<{
      id: string;
      slug: string;
      matrix: unknown;
      repeat: unknown;
    }>;
    expect(jobs.map((j) => j.id)).toEqual([
      'good[task=a]#1',
      'good[task=a]#2',
      'good[task=b]#1',
      'good[task=b]#2',
    ]);
    expect(jobs[3]).toMatchObject({
      slug: 'good_task_b_2',
      matrix: { task: 'b' },
      repeat: { index: 2, total: 2 },
    });
  });
});

describe('schema', () => {
  test('workflow (default) and profile, byte for byte', async () => {
    const wf = await runBin(['schema']);
    expect(wf.code).toBe(0);
    expect(wf.stdout).toBe(
      await fs.readFile(path.join(REPO_ROOT, 'schemas', 'workflow.schema.json'), 'utf8'),
    );
    expect((JSON.parse(wf.stdout) as { $schema: string }).$schema).toBe(
      'http://json-schema.org/draft-07/schema#',
    );
    const profile = await runBin(['schema', 'profile']);
    expect(profile.stdout).toBe(
      await fs.readFile(path.join(REPO_ROOT, 'schemas', 'profile.schema.json'), 'utf8'),
    );
  });
});

describe('init', () => {
  test('creates a starter that validates clean; refuses to overwrite', async () => {
    const sub = path.join(dir, 'init');
    await fs.mkdir(sub);
    const r = await runBin(['init', 'starter'], { cwd: sub });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const text = await fs.readFile(path.join(sub, 'starter.rho-flow.yaml'), 'utf8');
    expect(text.split('\n')[0]).toMatch(/^# yaml-language-server: \$schema=\S+workflow\.schema\.json$/);
    expect(await runBin(['validate', 'starter.rho-flow.yaml'], { cwd: sub })).toMatchObject({
      code: 0,
      stdout: '',
    });
    const again = await runBin(['init', 'starter'], { cwd: sub });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists (use --force to overwrite it)');
  });
});

describe('run', () => {
  test('--dry-run prints the plan, exit 0', async () => {
    const r = await runBin(['run', 'good.yaml', '--dry-run'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[1]).toBe('0  good[task=a]#1  good      good.yaml  task=a  1/2');
    expect(r.stderr).toBe('dry run: 4 jobs from 1 workflow; nothing was created\n');
  });

  test('invalid files: diagnostics on stderr, nothing started, exit 2', async () => {
    const r = await runBin(['run', 'bad.yaml', '--dry-run'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(BAD_LINES[1]);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe('3 errors: nothing was started');
  });
});
