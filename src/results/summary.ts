/**
 * Builds the `RunSummary` (summary.json) incrementally from `JobResult`s,
 * keeping only a compact entry per job: a 5,000-job batch holds 5,000 small
 * entries, never 5,000 full results with their step outputs. Also the
 * number formatting shared by every human-facing report.
 */
import type { Usage } from '../agent/model.js';
import { addUsage, ZERO_USAGE } from '../agent/model.js';
import type {
  JobResult,
  JobStatus,
  PassAtK,
  RepeatGroup,
  RunCounts,
  RunSummary,
  StepResult,
} from './types.js';
import { unreachable } from '../util/unreachable.js';

/** One job as the summary keeps it (a `RunSummary.jobs` entry plus what grouping and ordering need). */
export type SummaryJob = RunSummary['jobs'][number];

interface Entry {
  job: SummaryJob;
  /** Plan position, for a stable order whatever order jobs finish in. */
  index: number;
  costUsd: number | undefined;
  repeat: { base: string; total: number } | undefined;
}

/** Longest error text a summary entry keeps (the full text is in results.jsonl). */
const MAX_ERROR_CHARS = 2000;

/**
 * Whether `next` replaces `prev` for the same job id: the last result wins
 * (retries, resume), except that a `skipped` record never hides a real
 * outcome recorded earlier.
 */
export function supersedes(prev: { status: JobStatus }, next: { status: JobStatus }): boolean {
  return !(next.status === 'skipped' && prev.status !== 'skipped');
}

/** The id of a repeated job without its `#n` suffix (`fix[task=a]#2` → `fix[task=a]`). */
export function repeatBaseId(id: string): string {
  return id.replace(/#\d+$/, '');
}

/**
 * The step that decided a failed / timed-out / error / cancelled job: the
 * first main step that did not pass and was not allowed to fail, else such a
 * `finally` step.
 */
export function decisiveStep(steps: readonly StepResult[]): StepResult | undefined {
  const bad = (s: StepResult): boolean =>
    s.status !== 'passed' && s.status !== 'skipped' && !s.continueOnError;
  return steps.find((s) => !s.finally && bad(s)) ?? steps.find((s) => s.finally && bad(s));
}

/** A job's error as one text: the job's own error, else the decisive step's. */
export function jobErrorText(result: Pick<JobResult, 'error' | 'steps' | 'status'>): string | undefined {
  if (result.status === 'passed') return undefined;
  const step = decisiveStep(result.steps);
  if (result.error) return result.error.message;
  if (step?.error) return `step ${step.id}: ${step.error.message}`;
  if (step?.exitCode !== undefined) return `step ${step.id} exited with code ${step.exitCode}`;
  if (step) return `step ${step.id} ${step.status}`;
  return undefined;
}

/** First non-empty line of `text`, trimmed and capped (for tables and annotations). */
export function firstLine(text: string | undefined, max = 300): string {
  if (text === undefined) return '';
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  const t = line.trim();
  return t.length <= max ? t : `${t.slice(0, max - 1)}…`;
}

/** Compact summary entry of a result (no step outputs, no transcript, bounded error text). */
export function summaryJobOf(result: JobResult): SummaryJob {
  const error = jobErrorText(result);
  const step = result.status === 'passed' ? undefined : decisiveStep(result.steps);
  return {
    id: result.id,
    slug: result.slug,
    workflow: result.workflow,
    file: result.file,
    status: result.status,
    attempts: result.attempts,
    durationMs: result.durationMs,
    usage: { ...result.usage },
    artifacts: result.artifacts.map((a) => ({ path: a.path, to: a.to, status: a.status })),
    ...(error !== undefined
      ? { error: error.length > MAX_ERROR_CHARS ? `${error.slice(0, MAX_ERROR_CHARS)}…` : error }
      : {}),
    ...(step ? { failedStep: step.id } : {}),
  };
}

/** Zeroed counts. */
export function emptyCounts(): RunCounts {
  return { passed: 0, failed: 0, timedOut: 0, error: 0, cancelled: 0, skipped: 0 };
}

/** Adds one job of `status` to `counts` (mutates and returns it). */
export function countStatus(counts: RunCounts, status: JobStatus): RunCounts {
  switch (status) {
    case 'passed':
      counts.passed++;
      break;
    case 'failed':
      counts.failed++;
      break;
    case 'timed-out':
      counts.timedOut++;
      break;
    case 'error':
      counts.error++;
      break;
    case 'cancelled':
      counts.cancelled++;
      break;
    case 'skipped':
      counts.skipped++;
      break;
    default:
      throw new Error(`Unknown job status: ${unreachable(status)}`);
  }
  return counts;
}

/** Total jobs in `counts`. */
export function totalOf(counts: RunCounts): number {
  return counts.passed + counts.failed + counts.timedOut + counts.error + counts.cancelled + counts.skipped;
}

/** passed / (passed + failed + timed-out), or null without a verdict (see `RunSummary.passRate`). */
export function passRateOf(counts: RunCounts): number | null {
  const verdicts = counts.passed + counts.failed + counts.timedOut;
  return verdicts === 0 ? null : counts.passed / verdicts;
}

function isVerdict(status: JobStatus): boolean {
  return status === 'passed' || status === 'failed' || status === 'timed-out';
}

/** pass@k data for jobs with `repeat`, grouped by id without `#n`, in first-seen order. */
export function repeatGroups(
  jobs: Iterable<{
    id: string;
    workflow: string;
    status: JobStatus;
    repeat?: { base: string; total: number };
  }>,
): { groups: RepeatGroup[]; passAtK: PassAtK } | undefined {
  const byId = new Map<string, RepeatGroup>();
  for (const j of jobs) {
    if (!j.repeat) continue;
    let g = byId.get(j.repeat.base);
    if (!g) {
      g = {
        id: j.repeat.base,
        workflow: j.workflow,
        k: j.repeat.total,
        verdicts: 0,
        passed: 0,
        passAt1: null,
        anyPass: false,
      };
      byId.set(j.repeat.base, g);
    }
    g.k = Math.max(g.k, j.repeat.total);
    if (isVerdict(j.status)) g.verdicts++;
    if (j.status === 'passed') {
      g.passed++;
      g.anyPass = true;
    }
  }
  if (byId.size === 0) return undefined;
  const groups = [...byId.values()];
  let sum = 0;
  let withVerdict = 0;
  let any = 0;
  const ks = new Set<number>();
  for (const g of groups) {
    ks.add(g.k);
    if (g.verdicts === 0) continue;
    g.passAt1 = g.passed / g.verdicts;
    sum += g.passAt1;
    withVerdict++;
    if (g.anyPass) any++;
  }
  const [onlyK] = ks;
  return {
    groups,
    passAtK: {
      k: ks.size === 1 && onlyK !== undefined ? onlyK : null,
      groups: groups.length,
      passAt1: withVerdict === 0 ? null : sum / withVerdict,
      anyPass: withVerdict === 0 ? null : any / withVerdict,
    },
  };
}

/** What `SummaryBuilder.build` needs besides the jobs. */
export interface SummaryFrame {
  runId: string;
  startedAt: string;
  endedAt: string;
  interrupted?: RunSummary['interrupted'];
  exitCode: number;
}

/**
 * Folds job results into a `RunSummary`. Recording the same job id again
 * replaces the earlier entry (last wins; see `supersedes`). Jobs are listed
 * in plan order (`JobResult.index`). Holds only compact entries.
 */
export class SummaryBuilder {
  readonly #entries = new Map<string, Entry>();

  /** Number of distinct jobs recorded. */
  get size(): number {
    return this.#entries.size;
  }

  /** Records `result`; returns false when an earlier outcome was kept (see `supersedes`). */
  add(result: JobResult): boolean {
    const prev = this.#entries.get(result.id);
    if (prev && !supersedes(prev.job, result)) return false;
    this.#entries.set(result.id, {
      job: summaryJobOf(result),
      index: result.index,
      costUsd: result.costUsd,
      repeat: result.repeat ? { base: repeatBaseId(result.id), total: result.repeat.total } : undefined,
    });
    return true;
  }

  /** The compact entry of a job, if recorded. */
  get(id: string): SummaryJob | undefined {
    return this.#entries.get(id)?.job;
  }

  /** Recorded jobs in plan order. */
  jobs(): SummaryJob[] {
    return this.#sorted().map((e) => e.job);
  }

  /** Current counts. */
  counts(): RunCounts {
    const counts = emptyCounts();
    for (const e of this.#entries.values()) countStatus(counts, e.job.status);
    return counts;
  }

  /** The summary of everything recorded so far. */
  build(frame: SummaryFrame): RunSummary {
    const sorted = this.#sorted();
    const counts = emptyCounts();
    let usage: Usage = { ...ZERO_USAGE };
    let cost: number | undefined;
    for (const e of sorted) {
      countStatus(counts, e.job.status);
      usage = addUsage(usage, e.job.usage);
      if (e.costUsd !== undefined) cost = (cost ?? 0) + e.costUsd;
    }
    const grouped = repeatGroups(
      sorted.map((e) => ({ ...e.job, ...(e.repeat ? { repeat: e.repeat } : {}) })),
    );
    const started = Date.parse(frame.startedAt);
    const ended = Date.parse(frame.endedAt);
    return {
      runId: frame.runId,
      startedAt: frame.startedAt,
      endedAt: frame.endedAt,
      durationMs: Number.isFinite(started) && Number.isFinite(ended) ? Math.max(0, ended - started) : 0,
      counts,
      passRate: passRateOf(counts),
      usage,
      ...(cost !== undefined ? { costUsd: roundCost(cost) } : {}),
      jobs: sorted.map((e) => e.job),
      ...(grouped ? { groups: grouped.groups, passAtK: grouped.passAtK } : {}),
      ...(frame.interrupted ? { interrupted: frame.interrupted } : {}),
      exitCode: frame.exitCode,
    };
  }

  /**
   * What the builder holds, for tests and diagnostics: entry count and the
   * serialized size of all entries (which must stay small per job).
   * @internal
   */
  debugState(): { entries: number; bytes: number; keys: string[] } {
    let bytes = 0;
    const keys = new Set<string>();
    for (const e of this.#entries.values()) {
      bytes += JSON.stringify(e).length;
      for (const k of Object.keys(e.job)) keys.add(k);
    }
    return { entries: this.#entries.size, bytes, keys: [...keys].sort() };
  }

  #sorted(): Entry[] {
    return [...this.#entries.values()].sort((a, b) => a.index - b.index);
  }
}

/** Costs are summed from many small floats; keep summary.json readable. */
function roundCost(usd: number): number {
  return Math.round(usd * 1e6) / 1e6;
}

// ---------------------------------------------------------------------------
// Formatting shared by the console summary, the GitHub summary and JUnit.

/** `0.4s`, `12.3s`, `1m12s`, `1h02m`: short, stable, no locale. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const totalS = Math.floor(ms / 1000);
  if (totalS < 3600) return `${Math.floor(totalS / 60)}m${String(totalS % 60).padStart(2, '0')}s`;
  const totalM = Math.floor(totalS / 60);
  return `${Math.floor(totalM / 60)}h${String(totalM % 60).padStart(2, '0')}m`;
}

/** `92.1%`, or `n/a` for null. */
export function formatPercent(rate: number | null): string {
  return rate === null ? 'n/a' : `${(Math.round(rate * 1000) / 10).toFixed(1)}%`;
}

/** `1,234,567` (fixed grouping, independent of the host locale). */
export function formatInt(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `$0.0123` / `$12.35`: enough digits to see small evaluation costs. */
export function formatCost(usd: number): string {
  return usd < 1 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

/** `12,000 in (3,000 cached) · 4,000 out` plus the cost when known. */
export function formatUsage(usage: Usage, costUsd?: number): string {
  const cached = usage.cachedInputTokens > 0 ? ` (${formatInt(usage.cachedInputTokens)} cached)` : '';
  const cost = costUsd !== undefined ? ` · ${formatCost(costUsd)}` : '';
  return `${formatInt(usage.inputTokens)} in${cached} · ${formatInt(usage.outputTokens)} out${cost}`;
}

/** `timed-out` → `timedOut` etc.: the `RunCounts` key of a status. */
export function countKey(status: JobStatus): keyof RunCounts {
  return status === 'timed-out' ? 'timedOut' : status;
}
