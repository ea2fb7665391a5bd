/**
 * The job plan for people (a table plus the vars in effect) and for machines
 * (a JSON array), shared by `list` and `run --dry-run`.
 */
import { stringify, type ExprValue } from '../expr/evaluate.js';
import { idValue, itemLabel } from '../workflow/expand.js';
import type { Job, Workflow } from '../workflow/types.js';
import { println, styles, type CliIo } from './io.js';

/** Cells longer than this are cut with `…` in the table (the JSON output has everything). */
const MAX_CELL = 60;

/** One job as `list --json` prints it. */
export interface PlannedJobJson {
  index: number;
  id: string;
  slug: string;
  workflow: string;
  file: string;
  matrix?: Readonly<Record<string, ExprValue>>;
  item?: Readonly<Record<string, ExprValue>>;
  itemLine?: number;
  repeat?: { index: number; total: number };
  vars: Readonly<Record<string, ExprValue>>;
}

export function jobToJson(job: Job): PlannedJobJson {
  return {
    index: job.index,
    id: job.id,
    slug: job.slug,
    workflow: job.workflow.name,
    file: job.workflow.file,
    ...(job.matrix ? { matrix: job.matrix } : {}),
    ...(job.item ? { item: job.item } : {}),
    ...(job.itemLine !== undefined ? { itemLine: job.itemLine } : {}),
    ...(job.repeat ? { repeat: job.repeat } : {}),
    vars: job.workflow.vars,
  };
}

function cut(s: string): string {
  return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s;
}

function formatValues(values: Readonly<Record<string, ExprValue>> | undefined): string {
  return Object.entries(values ?? {})
    .map(([k, v]) => `${k}=${idValue(v)}`)
    .join(' ');
}

/**
 * The plan as a table (`#`, `JOB`, `WORKFLOW`, `FILE`, and `MATRIX`, `ITEM`,
 * `REPEAT` when any job has them), then the vars of each workflow.
 */
export function printPlanTable(jobs: readonly Job[], io: CliIo): void {
  const s = styles(io, 'stdout');
  const hasMatrix = jobs.some((j) => j.matrix);
  const hasItem = jobs.some((j) => j.item);
  const hasRepeat = jobs.some((j) => j.repeat);
  const header = ['#', 'JOB', 'WORKFLOW', 'FILE'];
  if (hasMatrix) header.push('MATRIX');
  if (hasItem) header.push('ITEM');
  if (hasRepeat) header.push('REPEAT');
  const rows = jobs.map((j) => {
    const row = [String(j.index), j.id, j.workflow.name, j.workflow.file];
    if (hasMatrix) row.push(formatValues(j.matrix));
    if (hasItem) {
      if (j.item) {
        const [k, v] = itemLabel(j.item, j.itemLine ?? 0);
        row.push(`${k}=${stringify(v)}`);
      } else row.push('');
    }
    if (hasRepeat) row.push(j.repeat ? `${j.repeat.index}/${j.repeat.total}` : '');
    return row.map(cut);
  });
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  println(io.stdout, s.bold(line(header)));
  for (const r of rows) println(io.stdout, line(r));

  const workflows: Workflow[] = [];
  for (const j of jobs) if (!workflows.includes(j.workflow)) workflows.push(j.workflow);
  const withVars = workflows.filter((w) => Object.keys(w.vars).length > 0);
  if (withVars.length > 0) {
    println(io.stdout);
    println(io.stdout, s.bold('VARS'));
    for (const w of withVars) println(io.stdout, `${w.name}  ${cut(formatValues(w.vars))}`);
  }
}

/** `12 jobs from 3 workflows`. */
export function describePlan(jobs: readonly Job[]): string {
  const n = new Set(jobs.map((j) => j.workflow)).size;
  return `${jobs.length} job${jobs.length === 1 ? '' : 's'} from ${n} workflow${n === 1 ? '' : 's'}`;
}
