import { describe, expect, test } from 'vitest';
import { ANY, Template, checkTemplate, objectShape, type Shape } from '../../../src/expr/index.js';

const root: Shape = objectShape({
  vars: objectShape({ suite: ANY, version: ANY }),
  matrix: objectShape({ os: ANY, node: ANY }),
  item: ANY,
  repeat: objectShape({ index: ANY, total: ANY }),
  steps: objectShape(
    {
      build: objectShape({ output: ANY, outputs: objectShape({}, { open: true }) }),
    },
    { missing: (name) => `step '${name}' does not exist or runs later` },
  ),
  job: objectShape({ id: ANY }),
});

const check = (src: string, shape: Shape = root): Array<[number, string]> =>
  checkTemplate(Template.parse(src), shape).map((p) => [p.offset, p.message]);

describe('checkTemplate', () => {
  test('known references produce no problems', () => {
    expect(
      check(
        "${{ vars.suite }} ${{ matrix.os }} ${{ item.any.thing[0] }} ${{ steps.build.outputs.whatever }} ${{ steps['build'].output }}",
      ),
    ).toEqual([]);
  });

  test('unknown context with a suggestion and the list of contexts', () => {
    // 'echo ${{ ' is 9 characters
    expect(check('echo ${{ matrx.os }}')).toEqual([
      [
        9,
        "unknown context 'matrx' (did you mean 'matrix'?) (available: vars, matrix, item, repeat, steps, job)",
      ],
    ]);
  });

  test('unknown context without a close match', () => {
    expect(check('${{ github.sha }}')).toEqual([
      [4, "unknown context 'github' (available: vars, matrix, item, repeat, steps, job)"],
    ]);
  });

  test('unknown property points at the property, with suggestion and known keys', () => {
    // '${{ vars.' is 9 characters
    expect(check('${{ vars.suit }}')).toEqual([
      [9, "'vars' has no property 'suit' (did you mean 'suite'?) (known: suite, version)"],
    ]);
    expect(check('${{ repeat.count }}')).toEqual([
      [11, "'repeat' has no property 'count' (known: index, total)"],
    ]);
  });

  test('nested unknown property names the full parent path', () => {
    expect(check('${{ steps.build.outptu }}')).toEqual([
      [16, "'steps.build' has no property 'outptu' (did you mean 'output'?) (known: output, outputs)"],
    ]);
  });

  test('a custom missing() message wins', () => {
    expect(check('${{ steps.test.output }}')).toEqual([[10, "step 'test' does not exist or runs later"]]);
  });

  test('an empty object shape says so', () => {
    expect(check('${{ x.y }}', objectShape({ x: objectShape({}) }))).toEqual([
      [6, "'x' has no property 'y'"],
    ]);
    expect(check('${{ x }}', objectShape({}))).toEqual([[4, "unknown context 'x' (available: none)"]]);
  });

  test('open shapes and any accept everything below them', () => {
    expect(check('${{ steps.build.outputs.a.b.c }}')).toEqual([]);
    expect(check('${{ item.a.b }}')).toEqual([]);
  });

  test('all problems are reported, in source order, only the first per reference', () => {
    expect(
      check('${{ vars.nope.deeper }} ${{ matrx }} ${{ matrix.os && job.name }}').map((p) => p[0]),
    ).toEqual([9, 28, 58]);
  });

  test('references after a dynamic index are not checked; the index is', () => {
    expect(check('${{ matrix[vars.suite].anything }}')).toEqual([]);
    expect(check('${{ matrix[vars.nope] }}')).toEqual([
      [16, "'vars' has no property 'nope' (known: suite, version)"],
    ]);
  });

  test('function arguments are checked', () => {
    expect(check("${{ contains(matrix.arch, 'x') }}")).toEqual([
      [20, "'matrix' has no property 'arch' (known: os, node)"],
    ]);
  });

  test('inherited names such as constructor are not known properties', () => {
    expect(check('${{ vars.constructor }}')).toEqual([
      [9, "'vars' has no property 'constructor' (known: suite, version)"],
    ]);
  });
});
