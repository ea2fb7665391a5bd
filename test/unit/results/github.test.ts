import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_ANNOTATIONS,
  isGitHubActions,
  mdCell,
  publishGitHub,
  renderAnnotations,
  renderStepSummary,
  workflowCommand,
} from '../../../src/results/github.js';
import { lineLocator } from '../../../src/results/run-writer.js';
import { Redactor } from '../../../src/util/redact.js';
import { expectGolden } from './golden.js';
import { sampleSummary } from './sample-summary.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const locate = lineLocator({
  workflows: [
    { name: 'fix', file: 'workflows/fix.yaml', hash: 'h', line: 3, steps: { test: 21, verify: 30 } },
    { name: 'lint', file: 'workflows/lint.yaml', hash: 'h', line: 1, steps: { build: 7 } },
  ],
});

describe('GitHub Actions output', () => {
  it('only under GITHUB_ACTIONS=true', async () => {
    expect(isGitHubActions({ GITHUB_ACTIONS: 'true' })).toBe(true);
    expect(isGitHubActions({ GITHUB_ACTIONS: 'false', CI: 'true' })).toBe(false);
    const lines: string[] = [];
    const file = join(dir, 'summary.md');
    const done = await publishGitHub({
      summary: sampleSummary(),
      env: { CI: 'true', GITHUB_STEP_SUMMARY: file },
      runDir: 'out/r',
      write: (l) => lines.push(l),
    });
    expect(done).toBe(false);
    expect(lines).toEqual([]);
    await expect(readFile(file)).rejects.toThrow();
  });

  it('step summary and annotations match the golden files', async () => {
    const file = join(dir, 'step-summary.md');
    await writeFile(file, '# earlier content of this step\n');
    const lines: string[] = [];
    const published = await publishGitHub({
      summary: sampleSummary(),
      env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: file },
      runDir: 'rho-flow-results/20250101-120000-ab12',
      junitPath: 'rho-flow-results/20250101-120000-ab12/junit.xml',
      locate,
      write: (l) => lines.push(l),
    });
    expect(published).toBe(true);
    const md = await readFile(file, 'utf8');
    expect(md.startsWith('# earlier content of this step\n## rho-flow run')).toBe(true);
    await expectGolden('github-step-summary.md', md);
    await expectGolden('github-annotations.txt', lines.join(''));
  });

  it('at most 10 error annotations, then one notice with the count', async () => {
    const lines = renderAnnotations(sampleSummary({ failures: 15 }), {
      locate,
      summaryPath: 'out/r/summary.json',
    });
    expect(lines.filter((l) => l.startsWith('::error '))).toHaveLength(MAX_ANNOTATIONS);
    expect(lines).toHaveLength(MAX_ANNOTATIONS + 1);
    expect(lines.at(-1)).toBe(
      '::notice::9 more jobs did not pass and are not annotated; see out/r/summary.json',
    );
    await expectGolden('github-annotations-capped.txt', lines.join('\n') + '\n');
  });

  it('escapes workflow command data and properties', () => {
    expect(workflowCommand('error', 'a%b\r\nc', { file: 'd:e,f.yaml', line: 3, title: 'x' })).toBe(
      '::error file=d%3Ae%2Cf.yaml,line=3,title=x::a%25b%0D%0Ac',
    );
    expect(workflowCommand('notice', 'plain')).toBe('::notice::plain');
    expect(mdCell('a|b\n<i>&')).toBe('a\\|b &lt;i&gt;&amp;');
  });

  it('stays under the size budget with a note, and redacts', async () => {
    const summary = sampleSummary({ failures: 3000 });
    const md = renderStepSummary({ summary, runDir: 'out/r', budgetBytes: 20_000 });
    expect(Buffer.byteLength(md)).toBeLessThanOrEqual(20_000);
    expect(md).toMatch(/_\d[\d,]* more jobs that did not pass are not listed/);
    expect(md).toContain('**Results:**');
    expect(renderStepSummary({ summary, runDir: 'out/r', budgetBytes: 100 })).toBe('');
    const full = renderStepSummary({ summary, runDir: 'out/r' });
    expect(Buffer.byteLength(full)).toBeLessThan(900 * 1024);
    expect(full).not.toContain('not listed');

    const file = join(dir, 's.md');
    const lines: string[] = [];
    const secret = 'assert a|b, got 100%';
    await publishGitHub({
      summary: sampleSummary(),
      env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: file },
      runDir: 'out/r',
      write: (l) => lines.push(l),
      redactor: new Redactor([secret]),
    });
    const text = (await readFile(file, 'utf8')) + lines.join('');
    expect(text).not.toContain('assert a');
    expect(text).toContain('***');
  });

  it('a step summary file that is already near the limit gets nothing more', async () => {
    const file = join(dir, 'full.md');
    const size = 900 * 1024 - 200;
    await writeFile(file, 'x'.repeat(size));
    await publishGitHub({
      summary: sampleSummary(),
      env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: file },
      runDir: 'r',
      write: () => undefined,
    });
    expect((await readFile(file)).length).toBe(size);
  });
});
