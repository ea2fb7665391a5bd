import { describe, expect, test } from 'vitest';
import { parseExpression, ExpressionSyntaxError, type Expr } from '../../../src/expr/index.js';

/** Renders an AST as a fully parenthesised string, so precedence is visible. */
function show(e: Expr): string {
  switch (e.kind) {
    case 'literal':
      return JSON.stringify(e.value);
    case 'ident':
      return e.name;
    case 'member':
      return `${show(e.object)}.${e.property}`;
    case 'index':
      return `${show(e.object)}[${show(e.index)}]`;
    case 'call':
      return `${e.callee}(${e.args.map(show).join(', ')})`;
    case 'unary':
      return `(!${show(e.operand)})`;
    case 'binary':
      return `(${show(e.left)} ${e.op} ${show(e.right)})`;
  }
}

const p = (src: string): string => show(parseExpression(src));

/** The error thrown by parsing `src` (fails the test when nothing is thrown). */
function syntaxError(src: string): ExpressionSyntaxError {
  try {
    parseExpression(src);
  } catch (e) {
    if (e instanceof ExpressionSyntaxError) return e;
    throw e;
  }
  throw new Error(`expected a syntax error for ${src}`);
}

describe('precedence', () => {
  test('|| binds loosest, then &&', () => {
    expect(p('a || b && c')).toBe('(a || (b && c))');
    expect(p('a && b || c')).toBe('((a && b) || c)');
  });

  test('&& is looser than == and !=', () => {
    expect(p('a == b && c != d')).toBe('((a == b) && (c != d))');
  });

  test('comparison binds tighter than equality', () => {
    expect(p('a < b == c >= d')).toBe('((a < b) == (c >= d))');
    expect(p('a <= b != c > d')).toBe('((a <= b) != (c > d))');
  });

  test('! binds tighter than comparison and equality', () => {
    expect(p('!a == b')).toBe('((!a) == b)');
    expect(p('!a < b')).toBe('((!a) < b)');
    expect(p('!!a')).toBe('(!(!a))');
  });

  test('member access binds tighter than !', () => {
    expect(p('!matrix.os')).toBe('(!matrix.os)');
  });

  test('binary operators are left-associative', () => {
    expect(p('a == b == c')).toBe('((a == b) == c)');
    expect(p('a || b || c')).toBe('((a || b) || c)');
  });

  test('parentheses override precedence', () => {
    expect(p('(a || b) && c')).toBe('((a || b) && c)');
    expect(p('!(a == b)')).toBe('(!(a == b))');
  });

  test('whitespace is insignificant', () => {
    expect(p('  a==b&&c  ')).toBe('((a == b) && c)');
  });
});

describe('literals', () => {
  test.each([
    ['42', 42],
    ['-7', -7],
    ['3.25', 3.25],
    ['-0.5', -0.5],
    ['.5', 0.5],
    ['1e3', 1000],
    ['2.5E-1', 0.25],
    ['0x1F', 31],
    ['0xff', 255],
  ])('number %s', (src, value) => {
    expect(parseExpression(src)).toMatchObject({ kind: 'literal', value });
  });

  test('negative numbers after operators', () => {
    expect(p('a == -1')).toBe('(a == -1)');
  });

  test('strings: single quotes, doubled quote escapes', () => {
    expect(parseExpression("'hello'")).toMatchObject({ kind: 'literal', value: 'hello' });
    expect(parseExpression("'it''s'")).toMatchObject({ kind: 'literal', value: "it's" });
    expect(parseExpression("''")).toMatchObject({ kind: 'literal', value: '' });
    expect(parseExpression("''''")).toMatchObject({ kind: 'literal', value: "'" });
    expect(parseExpression('"dq ""x"""')).toMatchObject({ kind: 'literal', value: 'dq "x"' });
  });

  test('strings keep operators and braces verbatim', () => {
    expect(parseExpression("'a == b }} ${{'")).toMatchObject({ kind: 'literal', value: 'a == b }} ${{' });
  });

  test('true, false, null', () => {
    expect(parseExpression('true')).toMatchObject({ kind: 'literal', value: true });
    expect(parseExpression('false')).toMatchObject({ kind: 'literal', value: false });
    expect(parseExpression('null')).toMatchObject({ kind: 'literal', value: null });
  });

  test('literal offsets', () => {
    expect(parseExpression("  'ab'")).toMatchObject({ start: 2, end: 6 });
  });
});

describe('member, index and calls', () => {
  test('dotted property chains, with dashes in names', () => {
    expect(p('steps.my-step.outputs.result')).toBe('steps.my-step.outputs.result');
  });

  test('keywords are fine as property names', () => {
    expect(p('matrix.null.true')).toBe('matrix.null.true');
  });

  test('index access with strings, numbers and expressions', () => {
    expect(p("matrix['os']")).toBe('matrix["os"]');
    expect(p('item.list[0]')).toBe('item.list[0]');
    expect(p('matrix[vars.key].x')).toBe('matrix[vars.key].x');
  });

  test('function calls with zero, one and many arguments', () => {
    expect(p('success()')).toBe('success()');
    expect(p("contains(matrix.os, 'ubuntu')")).toBe('contains(matrix.os, "ubuntu")');
    expect(p("format('{0}{1}', a, b || c)")).toBe('format("{0}{1}", a, (b || c))');
  });

  test('function names are case-insensitive and normalised', () => {
    expect(parseExpression('toJson(a)')).toMatchObject({ kind: 'call', callee: 'toJSON' });
    expect(parseExpression("FROMJSON('1')")).toMatchObject({ kind: 'call', callee: 'fromJSON' });
    expect(parseExpression('StartsWith(a, b)')).toMatchObject({ kind: 'call', callee: 'startsWith' });
  });

  test('call results can be indexed', () => {
    expect(p("fromJSON(vars.x).a['b']")).toBe('fromJSON(vars.x).a["b"]');
  });

  test('node ranges', () => {
    const e = parseExpression('a.bc == 1');
    expect(e).toMatchObject({ kind: 'binary', start: 0, end: 9, left: { kind: 'member', start: 0, end: 4 } });
  });
});

describe('syntax errors carry exact offsets', () => {
  test.each([
    ["'abc", 'unterminated string', 0],
    ["a == 'x", 'unterminated string', 5],
    ['a = b', "unexpected '=' (use '==' to compare)", 2],
    ['a & b', "unexpected '&' (use '&&')", 2],
    ['a | b', "unexpected '|' (use '||')", 2],
    ['', 'empty expression', 0],
    ['   ', 'empty expression', 3],
    ['a ==', 'unexpected end of expression', 4],
    ['(a', "expected ')' at end of expression", 2],
    ['a b', "unexpected 'b'", 2],
    ['a.', "expected a property name after '.' at end of expression", 2],
    ['a.*', 'object filters (.*) are not supported', 2],
    ['a[0', "expected ']' at end of expression", 3],
    ['a # b', "unexpected character '#'", 2],
    [')', "unexpected ')'", 0],
    ['join(a, )', "unexpected ')'", 8],
  ])('%j → %s at %d', (src, message, offset) => {
    const e = syntaxError(src);
    expect(e.message).toBe(message);
    expect(e.offset).toBe(offset);
  });

  test('unknown function, with a suggestion', () => {
    const e = syntaxError('  contain(a, b)');
    expect(e.offset).toBe(2);
    expect(e.message).toMatch(
      /^unknown function 'contain' \(did you mean 'contains'\?\) \(available: contains, /,
    );
  });

  test('unknown function with no close match', () => {
    expect(syntaxError('zzzzzz()').message).not.toContain('did you mean');
  });

  test('wrong arity', () => {
    expect(syntaxError("x == contains('a')")).toMatchObject({
      message: 'contains() takes 2 arguments, got 1',
      offset: 5,
    });
    expect(syntaxError('toJSON()')).toMatchObject({ message: 'toJSON() takes 1 argument, got 0', offset: 0 });
    expect(syntaxError('join(a, b, c)')).toMatchObject({ message: 'join() takes 1 to 2 arguments, got 3' });
    expect(syntaxError('format()')).toMatchObject({ message: 'format() takes at least 1 arguments, got 0' });
    expect(syntaxError('success(1)')).toMatchObject({ message: 'success() takes 0 arguments, got 1' });
  });

  test('ExpressionSyntaxError is an Error with a name', () => {
    const e = syntaxError('=');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ExpressionSyntaxError');
  });
});
