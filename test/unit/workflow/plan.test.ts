import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Template } from '../../../src/expr/template.js';
import { buildPlan, selectShard } from '../../../src/workflow/plan.js';
import { formatDiagnostic } from '../../../src/workflow/diagnostic.js';
import type { PromptStep, UploadSpec } from '../../../src/workflow/types.js';
import { makeWorkflow, tpl } from '../../helpers/make-workflow.js';

let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  await fs.mkdir(path.join(dir, 'repos', 'alpha'), { recursive: true });
  await fs.writeFile(path.join(dir, 'repos', 'beta.txt'), 'b');
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const lines = (ds: Parameters<typeof formatDiagnostic>[0][]): string[] => ds.map(formatDiagnostic);

function upload(from: Template, to: Template, line = 9): UploadSpec {
  return { from, to, exclude: [], loc: { file: 'wf.yaml', line, col: 5 } };
}

function promptStep(model: Template): PromptStep {
  return {
    kind: 'prompt',
    id: 'ask',
    idExplicit: true,
    name: 'ask',
    continueOnError: false,
    env: {},
    loc: { file: 'wf.yaml', line: 20, col: 5 },
    prompt: Template.literal('hi'),
    promptVars: {},
    maxTurns: 10,
    model: { name: model },
  };
}

describe('buildPlan: order, index, slugs', () => {
  test('all jobs of all workflows in order with a global index', () => {
    const a = makeWorkflow('a', {
      strategy: { matrix: { axes: [['t', ['x', 'y']]], include: [], exclude: [] }, repeat: 1 },
    });
    const b = makeWorkflow('b', { strategy: { repeat: 2 } });
    const { plan, diagnostics } = buildPlan([a, b]);
    expect(diagnostics).toEqual([]);
    expect(plan?.jobs.map((j) => [j.index, j.id, j.slug, j.workflow.name])).toEqual([
      [0, 'a[t=x]', 'a_t_x', 'a'],
      [1, 'a[t=y]', 'a_t_y', 'a'],
      [2, 'b#1', 'b_1', 'b'],
      [3, 'b#2', 'b_2', 'b'],
    ]);
  });

  test('slugs are unique across workflows', () => {
    // 'x[a=1]' and workflow 'x_a_1' would share a slug
    const a = makeWorkflow('x', {
      strategy: { matrix: { axes: [['a', [1]]], include: [], exclude: [] }, repeat: 1 },
    });
    const b = makeWorkflow('x_a_1');
    const jobs = buildPlan([a, b]).plan?.jobs ?? [];
    expect(jobs).toHaveLength(2);
    expect(jobs[0]?.slug).not.toBe(jobs[1]?.slug);
  });

  test('an empty list of workflows is an empty plan', () => {
    expect(buildPlan([])).toEqual({ plan: { jobs: [] }, diagnostics: [] });
  });
});

describe('buildPlan: errors', () => {
  test('a workflow name used twice', () => {
    const a = makeWorkflow('same', { file: 'one.yaml', loc: { file: 'one.yaml', line: 2, col: 7 } });
    const b = makeWorkflow('same', { file: 'two.yaml', loc: { file: 'two.yaml', line: 3, col: 7 } });
    const r = buildPlan([a, b]);
    expect(r.plan).toBeUndefined();
    expect(lines(r.diagnostics)).toEqual([
      "two.yaml:3:7: error: name: workflow name 'same' is also used by one.yaml; names must be unique across one run",
    ]);
  });

  test('duplicate dataset ids point at the later item line, relative to cwd', () => {
    const wf = makeWorkflow('ds', {
      strategy: {
        repeat: 1,
        dataset: {
          file: path.join(dir, 'data', 'tasks.jsonl'),
          items: [{ id: 'a' }, { id: 'b' }, { id: 'a' }],
          lines: [1, 2, 4],
        },
      },
    });
    const r = buildPlan([wf], { cwd: dir });
    expect(r.plan).toBeUndefined();
    expect(lines(r.diagnostics)).toEqual([
      "data/tasks.jsonl:4:1: error: strategy.dataset: duplicate job id 'ds[id=a]': this item and the one on line 1 have the same 'id'; give each item a unique 'id'",
    ]);
  });

  test('a dataset outside cwd is shown with its absolute path', () => {
    const file = path.join(dir, 'tasks.jsonl');
    const wf = makeWorkflow('ds', {
      strategy: { repeat: 1, dataset: { file, items: [{ key: 1 }, { key: 1 }] } },
    });
    const r = buildPlan([wf], { cwd: path.join(dir, 'elsewhere') });
    expect(r.diagnostics[0]?.location).toEqual({ file, start: { line: 2, col: 1 } });
  });

  test('matrix values that print alike are duplicate ids, at the matrix', () => {
    const wf = makeWorkflow('m', {
      strategy: {
        matrix: {
          axes: [['v', [1, '1']]],
          include: [],
          exclude: [],
          loc: { file: 'm.yaml', line: 5, col: 3 },
        },
        repeat: 1,
      },
    });
    expect(lines(buildPlan([wf]).diagnostics)).toEqual([
      "m.yaml:5:3: error: strategy.matrix: duplicate job id 'm[v=1]': two matrix combinations give the same id",
    ]);
  });

  test('expansion problems are positioned at the matrix (or the workflow)', () => {
    const wf = makeWorkflow('m', {
      strategy: {
        matrix: {
          axes: [['os', ['a']]],
          include: [],
          exclude: [{ oss: 'a' }],
          loc: { file: 'm.yaml', line: 5, col: 3 },
        },
        repeat: 1,
      },
    });
    expect(lines(buildPlan([wf]).diagnostics)).toEqual([
      "m.yaml:5:3: error: strategy.matrix.exclude[0].oss: 'oss' is not a matrix axis (did you mean 'os'?) (axes: os)",
    ]);
    const tooMany = makeWorkflow('r', { strategy: { repeat: 30 } });
    expect(lines(buildPlan([tooMany], { maxJobsPerWorkflow: 10 }).diagnostics)).toEqual([
      'r.yaml:1:1: error: strategy: the workflow expands to 30 jobs, more than the limit of 10',
    ]);
  });
});

describe('buildPlan: per-job template checks', () => {
  test('sandbox env evaluation errors are positioned in the template, once for all jobs', () => {
    const wf = makeWorkflow('e', {
      strategy: { repeat: 3 },
      sandbox: {
        env: { OK: tpl('${{ vars.x }}'), BAD: tpl("v-${{ format('{1}', 'a') }}", 'e.yaml', 7, 10) },
      },
    });
    const r = buildPlan([wf]);
    expect(r.plan).toBeUndefined();
    // 'v-${{ ' is 6 characters: the call starts at offset 6 → column 16
    expect(lines(r.diagnostics)).toEqual([
      "e.yaml:7:16: error: sandbox.env.BAD: format(): no argument for {1} (in job 'e#1' and 2 other jobs)",
    ]);
  });

  test('image and snapshot templates are evaluated per job', () => {
    const wf = makeWorkflow('i', {
      strategy: { matrix: { axes: [['j', ['{"a":1}', 'nope']]], include: [], exclude: [] }, repeat: 1 },
      sandbox: { image: tpl('${{ fromJSON(matrix.j).a }}', 'i.yaml', 4, 10) },
    });
    expect(lines(buildPlan([wf]).diagnostics)).toEqual([
      "i.yaml:4:14: error: sandbox.image: fromJSON(): not valid JSON: nope (in job 'i[j=nope]')",
    ]);
  });

  test('a template that uses only vars is evaluated once and reported for every job', () => {
    const wf = makeWorkflow('once', {
      strategy: { repeat: 4 },
      vars: { j: '{' },
      sandbox: { image: tpl('${{ fromJSON(vars.j).x }}', 'once.yaml', 2, 10) },
    });
    expect(lines(buildPlan([wf]).diagnostics)).toEqual([
      "once.yaml:2:14: error: sandbox.image: fromJSON(): not valid JSON: { (in job 'once#1' and 3 other jobs)",
    ]);
  });

  test('model names: errors and empty names, workflow and step level', () => {
    const wf = makeWorkflow('mo', {
      strategy: { matrix: { axes: [['model', ['gpt-x', '']]], include: [], exclude: [] }, repeat: 1 },
      model: { name: tpl('${{ matrix.model }}', 'mo.yaml', 3, 8) },
      steps: [promptStep(tpl("${{ fromJSON('{') }}", 'mo.yaml', 20, 12))],
    });
    expect(lines(buildPlan([wf]).diagnostics)).toEqual([
      "mo.yaml:20:16: error: steps[0].model.name: fromJSON(): not valid JSON: { (in job 'mo[model=gpt-x]' and 1 other job)",
      "mo.yaml:3:8: error: model.name: '${{ matrix.model }}' evaluates to an empty model name (in job 'mo[model=]')",
    ]);
  });

  test('templated upload sources must exist, relative to the workflow file', () => {
    const wf = makeWorkflow(
      'up',
      {
        strategy: {
          repeat: 1,
          dataset: {
            file: path.join(dir, 't.jsonl'),
            items: [{ id: 'alpha' }, { id: 'beta.txt' }, { id: 'gamma' }],
          },
        },
        uploads: [upload(tpl('./repos/${{ item.id }}', 'up.yaml', 9, 11), tpl('/work/${{ item.id }}'))],
      },
      dir,
    );
    const r = buildPlan([wf], { cwd: dir });
    expect(lines(r.diagnostics)).toEqual([
      `up.yaml:9:11: error: uploads[0].from: upload source './repos/gamma' does not exist (${path.join(dir, 'repos', 'gamma')}) (in job 'up[id=gamma]')`,
    ]);
  });

  test('absolute templated sources and empty upload paths', () => {
    const wf = makeWorkflow('up', {
      vars: { root: dir, none: '' },
      uploads: [
        upload(tpl('${{ vars.root }}/repos/alpha'), tpl('repo')),
        upload(tpl('${{ vars.none }}', 'up.yaml', 10, 11), tpl('/x')),
        upload(Template.literal('/exists'), tpl('${{ vars.none }}', 'up.yaml', 11, 20)),
      ],
    });
    expect(lines(buildPlan([wf]).diagnostics)).toEqual([
      "up.yaml:10:11: error: uploads[1].from: '${{ vars.none }}' evaluates to an empty path (in job 'up')",
      "up.yaml:11:20: error: uploads[2].to: '${{ vars.none }}' evaluates to an empty sandbox path (in job 'up')",
    ]);
  });

  test('many distinct per-job problems are capped with a summary', () => {
    const wf = makeWorkflow('cap', {
      strategy: {
        repeat: 1,
        dataset: {
          file: path.join(dir, 't.jsonl'),
          items: Array.from({ length: 30 }, (_, i) => ({ id: `m${i}` })),
        },
      },
      uploads: [upload(tpl('./missing/${{ item.id }}'), tpl('/w'))],
    });
    const ds = buildPlan([wf], { maxJobDiagnostics: 5 }).diagnostics;
    expect(ds).toHaveLength(6);
    expect(formatDiagnostic(ds[5]!)).toBe(
      'cap.yaml:1:1: error: 25 more per-job problems in this workflow not shown',
    );
  });

  test('run.id, job and repeat contexts are available while planning', () => {
    const wf = makeWorkflow('ctx', {
      strategy: { repeat: 2 },
      sandbox: {
        env: { X: tpl("${{ format('{0}/{1}/{2}/{3}', run.id, job.id, repeat.index, job.slug) }}") },
      },
    });
    expect(buildPlan([wf], { runId: 'r1' }).diagnostics).toEqual([]);
  });
});

describe('selectShard', () => {
  test('round-robin: shards are disjoint and cover the plan', () => {
    const jobs = Array.from({ length: 10 }, (_, index) => ({ index }));
    const shards = [1, 2, 3].map((index) => selectShard(jobs, { index, total: 3 }).map((j) => j.index));
    expect(shards).toEqual([
      [0, 3, 6, 9],
      [1, 4, 7],
      [2, 5, 8],
    ]);
    expect(selectShard(jobs, { index: 1, total: 1 })).toHaveLength(10);
  });
});
