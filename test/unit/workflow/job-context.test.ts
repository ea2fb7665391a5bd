import { describe, expect, test } from 'vitest';
import { TemplateError } from '../../../src/expr/template.js';
import {
  resolveModelName,
  resolveSandboxEnv,
  resolveSandboxImage,
  resolveUploads,
  staticContexts,
} from '../../../src/workflow/job-context.js';
import type { Job } from '../../../src/workflow/types.js';
import { makeWorkflow, tpl } from '../../helpers/make-workflow.js';

const wf = makeWorkflow(
  'ctx',
  {
    vars: { suite: 'unit', n: 2 },
    secrets: { TOKEN: { fromEnv: 'MY_TOKEN' } },
    sandbox: {
      workingDir: '/work',
      env: {
        SUITE: tpl('${{ vars.suite }}-${{ matrix.os }}'),
        AUTH: tpl('Bearer ${{ secrets.TOKEN }}'),
        JOB: tpl('${{ job.id }}@${{ run.id }}#${{ job.attempt }}'),
      },
      image: tpl('img:${{ matrix.os }}'),
      snapshot: tpl('${{ matrix.none }}'),
    },
    uploads: [
      {
        from: tpl('./data/${{ item.id }}'),
        to: tpl('in/${{ item.id }}'),
        exclude: ['*.tmp'],
        loc: { file: 'ctx.yaml', line: 4, col: 3 },
      },
      {
        from: tpl('/abs'),
        to: tpl('/elsewhere/../x'),
        exclude: [],
        loc: { file: 'ctx.yaml', line: 5, col: 3 },
      },
    ],
  },
  '/home/u/flows',
);

const job: Job = {
  id: 'ctx[os=linux,id=t1]#2',
  slug: 'ctx_os_linux_id_t1_2',
  workflow: wf,
  index: 5,
  matrix: { os: 'linux' },
  item: { id: 't1', q: 'why?' },
  itemLine: 3,
  repeat: { index: 2, total: 3 },
};

describe('staticContexts', () => {
  test('vars, matrix, item, repeat, job, run and the evaluated env', () => {
    expect(staticContexts(job, { runId: 'r-1', attempt: 2 })).toEqual({
      vars: { suite: 'unit', n: 2 },
      matrix: { os: 'linux' },
      item: { id: 't1', q: 'why?' },
      repeat: { index: 2, total: 3 },
      job: { id: job.id, slug: job.slug, index: 5, attempt: 2, workflow: 'ctx', file: 'ctx.yaml' },
      run: { id: 'r-1' },
      env: { SUITE: 'unit-linux', AUTH: 'Bearer ', JOB: `${job.id}@r-1#2` },
    });
  });

  test('without matrix, dataset or repeat: empty objects and repeat 1/1', () => {
    const plain: Job = { id: 'p', slug: 'p', workflow: makeWorkflow('p'), index: 0 };
    expect(staticContexts(plain, { runId: 'r', attempt: 1 })).toMatchObject({
      matrix: {},
      item: {},
      repeat: { index: 1, total: 1 },
      env: {},
    });
  });

  test('env sees secrets when they are given', () => {
    expect(resolveSandboxEnv(job, { runId: 'r', attempt: 1, secrets: { TOKEN: 's3cret' } }).AUTH).toBe(
      'Bearer s3cret',
    );
    expect(staticContexts(job, { runId: 'r', attempt: 1, secrets: { TOKEN: 's3cret' } })).not.toHaveProperty(
      'secrets',
    );
  });

  test('returns fresh objects each time', () => {
    const a = staticContexts(job, { runId: 'r', attempt: 1 });
    (a.vars as Record<string, unknown>).suite = 'changed';
    expect(staticContexts(job, { runId: 'r', attempt: 1 }).vars).toEqual({ suite: 'unit', n: 2 });
    expect(wf.vars).toEqual({ suite: 'unit', n: 2 });
  });

  test('env evaluation errors are TemplateErrors', () => {
    const bad: Job = {
      ...job,
      workflow: makeWorkflow('b', { sandbox: { env: { X: tpl("${{ fromJSON('x') }}") } } }),
    };
    expect(() => staticContexts(bad, { runId: 'r', attempt: 1 })).toThrow(TemplateError);
  });
});

describe('resolvers', () => {
  test('image and snapshot, empty evaluations dropped', () => {
    expect(resolveSandboxImage(job, { runId: 'r', attempt: 1 })).toEqual({ image: 'img:linux' });
  });

  test('model names', () => {
    const contexts = staticContexts(job, { runId: 'r', attempt: 1 });
    expect(resolveModelName({ name: tpl('m-${{ matrix.os }}') }, contexts)).toBe('m-linux');
    expect(resolveModelName({ name: tpl('${{ matrix.none }}') }, contexts)).toBeUndefined();
    expect(resolveModelName({}, contexts)).toBeUndefined();
    expect(resolveModelName(undefined, contexts)).toBeUndefined();
  });

  test('uploads: sources against the workflow directory, targets against the working dir', () => {
    expect(resolveUploads(job, { runId: 'r', attempt: 1 })).toEqual([
      {
        from: '/home/u/flows/data/t1',
        to: '/work/in/t1',
        exclude: ['*.tmp'],
        loc: { file: 'ctx.yaml', line: 4, col: 3 },
      },
      { from: '/abs', to: '/x', exclude: [], loc: { file: 'ctx.yaml', line: 5, col: 3 } },
    ]);
  });
});
