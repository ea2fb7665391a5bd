/**
 * What `validate`, `list` and `run` share: the `--var`/`--vars-file`
 * options, and loading files into a checked job plan. The loader (and with
 * it `yaml` and `ajv`) is imported lazily, only when a command needs it.
 */
import { sortDiagnostics, type Diagnostic } from '../workflow/diagnostic.js';
import type { Plan } from '../workflow/plan.js';
import type { Job, Workflow } from '../workflow/types.js';
import type { OptionSpecs, ParsedArgs } from './command.js';
import { UsageError } from './exit-code.js';

export const VAR_OPTIONS: OptionSpecs = {
  var: { type: 'string', multiple: true, value: 'k=v', description: 'override a workflow var' },
  'vars-file': {
    type: 'string',
    value: 'file',
    description: 'YAML or JSON mapping of var overrides (applied before --var)',
  },
};

/** `--var k=v` values as a record (later ones win). */
export function parseVarFlags(args: ParsedArgs, command: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const kv of args.strings('var')) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--var expects k=v, got '${kv}'`, command);
    vars[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return vars;
}

export interface LoadedInput {
  /** The valid workflows. */
  workflows: Workflow[];
  /** Present when every file is valid and the plan has no error. */
  plan?: Plan;
  /** Jobs of the valid workflows (even when other files are invalid); empty when the plan itself has errors. */
  jobs: readonly Job[];
  /** Loader and plan diagnostics together, sorted by file and position. */
  diagnostics: Diagnostic[];
  /** Every file involved (the workflows, and every file a diagnostic points at), sorted like the diagnostics. */
  files: string[];
}

/** Loads `patterns` (files, directories, globs), then builds and checks the plan of the valid ones. */
export async function loadInput(
  patterns: readonly string[],
  options: { vars: Record<string, string>; varsFile?: string; cwd: string; runId?: string },
): Promise<LoadedInput> {
  const [{ loadWorkflows }, { buildPlan }] = await Promise.all([
    import('../workflow/load.js'),
    import('../workflow/plan.js'),
  ]);
  const loaded = await loadWorkflows(patterns, {
    vars: options.vars,
    cwd: options.cwd,
    ...(options.varsFile !== undefined ? { varsFile: options.varsFile } : {}),
  });
  const planned = buildPlan(loaded.workflows, {
    cwd: options.cwd,
    ...(options.runId !== undefined ? { runId: options.runId } : {}),
  });
  const diagnostics = sortDiagnostics([...loaded.diagnostics, ...planned.diagnostics]);
  const files = [
    ...new Set([...loaded.workflows.map((w) => w.file), ...diagnostics.map((d) => d.location.file)]),
  ].sort((a, b) => a.localeCompare(b));
  const ok = !diagnostics.some((d) => d.severity === 'error');
  return {
    workflows: loaded.workflows,
    jobs: planned.plan?.jobs ?? [],
    diagnostics,
    files,
    ...(ok && planned.plan ? { plan: planned.plan } : {}),
  };
}
