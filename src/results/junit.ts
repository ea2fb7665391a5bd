/**
 * JUnit XML report (ci-conventions.md §4.5), as GitLab, Jenkins and most CI
 * test tabs read it: one `<testsuite>` per workflow, one `<testcase>` per
 * job. `failed` / `timed-out` → `<failure>`, `error` → `<error>`,
 * `cancelled` / `skipped` → `<skipped>`; the redacted tail of the job's log
 * in `<system-out>`. Test names are unique in the file (GitLab drops
 * duplicates). The file is streamed job by job into a temp file and renamed
 * into place, so memory stays flat however many jobs the run had.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobResult, JobStatus, RunSummary, StepResult } from './types.js';
import type { Redactor } from '../util/redact.js';
import { openAtomic } from './atomic.js';
import { decisiveStep, firstLine, formatDuration, jobErrorText, type SummaryJob } from './summary.js';
import { unreachable } from '../util/unreachable.js';

/** Total budget for `<system-out>` across the file (GitLab accepts 30 MB per file). */
const TOTAL_SYSTEM_OUT_BYTES = 16 * 1024 * 1024;
const MAX_SYSTEM_OUT_BYTES = 64 * 1024;
const MIN_SYSTEM_OUT_BYTES = 2 * 1024;
/** Output tail of the failing step inside `<failure>`. */
const FAILURE_OUTPUT_CHARS = 4 * 1024;
const MESSAGE_CHARS = 500;
/** Test cases whose files are read ahead while writing. */
const PREFETCH = 16;

// XML 1.0 allows #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
// With the `u` flag a lone surrogate is one code point outside these ranges.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const ILLEGAL_XML = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

/** Removes terminal escape sequences and characters XML 1.0 cannot carry. */
export function xmlSafe(text: string): string {
  return text.replace(ANSI, '').replace(ILLEGAL_XML, '');
}

/** Escapes element text. */
export function escapeXmlText(text: string): string {
  return xmlSafe(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes an attribute value (double-quoted); newlines and tabs survive as character references. */
export function escapeXmlAttr(text: string): string {
  return escapeXmlText(text)
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;')
    .replace(/\t/g, '&#9;');
}

function seconds(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}

function tail(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(-max);
  const nl = cut.indexOf('\n');
  return `[… ${text.length - max} earlier characters omitted]\n${nl >= 0 && nl < 200 ? cut.slice(nl + 1) : cut}`;
}

/** Everything one `<testcase>` is rendered from. `result` may be missing (its result.json is gone). */
export interface JUnitCase {
  job: SummaryJob;
  result?: JobResult;
  /** Redacted tail of log.txt. */
  logTail?: string;
}

function errorType(job: SummaryJob, result: JobResult | undefined): string {
  const info = result?.error ?? (result ? decisiveStep(result.steps)?.error : undefined);
  if (!info) return job.status;
  return info.code ? `${info.kind}:${info.code}` : info.kind;
}

function stepLine(s: StepResult): string {
  const exit = s.exitCode !== undefined ? `, exit code ${s.exitCode}` : '';
  const err = s.error ? `: ${s.error.message}` : '';
  return `step ${s.id}${s.name !== s.id ? ` (${s.name})` : ''} ${s.status}${exit} after ${formatDuration(s.durationMs)}${err}`;
}

/** The text inside `<failure>` / `<error>`: verdict, the deciding step and its output tail. */
export function failureBody(job: SummaryJob, result: JobResult | undefined): string {
  const lines = [
    `job ${job.id} ${job.status} after ${formatDuration(job.durationMs)} (${job.attempts} attempt${job.attempts === 1 ? '' : 's'})`,
  ];
  if (!result) {
    if (job.error) lines.push(job.error);
    return lines.join('\n');
  }
  if (result.error)
    lines.push(
      `${result.error.kind}${result.error.code ? ` (${result.error.code})` : ''}: ${result.error.message}`,
    );
  const step = decisiveStep(result.steps);
  if (step) {
    lines.push(stepLine(step));
    if (step.output !== undefined && step.output.trim() !== '') {
      lines.push(`--- output of step ${step.id} ---`, tail(step.output.trimEnd(), FAILURE_OUTPUT_CHARS));
    }
  }
  return lines.join('\n');
}

function statusElement(c: JUnitCase): string {
  const { job, result } = c;
  const status: JobStatus = job.status;
  const message = firstLine(result ? jobErrorText(result) : job.error, MESSAGE_CHARS) || status;
  switch (status) {
    case 'passed':
      return '';
    case 'failed':
    case 'timed-out':
      return `      <failure message="${escapeXmlAttr(message)}" type="${escapeXmlAttr(status === 'failed' ? errorType(job, result) : 'timed-out')}">${escapeXmlText(failureBody(job, result))}</failure>\n`;
    case 'error':
      return `      <error message="${escapeXmlAttr(message)}" type="${escapeXmlAttr(errorType(job, result))}">${escapeXmlText(failureBody(job, result))}</error>\n`;
    case 'cancelled':
      return `      <skipped message="${escapeXmlAttr(`cancelled${message !== status ? `: ${message}` : ''}`)}"/>\n`;
    case 'skipped':
      return `      <skipped message="${escapeXmlAttr(message === status ? 'skipped (not run this time: resume or shard)' : message)}"/>\n`;
    default:
      throw new Error(`Unknown job status: ${unreachable(status)}`);
  }
}

/** One `<testcase>` element (indented, newline-terminated). `name` must already be unique. */
export function renderTestCase(c: JUnitCase, name: string): string {
  const { job } = c;
  const open = `    <testcase classname="${escapeXmlAttr(job.workflow)}" name="${escapeXmlAttr(name)}" file="${escapeXmlAttr(job.file)}" time="${seconds(job.durationMs)}"`;
  const body = statusElement(c);
  const out =
    c.logTail !== undefined && c.logTail !== ''
      ? `      <system-out>${escapeXmlText(c.logTail)}</system-out>\n`
      : '';
  if (body === '' && out === '') return `${open}/>\n`;
  return `${open}>\n${body}${out}    </testcase>\n`;
}

interface SuiteCounts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  ms: number;
}

function suiteCounts(jobs: readonly SummaryJob[]): SuiteCounts {
  const c: SuiteCounts = { tests: 0, failures: 0, errors: 0, skipped: 0, ms: 0 };
  for (const j of jobs) {
    c.tests++;
    c.ms += j.durationMs;
    if (j.status === 'failed' || j.status === 'timed-out') c.failures++;
    else if (j.status === 'error') c.errors++;
    else if (j.status === 'cancelled' || j.status === 'skipped') c.skipped++;
  }
  return c;
}

/**
 * Reads the last `maxBytes` of a file as text (starting at a character and,
 * when cut, at a line boundary), or undefined when it does not exist.
 */
export async function readTail(path: string, maxBytes: number): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const size = (await fh.stat()).size;
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    let from = 0;
    // Skip UTF-8 continuation bytes so decoding starts at a character.
    if (start > 0) while (from < buf.length && ((buf[from] ?? 0) & 0xc0) === 0x80) from++;
    let text = buf.subarray(from).toString('utf8');
    if (start > 0) {
      const nl = text.indexOf('\n');
      if (nl >= 0 && nl < 1024) text = text.slice(nl + 1);
      text = `[… ${size - Buffer.byteLength(text)} earlier bytes omitted]\n${text}`;
    }
    return text;
  } finally {
    await fh.close();
  }
}

/** Where the per-job details of a case come from. */
export type CaseSource = (job: SummaryJob, maxLogBytes: number) => Promise<Omit<JUnitCase, 'job'>>;

/** Reads `jobs/<slug>/result.json` and the tail of `jobs/<slug>/log.txt` under `runDir`. */
export function runDirSource(runDir: string): CaseSource {
  return async (job, maxLogBytes) => {
    if (job.slug === undefined) return {};
    const dir = join(runDir, 'jobs', job.slug);
    // A passed job's test case needs nothing from its full result.
    const needResult = job.status !== 'passed';
    const [result, logTail] = await Promise.all([
      (needResult ? open(join(dir, 'result.json'), 'r') : Promise.reject(new Error('not needed')))
        .then(async (fh) => {
          try {
            return JSON.parse(await fh.readFile('utf8')) as JobResult;
          } finally {
            await fh.close();
          }
        })
        .catch(() => undefined),
      readTail(join(dir, 'log.txt'), maxLogBytes).catch(() => undefined),
    ]);
    return {
      ...(result && result.id === job.id ? { result } : {}),
      ...(logTail !== undefined ? { logTail } : {}),
    };
  };
}

export interface JUnitReportOptions {
  path: string;
  summary: Pick<RunSummary, 'jobs' | 'durationMs' | 'startedAt'>;
  /** Run directory to read each job's result.json and log.txt from (default source). */
  runDir?: string;
  /** Custom source (e.g. `rho-flow merge` reading several run dirs); wins over `runDir`. */
  source?: CaseSource;
  redactor?: Redactor;
  fsync?: boolean;
  /** `<testsuites name>` (default `rho-flow`). */
  name?: string;
}

/**
 * Writes the report atomically, streaming one test case at a time. Jobs are
 * grouped by workflow in order of first appearance. Per-case `<system-out>`
 * gets an equal share of a 16 MiB budget (between 2 and 64 KiB).
 */
export async function writeJUnitReport(options: JUnitReportOptions): Promise<void> {
  const { summary } = options;
  const source = options.source ?? (options.runDir !== undefined ? runDirSource(options.runDir) : undefined);
  const redact = (s: string): string => (options.redactor ? options.redactor.redact(s) : s);
  const perCase = Math.max(
    MIN_SYSTEM_OUT_BYTES,
    Math.min(MAX_SYSTEM_OUT_BYTES, Math.floor(TOTAL_SYSTEM_OUT_BYTES / Math.max(1, summary.jobs.length))),
  );
  const suites = new Map<string, SummaryJob[]>();
  for (const j of summary.jobs) {
    const list = suites.get(j.workflow);
    if (list) list.push(j);
    else suites.set(j.workflow, [j]);
  }
  const all = suiteCounts(summary.jobs);
  const file = await openAtomic(options.path, { fsync: options.fsync !== false });
  try {
    await file.write(
      `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${escapeXmlAttr(options.name ?? 'rho-flow')}" tests="${all.tests}" failures="${all.failures}" errors="${all.errors}" skipped="${all.skipped}" time="${seconds(summary.durationMs)}" timestamp="${escapeXmlAttr(summary.startedAt)}">\n`,
    );
    const used = new Set<string>();
    // Read a few cases ahead (file reads overlap) while writing strictly in order.
    const ordered = [...suites.values()].flat();
    const pending = new Map<number, Promise<Omit<JUnitCase, 'job'>>>();
    let next = 0;
    const fetchUpTo = (i: number): void => {
      for (; next < ordered.length && next <= i + PREFETCH; next++) {
        const job = ordered[next];
        if (job && source) pending.set(next, source(job, perCase));
      }
    };
    let position = 0;
    for (const [workflow, jobs] of suites) {
      const c = suiteCounts(jobs);
      const fileAttr = jobs[0]?.file ?? '';
      await file.write(
        `  <testsuite name="${escapeXmlAttr(workflow)}" file="${escapeXmlAttr(fileAttr)}" tests="${c.tests}" failures="${c.failures}" errors="${c.errors}" skipped="${c.skipped}" time="${seconds(c.ms)}" timestamp="${escapeXmlAttr(summary.startedAt)}">\n`,
      );
      for (const job of jobs) {
        let name = job.id;
        for (let n = 2; used.has(name); n++) name = `${job.id} (${n})`;
        used.add(name);
        fetchUpTo(position);
        const extra = (await pending.get(position)) ?? {};
        pending.delete(position);
        position++;
        const c2: JUnitCase = {
          job,
          ...(extra.result
            ? { result: options.redactor ? options.redactor.redactValue(extra.result) : extra.result }
            : {}),
          ...(extra.logTail !== undefined ? { logTail: redact(extra.logTail) } : {}),
        };
        await file.write(renderTestCase(c2, name));
      }
      await file.write('  </testsuite>\n');
    }
    await file.write('</testsuites>\n');
    await file.commit();
  } catch (e) {
    await file.abort();
    throw e;
  }
}
