import { describe, expect, it } from 'vitest';
import { resolveSecrets } from '../../../src/engine/secrets.js';
import { isValidRunId, newRunId } from '../../../src/engine/run-id.js';
import type { Workflow } from '../../../src/workflow/types.js';

const wf = (file: string, secrets: Record<string, string>): Workflow =>
  ({
    file,
    secrets: Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, { fromEnv: v }])),
  }) as unknown as Workflow;

describe('resolveSecrets', () => {
  it('reads every declared secret from the environment', () => {
    expect(resolveSecrets([wf('a.yaml', { TOKEN: 'MY_TOKEN' })], { MY_TOKEN: 'v' })).toEqual({ TOKEN: 'v' });
  });

  it('reports all missing variables at once', () => {
    expect(() => resolveSecrets([wf('a.yaml', { A: 'X1' }), wf('b.yaml', { B: 'X2' })], {})).toThrow(
      /a\.yaml: secret A reads \$X1[\s\S]*b\.yaml: secret B reads \$X2/,
    );
  });
});

describe('run ids', () => {
  it('are unique, valid, and carry the CI run id', () => {
    const a = newRunId({});
    const b = newRunId({});
    expect(a).not.toBe(b);
    expect(isValidRunId(a)).toBe(true);
    expect(newRunId({ GITHUB_RUN_ID: '77', GITHUB_RUN_ATTEMPT: '2' })).toMatch(/^gh77-2-/);
    expect(newRunId({ CI_JOB_ID: '5' })).toMatch(/^ci5-/);
    expect(isValidRunId('../x')).toBe(false);
    expect(isValidRunId('')).toBe(false);
  });
});
