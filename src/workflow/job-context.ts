/**
 * The expression contexts a job knows before anything runs (`vars`, `matrix`,
 * `item`, `repeat`, `job`, `run`, `env`) and the per-job values computed from
 * them: sandbox image/snapshot/env, model names and upload paths. `buildPlan`
 * evaluates all of these for every job before any sandbox exists (so bad input
 * is reported up front), and the engine uses the same functions at run time.
 * The engine adds `secrets` and `steps` itself.
 */
import path from 'node:path';
import type { ExprContext, ExprValue } from '../expr/evaluate.js';
import type { Template } from '../expr/template.js';
import type { Job, ModelSettings, SourceRef, UploadSpec } from './types.js';

/** The run a job belongs to, as far as expressions can see it. */
export interface RunInfo {
  runId: string;
  /** 1-based attempt of the job (infrastructure retries start a new attempt). */
  attempt: number;
  /**
   * Secret values by secret name. When given, sandbox `env` templates that
   * use `${{ secrets.X }}` see them, so the `env` context holds the same
   * values the sandbox gets. Omit them for planning.
   */
  secrets?: Readonly<Record<string, string>>;
}

/**
 * Contexts without `env`: what sandbox env templates (and every other
 * per-job template) may use.
 */
export function baseContexts(job: Job, run: RunInfo): Record<string, ExprValue> {
  const wf = job.workflow;
  return {
    vars: { ...wf.vars },
    matrix: { ...(job.matrix ?? {}) },
    item: job.item ? { ...job.item } : {},
    // Present even without `strategy.repeat`, so `${{ repeat.index }}` is always 1-based.
    repeat: { index: job.repeat?.index ?? 1, total: job.repeat?.total ?? 1 },
    job: {
      id: job.id,
      slug: job.slug,
      index: job.index,
      attempt: run.attempt,
      workflow: wf.name,
      file: wf.file,
    },
    run: { id: run.runId },
  };
}

/** Evaluates one template with `contexts` (plus `secrets` when given). Throws `TemplateError`. */
function evalText(template: Template, contexts: Record<string, ExprValue>, run?: RunInfo): string {
  const ctx: ExprContext = {
    contexts: run?.secrets ? { ...contexts, secrets: { ...run.secrets } } : contexts,
  };
  return template.evaluate(ctx);
}

/**
 * The sandbox environment declared in the file, evaluated for this job
 * (without secrets unless `run.secrets` is given; secret *injection* into the
 * sandbox env is the engine's job). Throws `TemplateError` on an evaluation error.
 */
export function resolveSandboxEnv(job: Job, run: RunInfo): Record<string, string> {
  const contexts = baseContexts(job, run);
  const env: Record<string, string> = {};
  for (const [name, template] of Object.entries(job.workflow.sandbox.env)) {
    env[name] = evalText(template, contexts, run);
  }
  return env;
}

/**
 * Every context known before the run: `vars`, `matrix`, `item`, `repeat`
 * ({index, total}), `job` ({id, slug, index, attempt, workflow, file}),
 * `run` ({id}) and `env` (the sandbox env evaluated for this job). The
 * returned object is fresh; callers may add `secrets` and `steps`.
 * Throws `TemplateError` when a sandbox env template fails to evaluate
 * (`buildPlan` reports those before the run).
 */
export function staticContexts(job: Job, run: RunInfo): Record<string, ExprValue> {
  return { ...baseContexts(job, run), env: resolveSandboxEnv(job, run) };
}

/**
 * Image and snapshot for this job; empty evaluations count as absent.
 * Throws `TemplateError`.
 */
export function resolveSandboxImage(job: Job, run: RunInfo): { image?: string; snapshot?: string } {
  const contexts = staticContexts(job, run);
  const { image, snapshot } = job.workflow.sandbox;
  const out: { image?: string; snapshot?: string } = {};
  const i = image ? evalText(image, contexts).trim() : '';
  const s = snapshot ? evalText(snapshot, contexts).trim() : '';
  if (i !== '') out.image = i;
  if (s !== '') out.snapshot = s;
  return out;
}

/**
 * The model name a settings block gives for this job (`undefined` when it
 * names none or evaluates to empty). Throws `TemplateError`.
 */
export function resolveModelName(
  settings: ModelSettings | undefined,
  contexts: Record<string, ExprValue>,
): string | undefined {
  if (!settings?.name) return undefined;
  const name = evalText(settings.name, contexts).trim();
  return name === '' ? undefined : name;
}

/** An upload with its paths evaluated for one job. */
export interface ResolvedUpload {
  /** Absolute local path (relative sources resolve against the workflow file's directory). */
  from: string;
  /** Absolute path inside the sandbox (relative targets resolve against the working dir). */
  to: string;
  exclude: readonly string[];
  loc: SourceRef;
}

/** Evaluates one upload's `from`/`to` for a job. Throws `TemplateError`. */
export function resolveUpload(
  job: Job,
  upload: UploadSpec,
  contexts: Record<string, ExprValue>,
): ResolvedUpload {
  const wf = job.workflow;
  const from = path.resolve(path.dirname(wf.absPath), evalText(upload.from, contexts));
  const toRaw = evalText(upload.to, contexts);
  const to = path.posix.isAbsolute(toRaw)
    ? path.posix.normalize(toRaw)
    : path.posix.join(wf.sandbox.workingDir, toRaw);
  return { from, to, exclude: upload.exclude, loc: upload.loc };
}

/** All uploads of a job, evaluated (see {@link resolveUpload}). Throws `TemplateError`. */
export function resolveUploads(job: Job, run: RunInfo): ResolvedUpload[] {
  const contexts = staticContexts(job, run);
  return job.workflow.uploads.map((u) => resolveUpload(job, u, contexts));
}
