import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseCommandArgs } from '../../../src/cli/command.js';
import { UsageError } from '../../../src/cli/exit-code.js';
import {
  RUN_OPTIONS,
  parseRunOptions,
  parseShard,
  type RunCliOptions,
} from '../../../src/cli/run-options.js';

/** The temp dir; `cwd` is a directory inside it, so that `../x` stays in it (and does not exist). */
let root: string;
let cwd: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  cwd = path.join(root, 'work');
  await fs.mkdir(path.join(cwd, 'flows'), { recursive: true });
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const command = { name: 'run', options: RUN_OPTIONS };

function parse(argv: string[], env: Record<string, string | undefined> = {}): RunCliOptions {
  return parseRunOptions(parseCommandArgs(command, argv), { env, cwd });
}

function fails(argv: string[], env: Record<string, string | undefined> = {}): string {
  try {
    parse(argv, env);
  } catch (e) {
    if (e instanceof UsageError) {
      expect(e.command).toBe('run');
      return e.message;
    }
    throw e;
  }
  throw new Error(`expected a UsageError for ${argv.join(' ')}`);
}

describe('defaults', () => {
  test('without flags or environment', () => {
    expect(parse(['a.yaml'])).toEqual({
      patterns: ['a.yaml'],
      concurrency: 4,
      outputDir: path.join(cwd, 'rho-flow-results'),
      vars: {},
      retries: 2,
      reporter: 'auto',
      gracePeriodMs: 10_000,
      keepSandboxes: 'never',
      dryRun: false,
      isolation: 'auto',
    });
  });

  test('environment defaults', () => {
    const o = parse(['a.yaml'], {
      RHO_FLOW_CONCURRENCY: '12',
      RHO_FLOW_BACKEND: 'daytona',
      RHO_FLOW_ISOLATION: 'strict',
    });
    expect(o).toMatchObject({ concurrency: 12, backend: 'daytona', isolation: 'strict' });
  });

  test('flags win over the environment; empty variables are ignored', () => {
    const o = parse(['a.yaml', '-j', '2', '--backend', 'local', '--isolation', 'auto'], {
      RHO_FLOW_CONCURRENCY: '12',
      RHO_FLOW_BACKEND: 'daytona',
      RHO_FLOW_ISOLATION: 'strict',
    });
    expect(o).toMatchObject({ concurrency: 2, backend: 'local', isolation: 'auto' });
    expect(parse(['a.yaml'], { RHO_FLOW_CONCURRENCY: '', RHO_FLOW_BACKEND: '' })).toMatchObject({
      concurrency: 4,
    });
    expect(parse(['a.yaml'], { RHO_FLOW_BACKEND: '' })).not.toHaveProperty('backend');
  });
});

describe('every flag', () => {
  test('all values parsed into one typed object', () => {
    const o = parse([
      'a.yaml',
      'flows/',
      '--concurrency=8',
      '--model',
      'gpt-x',
      '-o',
      'out',
      '--run-id',
      'nightly-1',
      '--var',
      'a=1',
      '--var',
      'b=x=y',
      '--vars-file',
      'v.yaml',
      '--shard',
      '2/4',
      '--retries',
      '0',
      '--max-failures',
      '3',
      '--min-pass-rate',
      '0.75',
      '--reporter',
      'json',
      '--grace-period',
      '1m30s',
      '--keep-sandboxes',
      'on-failure',
      '--record',
      'cassettes',
      '--dry-run',
    ]);
    expect(o).toEqual({
      patterns: ['a.yaml', 'flows/'],
      concurrency: 8,
      model: 'gpt-x',
      outputDir: path.join(cwd, 'out'),
      runId: 'nightly-1',
      vars: { a: '1', b: 'x=y' },
      varsFile: 'v.yaml',
      shard: { index: 2, total: 4 },
      retries: 0,
      maxFailures: 3,
      minPassRate: 0.75,
      reporter: 'json',
      gracePeriodMs: 90_000,
      keepSandboxes: 'on-failure',
      dryRun: true,
      record: path.join(cwd, 'cassettes'),
      isolation: 'auto',
    });
    expect(parse(['a.yaml', '--replay', '/abs/c']).replay).toBe('/abs/c');
  });

  test('--resume with and without a run id', () => {
    expect(parse(['--resume', 'a.yaml']).resume).toEqual({});
    expect(parse(['--resume', 'a.yaml'])).toMatchObject({ patterns: ['a.yaml'] });
    expect(parse(['--resume', 'run-7', 'a.yaml'])).toMatchObject({
      resume: { runId: 'run-7' },
      patterns: ['a.yaml'],
    });
    expect(parse(['a.yaml', '--resume'])).toMatchObject({ resume: {}, patterns: ['a.yaml'] });
    expect(parse(['a.yaml', '--resume=r1', '--run-id', 'r1'])).toMatchObject({
      resume: { runId: 'r1' },
      runId: 'r1',
    });
  });

  test('--resume followed by an existing directory treats it as a workflow path', () => {
    expect(parse(['--resume', 'flows'])).toMatchObject({ resume: {}, patterns: ['flows'] });
  });

  test('--shard auto reads the CI node variables', () => {
    expect(parse(['a.yaml', '--shard', 'auto'], { CI_NODE_INDEX: '3', CI_NODE_TOTAL: '5' }).shard).toEqual({
      index: 3,
      total: 5,
    });
    expect(parseShard('1/1', {})).toEqual({ index: 1, total: 1 });
  });
});

describe('bad values exit 2 with a clear message', () => {
  test.each([
    [['-j', '0'], "--concurrency must be a whole number ≥ 1, got '0'"],
    [['-j', 'many'], "--concurrency must be a whole number ≥ 1, got 'many'"],
    [['-j', '1.5'], "--concurrency must be a whole number ≥ 1, got '1.5'"],
    [['--backend', 'docker'], "--backend must be one of local, daytona, got 'docker'"],
    [['--isolation', 'max'], "--isolation must be one of auto, strict, got 'max'"],
    [['--reporter', 'fancy'], "--reporter must be one of auto, tty, plain, json, got 'fancy'"],
    [['--keep-sandboxes', 'always'], "--keep-sandboxes must be one of never, on-failure, got 'always'"],
    [['--retries', '-1'], "option '--retries' needs a value (n), got the option '-1'"],
    [['--retries=-1'], "--retries must be a whole number, got '-1'"],
    [['--max-failures', '0'], "--max-failures must be a whole number ≥ 1, got '0'"],
    [['--min-pass-rate', '1.5'], "--min-pass-rate must be a number from 0 to 1 (e.g. 0.9), got '1.5'"],
    [['--min-pass-rate', '90%'], "--min-pass-rate must be a number from 0 to 1 (e.g. 0.9), got '90%'"],
    [
      ['--grace-period', '10'],
      "--grace-period must be a duration like 10s, 2m or 1m30s, got '10' (add a unit: 10s)",
    ],
    [['--grace-period', 'soon'], "--grace-period must be a duration like 10s, 2m or 1m30s, got 'soon'"],
    [['--shard', '0/3'], "--shard must be i/n with 1 ≤ i ≤ n (e.g. 2/4) or 'auto', got '0/3'"],
    [['--shard', '4/3'], "--shard must be i/n with 1 ≤ i ≤ n (e.g. 2/4) or 'auto', got '4/3'"],
    [['--shard', 'half'], "--shard must be i/n with 1 ≤ i ≤ n (e.g. 2/4) or 'auto', got 'half'"],
    [['--shard', 'auto'], '--shard auto needs CI_NODE_INDEX and CI_NODE_TOTAL in the environment'],
    [
      ['--run-id', '../x'],
      "--run-id must be 1-128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit; got '../x'",
    ],
    [['--resume=../x'], "--resume: invalid run id '../x'"],
    [['--resume=a', '--run-id', 'b'], '--resume a and --run-id b name different runs'],
    [['--record', 'a', '--replay', 'b'], '--record and --replay cannot be used together'],
    [['--record='], '--record needs a path'],
    [['--model='], '--model needs a model name'],
    [['--var', 'novalue'], "--var expects k=v, got 'novalue'"],
    [['--var', '=v'], "--var expects k=v, got '=v'"],
  ])('%j', (argv, message) => {
    expect(fails(['a.yaml', ...argv])).toBe(message);
  });

  test('bad environment defaults name the variable', () => {
    expect(fails(['a.yaml'], { RHO_FLOW_CONCURRENCY: 'lots' })).toBe(
      "RHO_FLOW_CONCURRENCY must be a whole number ≥ 1, got 'lots'",
    );
    expect(fails(['a.yaml'], { RHO_FLOW_BACKEND: 'k8s' })).toBe(
      "RHO_FLOW_BACKEND must be one of local, daytona, got 'k8s'",
    );
    expect(fails(['a.yaml'], { RHO_FLOW_ISOLATION: 'on' })).toBe(
      "RHO_FLOW_ISOLATION must be one of auto, strict, got 'on'",
    );
  });
});
