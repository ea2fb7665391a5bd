/**
 * Tuning of the Daytona backend from the environment, so the CLI (which only
 * has flags and environment variables) can reach the `DaytonaTuning` knobs:
 *
 * - `RHO_FLOW_DAYTONA_CREATES_PER_MINUTE`: the creation-rate limit (a
 *   user-facing knob: lower it when an organisation's create quota is below
 *   Daytona's 600/min, or when several runs share one API key);
 * - `RHO_FLOW_DAYTONA_TUNING`: advanced, one JSON object with any field of
 *   `DaytonaTuning` (`{"createTimeoutMs": 300000, "backoff": {"rateLimit":
 *   {"retries": 12}}}`). `RHO_FLOW_DAYTONA_CREATES_PER_MINUTE` wins over its
 *   `createsPerMinute`.
 *
 * Both are parsed strictly: an unknown key, a wrong type or an out-of-range
 * value is a `UserError` naming the variable and the field, never ignored.
 */
import { UserError } from '../errors.js';
import { unreachable } from '../util/unreachable.js';
import type { DaytonaTuning, RetryScheduleTuning } from './sandbox.js';

/** Name of the JSON tuning variable. */
export const TUNING_ENV = 'RHO_FLOW_DAYTONA_TUNING';
/** Name of the creation-rate variable. */
export const CREATES_PER_MINUTE_ENV = 'RHO_FLOW_DAYTONA_CREATES_PER_MINUTE';

type Rule = 'positive' | 'non-negative' | 'integer>=0' | 'integer>=1' | 'fraction';

const TOP_LEVEL: Readonly<Record<Exclude<keyof DaytonaTuning, 'backoff'>, Rule>> = {
  createsPerMinute: 'positive',
  createBurst: 'integer>=1',
  createTimeoutMs: 'positive',
  requestTimeoutMs: 'positive',
  transferTimeoutMs: 'positive',
  keepAliveMs: 'non-negative',
  execGraceMs: 'non-negative',
  killWaitMs: 'non-negative',
  abortCreateWaitMs: 'non-negative',
  deleteRetries: 'integer>=0',
};

const SCHEDULE: Readonly<Record<keyof RetryScheduleTuning, Rule>> = {
  retries: 'integer>=0',
  baseMs: 'non-negative',
  maxMs: 'non-negative',
  jitter: 'fraction',
  maxRetryAfterMs: 'non-negative',
};

const RULE_TEXT: Readonly<Record<Rule, string>> = {
  positive: 'a number > 0',
  'non-negative': 'a number ≥ 0',
  'integer>=0': 'an integer ≥ 0',
  'integer>=1': 'an integer ≥ 1',
  fraction: 'a number from 0 to 1',
};

function fits(value: number, rule: Rule): boolean {
  switch (rule) {
    case 'positive':
      return value > 0;
    case 'non-negative':
      return value >= 0;
    case 'integer>=0':
      return Number.isInteger(value) && value >= 0;
    case 'integer>=1':
      return Number.isInteger(value) && value >= 1;
    case 'fraction':
      return value >= 0 && value <= 1;
    default:
      throw new Error(`Unknown rule: ${unreachable(rule)}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(where: string, message: string): never {
  throw new UserError(`${TUNING_ENV}: ${where}${message}`);
}

function checkNumbers<K extends string>(
  obj: Record<string, unknown>,
  rules: Readonly<Record<K, Rule>>,
  prefix: string,
  skip: readonly string[] = [],
): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (skip.includes(key)) continue;
    if (!Object.hasOwn(rules, key)) {
      fail(`${prefix}${key}: `, `unknown setting (known: ${[...Object.keys(rules), ...skip].join(', ')})`);
    }
    const rule = rules[key as K];
    if (typeof value !== 'number' || !Number.isFinite(value) || !fits(value, rule)) {
      fail(`${prefix}${key}: `, `must be ${RULE_TEXT[rule]} (got ${JSON.stringify(value)})`);
    }
    out[key as K] = value;
  }
  return out;
}

/**
 * Reads `RHO_FLOW_DAYTONA_TUNING` and `RHO_FLOW_DAYTONA_CREATES_PER_MINUTE`
 * from `env`. Returns `{}` when neither is set. Throws `UserError`.
 */
export function readDaytonaTuning(env: Readonly<Record<string, string | undefined>>): DaytonaTuning {
  const tuning: DaytonaTuning = {};
  const raw = env[TUNING_ENV]?.trim();
  if (raw) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (err) {
      fail('', `not valid JSON (${(err as Error).message})`);
    }
    if (!isObject(parsed)) fail('', 'must be a JSON object');
    Object.assign(tuning, checkNumbers(parsed, TOP_LEVEL, '', ['backoff']));
    if (parsed.backoff !== undefined) {
      const backoff = parsed.backoff;
      if (!isObject(backoff)) fail('backoff: ', 'must be an object with rateLimit and/or transient');
      tuning.backoff = {};
      for (const [cls, schedule] of Object.entries(backoff)) {
        if (cls !== 'rateLimit' && cls !== 'transient') {
          fail(`backoff.${cls}: `, 'unknown error class (known: rateLimit, transient)');
        }
        if (!isObject(schedule)) fail(`backoff.${cls}: `, 'must be an object');
        tuning.backoff[cls] = checkNumbers(schedule, SCHEDULE, `backoff.${cls}.`);
      }
    }
  }
  const perMinute = env[CREATES_PER_MINUTE_ENV]?.trim();
  if (perMinute) {
    const n = Number(perMinute);
    if (!Number.isFinite(n) || n <= 0) {
      throw new UserError(`${CREATES_PER_MINUTE_ENV} must be a number > 0 (got '${perMinute}')`);
    }
    tuning.createsPerMinute = n;
  }
  return tuning;
}

/** `base` with `over` on top; the two backoff schedules are merged field by field. */
export function mergeTuning(base: DaytonaTuning, over: DaytonaTuning | undefined): DaytonaTuning {
  if (!over) return base;
  const merged: DaytonaTuning = { ...base, ...definedOnly(over) };
  if (base.backoff || over.backoff) {
    merged.backoff = {
      rateLimit: { ...base.backoff?.rateLimit, ...definedOnly(over.backoff?.rateLimit) },
      transient: { ...base.backoff?.transient, ...definedOnly(over.backoff?.transient) },
    };
  }
  return merged;
}

/** `o` without its `undefined` fields, so they do not hide the base's values. */
function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  if (!o) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
