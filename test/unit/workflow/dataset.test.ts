import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../src/workflow/diagnostic.js';
import { parseDataset } from '../../../src/workflow/dataset.js';
import { formatDuration, parseDuration } from '../../../src/workflow/duration.js';

describe('parseDataset', () => {
  it('reads one object per line, skipping blank lines, with line numbers and the union of keys', () => {
    const r = parseDataset('{"id": 1, "a": "x"}\r\n\n   \n{"id": 2, "b": [1]}\n', 'd.jsonl');
    expect(r.diagnostics).toEqual([]);
    expect(r.items).toEqual([
      { id: 1, a: 'x' },
      { id: 2, b: [1] },
    ]);
    expect(r.lines).toEqual([1, 4]);
    expect(r.keys).toEqual(['id', 'a', 'b']);
  });

  it('positions every bad line', () => {
    const r = parseDataset(['{"a": tru}', '  "text"', '{"a": 1', '{"a" 1}', 'null'].join('\n'), 'd.jsonl');
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "d.jsonl:1:10: error: invalid JSON: unexpected token '}'",
      'd.jsonl:2:3: error: each line must be a JSON object, got a string',
      "d.jsonl:3:8: error: invalid JSON: expected ',' or '}' after property value",
      "d.jsonl:4:6: error: invalid JSON: expected ':' after property name",
      'd.jsonl:5:1: error: each line must be a JSON object, got null',
    ]);
    expect(r.items).toEqual([]);
  });

  it('caps the number of reported lines', () => {
    const r = parseDataset(Array.from({ length: 25 }, () => 'x').join('\n'), 'd.jsonl');
    expect(r.diagnostics).toHaveLength(21);
    expect(formatDiagnostic(r.diagnostics[20]!)).toBe('d.jsonl:20:1: error: 5 more invalid lines not shown');
  });
});

describe('durations', () => {
  it('parses units and combinations', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1.5m')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('2h')).toBe(7_200_000);
  });
  it('rejects bare numbers and other text', () => {
    for (const bad of ['90', '', '5 m', 'm', '1d', '-1s', '1h 30m'])
      expect(parseDuration(bad)).toBeUndefined();
  });
  it('formats compactly', () => {
    expect([250, 90_000, 5_400_000, 3_600_000, 0].map(formatDuration)).toEqual([
      '250ms',
      '1m30s',
      '1h30m',
      '1h',
      '0ms',
    ]);
  });
});
