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
import { baseContexts, resolveUpload, type RunInfo } from './job-context.js';
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

  /** With `jobId`, `flush` appends "(in job '…' and N other jobs)" to the message. */
  add(d: Diagnostic, jobId?: string): void {
    const key = `${d.location.file}:${d.location.start.line}:${d.location.start.col}:${d.path}:${d.message}`;
    const entry = this.#entries.get(key);
    if (entry) {
      if (entry.jobId !== jobId) entry.others++;
      return;
    }
    if (this.#entries.size >= this.#cap) {
      this.#dropped++;
      return;
    }
    this.#entries.set(key, { d, jobId, others: 0 });
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

/**
 * Evaluates `template` and reports an evaluation error as a diagnostic at
 * the template's own position (or `fallback`). Returns the text, or
 * `undefined` after an error.
 */
function tryEvaluate(
  template: Template,
  contexts: Record<string, ExprValue>,
  jsonPath: string,
  fallback: SourceRef,
  job: ExpandedJob,
  sink: JobDiagnostics,
): string | undefined {
  try {
    return template.evaluate({ contexts });
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    const file = e.file ?? fallback.file;
    const start = e.position ?? { line: fallback.line, col: fallback.col };
    sink.add({ severity: 'error', path: jsonPath, message: e.reason, location: { file, start } }, job.id);
    return undefined;
  }
}

/** Where a template starts in its file, else `fallback`. */
function templateRef(template: Template, fallback: SourceRef): SourceRef {
  const origin = template.origin;
  if (!origin) return fallback;
  const pos = origin.locate(0);
  return { file: origin.file, line: pos.line, col: pos.col };
}

/** Per-job checks of everything that can be evaluated before the run. */
function checkJob(job: Job, run: RunInfo, sink: JobDiagnostics, exists: (p: string) => boolean): void {
  const wf = job.workflow;
  const contexts = baseContexts(job, run);
  const env: Record<string, string> = {};
  let envOk = true;
  for (const [name, template] of Object.entries(wf.sandbox.env)) {
    if (template.isLiteral) {
      env[name] = template.source;
      continue;
    }
    const v = tryEvaluate(template, contexts, `sandbox.env.${name}`, wf.loc, job, sink);
    if (v === undefined) envOk = false;
    else env[name] = v;
  }
  // Later templates may read `env`; with a broken env they would only repeat its error.
  if (!envOk) return;
  const full = { ...contexts, env };

  for (const key of ['image', 'snapshot'] as const) {
    const t = wf.sandbox[key];
    if (t && !t.isLiteral) tryEvaluate(t, full, `sandbox.${key}`, wf.loc, job, sink);
  }

  const modelTemplates: Array<[string, Template | undefined]> = [['model.name', wf.model.name]];
  wf.steps.forEach((s, i) => {
    if (s.kind === 'prompt') modelTemplates.push([`steps[${i}].model.name`, s.model?.name]);
  });
  for (const [jsonPath, t] of modelTemplates) {
    if (!t || t.isLiteral) continue;
    const name = tryEvaluate(t, full, jsonPath, wf.loc, job, sink);
    if (name !== undefined && name.trim() === '') {
      sink.add(
        {
          severity: 'error',
          path: jsonPath,
          message: `'${t.source}' evaluates to an empty model name`,
          location: locationOf(templateRef(t, wf.loc)),
        },
        job.id,
      );
    }
  }

  wf.uploads.forEach((up, i) => {
    if (up.from.isLiteral && up.to.isLiteral) return;
    const from = tryEvaluate(up.from, full, `uploads[${i}].from`, up.loc, job, sink);
    const to = tryEvaluate(up.to, full, `uploads[${i}].to`, up.loc, job, sink);
    if (from === undefined || to === undefined) return;
    if (to.trim() === '') {
      sink.add(
        {
          severity: 'error',
          path: `uploads[${i}].to`,
          message: `'${up.to.source}' evaluates to an empty sandbox path`,
          location: locationOf(templateRef(up.to, up.loc)),
        },
        job.id,
      );
      return;
    }
    if (up.from.isLiteral) return; // literal sources were checked when the file was loaded
    if (from.trim() === '') {
      sink.add(
        {
          severity: 'error',
          path: `uploads[${i}].from`,
          message: `'${up.from.source}' evaluates to an empty path`,
          location: locationOf(templateRef(up.from, up.loc)),
        },
        job.id,
      );
      return;
    }
    const resolved = resolveUpload(job, up, full);
    if (!exists(resolved.from)) {
      sink.add(
        {
          severity: 'error',
          path: `uploads[${i}].from`,
          message: `upload source '${from}' does not exist (${resolved.from})`,
          location: locationOf(templateRef(up.from, up.loc)),
        },
        job.id,
      );
    }
  });
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
  const jobs: Job[] = expanded.map((j, index) => ({ ...j, index, slug: slugs[index] ?? String(index) }));

  const existsCache = new Map<string, boolean>();
  const exists = (p: string): boolean => {
    let v = existsCache.get(p);
    if (v === undefined) existsCache.set(p, (v = fs.existsSync(p)));
    return v;
  };
  for (const job of jobs) checkJob(job, { runId, attempt: 1 }, sinkFor(job.workflow), exists);
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
