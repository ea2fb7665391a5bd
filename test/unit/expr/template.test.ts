import { describe, expect, test } from 'vitest';
import { Template, TemplateError, type TemplateOrigin } from '../../../src/expr/index.js';
import { UserError } from '../../../src/errors.js';

const ctx = {
  contexts: {
    matrix: { os: 'linux', n: 3, list: ['a', 'b'], obj: { k: 'v' } },
    vars: { name: 'World', empty: '' },
  },
};

/** An origin for a template that starts at line 4, column 10 of `wf.yaml` and spans one line. */
const origin: TemplateOrigin = {
  file: 'wf.yaml',
  locate: (offset) => ({ line: 4, col: 10 + offset }),
};

function parseError(source: string, o: TemplateOrigin | 'none' = origin): TemplateError {
  try {
    Template.parse(source, o === 'none' ? undefined : o);
  } catch (e) {
    if (e instanceof TemplateError) return e;
    throw e;
  }
  throw new Error(`expected a TemplateError for ${source}`);
}

describe('interpolation', () => {
  test('plain text stays as is', () => {
    const t = Template.parse('echo hello {{ not ours }}');
    expect(t.isLiteral).toBe(true);
    expect(t.evaluate(ctx)).toBe('echo hello {{ not ours }}');
  });

  test('text around an expression', () => {
    expect(Template.parse('Hello, ${{ vars.name }}!').evaluate(ctx)).toBe('Hello, World!');
  });

  test('several expressions, adjacent and spaced', () => {
    const t = Template.parse('${{ matrix.os }}${{ matrix.n }} - ${{vars.name}}');
    expect(t.evaluate(ctx)).toBe('linux3 - World');
    expect(t.parts.map((p) => p.kind)).toEqual(['expr', 'expr', 'text', 'expr']);
  });

  test('values are spliced as text: null empty, objects as JSON', () => {
    expect(Template.parse('[${{ matrix.missing }}]').evaluate(ctx)).toBe('[]');
    expect(Template.parse('${{ matrix.list }}').evaluate(ctx)).toBe('["a","b"]');
    expect(Template.parse('x=${{ matrix.obj }}').evaluate(ctx)).toBe('x={"k":"v"}');
    expect(Template.parse('${{ matrix.n == 3 }}').evaluate(ctx)).toBe('true');
  });

  test('$${{ is a literal ${{', () => {
    const t = Template.parse('echo $${{ matrix.os }} ${{ matrix.os }}');
    expect(t.evaluate(ctx)).toBe('echo ${{ matrix.os }} linux');
    expect(t.references().map((r) => r.path.join('.'))).toEqual(['matrix.os']);
  });

  test('only $${{ gives a literal template', () => {
    const t = Template.parse('$${{ x }}');
    expect(t.isLiteral).toBe(true);
    expect(t.evaluate(ctx)).toBe('${{ x }}');
  });

  test('}} inside a quoted string does not close the expression', () => {
    expect(Template.parse("${{ format('{0}}}', 'a') }}").evaluate(ctx)).toBe('a}');
    expect(Template.parse("<${{ 'it''s }}' }}>").evaluate(ctx)).toBe("<it's }}>");
  });

  test('a lone $ or {{ is text', () => {
    expect(Template.parse('cost: $5 {{x}} ${ y }').evaluate(ctx)).toBe('cost: $5 {{x}} ${ y }');
  });

  test('evaluateValue keeps the type of a single expression', () => {
    expect(Template.parse('${{ matrix.n }}').evaluateValue(ctx)).toBe(3);
    expect(Template.parse('${{ matrix.list }}').evaluateValue(ctx)).toEqual(['a', 'b']);
    expect(Template.parse('${{ matrix.n == 3 }}').evaluateValue(ctx)).toBe(true);
    expect(Template.parse(' ${{ matrix.n }}').evaluateValue(ctx)).toBe(' 3');
    expect(Template.parse('${{ matrix.n }}').isSingleExpression).toBe(true);
    expect(Template.parse('${{ matrix.n }}x').isSingleExpression).toBe(false);
  });

  test('literal(), toString() and toJSON() give the source', () => {
    const lit = Template.literal('${{ not parsed }}');
    expect(lit.isLiteral).toBe(true);
    expect(lit.evaluate(ctx)).toBe('${{ not parsed }}');
    expect(Template.literal('').parts).toEqual([]);
    const t = Template.parse('a ${{ b }}');
    expect(String(t)).toBe('a ${{ b }}');
    expect(JSON.stringify({ t })).toBe('{"t":"a ${{ b }}"}');
  });

  test('expression offsets point into the template source', () => {
    const t = Template.parse('ab${{ x }}');
    expect(t.parts[1]).toMatchObject({ kind: 'expr', offset: 5, source: ' x ' });
  });
});

describe('errors are positioned', () => {
  test('unclosed ${{ points at the opening', () => {
    const e = parseError('echo ${{ matrix.os');
    expect(e.reason).toBe("'${{' is not closed with '}}'");
    expect(e.position).toEqual({ line: 4, col: 15 });
    expect(e.file).toBe('wf.yaml');
    expect(e.message).toBe("wf.yaml:4:15: '${{' is not closed with '}}'");
  });

  test('a syntax error points inside the expression', () => {
    // 'echo ${{ ' is 9 characters; the '=' is 2 characters into 'a = b'.
    const e = parseError('echo ${{ a = b }}');
    expect(e.reason).toBe("invalid expression: unexpected '=' (use '==' to compare)");
    expect(e.position).toEqual({ line: 4, col: 10 + 11 });
  });

  test('unterminated string inside an expression', () => {
    const e = parseError("x ${{ 'abc }}");
    expect(e.reason).toBe("'${{' is not closed with '}}'");
    expect(e.position).toEqual({ line: 4, col: 12 });
  });

  test('unknown function and wrong arity', () => {
    expect(parseError('${{ nope(1) }}').position).toEqual({ line: 4, col: 14 });
    const arity = parseError('${{ vars.a }} ${{ contains(1) }}');
    expect(arity.reason).toBe('invalid expression: contains() takes 2 arguments, got 1');
    expect(arity.position).toEqual({ line: 4, col: 10 + 18 });
  });

  test('the second of several expressions is located correctly', () => {
    const e = parseError('${{ a }} and ${{ b c }}');
    expect(e.position).toEqual({ line: 4, col: 10 + 19 });
  });

  test('evaluation errors are positioned at the failing call', () => {
    const t = Template.parse("pre ${{ format('{2}', 1) }}", origin);
    let caught: unknown;
    try {
      t.evaluate(ctx);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(TemplateError);
    const e = caught as TemplateError;
    expect(e.reason).toBe('format(): no argument for {2}');
    expect(e.position).toEqual({ line: 4, col: 10 + 8 });
    expect(e.message).toBe('wf.yaml:4:18: format(): no argument for {2}');
  });

  test('without an origin the message has no position', () => {
    const e = parseError('${{ = }}', 'none');
    expect(e.file).toBeUndefined();
    expect(e.position).toBeUndefined();
    expect(e.message).toBe("invalid expression: unexpected '=' (use '==' to compare)");
  });

  test('TemplateError is a UserError (exit code 2)', () => {
    expect(parseError('${{')).toBeInstanceOf(UserError);
  });
});

describe('references()', () => {
  const refs = (src: string): Array<[string, number, number[]]> =>
    Template.parse(src)
      .references()
      .map((r) => [r.path.join('.'), r.offset, r.segmentOffsets]);

  test('member chains with segment offsets', () => {
    // 'x ${{ ' is 6 characters
    expect(refs('x ${{ steps.build.outputs.sha }}')).toEqual([['steps.build.outputs.sha', 6, [12, 18, 26]]]);
  });

  test('string indexes are part of the chain', () => {
    expect(refs("${{ steps['my-step'].output }}")).toEqual([['steps.my-step.output', 4, [10, 21]]]);
  });

  test('references inside calls, operators and several expressions, in source order', () => {
    expect(
      refs("${{ contains(matrix.os, 'x') && !vars.a }} ${{ format('{0}', item.id) }}").map((r) => r[0]),
    ).toEqual(['matrix.os', 'vars.a', 'item.id']);
  });

  test('a dynamic index stops the chain and its own references are collected', () => {
    expect(refs('${{ matrix[vars.key].x }}').map((r) => r[0])).toEqual(['matrix', 'vars.key']);
    expect(refs('${{ item.list[0].name }}').map((r) => r[0])).toEqual(['item.list']);
  });

  test('members of call results are not context references', () => {
    expect(refs("${{ fromJSON(vars.j).a.b }} ${{ toJSON('x') }}").map((r) => r[0])).toEqual(['vars.j']);
  });

  test('literals and escaped text have no references', () => {
    expect(refs("$${{ vars.a }} ${{ 'vars.b' }} ${{ 1 }}")).toEqual([]);
  });
});
