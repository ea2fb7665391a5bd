/**
 * Test rig: a `DaytonaBackend` wired to a fake Daytona server, with delays
 * shrunk to milliseconds, plus a default `SandboxSpec`.
 *
 * ```ts
 * await using fake = await startFakeDaytona();
 * await using rig = daytonaRig(fake);
 * const sandbox = await rig.backend.create(daytonaSpec());
 * ```
 */
import { DaytonaBackend } from '../../../src/sandbox/daytona.js';
import type { DaytonaTuning, SandboxSpec } from '../../../src/sandbox/sandbox.js';
import type { FakeDaytona } from './index.js';

/** Tuning that keeps every retry and timeout in the milliseconds. */
export const FAST_DAYTONA: DaytonaTuning = Object.freeze({
  createTimeoutMs: 5_000,
  requestTimeoutMs: 5_000,
  execGraceMs: 1_000,
  killWaitMs: 2_000,
  abortCreateWaitMs: 5_000,
  deleteRetries: 3,
  backoff: {
    rateLimit: { retries: 4, baseMs: 5, maxMs: 20, maxRetryAfterMs: 2_000 },
    transient: { retries: 2, baseMs: 5, maxMs: 20 },
  },
});

/** Environment pointing the SDK at the fake. */
export function daytonaEnv(fake: FakeDaytona, extra: Record<string, string> = {}): Record<string, string> {
  return { DAYTONA_API_KEY: fake.apiKey, DAYTONA_API_URL: fake.apiUrl, ...extra };
}

export interface DaytonaRig extends AsyncDisposable {
  backend: DaytonaBackend;
  warnings: string[];
}

/** A backend on `fake`; disposing the rig closes the backend. */
export function daytonaRig(
  fake: FakeDaytona,
  options: { tuning?: DaytonaTuning; env?: Record<string, string> } = {},
): DaytonaRig {
  const warnings: string[] = [];
  const backend = new DaytonaBackend({
    isolation: 'auto',
    warn: (m) => warnings.push(m),
    env: daytonaEnv(fake, options.env),
    daytona: { ...FAST_DAYTONA, ...options.tuning },
  });
  return { backend, warnings, [Symbol.asyncDispose]: () => backend.close() };
}

/** A job spec; override any field. */
export function daytonaSpec(overrides: Partial<SandboxSpec> = {}): SandboxSpec {
  return {
    runId: 'run-20250101-abc',
    jobId: 'fix-tests[task=flaky]#1',
    jobSlug: 'fix-tests-task-flaky-1',
    attempt: 1,
    workingDir: '/work',
    network: 'off',
    env: { FOO: 'bar' },
    ...overrides,
  };
}
