/**
 * The output directory of one run (product.md §5):
 *
 * ```
 * <output-dir>/<run-id>/
 *   run.json  results.jsonl  summary.json  junit.xml
 *   jobs/<slug>/{result.json, log.txt, transcript.jsonl, artifacts/}
 * ```
 *
 * `results.jsonl` is the source of truth: one line per finished job,
 * appended and fsynced before `recordJob` resolves. Everything else is
 * written atomically (temp file + rename). Every byte passes through the
 * run's `Redactor`. The writer keeps only compact summary entries in
 * memory; JUnit is streamed at the end from the per-job `result.json` files.
 */
import { mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, InternalError } from '../errors.js';
import type { Job } from '../workflow/types.js';
import type { ExprValue } from '../expr/evaluate.js';
import type { JobResult, RunSummary } from './types.js';
import { Redactor } from '../util/redact.js';
import { writeJsonAtomic } from './atomic.js';
import { SummaryBuilder } from './summary.js';
import { JobFiles, type JobFilesOptions } from './job-files.js';
import { writeJUnitReport } from './junit.js';
import { readRunRecord, scanResults } from './read-results.js';
import { RunLock } from './run-lock.js';

/** Version of the run.json / results layout; bump on incompatible changes. */
export const RUN_FORMAT_VERSION = 1;

/** A workflow as recorded in run.json: identity plus the lines annotations point at. */
export interface PlanWorkflow {
  name: string;
  file: string;
  hash: string;
  /** Line of the workflow's root (annotations without a failing step). */
  line: number;
  /** Step id → line of the step in the file (main and `finally` steps). */
  steps: Record<string, number>;
}

/** A job as recorded in run.json (no secret values, no dataset item bodies). */
export interface PlanJob {
  id: string;
  slug: string;
  workflow: string;
  file: string;
  index: number;
  matrix?: Readonly<Record<string, ExprValue>>;
  /** 1-based line of the dataset item (the item itself stays in the dataset file). */
  itemLine?: number;
  repeat?: { index: number; total: number };
}

/** The expanded plan as recorded in run.json. */
export interface PlanRecord {
  workflows: PlanWorkflow[];
  jobs: PlanJob[];
}

/** One invocation of `rho-flow run` on this run dir (the first, then each `--resume`). */
export interface RunSession {
  argv: string[];
  startedAt: string;
  endedAt?: string;
  resumed: boolean;
  exitCode?: number;
  interrupted?: RunSummary['interrupted'];
}

/** The content of run.json. */
export interface RunRecord {
  formatVersion: number;
  runId: string;
  version: string;
  argv: string[];
  startedAt: string;
  endedAt?: string;
  options: Record<string, unknown>;
  plan: PlanRecord;
  sessions: RunSession[];
}

/** Builds the run.json plan from expanded jobs. */
export function planRecordFromJobs(jobs: readonly Job[]): PlanRecord {
  const workflows = new Map<string, PlanWorkflow>();
  const planJobs: PlanJob[] = [];
  for (const job of jobs) {
    const wf = job.workflow;
    if (!workflows.has(wf.name)) {
      const steps: Record<string, number> = {};
      for (const s of [...wf.steps, ...wf.finally]) steps[s.id] = s.loc.line;
      workflows.set(wf.name, { name: wf.name, file: wf.file, hash: wf.hash, line: wf.loc.line, steps });
    }
    planJobs.push({
      id: job.id,
      slug: job.slug,
      workflow: wf.name,
      file: wf.file,
      index: job.index,
      ...(job.matrix ? { matrix: job.matrix } : {}),
      ...(job.itemLine !== undefined ? { itemLine: job.itemLine } : {}),
      ...(job.repeat ? { repeat: job.repeat } : {}),
    });
  }
  return { workflows: [...workflows.values()], jobs: planJobs };
}

/** Finds the line a GitHub annotation should point at: the step's, else the workflow's. */
export type LineLocator = (workflow: string, stepId?: string) => number | undefined;

/** A `LineLocator` over a recorded plan. */
export function lineLocator(plan: Pick<PlanRecord, 'workflows'>): LineLocator {
  const byName = new Map(plan.workflows.map((w) => [w.name, w]));
  return (workflow, stepId) => {
    const wf = byName.get(workflow);
    if (!wf) return undefined;
    return (stepId !== undefined ? wf.steps[stepId] : undefined) ?? wf.line;
  };
}

/** A path segment that is safe as a folder name under `jobs/`. */
function assertSlug(slug: string): void {
  if (slug === '' || slug === '.' || slug === '..' || /[/\\\0]/.test(slug)) {
    throw new InternalError(`unsafe job slug: ${JSON.stringify(slug)}`);
  }
}

export interface RunWriterOptions {
  /** `-o` directory; the run lives in `<outputDir>/<runId>`. */
  outputDir: string;
  runId: string;
  argv: readonly string[];
  /** rho-flow version. */
  version: string;
  plan: PlanRecord;
  /** Effective options (JSON-serializable, secrets already left out; redacted anyway). */
  options: Record<string, unknown>;
  redactor?: Redactor;
  /** Default: now. */
  startedAt?: string;
  /**
   * Continue an existing run dir (`--resume`): earlier results are read back
   * into the summary and new ones are appended after them. Without it, an
   * existing run.json is an error (run ids must not collide).
   */
  resume?: boolean;
  /**
   * With `resume`: which earlier results still count in the summary (e.g.
   * only those of jobs still in the plan, made by the same workflow
   * content). The others stay in results.jsonl as history. Default: all.
   */
  keepResult?: (result: JobResult) => boolean;
  /** `--shard i/n`: recorded in summary.json. */
  shard?: { index: number; total: number };
  /** File name of the JUnit report (default `junit.xml`; shards: `junit-2-of-4.xml`). */
  junitFile?: string;
  /** fsync results and reports (default true). Off only for throwaway output (benchmarks). */
  fsync?: boolean;
  /** Per-job file caps (see `JobFiles`). */
  maxLogBytes?: number;
  maxTranscriptBytes?: number;
}

/**
 * Writes one run's output directory. `open` → `recordJob` per finished job
 * (any order, concurrently) → `finish` once. Safe to record the same job id
 * again (retry/resume): the last result wins in the summary and JUnit.
 */
export class RunWriter {
  readonly runDir: string;
  readonly resultsPath: string;
  readonly summaryPath: string;
  readonly junitPath: string;
  readonly runJsonPath: string;
  readonly #redactor: Redactor;
  readonly #summary = new SummaryBuilder();
  readonly #record: RunRecord;
  readonly #session: RunSession;
  readonly #fsync: boolean;
  readonly #jobFileCaps: Pick<JobFilesOptions, 'maxLogBytes' | 'maxTranscriptBytes'>;
  readonly #locate: LineLocator;
  readonly #shard: RunWriterOptions['shard'];
  /** Lines waiting for the next group commit to results.jsonl, in call order. */
  #pending: Array<{ line: string; resolve: () => void; reject: (e: unknown) => void }> = [];
  /** The group-commit loop while it runs; one at a time, so lines never interleave. */
  #flushing: Promise<void> | undefined;
  #syncs = 0;
  readonly #inFlight = new Set<Promise<void>>();
  /** Job folders known to exist (saves a mkdir per record). */
  readonly #jobDirs = new Set<string>();
  #finished: Promise<RunSummary> | undefined;
  /** This process's hold on the run dir, released when the run finishes. */
  #lock: RunLock | undefined;

  private constructor(options: RunWriterOptions, record: RunRecord, session: RunSession) {
    this.runDir = join(options.outputDir, options.runId);
    this.resultsPath = join(this.runDir, 'results.jsonl');
    this.summaryPath = join(this.runDir, 'summary.json');
    this.junitPath = join(this.runDir, options.junitFile ?? 'junit.xml');
    this.runJsonPath = join(this.runDir, 'run.json');
    this.#redactor = options.redactor ?? new Redactor([]);
    this.#record = record;
    this.#session = session;
    this.#fsync = options.fsync !== false;
    this.#jobFileCaps = {
      ...(options.maxLogBytes !== undefined ? { maxLogBytes: options.maxLogBytes } : {}),
      ...(options.maxTranscriptBytes !== undefined ? { maxTranscriptBytes: options.maxTranscriptBytes } : {}),
    };
    this.#locate = lineLocator(record.plan);
    this.#shard = options.shard;
  }

  /**
   * Creates `<outputDir>/<runId>/` and `jobs/`, writes run.json atomically
   * and creates results.jsonl. Without `resume`, an existing run.json is a
   * `UserError`. With `resume`, the earlier run.json must be readable; its
   * results are read back first (a torn last line is ignored and terminated
   * so the next record starts on a fresh line).
   */
  static async open(options: RunWriterOptions): Promise<RunWriter> {
    if (!/^[A-Za-z0-9._-]+$/.test(options.runId) || options.runId === '.' || options.runId === '..') {
      throw new UserError(`invalid run id '${options.runId}': use letters, digits, '.', '_' and '-'`);
    }
    const redactor = options.redactor ?? new Redactor([]);
    const runDir = join(options.outputDir, options.runId);
    const startedAt = options.startedAt ?? new Date().toISOString();
    const session: RunSession = { argv: [...options.argv], startedAt, resumed: options.resume === true };
    const hasRunJson = await stat(join(runDir, 'run.json')).then(
      () => true,
      () => false,
    );
    if (hasRunJson && !options.resume) {
      throw new UserError(
        `run directory ${runDir} already exists (use --resume ${options.runId} to continue it)`,
      );
    }
    await mkdir(join(runDir, 'jobs'), { recursive: true });
    // One process per run dir: a concurrent run or resume of the same run is refused.
    const lock = await RunLock.acquire(runDir, options.runId);
    try {
      // Read under the lock. Resuming a run whose run.json is unreadable would silently drop its
      // history: refuse.
      const existing = hasRunJson ? await readRunRecord(runDir) : undefined;
      return await RunWriter.#openLocked(options, { runDir, redactor, session, existing, lock });
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  static async #openLocked(
    options: RunWriterOptions,
    opened: {
      runDir: string;
      redactor: Redactor;
      session: RunSession;
      existing: RunRecord | undefined;
      lock: RunLock;
    },
  ): Promise<RunWriter> {
    const { redactor, session, existing, lock } = opened;
    const startedAt = session.startedAt;
    const record: RunRecord = redactor.redactValue({
      formatVersion: RUN_FORMAT_VERSION,
      runId: options.runId,
      version: options.version,
      argv: existing?.argv ?? [...options.argv],
      startedAt: existing?.startedAt ?? startedAt,
      options: options.options,
      plan: options.plan,
      sessions: [...(existing?.sessions ?? []), session],
    });
    const writer = new RunWriter(
      { ...options, redactor },
      record,
      record.sessions[record.sessions.length - 1] ?? session,
    );
    writer.#lock = lock;
    if (options.resume) {
      const keep = options.keepResult;
      await scanResults(writer.resultsPath, (result) => {
        if (!keep || keep(result)) writer.#summary.add(result);
      });
    }
    await writer.#writeRunJson();
    await writer.#terminateTornLine();
    return writer;
  }

  /** `jobs/<slug>` of this run. */
  jobDir(slug: string): string {
    assertSlug(slug);
    return join(this.runDir, 'jobs', slug);
  }

  /** Opens the job's `log.txt` / `transcript.jsonl` (creating `jobs/<slug>/artifacts/`). */
  async openJob(slug: string): Promise<JobFiles> {
    const files = await JobFiles.open({
      dir: this.jobDir(slug),
      redactor: this.#redactor,
      ...this.#jobFileCaps,
    });
    this.#jobDirs.add(slug);
    return files;
  }

  /** The line an annotation for `stepId` of `workflow` points at. */
  locate(workflow: string, stepId?: string): number | undefined {
    return this.#locate(workflow, stepId);
  }

  /**
   * Records a finished job: appends it to results.jsonl and fsyncs, writes
   * `jobs/<slug>/result.json` atomically (temp file + rename, not fsynced: a
   * copy of the durable line), and folds it into the summary. Resolves once
   * both are written. Keeps no reference to `result`.
   */
  async recordJob(result: JobResult): Promise<void> {
    if (this.#finished) throw new InternalError(`recordJob(${result.id}) after finish()`);
    const done = this.#record1(result);
    this.#inFlight.add(done);
    try {
      await done;
    } finally {
      this.#inFlight.delete(done);
    }
  }

  async #record1(result: JobResult): Promise<void> {
    assertSlug(result.slug);
    const safe = this.#redactor.redactValue(result);
    const appended = this.#append(JSON.stringify(safe) + '\n');
    const dir = this.jobDir(safe.slug);
    if (!this.#jobDirs.has(safe.slug)) {
      await mkdir(dir, { recursive: true });
      this.#jobDirs.add(safe.slug);
    }
    // result.json is a copy of the line just appended and fsynced to results.jsonl (the source of
    // truth, which --resume reads): it is replaced atomically but not fsynced, which halves the
    // fsyncs per job. After a crash it may be missing; JUnit then falls back to the summary entry.
    await Promise.all([appended, writeJsonAtomic(join(dir, 'result.json'), safe, { fsync: false })]);
    this.#summary.add(safe);
  }

  /**
   * Appends `line` to results.jsonl; resolves once it is on disk (fsynced).
   * Group commit: lines that arrive while a write+fsync is under way go out
   * together in the next one, so N jobs finishing at once cost one or two
   * fsyncs instead of N back to back — each of which every later job waited
   * for (issue 7, target 1: 8 concurrent jobs spent ~50 ms here per result).
   */
  #append(line: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ line, resolve, reject });
      this.#flushing ??= this.#flushLoop();
    });
  }

  async #flushLoop(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0);
      try {
        // Opened per batch: no descriptor outlives a crash or an abandoned writer.
        const fh = await open(this.resultsPath, 'a');
        try {
          await fh.appendFile(batch.map((b) => b.line).join(''));
          if (this.#fsync) {
            await fh.sync();
            this.#syncs++;
          }
        } finally {
          await fh.close();
        }
        for (const b of batch) b.resolve();
      } catch (e) {
        // A failed append must not poison later ones; the callers of this batch see it.
        for (const b of batch) b.reject(e);
      }
    }
    this.#flushing = undefined;
  }

  /** Counts so far (for progress displays). */
  get counts(): RunSummary['counts'] {
    return this.#summary.counts();
  }

  /**
   * Writes summary.json and the JUnit report (both atomically), updates
   * run.json with the end time, closes results.jsonl and returns the
   * summary. Idempotent: a second call returns the first call's promise.
   */
  finish(options: {
    endedAt?: string;
    interrupted?: RunSummary['interrupted'];
    exitCode: number;
  }): Promise<RunSummary> {
    this.#finished ??= this.#finish(options);
    return this.#finished;
  }

  async #finish(options: {
    endedAt?: string;
    interrupted?: RunSummary['interrupted'];
    exitCode: number;
  }): Promise<RunSummary> {
    const endedAt = options.endedAt ?? new Date().toISOString();
    // A job recorded just before finish() still belongs in the summary.
    await Promise.allSettled([...this.#inFlight]);
    await this.#flushing;
    const summary: RunSummary = {
      ...this.#summary.build({
        runId: this.#record.runId,
        startedAt: this.#session.startedAt,
        endedAt,
        exitCode: options.exitCode,
        ...(options.interrupted ? { interrupted: options.interrupted } : {}),
      }),
      ...(this.#shard ? { shard: { index: this.#shard.index, total: this.#shard.total } } : {}),
    };
    await writeJsonAtomic(this.summaryPath, summary, { fsync: this.#fsync });
    await writeJUnitReport({
      path: this.junitPath,
      summary,
      runDir: this.runDir,
      redactor: this.#redactor,
      fsync: this.#fsync,
    });
    this.#session.endedAt = endedAt;
    this.#session.exitCode = options.exitCode;
    if (options.interrupted) this.#session.interrupted = options.interrupted;
    this.#record.endedAt = endedAt;
    await this.#writeRunJson();
    this.#lock?.release();
    return summary;
  }

  /**
   * What the writer holds in memory, for tests: summary entries only (their
   * count and serialized size) and how many fsyncs results.jsonl got.
   * @internal
   */
  debugState(): { entries: number; entryBytes: number; entryKeys: string[]; syncs: number } {
    const s = this.#summary.debugState();
    return { entries: s.entries, entryBytes: s.bytes, entryKeys: s.keys, syncs: this.#syncs };
  }

  async #writeRunJson(): Promise<void> {
    await writeJsonAtomic(this.runJsonPath, this.#record, { fsync: this.#fsync });
  }

  /**
   * After a crash the last line of results.jsonl may be torn (no newline).
   * Appending to it would glue the next record onto the fragment; end it
   * with a newline instead, so the fragment stays one ignorable bad line.
   */
  async #terminateTornLine(): Promise<void> {
    const fh = await open(this.resultsPath, 'a+');
    try {
      const size = (await fh.stat()).size;
      if (size === 0) return;
      const { buffer } = await fh.read(Buffer.alloc(1), 0, 1, size - 1);
      if (buffer[0] !== 0x0a) {
        await fh.appendFile('\n');
        if (this.#fsync) await fh.sync();
      }
    } finally {
      await fh.close();
    }
  }
}
