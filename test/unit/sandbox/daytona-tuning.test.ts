import { describe, expect, test } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { DaytonaBackend } from '../../../src/sandbox/daytona.js';
import { mergeTuning, readDaytonaTuning } from '../../../src/sandbox/daytona-tuning.js';
import { daytonaSpec } from '../../helpers/fake-daytona/backend.js';

const problem = (env: Record<string, string>): string => {
  try {
    readDaytonaTuning(env);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
};

describe('readDaytonaTuning', () => {
  test('nothing set: no tuning', () => {
    expect(readDaytonaTuning({})).toEqual({});
    expect(
      readDaytonaTuning({ RHO_FLOW_DAYTONA_TUNING: '  ', RHO_FLOW_DAYTONA_CREATES_PER_MINUTE: '' }),
    ).toEqual({});
  });

  test('reads every knob of the JSON and the creates-per-minute variable, which wins', () => {
    const tuning = readDaytonaTuning({
      RHO_FLOW_DAYTONA_TUNING: JSON.stringify({
        createsPerMinute: 10,
        createBurst: 2,
        createTimeoutMs: 1500,
        requestTimeoutMs: 2000,
        transferTimeoutMs: 3000,
        keepAliveMs: 0,
        execGraceMs: 100,
        killWaitMs: 200,
        abortCreateWaitMs: 300,
        deleteRetries: 0,
        backoff: {
          rateLimit: { retries: 5, baseMs: 1, maxMs: 2, jitter: 0, maxRetryAfterMs: 50 },
          transient: { retries: 1, baseMs: 3 },
        },
      }),
      RHO_FLOW_DAYTONA_CREATES_PER_MINUTE: '120',
    });
    expect(tuning).toEqual({
      createsPerMinute: 120,
      createBurst: 2,
      createTimeoutMs: 1500,
      requestTimeoutMs: 2000,
      transferTimeoutMs: 3000,
      keepAliveMs: 0,
      execGraceMs: 100,
      killWaitMs: 200,
      abortCreateWaitMs: 300,
      deleteRetries: 0,
      backoff: {
        rateLimit: { retries: 5, baseMs: 1, maxMs: 2, jitter: 0, maxRetryAfterMs: 50 },
        transient: { retries: 1, baseMs: 3 },
      },
    });
  });

  test('is strict: bad JSON, unknown keys, wrong types and ranges name the variable and the field', () => {
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{createTimeoutMs: 5}' })).toMatch(
      /^RHO_FLOW_DAYTONA_TUNING: not valid JSON/,
    );
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '[1]' })).toBe(
      'RHO_FLOW_DAYTONA_TUNING: must be a JSON object',
    );
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"createTimeout": 5}' })).toMatch(
      /^RHO_FLOW_DAYTONA_TUNING: createTimeout: unknown setting \(known: createsPerMinute, .*backoff\)$/,
    );
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"createTimeoutMs": "5s"}' })).toBe(
      'RHO_FLOW_DAYTONA_TUNING: createTimeoutMs: must be a number > 0 (got "5s")',
    );
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"createTimeoutMs": 0}' })).toContain('must be a number > 0');
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"deleteRetries": 1.5}' })).toContain(
      'deleteRetries: must be an integer ≥ 0',
    );
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"createBurst": 0}' })).toContain('must be an integer ≥ 1');
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"killWaitMs": -1}' })).toContain('must be a number ≥ 0');
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"backoff": 3}' })).toContain('backoff: must be an object');
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"backoff": {"fatal": {}}}' })).toContain(
      'backoff.fatal: unknown error class',
    );
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"backoff": {"transient": []}}' })).toContain(
      'backoff.transient: must be an object',
    );
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"backoff": {"rateLimit": {"jitter": 2}}}' })).toContain(
      'backoff.rateLimit.jitter: must be a number from 0 to 1 (got 2)',
    );
    expect(problem({ RHO_FLOW_DAYTONA_TUNING: '{"backoff": {"rateLimit": {"tries": 2}}}' })).toContain(
      'backoff.rateLimit.tries: unknown setting',
    );
    expect(problem({ RHO_FLOW_DAYTONA_CREATES_PER_MINUTE: 'fast' })).toBe(
      "RHO_FLOW_DAYTONA_CREATES_PER_MINUTE must be a number > 0 (got 'fast')",
    );
    expect(problem({ RHO_FLOW_DAYTONA_CREATES_PER_MINUTE: '0' })).toContain('must be a number > 0');
  });
});

describe('mergeTuning', () => {
  test('the second argument wins, field by field, including inside the backoff schedules', () => {
    expect(
      mergeTuning(
        { createTimeoutMs: 1, killWaitMs: 2, backoff: { rateLimit: { retries: 1, baseMs: 5 } } },
        { killWaitMs: 3, execGraceMs: undefined, backoff: { rateLimit: { retries: 9, maxMs: undefined } } },
      ),
    ).toEqual({
      createTimeoutMs: 1,
      killWaitMs: 3,
      backoff: { rateLimit: { retries: 9, baseMs: 5 }, transient: {} },
    });
    const base = { createTimeoutMs: 1 };
    expect(mergeTuning(base, undefined)).toBe(base);
  });
});

describe('the backend reports a bad tuning variable before anything runs', () => {
  test('preflight, create and cleanup reject with the UserError; the constructor does not throw', async () => {
    const backend = new DaytonaBackend({
      isolation: 'auto',
      warn: () => undefined,
      env: { DAYTONA_API_KEY: 'k', RHO_FLOW_DAYTONA_TUNING: '{"bogus": 1}' },
    });
    await expect(backend.preflight()).rejects.toThrow(/RHO_FLOW_DAYTONA_TUNING: bogus: unknown setting/);
    await expect(backend.preflight()).rejects.toBeInstanceOf(UserError);
    await expect(backend.create(daytonaSpec())).rejects.toBeInstanceOf(UserError);
    await expect(backend.cleanup({})).rejects.toBeInstanceOf(UserError);
    await backend.close();
  });
});
