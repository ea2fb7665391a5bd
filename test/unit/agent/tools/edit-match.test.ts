import { describe, expect, it } from 'vitest';
import { applyEdit } from '../../../../src/agent/tools/edit.js';

describe('applyEdit', () => {
  it('replaces a unique exact match', () => {
    const r = applyEdit('a = 1\nb = 2\n', 'b = 2', 'b = 3');
    expect(r).toEqual({ ok: true, content: 'a = 1\nb = 3\n', how: 'exact match' });
  });

  it('refuses an ambiguous exact match and says how many', () => {
    const r = applyEdit('x\nx\nx\n', 'x', 'y');
    expect(r).toEqual({ ok: false, error: expect.stringContaining('appears 3 times') as string });
  });

  it('counts overlapping occurrences as ambiguous', () => {
    const r = applyEdit('aaa', 'aa', 'b');
    expect(r.ok).toBe(false);
  });

  it('says when nothing matches', () => {
    const r = applyEdit('hello\n', 'goodbye', 'x');
    expect(r).toEqual({ ok: false, error: expect.stringContaining('not found') as string });
  });

  it('falls back to ignoring trailing whitespace', () => {
    const file = 'def f():   \n    return 1  \n';
    const r = applyEdit(file, 'def f():\n    return 1', 'def f():\n    return 2');
    expect(r).toMatchObject({ ok: true, how: 'whitespace-normalized match at line 1' });
    if (r.ok) expect(r.content).toBe('def f():\n    return 2\n');
  });

  it('falls back to flexible indentation and runs of blanks, re-indenting the replacement', () => {
    const file = 'class A:\n    def f(self):\n        x  =  1\n        return x\n';
    const r = applyEdit(
      file,
      'def f(self):\n    x = 1\n    return x',
      'def f(self):\n    x = 2\n    return x',
    );
    expect(r).toMatchObject({ ok: true, how: 'whitespace-flexible match at line 2' });
    if (r.ok) expect(r.content).toBe('class A:\n    def f(self):\n        x = 2\n        return x\n');
  });

  it('requires uniqueness in the fallbacks too', () => {
    const file = 'if a:\n    go()\nif b:\n  go()\n';
    // exact: "go() " is absent; trailing-whitespace stage: none (indented); flexible stage: both lines
    expect(applyEdit(file, 'go() ', 'stop()')).toEqual({
      ok: false,
      error: expect.stringContaining('2 whitespace-flexible matches') as string,
    });
    expect(applyEdit('go()  \ngo()\n', 'go()\t', 'stop()')).toEqual({
      ok: false,
      error: expect.stringContaining('2 whitespace-normalized matches') as string,
    });
  });

  it('keeps CRLF line endings when a fallback rewrites lines', () => {
    const file = 'one\r\ntwo  \r\nthree\r\n';
    const r = applyEdit(file, 'two\n', 'TWO\n');
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.content).toBe('one\r\nTWO\r\nthree\r\n');
  });

  it('deletes whole lines when new_string is empty and old_string ends with a newline', () => {
    const r = applyEdit('keep\ndrop me   \nkeep too\n', 'drop me\n', '');
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.content).toBe('keep\nkeep too\n');
  });
});
