/**
 * Expansion of one workflow's `strategy` into jobs (product.md §5):
 * matrix (cartesian product, then `exclude`, then `include` with GitHub
 * Actions semantics) × dataset items × repeat, in that nesting order, each
 * with a deterministic id.
 */
import { looseEquals, stringify, type ExprValue } from '../expr/evaluate.js';
import { didYouMeanSuffix } from '../util/did-you-mean.js';
import type { MatrixSpec, Workflow } from './types.js';

/** Above this many jobs from one workflow, expansion refuses (a typo in a matrix should not eat the machine). */
export const MAX_JOBS_PER_WORKFLOW = 100_000;

/**
 * One matrix combination as ordered entries: axis values in axis order, then
 * the keys an `include` added, in the order they were added. (Kept as entries
 * because a plain object would move integer-like keys to the front.)
 */
export type MatrixCombination = ReadonlyArray<readonly [string, ExprValue]>;

/** A problem found while expanding, relative to the workflow (`path` is a JSON path in the file). */
export interface ExpansionProblem {
  path: string;
  message: string;
}

export interface MatrixExpansion {
  combinations: MatrixCombination[];
  problems: ExpansionProblem[];
}

/** A job before it gets its place in the run (`index`) and its `slug`. */
export interface ExpandedJob {
  id: string;
  workflow: Workflow;
  matrix?: Readonly<Record<string, ExprValue>>;
  item?: Readonly<Record<string, ExprValue>>;
  /** 1-based line of the dataset item in its JSONL file. */
  itemLine?: number;
  repeat?: { index: number; total: number };
}

export interface WorkflowExpansion {
  jobs: ExpandedJob[];
  problems: ExpansionProblem[];
}

/** Keys tried, in order, to name a dataset item in its job id. */
export const ITEM_ID_KEYS = ['id', 'task_id', 'instance_id', 'name', 'key'] as const;

function isContainer(v: ExprValue | undefined): v is ExprValue[] | { [k: string]: ExprValue } {
  return v !== null && typeof v === 'object';
}

/** `value[key]` the way an expression would read it (own properties only; missing → null). */
function child(value: ExprValue | undefined, key: string | number): ExprValue {
  if (!isContainer(value)) return null;
  if (Array.isArray(value)) return typeof key === 'number' ? (value[key] ?? null) : null;
  const k = String(key);
  return Object.prototype.hasOwnProperty.call(value, k) ? (value[k] ?? null) : null;
}

/**
 * GitHub's matrix filter match: every leaf of `filter` must loosely equal
 * (`==`: case-insensitive strings, numeric coercion) the value at the same
 * path. Mappings and sequences in a filter are compared leaf by leaf, so a
 * filter may name only part of an object value.
 */
function leafMatch(filter: ExprValue, value: ExprValue | undefined): boolean {
  if (Array.isArray(filter)) return filter.every((f, i) => leafMatch(f, child(value, i)));
  if (isContainer(filter)) return Object.entries(filter).every(([k, f]) => leafMatch(f, child(value, k)));
  return looseEquals(value ?? null, filter);
}

/** A filter (`exclude` entry, or an `include` entry's axis keys) as entries, computed once. */
type Filter = ReadonlyArray<readonly [string, ExprValue]>;

function entryMatches(filter: Filter, combo: ReadonlyMap<string, ExprValue>): boolean {
  for (const [k, f] of filter) if (!leafMatch(f, combo.get(k))) return false;
  return true;
}

/**
 * Expands a matrix exactly like GitHub Actions:
 * 1. the cartesian product of the axes, first axis outermost;
 * 2. `exclude`: drop every combination that matches all keys of an entry
 *    (partial entries allowed; each key must be an axis);
 * 3. `include`: for each entry, its non-axis keys are added to every remaining
 *    original combination whose axis values match the entry's axis keys (so
 *    original values are never overwritten, but values added by an earlier
 *    include may be); an entry that matched no original combination becomes a
 *    new combination of its own (later includes never extend it).
 */
export function expandMatrix(spec: MatrixSpec, limit = MAX_JOBS_PER_WORKFLOW): MatrixExpansion {
  const problems: ExpansionProblem[] = [];
  const axisNames = spec.axes.map(([name]) => name);
  const axes = new Set(axisNames);

  spec.axes.forEach(([name, values]) => {
    if (values.length === 0)
      problems.push({ path: `strategy.matrix.${name}`, message: `axis '${name}' has no values` });
  });
  spec.exclude.forEach((entry, i) => {
    const keys = Object.keys(entry);
    if (keys.length === 0)
      problems.push({ path: `strategy.matrix.exclude[${i}]`, message: 'exclude entry is empty' });
    for (const key of keys) {
      if (!axes.has(key)) {
        problems.push({
          path: `strategy.matrix.exclude[${i}].${key}`,
          message: `'${key}' is not a matrix axis${didYouMeanSuffix(key, axisNames)} (axes: ${axisNames.join(', ') || 'none'})`,
        });
      }
    }
  });
  spec.include.forEach((entry, i) => {
    if (Object.keys(entry).length === 0) {
      problems.push({ path: `strategy.matrix.include[${i}]`, message: 'include entry is empty' });
    }
  });

  const size = spec.axes.length === 0 ? 0 : spec.axes.reduce((n, [, values]) => n * values.length, 1);
  if (size + spec.include.length > limit) {
    problems.push({
      path: 'strategy.matrix',
      message: `the matrix has ${size + spec.include.length} combinations, more than the limit of ${limit}`,
    });
  }
  if (problems.length > 0) return { combinations: [], problems };

  // 1 + 2: product in axis order (odometer, last axis fastest), minus excludes.
  const excludes: Filter[] = spec.exclude.map((entry) => Object.entries(entry));
  const originals: Array<Map<string, ExprValue>> = [];
  const counters = spec.axes.map(() => 0);
  for (let n = 0; n < size; n++) {
    const combo = new Map<string, ExprValue>();
    spec.axes.forEach(([name, values], a) => combo.set(name, values[counters[a] ?? 0] ?? null));
    if (!excludes.some((filter) => entryMatches(filter, combo))) originals.push(combo);
    for (let a = counters.length - 1; a >= 0; a--) {
      const len = spec.axes[a]?.[1].length ?? 1;
      counters[a] = ((counters[a] ?? 0) + 1) % len;
      if (counters[a] !== 0) break;
    }
  }

  // 3: includes extend matching originals, or become new combinations.
  const added: Array<Map<string, ExprValue>> = [];
  for (const entry of spec.include) {
    // No prototype: matrix keys are user data (`constructor`, `__proto__` …).
    const filter = Object.create(null) as Record<string, ExprValue>;
    const extra: Array<[string, ExprValue]> = [];
    for (const [k, v] of Object.entries(entry)) {
      if (axes.has(k)) filter[k] = v;
      else extra.push([k, v]);
    }
    const filterEntries: Filter = Object.entries(filter);
    let matched = false;
    for (const combo of originals) {
      if (!entryMatches(filterEntries, combo)) continue;
      matched = true;
      for (const [k, v] of extra) combo.set(k, v);
    }
    if (!matched) {
      // Axis keys first (in axis order), then the entry's other keys.
      const combo = new Map<string, ExprValue>();
      for (const name of axisNames) if (Object.hasOwn(filter, name)) combo.set(name, filter[name] ?? null);
      for (const [k, v] of extra) combo.set(k, v);
      added.push(combo);
    }
  }

  return { combinations: [...originals, ...added].map((m) => [...m.entries()]), problems };
}

function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** How a value appears in a job id: strings as is (JSON when they hold control characters), others as JSON. */
export function idValue(v: ExprValue): string {
  if (typeof v === 'string') return hasControlChars(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/**
 * The key/value that names a dataset item in its job id: the first of
 * {@link ITEM_ID_KEYS} holding a non-empty string, a number or a boolean,
 * else the item's 1-based line (`['line', 7]`).
 */
export function itemLabel(
  item: Readonly<Record<string, ExprValue>>,
  line: number,
): readonly [string, ExprValue] {
  for (const key of ITEM_ID_KEYS) {
    if (!Object.prototype.hasOwnProperty.call(item, key)) continue;
    const v = item[key];
    if ((typeof v === 'string' && v !== '') || typeof v === 'number' || typeof v === 'boolean')
      return [key, v];
  }
  return ['line', line];
}

/**
 * `name[k=v,k2=v2]#n`: the workflow name, then the matrix values (axis order,
 * then include-added keys), then the dataset item's label, then `#n` when the
 * job is repeated.
 */
export function formatJobId(
  name: string,
  values: ReadonlyArray<readonly [string, ExprValue]>,
  repeat?: { index: number; total: number },
): string {
  const inner = values.map(([k, v]) => `${k}=${idValue(v)}`).join(',');
  const brackets = values.length > 0 ? `[${inner}]` : '';
  const suffix = repeat && repeat.total > 1 ? `#${repeat.index}` : '';
  return `${name}${brackets}${suffix}`;
}

/**
 * All jobs of one workflow, in order: matrix combinations (outermost), then
 * dataset items, then repeats (innermost). Does not check ids for
 * uniqueness; `buildPlan` does that across the whole run.
 */
export function expandWorkflow(workflow: Workflow, limit = MAX_JOBS_PER_WORKFLOW): WorkflowExpansion {
  const { strategy } = workflow;
  const problems: ExpansionProblem[] = [];

  let combos: Array<MatrixCombination | undefined> = [undefined];
  if (strategy.matrix) {
    const m = expandMatrix(strategy.matrix, limit);
    problems.push(...m.problems);
    combos = m.combinations;
    if (m.problems.length === 0 && combos.length === 0) {
      problems.push({
        path: 'strategy.matrix',
        message: 'every matrix combination is excluded: the workflow has no jobs',
      });
    }
  }

  const dataset = strategy.dataset;
  type Item = { value: Readonly<Record<string, ExprValue>>; line: number };
  let items: Array<Item | undefined> = [undefined];
  if (dataset) {
    items = dataset.items.map((value, i) => ({ value, line: dataset.lines?.[i] ?? i + 1 }));
    if (items.length === 0)
      problems.push({
        path: 'strategy.dataset',
        message: 'the dataset has no items: the workflow has no jobs',
      });
  }

  const repeat = Math.max(1, Math.floor(strategy.repeat));
  const total = combos.length * items.length * repeat;
  if (total > limit) {
    problems.push({
      path: 'strategy',
      message: `the workflow expands to ${total} jobs, more than the limit of ${limit}`,
    });
  }
  if (problems.length > 0) return { jobs: [], problems };

  const jobs: ExpandedJob[] = [];
  for (const combo of combos) {
    // One matrix object per combination, shared (read-only) by its jobs.
    const matrix = combo ? Object.fromEntries(combo) : undefined;
    for (const item of items) {
      const values: Array<readonly [string, ExprValue]> = combo ? [...combo] : [];
      if (item) values.push(itemLabel(item.value, item.line));
      // The id without the repeat suffix is the same for every repeat.
      const base = formatJobId(workflow.name, values);
      for (let r = 1; r <= repeat; r++) {
        const job: ExpandedJob = { id: repeat > 1 ? `${base}#${r}` : base, workflow };
        if (matrix) job.matrix = matrix;
        if (item) {
          job.item = item.value;
          job.itemLine = item.line;
        }
        if (repeat > 1) job.repeat = { index: r, total: repeat };
        jobs.push(job);
      }
    }
  }
  return { jobs, problems };
}

/** A one-line description of a job's values (`task=a model=b item=x repeat=2/3`), for listings. */
export function describeJobValues(job: {
  matrix?: Readonly<Record<string, ExprValue>>;
  item?: Readonly<Record<string, ExprValue>>;
  itemLine?: number;
  repeat?: { index: number; total: number };
}): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(job.matrix ?? {})) parts.push(`${k}=${idValue(v)}`);
  if (job.item) {
    const [k, v] = itemLabel(job.item, job.itemLine ?? 0);
    parts.push(`${k}=${stringify(v)}`);
  }
  if (job.repeat) parts.push(`repeat=${job.repeat.index}/${job.repeat.total}`);
  return parts.join(' ');
}
