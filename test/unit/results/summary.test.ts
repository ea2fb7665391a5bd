import { describe, expect, it } from 'vitest';
import {
  SummaryBuilder,
  decisiveStep,
  formatDuration,
  formatInt,
  formatPercent,
  jobErrorText,
  passRateOf,
  repeatBaseId,
  emptyCounts,
} from '../../../src/results/summary.js';
import { makeResult, step } from './make-result.js';

const frame = {
  runId: 'run-1',
  startedAt: '2025-01-01T00:00:00.000Z',
  endedAt: '2025-01-01T00:01:12.000Z',
  exitCode: 1,
};

describe('SummaryBuilder', () => {
  it('counts every status, maps timed-out to timedOut, and orders jobs by plan index', () => {
    const b = new SummaryBuilder();
    const statuses = ['failed', 'passed', 'timed-out', 'error', 'cancelled', 'skipped', 'passed'] as const;
    statuses.forEach((status, i) => b.add(makeResult({ id: `j${i}`, status, index: statuses.length - i })));
    const s = b.build(frame);
    expect(s.counts).toEqual({ passed: 2, failed: 1, timedOut: 1, error: 1, cancelled: 1, skipped: 1 });
    expect(s.jobs.map((j) => j.id)).toEqual(['j6', 'j5', 'j4', 'j3', 'j2', 'j1', 'j0']);
    expect(s.durationMs).toBe(72_000);
    expect(s.exitCode).toBe(1);
    expect(s.groups).toBeUndefined();
  });

  it('pass rate counts only verdicts (passed, failed, timed-out)', () => {
    const b = new SummaryBuilder();
    ['passed', 'passed', 'passed', 'failed', 'error', 'error', 'cancelled', 'skipped'].forEach((status, i) =>
      b.add(makeResult({ id: `j${i}`, status: status as never, index: i })),
    );
    expect(b.build(frame).passRate).toBe(0.75);
    expect(passRateOf({ ...emptyCounts(), error: 3 })).toBeNull();
  });

  it('sums usage and cost', () => {
    const b = new SummaryBuilder();
    b.add(
      makeResult({
        id: 'a',
        usage: { inputTokens: 100, outputTokens: 10, cachedInputTokens: 50 },
        costUsd: 0.1,
      }),
    );
    b.add(
      makeResult({
        id: 'b',
        index: 1,
        usage: { inputTokens: 1, outputTokens: 2, cachedInputTokens: 0 },
        costUsd: 0.2,
      }),
    );
    const s = b.build(frame);
    expect(s.usage).toEqual({ inputTokens: 101, outputTokens: 12, cachedInputTokens: 50 });
    expect(s.costUsd).toBeCloseTo(0.3, 9);
    const none = new SummaryBuilder();
    none.add(makeResult({ id: 'a' }));
    expect(none.build(frame).costUsd).toBeUndefined();
  });

  it('recording the same job again replaces it (last wins), except a skip never hides an outcome', () => {
    const b = new SummaryBuilder();
    b.add(makeResult({ id: 'a', status: 'error', attempts: 3 }));
    b.add(makeResult({ id: 'a', status: 'passed', attempts: 1 }));
    expect(b.build(frame).counts).toMatchObject({ passed: 1, error: 0 });
    expect(b.get('a')?.attempts).toBe(1);
    expect(b.add(makeResult({ id: 'a', status: 'skipped' }))).toBe(false);
    expect(b.get('a')?.status).toBe('passed');
    expect(b.size).toBe(1);
    b.add(makeResult({ id: 'a', status: 'failed' }));
    expect(b.get('a')?.status).toBe('failed');
  });

  it('keeps a compact entry with the first error and the deciding step', () => {
    const b = new SummaryBuilder();
    b.add(makeResult({ id: 'a', status: 'failed' }));
    b.add(makeResult({ id: 'b', status: 'error', index: 1 }));
    const [a, e] = b.jobs();
    expect(a).toMatchObject({
      id: 'a',
      slug: 'a',
      failedStep: 'test',
      error: 'step test exited with code 1',
    });
    expect(e).toMatchObject({ error: 'sandbox create failed: 503 Service Unavailable' });
    expect(e?.failedStep).toBeUndefined();
  });

  it('groups repeats for pass@k', () => {
    const b = new SummaryBuilder();
    let i = 0;
    const add = (id: string, n: number, status: 'passed' | 'failed' | 'error'): void => {
      b.add(makeResult({ id: `${id}#${n}`, index: i++, status, repeat: { index: n, total: 3 } }));
    };
    add('t[x=1]', 1, 'passed');
    add('t[x=1]', 2, 'failed');
    add('t[x=1]', 3, 'passed');
    add('t[x=2]', 1, 'failed');
    add('t[x=2]', 2, 'failed');
    add('t[x=2]', 3, 'error');
    add('t[x=3]', 1, 'error');
    b.add(makeResult({ id: 'single', index: i++ }));
    const s = b.build(frame);
    expect(s.groups).toEqual([
      { id: 't[x=1]', workflow: 'wf', k: 3, verdicts: 3, passed: 2, passAt1: 2 / 3, anyPass: true },
      { id: 't[x=2]', workflow: 'wf', k: 3, verdicts: 2, passed: 0, passAt1: 0, anyPass: false },
      { id: 't[x=3]', workflow: 'wf', k: 3, verdicts: 0, passed: 0, passAt1: null, anyPass: false },
    ]);
    expect(s.passAtK).toEqual({ k: 3, groups: 3, passAt1: 1 / 3, anyPass: 0.5 });
    expect(repeatBaseId('a[b=#1]#12')).toBe('a[b=#1]');
  });

  it('holds only compact entries: 5,000 results with big outputs stay small', () => {
    const b = new SummaryBuilder();
    const big = 'x'.repeat(20_000);
    for (let i = 0; i < 5000; i++) {
      b.add(
        makeResult({
          id: `job-${i}`,
          index: i,
          status: i % 7 === 0 ? 'failed' : 'passed',
          steps: [
            step({ id: 'a', output: big }),
            step({ id: 'b', output: big, status: i % 7 === 0 ? 'failed' : 'passed' }),
          ],
        }),
      );
    }
    const state = b.debugState();
    expect(state.entries).toBe(5000);
    // The inputs weighed ~200 MB; the entries must be a few hundred bytes each.
    expect(state.bytes / state.entries).toBeLessThan(600);
    expect(state.keys).not.toContain('steps');
    expect(b.build(frame).counts.failed).toBe(715);
  });
});

describe('helpers', () => {
  it('decisiveStep prefers a main step, ignores continue-on-error, falls back to finally', () => {
    const steps = [
      step({ id: 'a', status: 'failed', continueOnError: true }),
      step({ id: 'f', status: 'failed', finally: true }),
      step({ id: 'b', status: 'timed-out' }),
    ];
    expect(decisiveStep(steps)?.id).toBe('b');
    expect(decisiveStep(steps.slice(0, 2))?.id).toBe('f');
    expect(decisiveStep([step({ id: 'ok' })])).toBeUndefined();
    expect(jobErrorText(makeResult({ id: 'x' }))).toBeUndefined();
  });

  it('formats durations, percents and integers without locale', () => {
    expect(formatDuration(0)).toBe('0.0s');
    expect(formatDuration(1234)).toBe('1.2s');
    expect(formatDuration(59_999)).toBe('59.9s');
    expect(formatDuration(72_000)).toBe('1m12s');
    expect(formatDuration(3_723_000)).toBe('1h02m');
    expect(formatPercent(null)).toBe('n/a');
    expect(formatPercent(0.92105)).toBe('92.1%');
    expect(formatPercent(1)).toBe('100.0%');
    expect(formatInt(1234567)).toBe('1,234,567');
    expect(formatInt(12)).toBe('12');
  });
});
