/**
 * `rho-flow run` flags (product.md §4) → one typed, validated
 * `RunCliOptions`. Environment defaults: `RHO_FLOW_CONCURRENCY`,
 * `RHO_FLOW_BACKEND`, `RHO_FLOW_ISOLATION`; flags win over them. Every bad
 * value is a `UsageError` (exit 2) naming the flag or variable.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { isValidRunId } from '../engine/run-id.js';
import { parseDuration } from '../workflow/duration.js';
import { BACKENDS, type BackendName } from '../workflow/types.js';
import type { Shard } from '../workflow/plan.js';
import type { OptionSpecs, ParsedArgs } from './command.js';
import { UsageError } from './exit-code.js';
import type { CliIo } from './io.js';
import { parseVarFlags, VAR_OPTIONS } from './workflow-input.js';

export const REPORTERS = ['auto', 'tty', 'plain', 'json'] as const;
export type ReporterName = (typeof REPORTERS)[number];
export const KEEP_SANDBOXES = ['never', 'on-failure'] as const;
export const ISOLATIONS = ['auto', 'strict'] as const;

export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_RETRIES = 2;
export const DEFAULT_GRACE_PERIOD_MS = 10_000;
export const DEFAULT_OUTPUT_DIR = 'rho-flow-results';

export interface RunCliOptions {
  /** Workflow files, directories and globs, as given. */
  patterns: string[];
  /** Live sandboxes across everything (≥ 1). */
  concurrency: number;
  /** Overrides every file's `sandbox.backend`. */
  backend?: BackendName;
  /** Overrides every model name. */
  model?: string;
  /** Absolute. */
  outputDir: string;
  /** Explicit run id (validated); absent = the engine makes a new one. */
  runId?: string;
  /** `--resume [run-id]`: `runId` absent means the latest run in the output dir. */
  resume?: { runId?: string };
  /** `--force` (with `--resume`): accept changed workflows, re-running all of their jobs. */
  force?: boolean;
  /** `--var` overrides. */
  vars: Record<string, string>;
  varsFile?: string;
  /** `--shard i/n` (or `auto` from `CI_NODE_INDEX`/`CI_NODE_TOTAL`), 1-based. */
  shard?: Shard;
  /** Infrastructure retries per job (≥ 0). */
  retries: number;
  /** Stop starting new jobs after this many failures (≥ 1). */
  maxFailures?: number;
  /** 0..1: exit 0 when the pass rate reaches it. */
  minPassRate?: number;
  reporter: ReporterName;
  /** After SIGINT/SIGTERM, how long teardown may take. */
  gracePeriodMs: number;
  keepSandboxes: (typeof KEEP_SANDBOXES)[number];
  dryRun: boolean;
  /** Absolute directory to record model responses to. */
  record?: string;
  /** Absolute directory to replay model responses from. */
  replay?: string;
  isolation: (typeof ISOLATIONS)[number];
}

const looksLikeRunId = (next: string): boolean => isValidRunId(next) && !/\.ya?ml$/i.test(next);

export const RUN_OPTIONS: OptionSpecs = {
  concurrency: {
    type: 'string',
    short: 'j',
    value: 'n',
    description: 'live sandboxes across everything',
    default: String(DEFAULT_CONCURRENCY),
    env: 'RHO_FLOW_CONCURRENCY',
  },
  backend: {
    type: 'string',
    value: BACKENDS.join('|'),
    description: "override the files' sandbox.backend",
    env: 'RHO_FLOW_BACKEND',
  },
  model: { type: 'string', value: 'name', description: 'override the model of every prompt step' },
  'output-dir': {
    type: 'string',
    short: 'o',
    value: 'dir',
    description: 'where results go',
    default: `./${DEFAULT_OUTPUT_DIR}`,
  },
  'run-id': {
    type: 'string',
    value: 'id',
    description: 'the run id (default: a new one; in CI it starts with GITHUB_RUN_ID or CI_JOB_ID)',
  },
  resume: {
    type: 'string',
    value: 'run-id',
    optionalValue: looksLikeRunId,
    description: 're-run only unfinished, errored or cancelled jobs of that run (default: the latest)',
  },
  force: {
    type: 'boolean',
    description: 'with --resume: accept changed workflows and run all of their jobs again',
  },
  ...VAR_OPTIONS,
  shard: {
    type: 'string',
    value: 'i/n|auto',
    description: 'run the i-th of n round-robin slices of the job list (auto: CI_NODE_INDEX/CI_NODE_TOTAL)',
  },
  retries: {
    type: 'string',
    value: 'n',
    description: 'retries of infrastructure errors per job (never of failures)',
    default: String(DEFAULT_RETRIES),
  },
  'max-failures': { type: 'string', value: 'n', description: 'stop starting new jobs after n failures' },
  'min-pass-rate': {
    type: 'string',
    value: '0..1',
    description: 'exit 0 when the pass rate reaches it, even with failures',
  },
  reporter: {
    type: 'string',
    value: REPORTERS.join('|'),
    description: 'auto = live view on a TTY, plain lines in CI and pipes',
    default: 'auto',
  },
  'grace-period': {
    type: 'string',
    value: 'duration',
    description: 'after SIGINT/SIGTERM, how long finally steps and teardown may take',
    default: '10s',
  },
  'keep-sandboxes': {
    type: 'string',
    value: KEEP_SANDBOXES.join('|'),
    description: 'debugging aid: keep the sandboxes of failed jobs',
    default: 'never',
  },
  isolation: {
    type: 'string',
    value: ISOLATIONS.join('|'),
    description: 'strict: refuse to run local jobs without bubblewrap',
    default: 'auto',
    env: 'RHO_FLOW_ISOLATION',
  },
  record: { type: 'string', value: 'dir', description: 'save every model response as cassettes in dir' },
  replay: {
    type: 'string',
    value: 'dir',
    description: 'answer model calls from the cassettes in dir (no API key needed)',
  },
  'dry-run': { type: 'boolean', description: 'validate and print the job plan; create nothing' },
};

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${what} must be one of ${allowed.join(', ')}, got '${value}'`, 'run');
}

function integer(value: string, what: string, min: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `${what} must be a whole number${min > 0 ? ` ≥ ${min}` : ''}, got '${value}'`,
      'run',
    );
  }
  return n;
}

/** Parses `i/n` (1 ≤ i ≤ n) or `auto`. */
export function parseShard(value: string, env: CliIo['env']): Shard {
  if (value === 'auto') {
    const index = env.CI_NODE_INDEX;
    const total = env.CI_NODE_TOTAL;
    if (index === undefined || total === undefined) {
      throw new UsageError('--shard auto needs CI_NODE_INDEX and CI_NODE_TOTAL in the environment', 'run');
    }
    return parseShard(`${index}/${total}`, {});
  }
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = m ? Number(m[1]) : NaN;
  const total = m ? Number(m[2]) : NaN;
  if (!m || index < 1 || total < 1 || index > total) {
    throw new UsageError(`--shard must be i/n with 1 ≤ i ≤ n (e.g. 2/4) or 'auto', got '${value}'`, 'run');
  }
  return { index, total };
}

/** Turns parsed `run` arguments into `RunCliOptions`, or throws a `UsageError`. */
export function parseRunOptions(args: ParsedArgs, io: Pick<CliIo, 'env' | 'cwd'>): RunCliOptions {
  const env = io.env;
  const patterns = [...args.positionals];

  const concurrencyText = args.string('concurrency');
  const concurrency =
    concurrencyText !== undefined
      ? integer(concurrencyText, '--concurrency', 1)
      : env.RHO_FLOW_CONCURRENCY !== undefined && env.RHO_FLOW_CONCURRENCY !== ''
        ? integer(env.RHO_FLOW_CONCURRENCY, 'RHO_FLOW_CONCURRENCY', 1)
        : DEFAULT_CONCURRENCY;

  const backendText = args.string('backend');
  const envBackend = env.RHO_FLOW_BACKEND !== '' ? env.RHO_FLOW_BACKEND : undefined;
  const backend =
    backendText !== undefined
      ? oneOf(backendText, BACKENDS, '--backend')
      : envBackend !== undefined
        ? oneOf(envBackend, BACKENDS, 'RHO_FLOW_BACKEND')
        : undefined;

  const isolationText = args.string('isolation');
  const envIsolation = env.RHO_FLOW_ISOLATION !== '' ? env.RHO_FLOW_ISOLATION : undefined;
  const isolation =
    isolationText !== undefined
      ? oneOf(isolationText, ISOLATIONS, '--isolation')
      : envIsolation !== undefined
        ? oneOf(envIsolation, ISOLATIONS, 'RHO_FLOW_ISOLATION')
        : 'auto';

  const model = args.string('model');
  if (model?.trim() === '') throw new UsageError('--model needs a model name', 'run');

  const runId = args.string('run-id');
  if (runId !== undefined && !isValidRunId(runId)) {
    throw new UsageError(
      `--run-id must be 1-128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit; got '${runId}'`,
      'run',
    );
  }

  let resume: RunCliOptions['resume'];
  if (args.has('resume')) {
    const id = args.string('resume') ?? '';
    if (id === '') resume = {};
    else if (existsSync(path.resolve(io.cwd, id))) {
      // `--resume flows`: a workflow directory, not a run id.
      patterns.unshift(id);
      resume = {};
    } else {
      if (!isValidRunId(id)) throw new UsageError(`--resume: invalid run id '${id}'`, 'run');
      resume = { runId: id };
    }
  }
  if (resume?.runId !== undefined && runId !== undefined && resume.runId !== runId) {
    throw new UsageError(`--resume ${resume.runId} and --run-id ${runId} name different runs`, 'run');
  }
  // `--resume --run-id X` means `--resume X`.
  if (resume !== undefined && resume.runId === undefined && runId !== undefined) resume = { runId };
  const force = args.flag('force');
  if (force && resume === undefined) {
    throw new UsageError('--force only applies with --resume (it accepts changed workflows)', 'run');
  }

  const shardText = args.string('shard');
  const retriesText = args.string('retries');
  const maxFailuresText = args.string('max-failures');
  const minPassRateText = args.string('min-pass-rate');
  let minPassRate: number | undefined;
  if (minPassRateText !== undefined) {
    minPassRate = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(minPassRateText) ? Number(minPassRateText) : NaN;
    if (!(minPassRate >= 0 && minPassRate <= 1)) {
      throw new UsageError(
        `--min-pass-rate must be a number from 0 to 1 (e.g. 0.9), got '${minPassRateText}'`,
        'run',
      );
    }
  }

  const graceText = args.string('grace-period') ?? '10s';
  const gracePeriodMs = parseDuration(graceText.trim());
  if (gracePeriodMs === undefined) {
    const hint = /^\d+(\.\d+)?$/.test(graceText.trim()) ? ` (add a unit: ${graceText.trim()}s)` : '';
    throw new UsageError(
      `--grace-period must be a duration like 10s, 2m or 1m30s, got '${graceText}'${hint}`,
      'run',
    );
  }

  const record = args.string('record');
  const replay = args.string('replay');
  if (record !== undefined && replay !== undefined) {
    throw new UsageError('--record and --replay cannot be used together', 'run');
  }
  for (const [flag, dir] of [
    ['--record', record],
    ['--replay', replay],
    ['--output-dir', args.string('output-dir')],
    ['--vars-file', args.string('vars-file')],
  ] as const) {
    if (dir?.trim() === '') throw new UsageError(`${flag} needs a path`, 'run');
  }
  const varsFile = args.string('vars-file');

  return {
    patterns,
    concurrency,
    ...(backend !== undefined ? { backend } : {}),
    ...(model !== undefined ? { model } : {}),
    outputDir: path.resolve(io.cwd, args.string('output-dir') ?? DEFAULT_OUTPUT_DIR),
    ...(runId !== undefined ? { runId } : {}),
    ...(resume !== undefined ? { resume } : {}),
    ...(force ? { force } : {}),
    vars: parseVarFlags(args, 'run'),
    ...(varsFile !== undefined ? { varsFile } : {}),
    ...(shardText !== undefined ? { shard: parseShard(shardText, env) } : {}),
    retries: retriesText !== undefined ? integer(retriesText, '--retries', 0) : DEFAULT_RETRIES,
    ...(maxFailuresText !== undefined ? { maxFailures: integer(maxFailuresText, '--max-failures', 1) } : {}),
    ...(minPassRate !== undefined ? { minPassRate } : {}),
    reporter: oneOf(args.string('reporter') ?? 'auto', REPORTERS, '--reporter'),
    gracePeriodMs,
    keepSandboxes: oneOf(args.string('keep-sandboxes') ?? 'never', KEEP_SANDBOXES, '--keep-sandboxes'),
    dryRun: args.flag('dry-run'),
    ...(record !== undefined ? { record: path.resolve(io.cwd, record) } : {}),
    ...(replay !== undefined ? { replay: path.resolve(io.cwd, replay) } : {}),
    isolation,
  };
}
