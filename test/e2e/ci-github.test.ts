/**
 * Issue 6 acceptance, CI-native output: under a simulated GitHub Actions
 * environment (`GITHUB_ACTIONS=true`, `GITHUB_STEP_SUMMARY` a temp file) the
 * real CLI appends the Markdown step summary and prints `::error`
 * annotations pointing at the workflow files, and the plain reporter wraps
 * each job in `::group::`. Summary and annotations match golden files (run
 * id fixed, durations and temp paths normalized, and the fake server's port).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import path from 'node:path';
import { RunRig } from '../helpers/run-rig.js';
import { expectGolden } from '../unit/results/golden.js';
import { COUNTED_PROMPT, startCountingModel } from './ci-helpers.js';

const ASK = `name: ask
strategy:
  repeat: 2
steps:
  - id: ask
    prompt: "${COUNTED_PROMPT}"
    max-turns: 2
`;
const FAIL = `name: fail
description: a job whose check fails
steps:
  - id: setup
    run: echo setting up
  - id: check
    run: |
      echo "expected 2, got 3" >&2
      exit 1
`;
const DOWN = `name: down
steps:
  - id: ask
    prompt: "${COUNTED_PROMPT}"
    max-turns: 2
`;

function normalize(text: string, dir: string): string {
  return text
    .split(dir)
    .join('<dir>')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>')
    .replace(/\b\d+h\d{2}m\b|\b\d+m\d{2}s\b|\b\d+\.\d+s\b/g, '<dur>');
}

describe('GitHub Actions output of a run', () => {
  it('step summary and annotations (golden), one ::group:: per job', async () => {
    await using rig = await RunRig.create();
    await using model = await startCountingModel();
    model.failWhen((id) => id === 'down');
    await rig.write('flows/ask.yaml', ASK);
    await rig.write('flows/fail.yaml', FAIL);
    await rig.write('flows/down.yaml', DOWN);
    const stepSummary = path.join(rig.dir, 'step-summary.md');
    await fs.writeFile(stepSummary, '# earlier output of this step\n');
    const r = await rig.run(
      ['run', 'flows/', '-o', 'out', '--run-id', 'gh-run', '-j', '1', '--retries', '0'],
      { ...model.env, GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: stepSummary },
    );
    expect(r.code, r.stderr).toBe(3);

    const markdown = await fs.readFile(stepSummary, 'utf8');
    expect(markdown.startsWith('# earlier output of this step\n')).toBe(true);
    await expectGolden('ci-run-step-summary.md', normalize(markdown, rig.dir));
    const annotations = r.stdout.split('\n').filter((l) => /^::(error|warning|notice)/.test(l));
    await expectGolden('ci-run-annotations.txt', normalize(annotations.join('\n'), rig.dir) + '\n');

    // The plain reporter (CI) prints each job's lines as one group.
    const groups = r.stdout.split('\n').filter((l) => l.startsWith('::group::'));
    expect(groups).toHaveLength(4);
    expect(r.stdout.split('\n').filter((l) => l === '::endgroup::')).toHaveLength(4);
    expect(groups.some((g) => g.includes('fail failed'))).toBe(true);
  });
});
