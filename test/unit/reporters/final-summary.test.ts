import { describe, expect, it } from 'vitest';
import { renderFinalSummary } from '../../../src/reporters/final-summary.js';
import { palette, stripAnsi } from '../../../src/reporters/colors.js';
import { sampleSummary } from '../results/sample-summary.js';
import { expectGolden } from '../results/golden.js';

describe('final summary', () => {
  it('shows counts, pass rate, pass@k, failures, slowest jobs, tokens and where the results are (golden)', async () => {
    const lines = renderFinalSummary(sampleSummary({ failures: 12 }), {
      runDir: 'rho-flow-results/20250101-120000-ab12',
      palette: palette(false),
    });
    await expectGolden('final-summary.txt', lines.join('\n') + '\n');
  });

  it('mentions an interruption and a custom JUnit path; colours are optional', () => {
    const s = { ...sampleSummary(), interrupted: 'SIGINT' as const };
    const colored = renderFinalSummary(s, {
      runDir: 'out/r',
      junitPath: 'out/r/junit-1-of-2.xml',
      palette: palette(true),
    });
    const text = colored.join('\n');
    expect(text).toContain('\x1b[');
    const plain = stripAnsi(text);
    expect(plain).toContain('interrupted by SIGINT');
    expect(plain).toContain('junit     out/r/junit-1-of-2.xml');
  });

  it('a single passed job has no slowest list and no tokens line', () => {
    const s = sampleSummary();
    const one = {
      ...s,
      jobs: s.jobs.slice(0, 1),
      usage: { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 },
    };
    delete (one as { costUsd?: number }).costUsd;
    const text = renderFinalSummary(one, { runDir: 'r', palette: palette(false) }).join('\n');
    expect(text).not.toContain('slowest');
    expect(text).not.toContain('tokens');
  });
});
