/**
 * Reading a run directory back (for `--resume` and `rho-flow merge`).
 * results.jsonl is read as a stream, line by line; a torn last line (the
 * process died mid-append) is ignored and reported, never fatal. When a job
 * id appears more than once, the last record wins (see `supersedes`).
 */
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, errorMessage } from '../errors.js';
import { JOB_STATUSES, type JobResult, type JobStatus, type RunSummary } from './types.js';
import type { RunRecord } from './run-writer.js';
import { supersedes } from './summary.js';

/** What a scan of results.jsonl saw besides the records. */
export interface ScanStats {
  /** Non-empty lines read. */
  lines: number;
  /** Valid records passed to the callback. */
  records: number;
  /** The last line had no newline and did not parse: a write cut short by a crash. */
  torn: boolean;
  /** Other lines that were not valid results (1-based line numbers); skipped. */
  invalid: Array<{ line: number; reason: string }>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the fields resume and merge rely on; returns a reason when the value is not a result. */
function invalidReason(v: unknown): string | undefined {
  if (!isRecord(v)) return 'not a JSON object';
  if (typeof v.id !== 'string' || v.id === '') return 'missing id';
  if (typeof v.slug !== 'string') return 'missing slug';
  if (typeof v.status !== 'string' || !(JOB_STATUSES as readonly string[]).includes(v.status)) {
    return `bad status ${JSON.stringify(v.status)}`;
  }
  return undefined;
}

/**
 * Streams the results in `file`, calling `onResult` for each valid record in
 * file order (duplicates included). A missing file is an empty scan.
 */
export async function scanResults(
  file: string,
  onResult: (result: JobResult, line: number) => void,
): Promise<ScanStats> {
  const stats: ScanStats = { lines: 0, records: 0, torn: false, invalid: [] };
  let lineNo = 0;
  const handle = (text: string, terminated: boolean): void => {
    lineNo++;
    if (text.trim() === '') return;
    stats.lines++;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      if (terminated) stats.invalid.push({ line: lineNo, reason: `invalid JSON: ${errorMessage(e)}` });
      else stats.torn = true;
      return;
    }
    const reason = invalidReason(value);
    if (reason !== undefined) {
      stats.invalid.push({ line: lineNo, reason });
      return;
    }
    stats.records++;
    onResult(value as JobResult, lineNo);
  };
  let rest = '';
  try {
    const stream = createReadStream(file, { encoding: 'utf8' });
    for await (const chunk of stream as AsyncIterable<string>) {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) handle(p.endsWith('\r') ? p.slice(0, -1) : p, true);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return stats;
    throw e;
  }
  if (rest !== '') handle(rest, false);
  return stats;
}

/** The last result per job id (see `supersedes`), ordered by plan index. Holds full results: use on small runs. */
export async function readResults(runDir: string): Promise<{ results: JobResult[]; stats: ScanStats }> {
  const byId = new Map<string, JobResult>();
  const stats = await scanResults(join(runDir, 'results.jsonl'), (r) => {
    const prev = byId.get(r.id);
    if (!prev || supersedes(prev, r)) byId.set(r.id, r);
  });
  const results = [...byId.values()].sort((a, b) => a.index - b.index);
  return { results, stats };
}

/** What resume needs to know about a recorded job, without its steps. */
export interface ResultIndexEntry {
  id: string;
  slug: string;
  workflow: string;
  file: string;
  index: number;
  status: JobStatus;
  attempts: number;
  workflowHash: string;
}

/** The last status per job id, compact (safe for very large runs). */
export async function readResultIndex(
  runDir: string,
): Promise<{ jobs: Map<string, ResultIndexEntry>; stats: ScanStats }> {
  const jobs = new Map<string, ResultIndexEntry>();
  const stats = await scanResults(join(runDir, 'results.jsonl'), (r) => {
    const prev = jobs.get(r.id);
    if (prev && !supersedes(prev, r)) return;
    jobs.set(r.id, {
      id: r.id,
      slug: r.slug,
      workflow: r.workflow,
      file: r.file,
      index: r.index,
      status: r.status,
      attempts: r.attempts,
      workflowHash: r.workflowHash,
    });
  });
  return { jobs, stats };
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UserError(`${what} not found: ${path}`, { cause: e });
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${what} is not valid JSON: ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

/** run.json of `runDir`; a `UserError` when it is missing or unreadable. */
export async function readRunRecord(runDir: string): Promise<RunRecord> {
  const v = await readJson(join(runDir, 'run.json'), 'run.json');
  if (!isRecord(v) || typeof v.runId !== 'string' || !isRecord(v.plan)) {
    throw new UserError(`run.json is not a rho-flow run record: ${join(runDir, 'run.json')}`);
  }
  return v as unknown as RunRecord;
}

/** summary.json of `runDir` (absent until the run finished); a `UserError` when missing. */
export async function readSummary(runDir: string): Promise<RunSummary> {
  const v = await readJson(join(runDir, 'summary.json'), 'summary.json');
  if (!isRecord(v) || typeof v.runId !== 'string' || !Array.isArray(v.jobs)) {
    throw new UserError(`summary.json is not a rho-flow summary: ${join(runDir, 'summary.json')}`);
  }
  return v as unknown as RunSummary;
}

/**
 * The run in `outputDir` whose latest session started last (the default of
 * `--resume`), or undefined when there is none. Folders without a readable
 * run.json are ignored.
 */
export async function latestRunId(outputDir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = (await readdir(outputDir, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let best: { id: string; at: string } | undefined;
  for (const name of names) {
    const record = await readRunRecord(join(outputDir, name)).catch(() => undefined);
    if (!record) continue;
    const at =
      (Array.isArray(record.sessions) ? record.sessions.at(-1)?.startedAt : undefined) ?? record.startedAt;
    if (!best || at > best.at || (at === best.at && record.runId > best.id)) best = { id: record.runId, at };
  }
  return best?.id;
}
