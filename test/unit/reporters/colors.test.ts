import { describe, expect, it } from 'vitest';
import {
  palette,
  shouldUseColor,
  statusStyle,
  statusSymbol,
  stripAnsi,
} from '../../../src/reporters/colors.js';
import { JOB_STATUSES } from '../../../src/results/types.js';

const tty = { isTTY: true };
const pipe = { isTTY: false };

describe('colour decision', () => {
  it('--color / --no-color win over everything', () => {
    expect(shouldUseColor({ flag: true, env: { NO_COLOR: '1' }, stream: pipe })).toBe(true);
    expect(shouldUseColor({ flag: false, env: { FORCE_COLOR: '3' }, stream: tty })).toBe(false);
  });

  it('FORCE_COLOR follows Node: 1/2/3/true/empty force, other values disable, and it beats NO_COLOR', () => {
    for (const v of ['', '1', '2', '3', 'true'])
      expect(shouldUseColor({ env: { FORCE_COLOR: v, NO_COLOR: '1' }, stream: pipe })).toBe(true);
    for (const v of ['0', 'false', 'yes'])
      expect(shouldUseColor({ env: { FORCE_COLOR: v }, stream: tty })).toBe(false);
  });

  it('NO_COLOR (non-empty) disables; otherwise a TTY that is not dumb', () => {
    expect(shouldUseColor({ env: { NO_COLOR: '1' }, stream: tty })).toBe(false);
    expect(shouldUseColor({ env: { NO_COLOR: '' }, stream: tty })).toBe(true);
    expect(shouldUseColor({ env: { TERM: 'dumb' }, stream: tty })).toBe(false);
    expect(shouldUseColor({ env: {}, stream: pipe })).toBe(false);
    expect(shouldUseColor({ env: {}, stream: {} })).toBe(false);
  });
});

describe('palette', () => {
  it('wraps in SGR codes only when enabled', () => {
    expect(palette(true).red('x')).toBe('\x1b[31mx\x1b[39m');
    expect(palette(true).bold('')).toBe('');
    expect(palette(false).red('x')).toBe('x');
    expect(stripAnsi(palette(true).green('ok') + ' ' + palette(true).dim('d'))).toBe('ok d');
  });

  it('has a style and a distinct symbol for every status', () => {
    const p = palette(true);
    const symbols = JOB_STATUSES.map((s) => statusSymbol(s));
    expect(new Set(symbols).size).toBe(JOB_STATUSES.length);
    expect(new Set(JOB_STATUSES.map((s) => statusSymbol(s, true))).size).toBe(JOB_STATUSES.length);
    for (const s of JOB_STATUSES) expect(statusStyle(p, s)('x').startsWith('\x1b[')).toBe(true);
  });
});
