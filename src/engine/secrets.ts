import type { Workflow } from '../workflow/types.js';
import { UserError } from '../errors.js';

/**
 * Reads every secret the workflows declare from the host environment. All
 * missing variables are reported at once, before anything is created.
 * Secrets are keyed by secret name; two workflows may map the same name to
 * different variables only if the values agree.
 */
export function resolveSecrets(
  workflows: readonly Workflow[],
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const values: Record<string, string> = {};
  const missing: string[] = [];
  for (const wf of workflows) {
    for (const [name, ref] of Object.entries(wf.secrets)) {
      const value = env[ref.fromEnv];
      if (value === undefined || value === '') {
        missing.push(`${wf.file}: secret ${name} reads $${ref.fromEnv}, which is not set`);
        continue;
      }
      const prior = values[name];
      if (prior !== undefined && prior !== value) {
        missing.push(`${wf.file}: secret ${name} differs from the same-named secret of another workflow`);
        continue;
      }
      values[name] = value;
    }
  }
  if (missing.length > 0) throw new UserError(`missing secrets:\n  ${[...new Set(missing)].join('\n  ')}`);
  return values;
}
