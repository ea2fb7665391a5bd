import { describe, expect, it } from 'vitest';
import { cutBytes, truncateLine, truncateOutput } from '../../../../src/agent/tools/truncate.js';

const lines = (n: number, prefix = 'line'): string =>
  Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`).join('\n');

describe('truncateOutput', () => {
  it('leaves text within both caps alone', () => {
    const text = lines(10);
    expect(truncateOutput(text, { maxLines: 10, maxBytes: 1000 })).toEqual({ text, truncated: false });
  });

  it('keeps the head and says how many lines were cut', () => {
    const r = truncateOutput(lines(1234 + 100), { maxLines: 100, maxBytes: 1_000_000 });
    expect(r.truncated).toBe(true);
    const out = r.text.split('\n');
    expect(out).toHaveLength(101);
    expect(out[0]).toBe('line 1');
    expect(out[99]).toBe('line 100');
    expect(out[100]).toBe('[… truncated: 1234 more lines]');
  });

  it('enforces the byte cap on whole lines', () => {
    const r = truncateOutput(lines(1000), { maxLines: 10_000, maxBytes: 100 });
    const kept = r.text.split('\n').slice(0, -1);
    expect(Buffer.byteLength(kept.join('\n'))).toBeLessThanOrEqual(100);
    expect(kept.every((l) => /^line \d+$/.test(l))).toBe(true);
    expect(r.text).toMatch(/\[… truncated: \d+ more lines\]$/);
  });

  it('cuts one giant line inside, without splitting a UTF-8 character', () => {
    const r = truncateOutput('é'.repeat(1000), { maxBytes: 101 });
    const first = r.text.split('\n')[0] ?? '';
    expect(first).toBe('é'.repeat(50));
    expect(r.text).toContain('cut at 101 bytes');
  });

  it('head-tail keeps the end of command output', () => {
    const r = truncateOutput(lines(5000), { maxLines: 100, keep: 'head-tail', maxBytes: 1_000_000 });
    const out = r.text.split('\n');
    expect(out[0]).toBe('line 1');
    expect(out.at(-1)).toBe('line 5000');
    expect(r.text).toContain('[… truncated: 4900 lines omitted …]');
    expect(out).toHaveLength(101);
  });
});

describe('cutBytes / truncateLine', () => {
  it('cuts on character boundaries', () => {
    expect(cutBytes('a€b', 2)).toBe('a');
    expect(cutBytes('a€b', 4)).toBe('a€');
    expect(cutBytes('abc', 10)).toBe('abc');
  });
  it('marks cut lines', () => {
    expect(truncateLine('x'.repeat(12), 10)).toBe(`${'x'.repeat(10)}… [2 more chars]`);
    expect(truncateLine('short', 10)).toBe('short');
  });
});
