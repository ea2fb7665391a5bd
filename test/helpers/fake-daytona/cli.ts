/**
 * Driving the real CLI against the fake Daytona server: the environment
 * that points `rho-flow run --backend daytona` at the fake with every delay
 * shrunk to milliseconds (through `RHO_FLOW_DAYTONA_TUNING`), and decoding
 * of the commands the backend sends to `process/execute`.
 *
 * ```ts
 * await using fake = await startFakeDaytona();
 * const r = await rig.run(['run', 'wf.yaml', '--backend', 'daytona'], daytonaCliEnv(fake));
 * fake.inject({ endpoint: 'exec', match: execRuns('my-step-marker'), status: 502 });
 * ```
 */
import type { DaytonaTuning } from '../../../src/sandbox/sandbox.js';
import { FAST_DAYTONA, daytonaEnv } from './backend.js';
import type { FakeDaytona } from './index.js';

/**
 * Environment for a CLI child: credentials and URL of `fake`, and
 * `FAST_DAYTONA` (merged with `tuning`) as `RHO_FLOW_DAYTONA_TUNING`.
 */
export function daytonaCliEnv(
  fake: FakeDaytona,
  options: { tuning?: DaytonaTuning; extra?: Record<string, string | undefined> } = {},
): Record<string, string | undefined> {
  const tuning: DaytonaTuning = {
    ...FAST_DAYTONA,
    ...options.tuning,
    backoff: {
      rateLimit: { ...FAST_DAYTONA.backoff?.rateLimit, ...options.tuning?.backoff?.rateLimit },
      transient: { ...FAST_DAYTONA.backoff?.transient, ...options.tuning?.backoff?.transient },
    },
  };
  return {
    ...daytonaEnv(fake),
    DAYTONA_TARGET: undefined,
    RHO_FLOW_DAYTONA_TUNING: JSON.stringify(tuning),
    ...options.extra,
  };
}

/**
 * The bash script inside an exec request body: the backend sends
 * `bash -c 'eval "$(echo <base64> | base64 -d)"'` (see `encodeCommand`).
 * Returns the raw command when it is not in that form.
 */
export function execScriptOf(body: unknown): string {
  const command = (body as { command?: unknown } | undefined)?.command;
  if (typeof command !== 'string') return '';
  const m = /echo ([A-Za-z0-9+/=]+) \| base64 -d/.exec(command);
  return m?.[1] !== undefined ? Buffer.from(m[1], 'base64').toString('utf8') : command;
}

/** A fault matcher: exec requests whose script contains `needle` (e.g. a unique string in a step). */
export function execRuns(needle: string): (req: { body: unknown }) => boolean {
  return (req) => execScriptOf(req.body).includes(needle);
}

/** Create requests per sandbox name, from the fake's request log. */
export function createsByName(fake: FakeDaytona): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of fake.requests) {
    if (r.endpoint !== 'create') continue;
    const name = (r.body as { name?: unknown } | undefined)?.name;
    const key = typeof name === 'string' ? name : '?';
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}
