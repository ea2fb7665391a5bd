/**
 * `--resume [run-id]`: which jobs of an earlier run are run again, and which
 * keep their result (product.md §4–§5, issue 6).
 *
 * - Kept: jobs whose last result is a verdict (`passed`, `failed`,
 *   `timed-out`) recorded for the workflow content the plan has now.
 * - Re-run: jobs with no result, or whose last result is `error`,
 *   `cancelled` or `skipped`.
 *
 * The identity of a plan uses stable fields only — job ids and workflow
 * content hashes (`Workflow.hash`), never timestamps or random values — so a
 * resumed run can always be matched to the run it continues. When the
 * workflows changed since the run started (content, jobs added or removed,
 * files added or left out), resuming is refused with a description of the
 * change, unless `force` is set: then every job of a changed workflow is run
 * again and the other results are kept. Results that no longer belong to the
 * plan (their job is gone, or they were made by another version of the
 * workflow) stop counting in the summary; they stay in results.jsonl as
 * history.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Job } from '../workflow/types.js';
import type { Shard } from '../workflow/plan.js';
import type { JobStatus } from '../results/types.js';
import type { ResumedInfo } from '../events.js';
import type { PlanRecord, RunRecord } from '../results/run-writer.js';
import { latestRunId, readResultIndex, readRunRecord } from '../results/read-results.js';
import { UserError } from '../errors.js';
import { unreachable } from '../util/unreachable.js';

/** Last statuses that make resume run a job again (it never reached a verdict). */
export const RERUN_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(['error', 'cancelled', 'skipped']);

/** How one workflow differs between the run being resumed and the plan now. */
export interface WorkflowChange {
  workflow: string;
  /** The file now (or, for a workflow left out, as the run recorded it). */
  file: string;
  /**
   * `modified`: in both, but its content hash or its job list differs;
   * `added`: in the plan now, not in the run; `removed`: in the run, not given now.
   */
  kind: 'modified' | 'added' | 'removed';
  /** True when the content hash differs (`modified` only). */
  contentChanged: boolean;
  /** Job ids in the plan now that the run did not have. */
  jobsAdded: string[];
  /** Job ids the run had that the plan no longer has. */
  jobsRemoved: string[];
}

/** Why re-run jobs are re-run, counted. */
export interface RerunReasons {
  /** No result in results.jsonl (never finished, e.g. the run was killed). */
  missing: number;
  error: number;
  cancelled: number;
  skipped: number;
  /** The workflow changed (with `force`), or the result belongs to another version of it. */
  changed: number;
}

/** What `planResume` decided. */
export interface ResumeDecision {
  runId: string;
  runDir: string;
  /** Jobs to run again, in plan order. */
  rerun: Job[];
  reasons: RerunReasons;
  /** Jobs that keep their earlier result. */
  kept: number;
  /** Kept jobs by status. */
  keptByStatus: Partial<Record<JobStatus, number>>;
  /** Empty unless `force` let a changed plan through. */
  changes: WorkflowChange[];
  /**
   * Whether an earlier result still counts (for `RunWriter`'s read-back):
   * its job is in the plan and it was made by the workflow content the plan
   * has now.
   */
  keepsResult: (result: { id: string; workflowHash?: string }) => boolean;
  /** Things worth a warning (a torn last line, invalid lines in results.jsonl). */
  notes: string[];
}

export interface ResumeOptions {
  /** `-o`: where the run directory is. */
  outputDir: string;
  /** Run to resume; default the latest run in `outputDir` (see `latestRunId`). */
  runId?: string;
  /** The jobs this invocation would run without `--resume` (the shard's part of the plan). */
  jobs: readonly Job[];
  /** `--shard`, which must match the shard the run was started with. */
  shard?: Shard;
  /** `--force`: accept a changed plan, re-running every job of the changed workflows. */
  force?: boolean;
}

/** `i/n` of a shard (as run.json records it), or null for the whole plan. */
export function shardLabel(shard: Shard | undefined): string | null {
  return shard ? `${shard.index}/${shard.total}` : null;
}

/**
 * A membership test over a recorded plan: does a result belong to it (its
 * job id is planned, and it carries the planned workflow's content hash)?
 */
export function planMembership(
  plan: Pick<PlanRecord, 'workflows' | 'jobs'>,
): (result: { id: string; workflowHash?: string }) => boolean {
  const hashOf = new Map(plan.workflows.map((w) => [w.name, w.hash]));
  const jobHash = new Map<string, string | undefined>();
  for (const j of plan.jobs) jobHash.set(j.id, hashOf.get(j.workflow));
  return (r) => {
    const hash = jobHash.get(r.id);
    return hash !== undefined && r.workflowHash === hash;
  };
}

/** Differences between the recorded plan and the jobs now, per workflow, in plan order. */
export function comparePlans(recorded: PlanRecord, jobs: readonly Job[]): WorkflowChange[] {
  const before = new Map<string, { file: string; hash: string; jobs: string[] }>();
  for (const w of recorded.workflows) before.set(w.name, { file: w.file, hash: w.hash, jobs: [] });
  for (const j of recorded.jobs) before.get(j.workflow)?.jobs.push(j.id);
  const now = new Map<string, { file: string; hash: string; jobs: string[] }>();
  for (const j of jobs) {
    const wf = j.workflow;
    let entry = now.get(wf.name);
    if (!entry) now.set(wf.name, (entry = { file: wf.file, hash: wf.hash, jobs: [] }));
    entry.jobs.push(j.id);
  }
  const changes: WorkflowChange[] = [];
  for (const [name, n] of now) {
    const b = before.get(name);
    if (!b) {
      changes.push({
        workflow: name,
        file: n.file,
        kind: 'added',
        contentChanged: false,
        jobsAdded: n.jobs,
        jobsRemoved: [],
      });
      continue;
    }
    const had = new Set(b.jobs);
    const has = new Set(n.jobs);
    const jobsAdded = n.jobs.filter((id) => !had.has(id));
    const jobsRemoved = b.jobs.filter((id) => !has.has(id));
    const contentChanged = b.hash !== n.hash;
    if (contentChanged || jobsAdded.length > 0 || jobsRemoved.length > 0) {
      changes.push({
        workflow: name,
        file: n.file,
        kind: 'modified',
        contentChanged,
        jobsAdded,
        jobsRemoved,
      });
    }
  }
  for (const [name, b] of before) {
    if (now.has(name)) continue;
    changes.push({
      workflow: name,
      file: b.file,
      kind: 'removed',
      contentChanged: false,
      jobsAdded: [],
      jobsRemoved: b.jobs,
    });
  }
  return changes;
}

const MAX_LISTED_IDS = 5;

function listIds(ids: readonly string[]): string {
  const shown = ids.slice(0, MAX_LISTED_IDS).join(', ');
  return ids.length > MAX_LISTED_IDS ? `${shown}, … ${ids.length - MAX_LISTED_IDS} more` : shown;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** One line per change, e.g. `flows/a.yaml (a): content changed; 2 jobs added (…), 1 removed (…)`. */
export function describeChange(c: WorkflowChange): string {
  const head = `${c.file} (${c.workflow})`;
  switch (c.kind) {
    case 'added':
      return `${head}: not part of the run (${plural(c.jobsAdded.length, 'job')} would be added)`;
    case 'removed':
      return `${head}: part of the run but not given now (${plural(c.jobsRemoved.length, 'job')})`;
    case 'modified': {
      const parts: string[] = [c.contentChanged ? 'content changed' : 'same content, different jobs'];
      if (c.jobsAdded.length > 0) {
        parts.push(`${plural(c.jobsAdded.length, 'job')} added (${listIds(c.jobsAdded)})`);
      }
      if (c.jobsRemoved.length > 0) {
        parts.push(`${plural(c.jobsRemoved.length, 'job')} removed (${listIds(c.jobsRemoved)})`);
      }
      if (c.jobsAdded.length === 0 && c.jobsRemoved.length === 0) parts.push('same jobs');
      return `${head}: ${parts.join('; ')}`;
    }
    default:
      throw new Error(`Unknown change kind: ${unreachable(c.kind)}`);
  }
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** Run ids (folders with a run.json) in `outputDir`, sorted; for error messages. */
async function knownRunIds(outputDir: string): Promise<string[]> {
  const names = await readdir(outputDir).catch(() => [] as string[]);
  const ids: string[] = [];
  for (const name of names.sort()) if (await isFile(join(outputDir, name, 'run.json'))) ids.push(name);
  return ids;
}

/** The run to resume and its record; `UserError`s say what to do instead. */
async function locateRun(
  outputDir: string,
  runId: string | undefined,
): Promise<{ runId: string; runDir: string; record: RunRecord }> {
  const id = runId ?? (await latestRunId(outputDir));
  if (id === undefined) {
    throw new UserError(
      `--resume: there is no run to resume in ${outputDir} (start one without --resume, or pass -o with the output directory of the run)`,
    );
  }
  const runDir = join(outputDir, id);
  if (!(await isFile(join(runDir, 'run.json')))) {
    const known = await knownRunIds(outputDir);
    const hint =
      known.length === 0
        ? `there are no runs in ${outputDir}`
        : `runs in ${outputDir}: ${listIds(known.slice(-MAX_LISTED_IDS - 1))}`;
    throw new UserError(`--resume ${id}: no such run in ${outputDir} (${hint})`);
  }
  const record = await readRunRecord(runDir);
  return { runId: id, runDir, record };
}

function recordedShard(record: RunRecord): string | null | undefined {
  const options: unknown = record.options;
  if (typeof options !== 'object' || options === null || !('shard' in options)) return undefined;
  const shard = (options as { shard?: unknown }).shard;
  return typeof shard === 'string' ? shard : shard === null ? null : undefined;
}

function isMerged(record: RunRecord): boolean {
  const options: unknown = record.options;
  return typeof options === 'object' && options !== null && 'mergedFrom' in options;
}

/**
 * Decides what a resumed run re-runs. Throws a `UserError` (exit 2, nothing
 * started) when there is no such run, when the shard differs from the run's,
 * when the run is a merge, or when the workflows changed and `force` is not set.
 */
export async function planResume(options: ResumeOptions): Promise<ResumeDecision> {
  const { runId, runDir, record } = await locateRun(options.outputDir, options.runId);
  if (isMerged(record)) {
    throw new UserError(
      `--resume ${runId}: this run was made by 'rho-flow merge'; resume the runs it was merged from instead`,
    );
  }
  const before = recordedShard(record);
  const now = shardLabel(options.shard);
  // `undefined`: a run.json from before the shard was recorded; nothing to compare.
  if (before !== undefined && before !== now) {
    throw new UserError(
      before === null
        ? `--resume ${runId}: the run covered the whole plan; resume it without --shard`
        : `--resume ${runId}: the run was shard ${before}; resume it with --shard ${before}`,
    );
  }

  const changes = comparePlans(record.plan, options.jobs);
  if (changes.length > 0 && options.force !== true) {
    throw new UserError(
      [
        `--resume ${runId}: the workflows changed since the run started, so its results no longer match the plan:`,
        ...changes.map((c) => `  ${describeChange(c)}`),
        'Resuming would mix results of different versions. Re-run with --force to run every job of the',
        'changed workflows again (keeping the results of the others), or start a new run without --resume.',
      ].join('\n'),
    );
  }
  const changed = new Set(changes.filter((c) => c.kind !== 'removed').map((c) => c.workflow));

  const { jobs: index, stats } = await readResultIndex(runDir);
  const notes: string[] = [];
  if (stats.torn)
    notes.push('the last line of results.jsonl was cut short (the run was killed while writing it); ignored');
  if (stats.invalid.length > 0) {
    const lines = stats.invalid.slice(0, MAX_LISTED_IDS).map((i) => `${i.line} (${i.reason})`);
    notes.push(
      `ignored ${plural(stats.invalid.length, 'invalid line')} in results.jsonl: ${lines.join(', ')}`,
    );
  }

  const rerun: Job[] = [];
  const reasons: RerunReasons = { missing: 0, error: 0, cancelled: 0, skipped: 0, changed: 0 };
  const keptByStatus: Partial<Record<JobStatus, number>> = {};
  let kept = 0;
  const planHash = new Map<string, string>();
  for (const job of options.jobs) {
    planHash.set(job.id, job.workflow.hash);
    const last = index.get(job.id);
    if (changed.has(job.workflow.name)) {
      reasons.changed++;
      rerun.push(job);
    } else if (!last) {
      reasons.missing++;
      rerun.push(job);
    } else if (last.workflowHash !== job.workflow.hash) {
      // Made by another version of the workflow: an earlier --force resume was interrupted.
      reasons.changed++;
      rerun.push(job);
    } else if (RERUN_STATUSES.has(last.status)) {
      reasons[last.status as 'error' | 'cancelled' | 'skipped']++;
      rerun.push(job);
    } else {
      kept++;
      keptByStatus[last.status] = (keptByStatus[last.status] ?? 0) + 1;
    }
  }
  return {
    runId,
    runDir,
    rerun,
    reasons,
    kept,
    keptByStatus,
    changes,
    keepsResult: (r) => {
      const hash = planHash.get(r.id);
      return hash !== undefined && r.workflowHash === hash;
    },
    notes,
  };
}

/** The `run started` event's view of a decision. */
export function resumedInfo(d: ResumeDecision): ResumedInfo {
  return {
    kept: d.kept,
    keptByStatus: { ...d.keptByStatus },
    rerun: d.rerun.length,
    reasons: { ...d.reasons },
  };
}

/** One line about a resume decision, for the log: what is kept, what runs again and why. */
export function describeResume(d: ResumeDecision): string {
  const keptParts = Object.entries(d.keptByStatus).map(([status, n]) => `${n} ${status}`);
  const why = (Object.entries(d.reasons) as Array<[keyof RerunReasons, number]>)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${n} ${reason}`);
  const kept = d.kept === 0 ? 'no jobs kept' : `${plural(d.kept, 'job')} kept (${keptParts.join(', ')})`;
  const rerun =
    d.rerun.length === 0
      ? 'nothing to run again'
      : `${plural(d.rerun.length, 'job')} to run (${why.join(', ')})`;
  return `resuming run ${d.runId}: ${kept}; ${rerun}`;
}
