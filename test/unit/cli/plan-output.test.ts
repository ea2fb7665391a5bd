import { expect, test } from 'vitest';
import { describePlan, jobToJson, printPlanTable } from '../../../src/cli/plan-output.js';
import type { Job } from '../../../src/workflow/types.js';
import { BufferSink } from '../../helpers/cli.js';
import { makeWorkflow } from '../../helpers/make-workflow.js';

const wf = makeWorkflow('long', { vars: { note: 'n'.repeat(80) } });
const long = 'x'.repeat(100);
const job: Job = { id: `long[v=${long}]`, slug: 'long_v', workflow: wf, index: 0, matrix: { v: long } };

test('long cells and vars are cut with an ellipsis at 60 characters; JSON keeps everything', () => {
  const stdout = new BufferSink();
  printPlanTable([job], { stdout, stderr: new BufferSink(), env: {}, cwd: '/' });
  const [header, row, , varsTitle, vars] = stdout.text.split('\n');
  expect(header).toMatch(/^# +JOB +WORKFLOW +FILE +MATRIX$/);
  const cells = row!.split(/ {2,}/);
  expect(cells[1]).toBe(`long[v=${'x'.repeat(52)}…`);
  expect(cells[1]).toHaveLength(60);
  expect(cells[4]).toHaveLength(60);
  expect(varsTitle).toBe('VARS');
  expect(vars).toBe(`long  note=${'n'.repeat(54)}…`);
  expect(jobToJson(job)).toEqual({
    index: 0,
    id: job.id,
    slug: 'long_v',
    workflow: 'long',
    file: 'long.yaml',
    matrix: { v: long },
    vars: { note: 'n'.repeat(80) },
  });
});

test('describePlan', () => {
  expect(describePlan([job])).toBe('1 job from 1 workflow');
  expect(describePlan([job, { ...job, index: 1 }])).toBe('2 jobs from 1 workflow');
  expect(describePlan([])).toBe('0 jobs from 0 workflows');
});
