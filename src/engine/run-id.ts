import { randomBytes } from 'node:crypto';

/**
 * A new run id: in CI it starts with the CI's own run id so results line up
 * with the pipeline (`GITHUB_RUN_ID-GITHUB_RUN_ATTEMPT`, `CI_JOB_ID`), then
 * a UTC timestamp and a random suffix so two runs never collide.
 */
export function newRunId(env: Readonly<Record<string, string | undefined>>, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
    .replace('T', '-');
  const suffix = randomBytes(3).toString('hex');
  const ci = env.GITHUB_RUN_ID
    ? `gh${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}`
    : env.CI_JOB_ID
      ? `ci${env.CI_JOB_ID}`
      : undefined;
  return [ci, stamp, suffix].filter(Boolean).join('-');
}

/** Run ids become directory names: keep them to a safe alphabet. */
export function isValidRunId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id);
}
