import { describe, expect, it } from 'vitest';
import { LineCounter, parseDocument, isScalar, type Scalar } from 'yaml';
import {
  exactScalarOffsets,
  formatPath,
  nodeAt,
  offsetAt,
  scalarOffsets,
  scalarOrigin,
} from '../../../src/workflow/yaml-locate.js';

function scalarOf(src: string, path: (string | number)[] = ['v']): { node: Scalar; lc: LineCounter } {
  const lc = new LineCounter();
  const doc = parseDocument(src, { lineCounter: lc, merge: true });
  expect(doc.errors).toEqual([]);
  const found = nodeAt(doc, path);
  if (!isScalar(found.node)) throw new Error('not a scalar');
  return { node: found.node, lc };
}

/** Every value character that is copied from the source must map onto that same source character. */
function expectFaithful(src: string): void {
  const { node } = scalarOf(src);
  const value = String(node.value);
  const offsets = scalarOffsets(src, node);
  // The decoder itself reproduced the value (no fallback).
  expect(exactScalarOffsets(src, node)).toEqual(offsets);
  expect(offsets).toHaveLength(value.length + 1);
  let copied = 0;
  for (let i = 0; i < value.length; i++) {
    const o = offsets[i]!;
    expect(o).toBeGreaterThanOrEqual(node.range![0]);
    expect(o).toBeLessThanOrEqual(node.range![2]);
    const c = value[i]!;
    if (c === src[o]) copied++;
    else
      expect(
        [' ', '\n', "'"].includes(c) || src[o] === '\\',
        `char ${i} ${JSON.stringify(c)} of ${JSON.stringify(value)}`,
      ).toBe(true);
  }
  // Offsets never go backwards.
  for (let i = 1; i < offsets.length; i++) expect(offsets[i]!).toBeGreaterThanOrEqual(offsets[i - 1]!);
  expect(copied).toBeGreaterThan(0);
}

/** Where `needle` (the n-th occurrence inside the value) is reported, as line:col. */
function locateIn(src: string, needle: string, path: (string | number)[] = ['v']): string {
  const { node, lc } = scalarOf(src, path);
  const value = String(node.value);
  const at = value.indexOf(needle);
  expect(at).toBeGreaterThanOrEqual(0);
  const p = scalarOrigin('f.yaml', src, lc, node).locate(at);
  return `${p.line}:${p.col}`;
}

describe('scalarOffsets', () => {
  const cases: Record<string, string> = {
    plain: 'v: echo ${{ vars.x }} done\n',
    'plain multi-line': 'v: first ${{ a.b }}\n  second   line\n\n  third ${{ c }}\n',
    'single quoted': "v: 'it''s ${{ vars.x }}'\n",
    'single quoted folded': "v: 'one\n  two  \n\n  three'\n",
    'double quoted': 'v: "tab\\there ${{ vars.x }} \\"q\\""\n',
    'double quoted escapes': 'v: "\\x41\\u00e9\\U0001F600 ${{ x }}"\n',
    'double quoted escaped break': 'v: "one \\\n   two ${{ x }}"\n',
    literal: 'v: |\n  line one ${{ vars.x }}\n    indented\n\n  last\n',
    'literal strip': 'v: |-\n  a ${{ x }}\n  b\n\n',
    'literal keep': 'v: |+\n  a ${{ x }}\n  b\n\n\nw: 1\n',
    'literal indicator': 'v: |2\n    lead ${{ x }}\n  b\n',
    folded: 'v: >\n  one ${{ x }}\n  two\n\n  three\n    more indented\n  back\n',
    'folded strip': 'v: >-\n  a\n  b ${{ x }}\n',
    'nested literal': 'steps:\n  - run: |\n      echo ${{ x }}\n      echo two\nv: |\n  z ${{ y }}\n',
    crlf: 'v: |\r\n  one ${{ x }}\r\n  two\r\n',
  };
  for (const [name, src] of Object.entries(cases)) {
    it(`maps ${name} scalars faithfully`, () => expectFaithful(src));
  }
});

describe('scalarOrigin', () => {
  it('plain', () => expect(locateIn('v: echo ${{ nope }}\n', 'nope')).toBe('1:13'));
  it('plain continuation line', () =>
    expect(locateIn('v: echo a\n   and ${{ nope }}\n', 'nope')).toBe('2:12'));
  it('single quoted with escaped quote before', () =>
    expect(locateIn("v: 'it''s ${{ nope }}'\n", 'nope')).toBe('1:15'));
  it('double quoted with escapes before', () =>
    expect(locateIn('v: "a\\tb\\\\c ${{ nope }}"\n', 'nope')).toBe('1:17'));
  it('double quoted \\u escape before', () =>
    expect(locateIn('v: "\\u00e9 ${{ nope }}"\n', 'nope')).toBe('1:16'));
  it('literal block', () => expect(locateIn('v: |\n  one\n  two ${{ nope }}\n', 'nope')).toBe('3:11'));
  it('literal block nested in a sequence', () =>
    expect(
      locateIn('steps:\n  - run: |\n      echo\n        x ${{ nope }}\n', 'nope', ['steps', 0, 'run']),
    ).toBe('4:15'));
  it('folded block', () =>
    expect(locateIn('v: >\n  one\n  two\n\n  three ${{ nope }}\n', 'nope')).toBe('5:13'));
  it('folded block with more-indented lines', () =>
    expect(locateIn('v: >-\n  a\n    b\n  c ${{ nope }}\n', 'nope')).toBe('4:9'));
  it('clamps offsets past the end', () => {
    const { node, lc } = scalarOf('v: abc\n');
    expect(scalarOrigin('f', 'v: abc\n', lc, node).locate(99)).toEqual({ line: 1, col: 7 });
  });
});

describe('fallback', () => {
  it('anchors on ${{ when the decoder cannot reproduce the value', () => {
    const src = 'v: "${{ a }} x"\n';
    const { node, lc } = scalarOf(src);
    node.value = 'PREFIX ${{ a }} x'; // pretend the decoder disagrees
    expect(exactScalarOffsets(src, node)).toBeUndefined();
    const p = scalarOrigin('f', src, lc, node).locate('PREFIX ${{ '.length);
    expect(p).toEqual({ line: 1, col: 9 });
  });
});

describe('nodeAt / offsetAt', () => {
  const src = [
    'defaults: &d',
    '  timeout: 5m',
    '  env: { A: "1" }',
    'steps:',
    '  - <<: *d',
    '    run: echo',
    '  - run: x',
    'empty:',
    '',
  ].join('\n');
  const lc = new LineCounter();
  const doc = parseDocument(src, { lineCounter: lc, merge: true });
  const pos = (o: number): string => {
    const p = lc.linePos(o);
    return `${p.line}:${p.col}`;
  };

  it('finds sequence items and map values', () => {
    expect(pos(offsetAt(doc, ['steps', 1, 'run']))).toBe('7:10');
    expect(pos(offsetAt(doc, ['steps', 1, 'run'], 'key'))).toBe('7:5');
  });
  it('follows merge keys to the merged source', () => {
    const found = nodeAt(doc, ['steps', 0, 'timeout']);
    expect(found.exact).toBe(true);
    expect(pos(offsetAt(doc, ['steps', 0, 'timeout']))).toBe('2:12');
    expect(pos(offsetAt(doc, ['steps', 0, 'env', 'A']))).toBe('3:13');
  });
  it('walks up to the nearest existing node', () => {
    expect(nodeAt(doc, ['steps', 5]).exact).toBe(false);
    // `steps` is a block sequence: its position is its key's.
    expect(pos(offsetAt(doc, ['steps', 5, 'run']))).toBe('4:1');
    expect(pos(offsetAt(doc, ['steps', 1, 'nope']))).toBe('7:5');
  });
  it('points at the key of an empty value', () => {
    expect(pos(offsetAt(doc, ['empty']))).toBe('8:1');
  });
});

describe('formatPath', () => {
  it('formats keys, indexes and odd keys', () => {
    expect(formatPath([])).toBe('');
    expect(formatPath(['steps', 2, 'timeout'])).toBe('steps[2].timeout');
    expect(formatPath(['sandbox', 'env', 'A.B'])).toBe('sandbox.env["A.B"]');
    expect(formatPath(['max-parallel'])).toBe('max-parallel');
  });
});

describe('scalarOffsets against the yaml package itself', () => {
  // Deterministic pseudo-random strings with spaces, quotes, escapes, unicode and ${{ }}.
  let seed = 42;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pieces = [
    'word',
    ' ',
    '  ',
    '${{ vars.x }}',
    "'",
    '"',
    '\\',
    '\t',
    'é',
    '😀',
    ':',
    '#',
    '-',
    '\n',
    '\n\n',
    'x',
  ];
  const sample = (): string => {
    let s = 'a';
    for (let i = 0, n = 3 + rand(25); i < n; i++) s += pieces[rand(pieces.length)]!;
    return `${s}z`;
  };
  const styles = ['PLAIN', 'QUOTE_DOUBLE', 'QUOTE_SINGLE', 'BLOCK_LITERAL', 'BLOCK_FOLDED'] as const;

  it('reproduces 500 values written in every scalar style and line width', async () => {
    const { stringify } = await import('yaml');
    let checked = 0;
    const types = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const value = sample();
      for (const style of styles) {
        const src = stringify(
          { steps: [{ run: value }] },
          { defaultStringType: style, lineWidth: 20 + rand(40), minContentWidth: 5 },
        );
        const lc = new LineCounter();
        const doc = parseDocument(src, { lineCounter: lc });
        const node = nodeAt(doc, ['steps', 0, 'run']).node;
        if (!isScalar(node) || node.value !== value) continue; // the writer chose another representation
        const offsets = exactScalarOffsets(src, node);
        expect(offsets, `${style} ${JSON.stringify(src)}`).toBeDefined();
        // Every `${{` maps onto a `${{` in the source.
        for (let at = value.indexOf('${{'); at >= 0; at = value.indexOf('${{', at + 1)) {
          expect(src.slice(offsets![at], offsets![at]! + 3)).toBe('${{');
        }
        checked++;
        types.add(node.type ?? '');
      }
    }
    expect(checked).toBeGreaterThan(300);
    expect([...types].sort()).toEqual([...styles].sort());
  });
});
