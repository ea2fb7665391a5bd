/**
 * Builds `Workflow` objects in tests without going through the YAML loader:
 * sensible defaults for every field, overridable piecewise. Templates parsed
 * with `tpl()` carry an origin that maps offsets to `file:line:col+offset`,
 * so positioned diagnostics can be asserted exactly.
 */
import path from 'node:path';
import { Template, type TemplateOrigin } from '../../src/expr/template.js';
import type { Profile, Workflow, WorkflowSandbox } from '../../src/workflow/types.js';

export const READONLY_PROFILE: Profile = {
  name: 'readonly',
  shell: 'restricted',
  fileWrite: 'off',
  approval: { mode: 'none', requiredTools: [], dangerousPatterns: [] },
  shellTimeoutS: 120,
  bashOnly: false,
  source: 'builtin',
};

/** A template whose offset 0 is at `file:line:col` (single-line source). */
export function tpl(source: string, file = 'wf.yaml', line = 1, col = 1): Template {
  const origin: TemplateOrigin = { file, locate: (offset) => ({ line, col: col + offset }) };
  return Template.parse(source, origin);
}

export type WorkflowOverrides = Partial<Omit<Workflow, 'sandbox'>> & { sandbox?: Partial<WorkflowSandbox> };

/** A minimal valid workflow named `name` in `dir/<name>.yaml`, with overrides applied. */
export function makeWorkflow(name: string, overrides: WorkflowOverrides = {}, dir = '/tmp/wf'): Workflow {
  const absPath = overrides.absPath ?? path.join(dir, `${name}.yaml`);
  const file = overrides.file ?? `${name}.yaml`;
  const { sandbox, ...rest } = overrides;
  return {
    file,
    absPath,
    hash: 'h',
    name,
    timeoutMs: 60 * 60_000,
    profile: READONLY_PROFILE,
    model: {},
    uploads: [],
    vars: {},
    secrets: {},
    strategy: { repeat: 1 },
    steps: [],
    finally: [],
    artifacts: [],
    loc: { file, line: 1, col: 1 },
    ...rest,
    sandbox: { backend: 'local', workingDir: '/work', network: 'off', env: {}, ...sandbox },
  };
}
