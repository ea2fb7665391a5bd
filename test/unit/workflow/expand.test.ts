import { describe, expect, test } from 'vitest';
import type { ExprValue } from '../../../src/expr/evaluate.js';
import {
  describeJobValues,
  expandMatrix,
  expandWorkflow,
  formatJobId,
  itemLabel,
  type MatrixCombination,
} from '../../../src/workflow/expand.js';
import type { MatrixSpec } from '../../../src/workflow/types.js';
import { makeWorkflow } from '../../helpers/make-workflow.js';

type Row = Record<string, ExprValue>;

function matrix(axes: Record<string, ExprValue[]>, include: Row[] = [], exclude: Row[] = []): MatrixSpec {
  return { axes: Object.entries(axes), include, exclude };
}

/** Combinations as plain objects, keeping key order visible through `Object.entries`. */
function rows(spec: MatrixSpec): Row[] {
  const r = expandMatrix(spec);
  expect(r.problems).toEqual([]);
  return r.combinations.map((c: MatrixCombination) => Object.fromEntries(c));
}

function keyOrders(spec: MatrixSpec): string[][] {
  return expandMatrix(spec).combinations.map((c) => c.map(([k]) => k));
}

describe('matrix: cartesian product', () => {
  test('first axis outermost, in value order (GitHub docs example)', () => {
    expect(rows(matrix({ version: [10, 12, 14], os: ['ubuntu-latest', 'windows-latest'] }))).toEqual([
      { version: 10, os: 'ubuntu-latest' },
      { version: 10, os: 'windows-latest' },
      { version: 12, os: 'ubuntu-latest' },
      { version: 12, os: 'windows-latest' },
      { version: 14, os: 'ubuntu-latest' },
      { version: 14, os: 'windows-latest' },
    ]);
  });

  test('three axes and a single axis', () => {
    expect(rows(matrix({ a: [1, 2], b: ['x'], c: [true, false] }))).toEqual([
      { a: 1, b: 'x', c: true },
      { a: 1, b: 'x', c: false },
      { a: 2, b: 'x', c: true },
      { a: 2, b: 'x', c: false },
    ]);
    expect(rows(matrix({ only: ['p', 'q'] }))).toEqual([{ only: 'p' }, { only: 'q' }]);
  });

  test('object values are kept whole', () => {
    expect(rows(matrix({ cfg: [{ node: 20, npm: 10 }] }))).toEqual([{ cfg: { node: 20, npm: 10 } }]);
  });

  test('integer-like axis names keep their axis order', () => {
    const spec: MatrixSpec = {
      axes: [
        ['b', [1]],
        ['2', [1]],
        ['a', [1]],
      ],
      include: [],
      exclude: [],
    };
    expect(keyOrders(spec)).toEqual([['b', '2', 'a']]);
  });
});

describe('matrix: exclude', () => {
  test('GitHub docs example: full and partial entries', () => {
    const spec = matrix(
      {
        os: ['macos-latest', 'windows-latest'],
        version: [12, 14, 16],
        environment: ['staging', 'production'],
      },
      [],
      [
        { os: 'macos-latest', version: 12, environment: 'production' },
        { os: 'windows-latest', version: 16 },
      ],
    );
    const r = rows(spec);
    expect(r).toHaveLength(9);
    expect(r).not.toContainEqual({ os: 'macos-latest', version: 12, environment: 'production' });
    expect(r.filter((x) => x.os === 'windows-latest' && x.version === 16)).toEqual([]);
    expect(r).toContainEqual({ os: 'macos-latest', version: 12, environment: 'staging' });
  });

  test('matches with loose equality: case-insensitive strings, numbers vs strings', () => {
    expect(rows(matrix({ os: ['Linux', 'mac'], v: [1, 2] }, [], [{ os: 'LINUX', v: '1' }]))).toEqual([
      { os: 'Linux', v: 2 },
      { os: 'mac', v: 1 },
      { os: 'mac', v: 2 },
    ]);
  });

  test('object values match leaf by leaf (partial objects allowed)', () => {
    const spec = matrix(
      {
        cfg: [
          { node: 18, npm: 9 },
          { node: 20, npm: 10 },
        ],
      },
      [],
      [{ cfg: { node: 18 } }],
    );
    expect(rows(spec)).toEqual([{ cfg: { node: 20, npm: 10 } }]);
  });

  test('exclude runs before include: an include can bring an excluded combination back', () => {
    const spec = matrix({ a: [1, 2] }, [{ a: 2 }], [{ a: 2 }]);
    expect(rows(spec)).toEqual([{ a: 1 }, { a: 2 }]);
  });

  test('unknown keys and empty entries are problems', () => {
    const r = expandMatrix(matrix({ os: ['a'], node: [1] }, [], [{ nod: 1 }, {}]));
    expect(r.combinations).toEqual([]);
    expect(r.problems).toEqual([
      {
        path: 'strategy.matrix.exclude[0].nod',
        message: "'nod' is not a matrix axis (did you mean 'node'?) (axes: os, node)",
      },
      { path: 'strategy.matrix.exclude[1]', message: 'exclude entry is empty' },
    ]);
  });
});

describe('matrix: include (GitHub Actions semantics)', () => {
  test('the documented fruit/animal example, exactly', () => {
    const spec = matrix({ fruit: ['apple', 'pear'], animal: ['cat', 'dog'] }, [
      { color: 'green' },
      { color: 'pink', animal: 'cat' },
      { fruit: 'apple', shape: 'circle' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ]);
    expect(rows(spec)).toEqual([
      { fruit: 'apple', animal: 'cat', color: 'pink', shape: 'circle' },
      { fruit: 'apple', animal: 'dog', color: 'green', shape: 'circle' },
      { fruit: 'pear', animal: 'cat', color: 'pink' },
      { fruit: 'pear', animal: 'dog', color: 'green' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ]);
    // ids list axis values first, then include-added keys in the order they were added
    expect(keyOrders(spec)[0]).toEqual(['fruit', 'animal', 'color', 'shape']);
  });

  test('the documented os/node example: extend one combination', () => {
    const spec = matrix({ os: ['windows-latest', 'ubuntu-latest'], node: [14, 16] }, [
      { os: 'windows-latest', node: 16, npm: 6 },
    ]);
    expect(rows(spec)).toEqual([
      { os: 'windows-latest', node: 14 },
      { os: 'windows-latest', node: 16, npm: 6 },
      { os: 'ubuntu-latest', node: 14 },
      { os: 'ubuntu-latest', node: 16 },
    ]);
  });

  test('the documented include-only example', () => {
    const spec: MatrixSpec = {
      axes: [],
      include: [
        { site: 'production', datacenter: 'site-a' },
        { site: 'staging', datacenter: 'site-b' },
      ],
      exclude: [],
    };
    expect(rows(spec)).toEqual([
      { site: 'production', datacenter: 'site-a' },
      { site: 'staging', datacenter: 'site-b' },
    ]);
  });

  test('the runner example: unmatched axis values become new combinations', () => {
    const spec = matrix({ arch: ['x64', 'x86'], os: ['linux', 'windows'] }, [
      { arch: 'x64' },
      { os: 'macos' },
    ]);
    expect(rows(spec)).toEqual([
      { arch: 'x64', os: 'linux' },
      { arch: 'x64', os: 'windows' },
      { arch: 'x86', os: 'linux' },
      { arch: 'x86', os: 'windows' },
      { os: 'macos' },
    ]);
  });

  test('an original value is never overwritten: a conflicting entry becomes new', () => {
    const spec = matrix({ os: ['linux'] }, [{ os: 'mac', extra: 1 }]);
    expect(rows(spec)).toEqual([{ os: 'linux' }, { os: 'mac', extra: 1 }]);
  });

  test('a later include overwrites what an earlier include added', () => {
    const spec = matrix({ os: ['linux', 'mac'] }, [
      { color: 'green' },
      { color: 'red', os: 'mac' },
      { color: 'blue', os: 'LINUX' },
    ]);
    expect(rows(spec)).toEqual([
      { os: 'linux', color: 'blue' },
      { os: 'mac', color: 'red' },
    ]);
  });

  test('new combinations are not extended by later includes', () => {
    const spec = matrix({ os: ['linux'] }, [{ os: 'mac' }, { os: 'mac', tag: 'x' }]);
    expect(rows(spec)).toEqual([{ os: 'linux' }, { os: 'mac' }, { os: 'mac', tag: 'x' }]);
  });

  test('a new combination lists axis keys in axis order, then the others', () => {
    const spec = matrix({ a: [1], b: [1] }, [{ z: 0, b: 2, a: 3 }]);
    expect(keyOrders(spec)[1]).toEqual(['a', 'b', 'z']);
  });

  test('an include key named like an Object builtin is plain data', () => {
    const spec = matrix({ os: ['linux'] }, [{ constructor: 'x' }]);
    expect(rows(spec)).toEqual([{ os: 'linux', constructor: 'x' }]);
  });

  test('empty include entries and empty axes are problems', () => {
    expect(expandMatrix(matrix({ a: [1] }, [{}])).problems).toEqual([
      { path: 'strategy.matrix.include[0]', message: 'include entry is empty' },
    ]);
    expect(expandMatrix(matrix({ a: [] })).problems).toEqual([
      { path: 'strategy.matrix.a', message: "axis 'a' has no values" },
    ]);
  });

  test('an oversized matrix is refused without being built', () => {
    const big = Array.from({ length: 1000 }, (_, i) => i);
    const r = expandMatrix(matrix({ a: big, b: big, c: big }), 100_000);
    expect(r.combinations).toEqual([]);
    expect(r.problems[0]?.message).toBe(
      'the matrix has 1000000000 combinations, more than the limit of 100000',
    );
  });
});

describe('job ids', () => {
  test('format: name, [k=v,…], #n only when repeated', () => {
    expect(formatJobId('wf', [])).toBe('wf');
    expect(formatJobId('wf', [['task', 'flaky-test']], { index: 2, total: 3 })).toBe('wf[task=flaky-test]#2');
    expect(
      formatJobId(
        'wf',
        [
          ['a', 1],
          ['b', true],
          ['c', null],
          ['d', { x: [1] }],
        ],
        { index: 1, total: 1 },
      ),
    ).toBe('wf[a=1,b=true,c=null,d={"x":[1]}]');
    expect(formatJobId('wf', [['s', 'two\nlines']])).toBe('wf[s="two\\nlines"]');
  });

  test('dataset items are named by the first present id-like key, else their line', () => {
    expect(itemLabel({ name: 'n', id: 'django-123' }, 4)).toEqual(['id', 'django-123']);
    expect(itemLabel({ instance_id: 'astropy-1', name: 'n' }, 4)).toEqual(['instance_id', 'astropy-1']);
    expect(itemLabel({ task_id: 7 }, 4)).toEqual(['task_id', 7]);
    expect(itemLabel({ key: 'k' }, 4)).toEqual(['key', 'k']);
    expect(itemLabel({ id: '', name: { nested: 1 }, key: null, prompt: 'x' }, 7)).toEqual(['line', 7]);
  });
});

describe('expandWorkflow', () => {
  test('no strategy: one job named after the workflow', () => {
    const { jobs, problems } = expandWorkflow(makeWorkflow('hello'));
    expect(problems).toEqual([]);
    expect(jobs.map((j) => j.id)).toEqual(['hello']);
    expect(jobs[0]).not.toHaveProperty('matrix');
    expect(jobs[0]).not.toHaveProperty('repeat');
  });

  test('repeat: each combination repeated, repeat innermost', () => {
    const wf = makeWorkflow('r', { strategy: { matrix: matrix({ t: ['a', 'b'] }), repeat: 2 } });
    const { jobs } = expandWorkflow(wf);
    expect(jobs.map((j) => j.id)).toEqual(['r[t=a]#1', 'r[t=a]#2', 'r[t=b]#1', 'r[t=b]#2']);
    expect(jobs[1]).toMatchObject({ matrix: { t: 'a' }, repeat: { index: 2, total: 2 } });
  });

  test('dataset: one job per item with the item and its line', () => {
    const wf = makeWorkflow('d', {
      strategy: {
        repeat: 1,
        dataset: { file: '/tmp/wf/tasks.jsonl', items: [{ id: 'a', q: 1 }, { q: 2 }], lines: [1, 3] },
      },
    });
    const { jobs } = expandWorkflow(wf);
    expect(jobs.map((j) => j.id)).toEqual(['d[id=a]', 'd[line=3]']);
    expect(jobs[1]).toMatchObject({ item: { q: 2 }, itemLine: 3 });
  });

  test('dataset lines default to index + 1', () => {
    const wf = makeWorkflow('d', { strategy: { repeat: 1, dataset: { file: '/x.jsonl', items: [{}, {}] } } });
    expect(expandWorkflow(wf).jobs.map((j) => j.id)).toEqual(['d[line=1]', 'd[line=2]']);
  });

  test('matrix × dataset × repeat: cartesian, matrix outermost', () => {
    const wf = makeWorkflow('m', {
      strategy: {
        matrix: matrix({ model: ['x', 'y'] }),
        dataset: { file: '/x.jsonl', items: [{ id: 1 }, { id: 2 }] },
        repeat: 2,
      },
    });
    const { jobs } = expandWorkflow(wf);
    expect(jobs.map((j) => j.id)).toEqual([
      'm[model=x,id=1]#1',
      'm[model=x,id=1]#2',
      'm[model=x,id=2]#1',
      'm[model=x,id=2]#2',
      'm[model=y,id=1]#1',
      'm[model=y,id=1]#2',
      'm[model=y,id=2]#1',
      'm[model=y,id=2]#2',
    ]);
    expect(describeJobValues(jobs[7]!)).toBe('model=y id=2 repeat=2/2');
  });

  test('ids are deterministic: expanding twice gives the same ids in the same order', () => {
    const wf = makeWorkflow('det', {
      strategy: { matrix: matrix({ a: [1, 2], b: ['x', 'y'] }, [{ c: 1 }]), repeat: 3 },
    });
    expect(expandWorkflow(wf).jobs.map((j) => j.id)).toEqual(expandWorkflow(wf).jobs.map((j) => j.id));
  });

  test('a matrix that excludes everything, an empty dataset and too many jobs are problems', () => {
    const all = makeWorkflow('e', { strategy: { matrix: matrix({ a: [1] }, [], [{ a: 1 }]), repeat: 1 } });
    expect(expandWorkflow(all).problems).toEqual([
      { path: 'strategy.matrix', message: 'every matrix combination is excluded: the workflow has no jobs' },
    ]);
    const empty = makeWorkflow('e', { strategy: { dataset: { file: '/x.jsonl', items: [] }, repeat: 1 } });
    expect(expandWorkflow(empty).problems).toEqual([
      { path: 'strategy.dataset', message: 'the dataset has no items: the workflow has no jobs' },
    ]);
    const many = makeWorkflow('e', { strategy: { matrix: matrix({ a: [1, 2, 3] }), repeat: 50 } });
    expect(expandWorkflow(many, 100).problems).toEqual([
      { path: 'strategy', message: 'the workflow expands to 150 jobs, more than the limit of 100' },
    ]);
  });
});
