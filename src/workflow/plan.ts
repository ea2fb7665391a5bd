/**
 * The run plan: every job of every workflow, in order, with its global index
 * and slug, after the checks that need per-job values. `buildPlan` evaluates
 * every template whose contexts are known before the run (sandbox
 * image/snapshot/env, model names, upload sources and targets) for every
 * job, so that bad input is reported with its position before any sandbox
 * is created (product.md §6.5).
 */
import fs from 'node:fs';
import path from 'node:path';
import { TemplateError, type Template } from '../expr/template.js';
import type { ExprValue } from '../expr/evaluate.js';
import type { Diagnostic, Location } from './diagnostic.js';
import { expandWorkflow, itemLabel, MAX_JOBS_PER_WORKFLOW, type ExpandedJob } from './expand.js';
import { baseContexts, type RunInfo } from './job-context.js';
import { assignSlugs } from './slug.js';
import type { Job, SourceRef, Workflow } from './types.js';

export interface PlanOptions {
  /** Directory that display paths (e.g. of dataset files) are relative to; default `process.cwd()`. */
  cwd?: string;
  /** Run id visible to templates while planning (`run.id`); default `plan`. */
  runId?: string;
  /** Per-workflow job limit (default {@link MAX_JOBS_PER_WORKFLOW}). */
  maxJobsPerWorkflow?: number;
  /**
   * Per-job problems reported per workflow before the rest are summarised in
   * one diagnostic (a broken template in a 10,000-item dataset should not
   * print 10,000 lines). Default 20.
   */
  maxJobDiagnostics?: number;
}

export interface Plan {
  /** All jobs, `index` 0..n-1 in this order; ids and slugs unique. */
  jobs: Job[];
}

export interface PlanResult {
  /** Present when there is no error diagnostic (warnings allowed). */
  plan?: Plan;
  diagnostics: Diagnostic[];
}

function locationOf(ref: SourceRef): Location {
  return { file: ref.file, start: { line: ref.line, col: ref.col } };
}

/** `abs` relative to `cwd` when it lies below it, else absolute. */
function displayPath(abs: string, cwd: string): string {
  const rel = path.relative(cwd, abs);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
}

/**
 * Collects per-job diagnostics of one workflow. The same problem at the same
 * place (say, a broken template that fails for every job) is reported once,
 * naming the first job and how many others; distinct problems are capped.
 */
class JobDiagnostics {
  readonly #entries = new Map<string, { d: Diagnostic; jobId: string | undefined; others: number }>();
  readonly #cap: number;
  #dropped = 0;

  constructor(cap: number) {
    this.#cap = cap;
  }

  /**
   * With `jobId`, `flush` appends "(in job '…' and N other jobs)" to the
   * message; `others` counts jobs known to share the problem without being checked.
   */
  add(d: Diagnostic, jobId?: string, others = 0): void {
    const key = `${d.location.file}:${d.location.start.line}:${d.location.start.col}:${d.path}:${d.message}`;
    const entry = this.#entries.get(key);
    if (entry) {
      if (entry.jobId !== jobId) entry.others += 1 + others;
      return;
    }
    if (this.#entries.size >= this.#cap) {
      this.#dropped++;
      return;
    }
    this.#entries.set(key, { d, jobId, others });
  }

  /** Appends the collected diagnostics (and a "… more" summary) to `out`. */
  flush(workflow: Workflow, out: Diagnostic[]): void {
    for (const { d, jobId, others } of this.#entries.values()) {
      if (jobId === undefined) {
        out.push(d);
        continue;
      }
      const more = others > 0 ? ` and ${others} other job${others === 1 ? '' : 's'}` : '';
      out.push({ ...d, message: `${d.message} (in job '${jobId}'${more})` });
    }
    if (this.#dropped === 0) return;
    out.push({
      severity: 'error',
      path: '',
      message: `${this.#dropped} more per-job problem${this.#dropped === 1 ? '' : 's'} in this workflow not shown`,
      location: locationOf(workflow.loc),
    });
  }
}

/** Where a template starts in its file, else `fallback`. */
function templateRef(template: Template, fallback: SourceRef): SourceRef {
  const origin = template.origin;
  if (!origin) return fallback;
  const pos = origin.locate(0);
  return { file: origin.file, line: pos.line, col: pos.col };
}

/** One template `buildPlan` evaluates for every job, and what its value must satisfy. */
interface StaticCheck {
  path: string;
  template: Template;
  /** Where to point when the template has no origin. */
  fallback: SourceRef;
  /** A problem with the evaluated text, or `undefined`. */
  check?: (value: string) => string | undefined;
  /** References nothing but `vars`: the same value for every job, so it is evaluated once. */
  jobIndependent: boolean;
}

/**
 * The templates of a workflow whose contexts are all known before the run
 * (literal ones need no per-job evaluation; literal upload sources were
 * checked when the file was loaded).
 */
function staticChecks(wf: Workflow, exists: (p: string) => boolean): StaticCheck[] {
  const checks: StaticCheck[] = [];
  const add = (
    path: string,
    template: Template | undefined,
    fallback: SourceRef,
    check?: StaticCheck['check'],
  ): void => {
    if (!template || template.isLiteral) return;
    const jobIndependent = template.references().every((r) => r.path[0] === 'vars');
    checks.push({ path, template, fallback, jobIndependent, ...(check ? { check } : {}) });
  };
  for (const [name, t] of Object.entries(wf.sandbox.env)) add(`sandbox.env.${name}`, t, wf.loc);
  add('sandbox.image', wf.sandbox.image, wf.loc);
  add('sandbox.snapshot', wf.sandbox.snapshot, wf.loc);
  const modelName = (t: Template) => (v: string) =>
    v.trim() === '' ? `'${t.source}' evaluates to an empty model name` : undefined;
  if (wf.model.name) add('model.name', wf.model.name, wf.loc, modelName(wf.model.name));
  wf.steps.forEach((s, i) => {
    const t = s.kind === 'prompt' ? s.model?.name : undefined;
    if (t) add(`steps[${i}].model.name`, t, s.loc, modelName(t));
  });
  const dir = path.dirname(wf.absPath);
  wf.uploads.forEach((up, i) => {
    add(`uploads[${i}].from`, up.from, up.loc, (v) => {
      if (v.trim() === '') return `'${up.from.source}' evaluates to an empty path`;
      const abs = path.resolve(dir, v);
      return exists(abs) ? undefined : `upload source '${v}' does not exist (${abs})`;
    });
    add(`uploads[${i}].to`, up.to, up.loc, (v) =>
      v.trim() === '' ? `'${up.to.source}' evaluates to an empty sandbox path` : undefined,
    );
  });
  return checks;
}

/** Evaluates one check for one job; reports a problem for `job` (and `others` more jobs). */
function runCheck(
  c: StaticCheck,
  contexts: Record<string, ExprValue>,
  job: Job,
  others: number,
  sink: JobDiagnostics,
): void {
  let value: string;
  try {
    value = c.template.evaluate({ contexts });
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    const file = e.file ?? c.fallback.file;
    const start = e.position ?? { line: c.fallback.line, col: c.fallback.col };
    sink.add(
      { severity: 'error', path: c.path, message: e.reason, location: { file, start } },
      job.id,
      others,
    );
    return;
  }
  const problem = c.check?.(value);
  if (problem !== undefined) {
    const at = locationOf(templateRef(c.template, c.fallback));
    sink.add({ severity: 'error', path: c.path, message: problem, location: at }, job.id, others);
  }
}

/** Checks the jobs of one workflow (contiguous in the plan). */
function checkJobs(
  jobs: readonly Job[],
  run: RunInfo,
  sink: JobDiagnostics,
  exists: (p: string) => boolean,
): void {
  const first = jobs[0];
  if (!first) return;
  const checks = staticChecks(first.workflow, exists);
  if (checks.length === 0) return;
  const once = checks.filter((c) => c.jobIndependent);
  const perJob = checks.filter((c) => !c.jobIndependent);
  if (once.length > 0) {
    const contexts = baseContexts(first, run);
    for (const c of once) runCheck(c, contexts, first, jobs.length - 1, sink);
  }
  if (perJob.length === 0) return;
  for (const job of jobs) {
    const contexts = baseContexts(job, run);
    for (const c of perJob) runCheck(c, contexts, job, 0, sink);
  }
}

/** A planned job: the expanded one plus its place in the run and its slug (no spreads: plans can be large). */
function toJob(j: ExpandedJob, index: number, slug: string): Job {
  const job: Job = { id: j.id, slug, workflow: j.workflow, index };
  if (j.matrix) job.matrix = j.matrix;
  if (j.item) job.item = j.item;
  if (j.itemLine !== undefined) job.itemLine = j.itemLine;
  if (j.repeat) job.repeat = j.repeat;
  return job;
}

/** Where an expansion problem at `jsonPath` should point. */
function expansionRef(wf: Workflow, jsonPath: string): SourceRef {
  if (jsonPath.startsWith('strategy.matrix')) return wf.strategy.matrix?.loc ?? wf.loc;
  if (jsonPath.startsWith('strategy.dataset')) return wf.strategy.dataset?.loc ?? wf.loc;
  return wf.loc;
}

/**
 * Expands every workflow into jobs and checks them (see the module comment).
 * Job order: workflows in the given order; within a workflow, matrix
 * combinations, then dataset items, then repeats. Errors: workflow names used
 * twice, duplicate job ids (positioned at the dataset line or the matrix),
 * expansion problems, and per-job template/upload problems. `plan` is absent
 * when there is any error.
 */
export function buildPlan(workflows: readonly Workflow[], options: PlanOptions = {}): PlanResult {
  const cwd = options.cwd ?? process.cwd();
  const runId = options.runId ?? 'plan';
  const cap = options.maxJobDiagnostics ?? 20;
  const diagnostics: Diagnostic[] = [];

  // Workflow names must be unique across the run (their jobs' ids would clash).
  const byName = new Map<string, Workflow>();
  const clashing = new Set<Workflow>();
  for (const wf of workflows) {
    const first = byName.get(wf.name);
    if (first) {
      clashing.add(wf);
      diagnostics.push({
        severity: 'error',
        path: 'name',
        message: `workflow name '${wf.name}' is also used by ${first.file}; names must be unique across one run`,
        location: locationOf(wf.loc),
      });
    } else byName.set(wf.name, wf);
  }

  const expanded: ExpandedJob[] = [];
  const sinks = new Map<Workflow, JobDiagnostics>();
  const sinkFor = (wf: Workflow): JobDiagnostics => {
    let s = sinks.get(wf);
    if (!s) sinks.set(wf, (s = new JobDiagnostics(cap)));
    return s;
  };

  for (const wf of workflows) {
    if (clashing.has(wf)) continue;
    const { jobs, problems } = expandWorkflow(wf, options.maxJobsPerWorkflow ?? MAX_JOBS_PER_WORKFLOW);
    for (const p of problems) {
      diagnostics.push({
        severity: 'error',
        path: p.path,
        message: p.message,
        location: locationOf(expansionRef(wf, p.path)),
      });
    }
    // Duplicate ids inside one workflow (duplicate dataset ids, or matrix values that print alike).
    const firstById = new Map<string, ExpandedJob>();
    for (const job of jobs) {
      const first = firstById.get(job.id);
      if (!first) {
        firstById.set(job.id, job);
        continue;
      }
      const dataset = wf.strategy.dataset;
      if (dataset && job.item && job.itemLine !== undefined && first.itemLine !== job.itemLine) {
        const [key] = itemLabel(job.item, job.itemLine);
        sinkFor(wf).add({
          severity: 'error',
          path: 'strategy.dataset',
          message: `duplicate job id '${job.id}': this item and the one on line ${first.itemLine ?? '?'} have the same '${key}'; give each item a unique '${key}'`,
          location: { file: displayPath(dataset.file, cwd), start: { line: job.itemLine, col: 1 } },
        });
      } else {
        sinkFor(wf).add({
          severity: 'error',
          path: 'strategy.matrix',
          message: `duplicate job id '${job.id}': two matrix combinations give the same id`,
          location: locationOf(wf.strategy.matrix?.loc ?? wf.loc),
        });
      }
    }
    expanded.push(...jobs);
  }

  const slugs = assignSlugs(expanded.map((j) => j.id));
  const jobs: Job[] = expanded.map((j, index) => toJob(j, index, slugs[index] ?? String(index)));

  const existsCache = new Map<string, boolean>();
  const exists = (p: string): boolean => {
    let v = existsCache.get(p);
    if (v === undefined) existsCache.set(p, (v = fs.existsSync(p)));
    return v;
  };
  const run: RunInfo = { runId, attempt: 1 };
  // Jobs of one workflow are contiguous.
  for (let start = 0; start < jobs.length;) {
    const wf = jobs[start]?.workflow;
    let end = start;
    while (end < jobs.length && jobs[end]?.workflow === wf) end++;
    if (wf) checkJobs(jobs.slice(start, end), run, sinkFor(wf), exists);
    start = end;
  }
  for (const [wf, sink] of sinks) sink.flush(wf, diagnostics);

  const failed = diagnostics.some((d) => d.severity === 'error');
  return failed ? { diagnostics } : { plan: { jobs }, diagnostics };
}

/** A `--shard i/n` selection: 1-based `index` of `total`. */
export interface Shard {
  index: number;
  total: number;
}

/**
 * The jobs of one shard: round-robin over the plan order (job `k` belongs to
 * shard `k mod total + 1`), so every shard gets a share of each workflow's
 * matrix and the shards together are exactly the plan.
 */
export function selectShard<T extends { index: number }>(jobs: readonly T[], shard: Shard): T[] {
  return jobs.filter((job) => job.index % shard.total === shard.index - 1);
}
