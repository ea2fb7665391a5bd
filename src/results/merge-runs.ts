/**
 * `rho-flow merge`: combines run directories — typically the shards of one
 * batch (`--shard i/n`), run on different CI machines — into one new run
 * directory with run.json, results.jsonl, summary.json and junit.xml, as if
 * the batch had run in one place.
 *
 * - Each input counts with the last result per job id (as its own summary
 *   does) among the results that belong to its plan (see `planMembership`).
 * - A job id found in several inputs is a duplicate: the result that ended
 *   last wins (a `skipped` record never hides a real outcome), and every
 *   duplicate is reported, flagged when the statuses differ.
 * - A planned job with no result in any input (its run was killed) is
 *   recorded as `cancelled` with code `no-result`; the merge then exits 3,
 *   because the batch is incomplete for reasons outside the agent's control.
 * - Each job's `log.txt` and `transcript.jsonl` are copied next to its
 *   result (the JUnit report quotes the log); artifacts stay where they are.
 *
 * Results are streamed twice from each results.jsonl (once to pick winners,
 * once to copy them), so memory holds a small entry per job, not results.
 */
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { JobResult, JobStatus, RunSummary } from './types.js';
import {
  RunWriter,
  lineLocator,
  type LineLocator,
  type PlanJob,
  type PlanRecord,
  type PlanWorkflow,
  type RunRecord,
} from './run-writer.js';
import { readRunRecord, readSummary, scanResults } from './read-results.js';
import { passRateOf, supersedes } from './summary.js';
import { planMembership } from '../engine/resume.js';
import { newRunId, isValidRunId } from '../engine/run-id.js';
import { runExitCode } from '../engine/run-exit-code.js';
import { assignSlugs } from '../workflow/slug.js';
import { ZERO_USAGE } from '../agent/model.js';
import { UserError } from '../errors.js';

export interface MergeRunsOptions {
  /** Run directories (each with a run.json), or folders holding exactly one. */
  runDirs: readonly string[];
  /** The merged run goes to `<outputDir>/<runId>/`. */
  outputDir: string;
  /** Default: the inputs' run id when they all share one (CI shards), else a new one. */
  runId?: string;
  /** `--min-pass-rate`: exit 0 when the merged pass rate reaches it. */
  minPassRate?: number;
  /** For run.json. */
  argv?: readonly string[];
  version?: string;
  /** For a new run id (CI variables). Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  onWarning?: (message: string) => void;
  /** fsync what is written (default true). */
  fsync?: boolean;
}

/** A job id that more than one input has a result for. */
export interface DuplicateJob {
  id: string;
  /** Each input's result for it, in input order. */
  sources: Array<{ runDir: string; status: JobStatus; endedAt: string }>;
  /** The input whose result was used. */
  used: string;
  /** The inputs disagree about the status. */
  conflicting: boolean;
}

export interface MergeOutcome {
  runId: string;
  runDir: string;
  junitPath: string;
  /** The input run directories actually merged (absolute). */
  inputs: string[];
  summary: RunSummary;
  /** The run exit code of the merged counts (product.md §4); 3 when results are missing. */
  exitCode: number;
  duplicates: DuplicateJob[];
  /** Planned job ids without a result in any input (recorded as cancelled). */
  missing: string[];
  /** Results ignored because they belong to no plan version of their run (stale). */
  stale: number;
  locate: LineLocator;
}

interface Input {
  dir: string;
  record: RunRecord;
  summary: RunSummary | undefined;
}

interface Winner {
  input: number;
  line: number;
  status: JobStatus;
  endedAt: string;
  index: number;
}

/** How many results are copied at once. */
const COPY_CONCURRENCY = 16;

async function hasRunJson(dir: string): Promise<boolean> {
  return stat(join(dir, 'run.json')).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** A run directory, or the single run inside an output directory. */
async function resolveRunDir(given: string): Promise<string> {
  const dir = resolve(given);
  if (await hasRunJson(dir)) return dir;
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (e) {
    throw new UserError(
      `${given}: not a run directory (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      {
        cause: e,
      },
    );
  }
  const runs: string[] = [];
  for (const name of names.sort()) if (await hasRunJson(join(dir, name))) runs.push(name);
  if (runs.length === 1 && runs[0] !== undefined) return join(dir, runs[0]);
  if (runs.length === 0) throw new UserError(`${given}: not a run directory (no run.json in it or below it)`);
  throw new UserError(
    `${given} holds ${runs.length} runs (${runs.join(', ')}); name the run directories to merge`,
  );
}

/** True when `next` (from a later input) should replace `prev` for the same job id. */
function winsOver(prev: Winner, next: Winner): boolean {
  if (!supersedes(prev, next)) return false;
  if (!supersedes(next, prev)) return true;
  return next.endedAt >= prev.endedAt;
}

function noResult(
  job: PlanJob,
  wf: PlanWorkflow | undefined,
  runId: string,
  runDir: string,
  at: string,
): JobResult {
  return {
    runId,
    id: job.id,
    slug: job.slug,
    workflow: job.workflow,
    file: job.file,
    index: job.index,
    ...(job.matrix ? { matrix: job.matrix } : {}),
    ...(job.repeat ? { repeat: job.repeat } : {}),
    status: 'cancelled',
    attempts: 0,
    startedAt: at,
    endedAt: at,
    durationMs: 0,
    backend: 'unknown',
    steps: [],
    artifacts: [],
    usage: { ...ZERO_USAGE },
    error: {
      kind: 'step',
      code: 'no-result',
      message: `no result: the run in ${runDir} ended before this job finished (was it killed?)`,
    },
    workflowHash: wf?.hash ?? '',
  };
}

/** The `id` of a results line, or undefined when the line is not a JSON object with one. */
function lineId(text: string): string | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string'
      ? (v as { id: string }).id
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Calls `onLine` for every line of `file` with the 1-based line numbers
 * `scanResults` uses (split on `\n`, a trailing `\r` dropped), awaiting each
 * call before reading on. A missing file has no lines.
 */
async function forEachLine(
  file: string,
  onLine: (text: string, line: number) => Promise<void>,
): Promise<void> {
  let rest = '';
  let line = 0;
  try {
    for await (const chunk of createReadStream(file, { encoding: 'utf8' }) as AsyncIterable<string>) {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) {
        line++;
        if (p.trim() !== '') await onLine(p.endsWith('\r') ? p.slice(0, -1) : p, line);
      }
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (rest.trim() !== '') await onLine(rest, line + 1);
}

async function copyIfExists(from: string, to: string): Promise<void> {
  try {
    await copyFile(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * Merges `runDirs` into a new run directory and returns its summary and
 * exit code. Throws a `UserError` (nothing written) when an input is not a
 * run, is given twice, or the target run directory already exists.
 */
export async function mergeRuns(options: MergeRunsOptions): Promise<MergeOutcome> {
  const warn = options.onWarning ?? ((): void => undefined);
  if (options.runDirs.length === 0) throw new UserError('merge needs at least one run directory');
  const dirs: string[] = [];
  for (const given of options.runDirs) {
    const dir = await resolveRunDir(given);
    if (dirs.includes(dir)) throw new UserError(`${given}: the run directory ${dir} is given twice`);
    dirs.push(dir);
  }
  const inputs: Input[] = [];
  for (const dir of dirs) {
    const record = await readRunRecord(dir);
    const summary = await readSummary(dir).catch(() => undefined);
    if (!summary) warn(`${dir} has no summary.json (the run did not finish); merging the results it has`);
    inputs.push({ dir, record, summary });
  }

  // The merged plan: workflows by name, jobs by id (first seen wins).
  const workflows = new Map<string, PlanWorkflow>();
  const workflowFrom = new Map<string, string>();
  const planJobs = new Map<string, PlanJob>();
  const planJobFrom = new Map<string, string>();
  for (const input of inputs) {
    for (const wf of input.record.plan.workflows) {
      const first = workflows.get(wf.name);
      if (!first) {
        workflows.set(wf.name, wf);
        workflowFrom.set(wf.name, input.dir);
      } else if (first.hash !== wf.hash) {
        warn(
          `workflow ${wf.name} differs between ${workflowFrom.get(wf.name) ?? '?'} and ${input.dir} (different file contents); the runs did not run the same version`,
        );
      }
    }
    for (const job of input.record.plan.jobs) {
      if (!planJobs.has(job.id)) {
        planJobs.set(job.id, job);
        planJobFrom.set(job.id, input.dir);
      }
    }
  }

  // Pass 1: the last result per job id in each input, then the winner across inputs.
  const winners = new Map<string, Winner>();
  const seenIn = new Map<string, Array<{ input: number; status: JobStatus; endedAt: string }>>();
  let stale = 0;
  for (const [i, input] of inputs.entries()) {
    const belongs = planMembership(input.record.plan);
    const local = new Map<string, Winner>();
    await scanResults(join(input.dir, 'results.jsonl'), (r, line) => {
      if (!belongs(r)) {
        stale++;
        return;
      }
      const next: Winner = { input: i, line, status: r.status, endedAt: r.endedAt, index: r.index };
      const prev = local.get(r.id);
      if (!prev || supersedes(prev, next)) local.set(r.id, next);
    });
    for (const [id, w] of local) {
      const list = seenIn.get(id) ?? [];
      list.push({ input: i, status: w.status, endedAt: w.endedAt });
      seenIn.set(id, list);
      const prev = winners.get(id);
      if (!prev || winsOver(prev, w)) winners.set(id, w);
    }
  }
  if (stale > 0) {
    warn(`ignored ${stale} result(s) that belong to another version of their workflow or to no planned job`);
  }
  const duplicates: DuplicateJob[] = [];
  for (const [id, list] of seenIn) {
    if (list.length < 2) continue;
    const used = winners.get(id);
    duplicates.push({
      id,
      sources: list.map((s) => ({ runDir: dirs[s.input] ?? '', status: s.status, endedAt: s.endedAt })),
      used: used ? (dirs[used.input] ?? '') : '',
      conflicting: new Set(list.map((s) => s.status)).size > 1,
    });
  }

  // Every job of the merged plan, in plan order; slugs unique across the merge.
  const ordered = [...planJobs.values()].sort((a, b) => a.index - b.index);
  const slugs = assignSlugs(ordered.map((j) => j.id));
  const slugOf = new Map(ordered.map((j, k) => [j.id, slugs[k] ?? j.slug]));
  const plan: PlanRecord = {
    workflows: [...workflows.values()],
    jobs: ordered.map((j) => ({ ...j, slug: slugOf.get(j.id) ?? j.slug })),
  };

  const ids = new Set(inputs.map((x) => x.record.runId));
  const [commonId] = ids;
  const runId =
    options.runId ??
    (ids.size === 1 && commonId !== undefined ? commonId : newRunId(options.env ?? process.env));
  if (!isValidRunId(runId)) throw new UserError(`invalid run id '${runId}'`);
  const outputDir = resolve(options.outputDir);
  const runDir = join(outputDir, runId);
  if (
    await stat(runDir).then(
      () => true,
      () => false,
    )
  ) {
    throw new UserError(`${runDir} already exists; choose another --run-id or -o for the merged run`);
  }

  const starts = inputs.map((x) => x.record.startedAt).filter((s): s is string => typeof s === 'string');
  const ends = inputs
    .map((x) => x.summary?.endedAt ?? x.record.endedAt)
    .filter((s): s is string => typeof s === 'string');
  const startedAt = starts.sort()[0] ?? new Date().toISOString();
  const endedAt = ends.sort().at(-1) ?? new Date().toISOString();

  const writer = await RunWriter.open({
    outputDir,
    runId,
    argv: options.argv ?? [],
    version: options.version ?? 'unknown',
    plan,
    options: {
      mergedFrom: dirs,
      runIds: inputs.map((x) => x.record.runId),
      shards: inputs.map((x) => x.summary?.shard ?? null),
      minPassRate: options.minPassRate ?? null,
    },
    startedAt,
    ...(options.fsync === false ? { fsync: false } : {}),
  });

  // Pass 2: copy each winning result (and its log and transcript) into the merged run,
  // a few at a time; reading waits for room, so memory stays flat.
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;
  const record = async (result: JobResult, fromDir: string | undefined): Promise<void> => {
    while (inFlight.size >= COPY_CONCURRENCY) await Promise.race(inFlight);
    if (failure !== undefined) throw failure;
    const slug = slugOf.get(result.id) ?? result.slug;
    const task = (async () => {
      if (fromDir !== undefined) {
        const to = writer.jobDir(slug);
        await mkdir(to, { recursive: true });
        const from = join(fromDir, 'jobs', result.slug);
        await Promise.all([
          copyIfExists(join(from, 'log.txt'), join(to, 'log.txt')),
          copyIfExists(join(from, 'transcript.jsonl'), join(to, 'transcript.jsonl')),
        ]);
      }
      await writer.recordJob({ ...result, slug });
    })()
      .catch((e: unknown) => {
        failure ??= e instanceof Error ? e : new Error(String(e));
      })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  };
  for (const [i, input] of inputs.entries()) {
    await forEachLine(join(input.dir, 'results.jsonl'), async (text, line) => {
      const w = winners.get(lineId(text) ?? '');
      if (w?.input !== i || w.line !== line) return;
      await record(JSON.parse(text) as JobResult, input.dir);
    });
  }
  const missing: string[] = [];
  const now = new Date().toISOString();
  for (const job of ordered) {
    if (winners.has(job.id)) continue;
    missing.push(job.id);
    const from = planJobFrom.get(job.id) ?? '?';
    await record(noResult(job, workflows.get(job.workflow), runId, from, now), undefined);
  }
  await Promise.all([...inFlight]);
  if (failure !== undefined) throw failure;
  if (missing.length > 0) {
    warn(`${missing.length} planned job(s) have no result in any run; recorded as cancelled (no-result)`);
  }

  const counts = writer.counts;
  const interrupted = inputs.find((x) => x.summary?.interrupted !== undefined)?.summary?.interrupted;
  let exitCode = runExitCode({
    counts,
    passRate: passRateOf(counts),
    ...(interrupted ? { interrupted } : {}),
    ...(options.minPassRate !== undefined ? { minPassRate: options.minPassRate } : {}),
  });
  if (missing.length > 0 && exitCode < 3) exitCode = 3;
  const summary = await writer.finish({ exitCode, endedAt, ...(interrupted ? { interrupted } : {}) });
  return {
    runId,
    runDir,
    junitPath: writer.junitPath,
    inputs: dirs,
    summary,
    exitCode,
    duplicates,
    missing,
    stale,
    locate: lineLocator(plan),
  };
}
