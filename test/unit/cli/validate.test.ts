import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runInProcess } from '../../helpers/cli.js';

let dir: string;

const GOOD = `name: good
strategy:
  matrix:
    task: [a, b]
steps:
  - run: echo \${{ matrix.task }}
`;

const BAD = `name: bad
timeout: 5
steps:
  - run: echo \${{ vars.nope }}
`;

/** Valid on its own, but one dataset item names an upload source that does not exist. */
const PER_JOB = `name: perjob
strategy:
  dataset: ./items.jsonl
uploads:
  - from: ./repos/\${{ item.id }}
    to: /work/repo
steps:
  - run: ls /work/repo
`;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  await fs.writeFile(path.join(dir, 'good.yaml'), GOOD);
  await fs.writeFile(path.join(dir, 'bad.yaml'), BAD);
  await fs.mkdir(path.join(dir, 'pj', 'repos', 'one'), { recursive: true });
  await fs.writeFile(path.join(dir, 'pj', 'perjob.yaml'), PER_JOB);
  await fs.writeFile(path.join(dir, 'pj', 'items.jsonl'), '{"id":"one"}\n{"id":"two"}\n');
  // Twelve broken files, for the annotation cap.
  await fs.mkdir(path.join(dir, 'many'));
  for (let i = 0; i < 12; i++) {
    await fs.writeFile(
      path.join(dir, 'many', `w${String(i).padStart(2, '0')}.yaml`),
      `name: w${i}\ntimeout: 5\nsteps:\n  - run: x\n`,
    );
  }
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const validate = (...args: string[]): ReturnType<typeof runInProcess> =>
  runInProcess(['validate', ...args], { cwd: dir });

describe('validate --format text', () => {
  test('valid files: nothing on stdout, a summary on stderr, exit 0', async () => {
    expect(await validate('good.yaml')).toEqual({
      code: 0,
      signal: null,
      stdout: '',
      stderr: '1 workflow file valid, 2 jobs\n',
    });
  });

  test('every problem as file:LINE:COL: error: path: message with a source excerpt, exit 2', async () => {
    const r = await validate('bad.yaml', 'good.yaml');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe(
      [
        'bad.yaml:2:10: error: timeout: a duration needs a unit: add one, e.g. "5s" or "5m"',
        ' 2 | timeout: 5',
        '   |          ^',
        "bad.yaml:4:24: error: steps[0].run: 'nope' is not declared under vars",
        ' 4 |   - run: echo ${{ vars.nope }}',
        '   |                        ^',
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe('2 errors in 1 file\n');
  });

  test('per-job problems from the plan are reported too', async () => {
    const r = await validate('pj/perjob.yaml');
    expect(r.code).toBe(2);
    const first = r.stdout.split('\n')[0];
    expect(first).toMatch(
      /^pj\/perjob\.yaml:5:11: error: uploads\[0\]\.from: upload source '\.\/repos\/two' does not exist \(.*\) \(in job 'perjob\[id=two\]'\)$/,
    );
  });

  test('a pattern that matches nothing is an error', async () => {
    const r = await validate('nothing-*.yaml');
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('nothing-*.yaml:1:1: error: no files match this pattern');
  });

  test('no files given is a usage error', async () => {
    const r = await validate();
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing workflow files to validate');
  });

  test('--format must be known', async () => {
    const r = await validate('good.yaml', '--format', 'xml');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--format must be one of text, github, json, got 'xml'");
  });
});

describe('validate --format github', () => {
  test('the plain lines, then ::error annotations', async () => {
    const r = await validate('bad.yaml', '--format', 'github');
    expect(r.code).toBe(2);
    expect(r.stdout.split('\n')).toEqual([
      'bad.yaml:2:10: error: timeout: a duration needs a unit: add one, e.g. "5s" or "5m"',
      "bad.yaml:4:24: error: steps[0].run: 'nope' is not declared under vars",
      '::error file=bad.yaml,line=2,col=10::timeout: a duration needs a unit: add one, e.g. "5s" or "5m"',
      "::error file=bad.yaml,line=4,col=24::steps[0].run: 'nope' is not declared under vars",
      '',
    ]);
  });

  test('at most 10 annotations per severity, then one notice', async () => {
    const r = await validate('many', '--format', 'github');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.filter((l) => /^many\/w\d\d\.yaml:2:10: error: /.test(l))).toHaveLength(12);
    expect(lines.filter((l) => l.startsWith('::error '))).toHaveLength(10);
    expect(lines.at(-1)).toBe(
      '::notice::2 errors not annotated (GitHub shows at most 10 per type); see the log above',
    );
  });
});

describe('validate --format json', () => {
  test('one JSON document with validity, files and diagnostics', async () => {
    const r = await validate('good.yaml', 'bad.yaml', '--format', 'json');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc).toEqual({
      valid: false,
      jobs: 0,
      files: [
        { file: 'bad.yaml', valid: false, errors: 2, warnings: 0 },
        { file: 'good.yaml', valid: true, workflow: 'good', jobs: 2, errors: 0, warnings: 0 },
      ],
      diagnostics: [
        {
          severity: 'error',
          path: 'timeout',
          message: 'a duration needs a unit: add one, e.g. "5s" or "5m"',
          location: expect.objectContaining({ file: 'bad.yaml', start: { line: 2, col: 10 } }) as unknown,
        },
        {
          severity: 'error',
          path: 'steps[0].run',
          message: "'nope' is not declared under vars",
          location: expect.objectContaining({ file: 'bad.yaml', start: { line: 4, col: 24 } }) as unknown,
        },
      ],
    });
  });

  test('valid input', async () => {
    const r = await validate('good.yaml', '--format=json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      valid: true,
      jobs: 2,
      files: [{ file: 'good.yaml', valid: true, workflow: 'good', jobs: 2, errors: 0, warnings: 0 }],
      diagnostics: [],
    });
  });
});

describe('--var and --vars-file reach the loader', () => {
  test('an undeclared --var is an error; a declared one is fine', async () => {
    await fs.writeFile(
      path.join(dir, 'vars.yaml'),
      'name: v\nvars: { suite: unit }\nsteps:\n  - run: echo ${{ vars.suite }}\n',
    );
    expect((await validate('vars.yaml', '--var', 'suite=e2e')).code).toBe(0);
    const r = await validate('vars.yaml', '--var', 'suit=e2e');
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("'suit' is not declared under vars in any workflow (did you mean 'suite'?)");
    const missing = await validate('vars.yaml', '--vars-file', 'nope.yaml');
    expect(missing.code).toBe(2);
    expect(missing.stdout).toContain('nope.yaml:1:1: error: vars file not found');
  });
});
