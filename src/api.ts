/**
 * One-call library API: load workflow files, expand them, run every job and
 * return the summary — what `rho-flow run` does, without the terminal.
 */
import { loadWorkflows, type LoadOptions } from './workflow/load.js';
import { buildPlan } from './workflow/plan.js';
import { formatDiagnostic, type Diagnostic } from './workflow/diagnostic.js';
import { startRun, type RunOptions } from './engine/run-workflows.js';
import type { RunSummary } from './results/types.js';
import { UserError } from './errors.js';

/** Bad input found before anything ran; `diagnostics` has every problem with its position. */
export class WorkflowValidationError extends UserError {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.diagnostics = diagnostics;
  }
}

export interface RunWorkflowsOptions extends Omit<RunOptions, 'jobs'>, LoadOptions {}

/**
 * Loads `patterns` (files, directories, globs), validates and expands them,
 * then runs every job. Rejects with `WorkflowValidationError` (nothing
 * created) on bad input, or `UserError` when preflight fails (missing
 * secrets or credentials). Resolves when every job has a result on disk.
 */
export async function runWorkflows(
  patterns: readonly string[],
  options: RunWorkflowsOptions,
): Promise<{ summary: RunSummary; exitCode: number; runDir: string }> {
  const { vars, varsFile, cwd, ...run } = options;
  const loaded = await loadWorkflows(patterns, {
    ...(vars ? { vars } : {}),
    ...(varsFile ? { varsFile } : {}),
    ...(cwd ? { cwd } : {}),
  });
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new WorkflowValidationError(errors);
  const planned = buildPlan(loaded.workflows, { ...(cwd ? { cwd } : {}) });
  if (!planned.plan)
    throw new WorkflowValidationError(planned.diagnostics.filter((d) => d.severity === 'error'));
  const handle = await startRun({ ...run, jobs: planned.plan.jobs });
  const { summary, exitCode } = await handle.done;
  return { summary, exitCode, runDir: handle.runDir };
}
