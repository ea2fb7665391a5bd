import { describe, expect, test } from 'vitest';
import {
  evaluate,
  parseExpression,
  stringify,
  truthy,
  ExpressionSyntaxError,
  type ExprContext,
  type ExprValue,
} from '../../../src/expr/index.js';

const contexts: Record<string, ExprValue> = {
  matrix: { os: 'Ubuntu-Latest', node: 20, flags: ['a', 'B'], nested: { deep: { x: 1 } } },
  vars: { suite: 'unit', empty: '', zero: 0, key: 'os', json: '{"a":[1,2],"b":"c"}' },
  item: { id: 'django-123', tags: ['x', 'y'], n: null },
  repeat: { index: 2, total: 3 },
};

function ev(src: string, ctx: Partial<ExprContext> = {}): ExprValue {
  return evaluate(parseExpression(src), { contexts, ...ctx });
}

function evalError(src: string): ExpressionSyntaxError {
  try {
    ev(src);
  } catch (e) {
    if (e instanceof ExpressionSyntaxError) return e;
    throw e;
  }
  throw new Error(`expected an evaluation error for ${src}`);
}

describe('property access', () => {
  test('contexts, members and indexes', () => {
    expect(ev('matrix.os')).toBe('Ubuntu-Latest');
    expect(ev("matrix['node']")).toBe(20);
    expect(ev('matrix[vars.key]')).toBe('Ubuntu-Latest');
    expect(ev('matrix.flags[1]')).toBe('B');
    expect(ev("matrix.flags['1']")).toBe('B');
    expect(ev('matrix.nested.deep.x')).toBe(1);
    expect(ev('repeat.index')).toBe(2);
  });

  test('missing things evaluate to null, never throw', () => {
    expect(ev('matrix.missing')).toBeNull();
    expect(ev('matrix.missing.deeper')).toBeNull();
    expect(ev('nosuchcontext.x')).toBeNull();
    expect(ev('matrix.flags[5]')).toBeNull();
    expect(ev('matrix.flags[0.5]')).toBeNull();
    expect(ev('matrix.os.length')).toBeNull();
    expect(ev('item.n')).toBeNull();
  });

  test('inherited object properties are not visible', () => {
    expect(ev('matrix.constructor')).toBeNull();
    expect(ev("matrix['__proto__']")).toBeNull();
    expect(ev('matrix.toString')).toBeNull();
  });
});

describe('GitHub Actions loose equality', () => {
  test.each([
    ["'abc' == 'ABC'", true],
    ["matrix.os == 'ubuntu-latest'", true],
    ["'a' != 'A'", false],
    ["1 == '1'", true],
    ["'1.0' == 1", true],
    ["' 2 ' == 2", true],
    ["'0x10' == 16", true],
    ["'' == 0", true],
    ["'abc' == 0", false],
    ['true == 1', true],
    ['false == 0', true],
    ["true == 'true'", false],
    ["true == '1'", true],
    ['null == null', true],
    ['null == 0', true],
    ["null == ''", true],
    ['null == false', true],
    ['null == 1', false],
    ["null == 'x'", false],
    ['matrix.flags == matrix.flags', true],
    ["matrix.flags == 'a,B'", false],
    ['matrix.nested == null', false],
    ['matrix.nested == 0', false],
    ["fromJSON('[1]') == fromJSON('[1]')", false],
    ["'NaN' == 'NaN'", true],
    ["fromJSON('1') != 1", false],
  ])('%s → %s', (src, expected) => {
    expect(ev(src)).toBe(expected);
  });
});

describe('comparison', () => {
  test.each([
    ['1 < 2', true],
    ['2 <= 2', true],
    ['3 > 2', true],
    ['1 >= 2', false],
    ["'10' > 9", true],
    ["'b' > 'A'", true],
    ["'B' > 'a'", true],
    // OrdinalIgnoreCase compares upper-cased text: 'A' (0x41) sorts before '_' (0x5F).
    ["'abc' < '_'", true],
    ["'abc' < 1", false],
    ["'abc' > 1", false],
    ['null < 1', true],
    ['true > false', true],
    ['matrix.flags > 0', false],
    ['matrix.flags < 0', false],
  ])('%s → %s', (src, expected) => {
    expect(ev(src)).toBe(expected);
  });
});

describe('logic and truthiness', () => {
  test.each<[ExprValue, boolean]>([
    [false, false],
    [0, false],
    [-0, false],
    ['', false],
    [null, false],
    [NaN, false],
    [true, true],
    [1, true],
    [-1, true],
    ['0', true],
    ['false', true],
    [[], true],
    [{}, true],
  ])('truthy(%j) = %s', (v, expected) => {
    expect(truthy(v)).toBe(expected);
  });

  test('&& and || return operands, like JavaScript and GitHub', () => {
    expect(ev("vars.empty || 'default'")).toBe('default');
    expect(ev("vars.suite || 'default'")).toBe('unit');
    expect(ev("vars.suite && 'yes'")).toBe('yes');
    expect(ev("vars.zero && 'yes'")).toBe(0);
    expect(ev('null || null')).toBeNull();
  });

  test('&& and || short-circuit (the other side is not evaluated)', () => {
    // format() with a missing argument throws when evaluated.
    expect(ev("false && format('{1}')")).toBe(false);
    expect(ev("true || format('{1}')")).toBe(true);
  });

  test('! negates truthiness', () => {
    expect(ev('!vars.empty')).toBe(true);
    expect(ev('!vars.suite')).toBe(false);
    expect(ev('!!matrix.flags')).toBe(true);
    expect(ev('!0 == 1')).toBe(true);
  });

  test('precedence is observable in results', () => {
    // (1 < 2) == true, not 1 < (2 == true)
    expect(ev('1 < 2 == true')).toBe(true);
    // (!1) == 0 → false == 0 → true
    expect(ev('!1 == 0')).toBe(true);
    expect(ev('true || false && false')).toBe(true);
    expect(ev('(true || false) && false')).toBe(false);
  });
});

describe('functions', () => {
  test('contains on strings is case-insensitive', () => {
    expect(ev("contains('Hello World', 'WORLD')")).toBe(true);
    expect(ev("contains(matrix.os, 'ubuntu')")).toBe(true);
    expect(ev("contains('abc', 'd')")).toBe(false);
    expect(ev('contains(repeat.index, 2)')).toBe(true);
  });

  test('contains on arrays uses loose equality per element', () => {
    expect(ev("contains(matrix.flags, 'b')")).toBe(true);
    expect(ev("contains(matrix.flags, 'c')")).toBe(false);
    expect(ev("contains(fromJSON('[1, 2]'), '2')")).toBe(true);
    expect(ev("contains(item.tags, 'x,y')")).toBe(false);
  });

  test('startsWith and endsWith are case-insensitive', () => {
    expect(ev("startsWith(matrix.os, 'UBUNTU')")).toBe(true);
    expect(ev("startsWith(matrix.os, 'latest')")).toBe(false);
    expect(ev("endsWith(matrix.os, 'LATEST')")).toBe(true);
    expect(ev("endsWith('abc', '')")).toBe(true);
  });

  test('format with positional arguments and brace escapes', () => {
    expect(ev("format('Hello {0} {1}!', 'big', 'world')")).toBe('Hello big world!');
    expect(ev("format('{0}{0}-{1}', 'a', 2)")).toBe('aa-2');
    expect(ev("format('{{0}} is {0}', 'x')")).toBe('{0} is x');
    expect(ev("format('}}{{')")).toBe('}{');
    expect(ev("format('{0}', matrix.flags)")).toBe('["a","B"]');
    expect(ev("format('{0}|{1}', null, true)")).toBe('|true');
  });

  test('format with a missing argument is an error at the call', () => {
    const e = evalError("'x' == format('{0} {1}', 'a')");
    expect(e.message).toBe('format(): no argument for {1}');
    expect(e.offset).toBe(7);
  });

  test('toJSON pretty-prints with two spaces', () => {
    expect(ev('toJSON(matrix.flags)')).toBe('[\n  "a",\n  "B"\n]');
    expect(ev("toJSON('s')")).toBe('"s"');
    expect(ev('toJSON(null)')).toBe('null');
    expect(ev('toJSON(1)')).toBe('1');
  });

  test('fromJSON parses JSON values', () => {
    expect(ev('fromJSON(vars.json).a[1]')).toBe(2);
    expect(ev('fromJSON(vars.json).b')).toBe('c');
    expect(ev("fromJSON('true')")).toBe(true);
    expect(ev("fromJSON('null')")).toBeNull();
    expect(ev('fromJSON(toJSON(matrix.nested))')).toEqual({ deep: { x: 1 } });
  });

  test('fromJSON of invalid JSON is an error at the call', () => {
    const e = evalError("  fromJSON('{nope')");
    expect(e.message).toBe('fromJSON(): not valid JSON: {nope');
    expect(e.offset).toBe(2);
  });

  test('join with the default and a custom separator', () => {
    expect(ev('join(matrix.flags)')).toBe('a,B');
    expect(ev("join(matrix.flags, ' + ')")).toBe('a + B');
    expect(ev("join('solo', '-')")).toBe('solo');
    expect(ev("join(fromJSON('[1, null, true]'))")).toBe('1,,true');
  });

  test('status functions default to a healthy job without status', () => {
    expect(ev('success()')).toBe(true);
    expect(ev('failure()')).toBe(false);
    expect(ev('cancelled()')).toBe(false);
    expect(ev('always()')).toBe(true);
  });

  test('status functions read the provided status', () => {
    const status = { success: () => false, failure: () => true, cancelled: () => true };
    expect(ev('success()', { status })).toBe(false);
    expect(ev('failure()', { status })).toBe(true);
    expect(ev('cancelled()', { status })).toBe(true);
    expect(ev('always()', { status })).toBe(true);
    expect(ev("failure() && contains(matrix.os, 'ubuntu')", { status })).toBe(true);
  });

  test('case-insensitive function names evaluate like the canonical ones', () => {
    expect(ev('toJson(repeat.total)')).toBe('3');
    expect(ev("fromJson('[3]')[0]")).toBe(3);
  });
});

describe('stringify', () => {
  test.each<[ExprValue, string]>([
    [null, ''],
    ['s', 's'],
    [1.5, '1.5'],
    [true, 'true'],
    [[1, 'a'], '[1,"a"]'],
    [{ a: 1 }, '{"a":1}'],
  ])('stringify(%j) = %j', (v, s) => {
    expect(stringify(v)).toBe(s);
  });
});
