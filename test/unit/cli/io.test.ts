import { describe, expect, test } from 'vitest';
import { styles, wantsColor, type CliIo } from '../../../src/cli/io.js';

const tty = { write: () => true, isTTY: true };
const pipe = { write: () => true, isTTY: false };

describe('wantsColor', () => {
  test.each([
    ['TTY, nothing set', undefined, {}, tty, true],
    ['pipe, nothing set', undefined, {}, pipe, false],
    ['NO_COLOR on a TTY', undefined, { NO_COLOR: '1' }, tty, false],
    ['empty NO_COLOR is ignored', undefined, { NO_COLOR: '' }, tty, true],
    ['FORCE_COLOR on a pipe', undefined, { FORCE_COLOR: '1' }, pipe, true],
    ['empty FORCE_COLOR means on', undefined, { FORCE_COLOR: '' }, pipe, true],
    ['FORCE_COLOR=0 on a TTY', undefined, { FORCE_COLOR: '0' }, tty, false],
    ['FORCE_COLOR=false', undefined, { FORCE_COLOR: 'false' }, tty, false],
    ['FORCE_COLOR wins over NO_COLOR', undefined, { FORCE_COLOR: '1', NO_COLOR: '1' }, pipe, true],
    ['TERM=dumb', undefined, { TERM: 'dumb' }, tty, false],
    ['--color wins over everything', true, { NO_COLOR: '1', FORCE_COLOR: '0' }, pipe, true],
    ['--no-color wins over everything', false, { FORCE_COLOR: '3' }, tty, false],
  ] as const)('%s', (_name, flag, env, stream, expected) => {
    expect(wantsColor(flag, env, stream)).toBe(expected);
  });
});

describe('styles', () => {
  const io = (stdout: boolean, stderr: boolean): CliIo => ({
    stdout: pipe,
    stderr: pipe,
    env: {},
    cwd: '/',
    color: { stdout, stderr },
  });

  test('ANSI codes only for streams with colour', () => {
    expect(styles(io(true, false), 'stdout').red('x')).toBe('\u001b[31mx\u001b[39m');
    expect(styles(io(true, false), 'stderr').red('x')).toBe('x');
    expect(styles(io(false, true), 'stderr').bold('y')).toBe('\u001b[1my\u001b[22m');
    expect(styles({ stdout: pipe, stderr: pipe, env: {}, cwd: '/' }, 'stdout').green('z')).toBe('z');
  });
});
