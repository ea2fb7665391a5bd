/** Result records written to disk (results.jsonl, result.json, summary.json). */
import type { Usage } from '../agent/model.js';
import type { ExprValue } from '../expr/evaluate.js';

/** Final status of a job (product.md §5). */
export type JobStatus = 'passed' | 'failed' | 'timed-out' | 'error' | 'cancelled' | 'skipped';
export const JOB_STATUSES: readonly JobStatus[] = [
  'passed',
  'failed',
  'timed-out',
  'error',
  'cancelled',
  'skipped',
];

export type StepStatus = 'passed' | 'failed' | 'timed-out' | 'error' | 'cancelled' | 'skipped';

export interface ErrorInfo {
  /** `sandbox` and `model` are infrastructure errors (status `error`). */
  kind: 'sandbox' | 'model' | 'user' | 'internal' | 'step';
  code?: string;
  message: string;
  /** For infrastructure errors: whether a new attempt may succeed (auth, bad requests, build failures, replay misses may not). */
  retryable?: boolean;
}

export interface StepResult {
  id: string;
  name: string;
  kind: 'run' | 'prompt';
  /** true for steps of the `finally` block. */
  finally: boolean;
  status: StepStatus;
  continueOnError: boolean;
  exitCode?: number;
  durationMs: number;
  /** stdout of a run step / final answer of a prompt step (truncated to 64 KiB, secrets masked). */
  output?: string;
  outputs?: Record<string, string>;
  error?: ErrorInfo;
  /** prompt steps */
  turns?: number;
  usage?: Usage;
  costUsd?: number;
}

export interface ArtifactResult {
  path: string;
  to: string;
  status: 'downloaded' | 'not-found' | 'skipped' | 'refused' | 'error';
  files: number;
  bytes: number;
  message?: string;
}

export interface JobResult {
  runId: string;
  id: string;
  slug: string;
  workflow: string;
  file: string;
  index: number;
  matrix?: Readonly<Record<string, ExprValue>>;
  item?: Readonly<Record<string, ExprValue>>;
  repeat?: { index: number; total: number };
  status: JobStatus;
  /** Attempts made (1 + infrastructure retries). */
  attempts: number;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  backend: string;
  sandboxId?: string;
  steps: StepResult[];
  artifacts: ArtifactResult[];
  usage: Usage;
  costUsd?: number;
  error?: ErrorInfo;
  /** Set when deleting the sandbox failed (it may still exist; see `rho-flow cleanup`). */
  teardownError?: string;
  /** The workflow hash of the plan this result belongs to (for --resume). */
  workflowHash: string;
}

export interface RunCounts {
  passed: number;
  failed: number;
  timedOut: number;
  error: number;
  cancelled: number;
  skipped: number;
}

export interface RunSummary {
  runId: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  counts: RunCounts;
  /** passed / (passed + failed + timed-out): infrastructure errors, cancelled and skipped jobs are not verdicts on the agent. null when there is no verdict. */
  passRate: number | null;
  usage: Usage;
  costUsd?: number;
  jobs: Array<{
    id: string;
    /** Folder name under `jobs/` (absent in summaries written before it was added). */
    slug?: string;
    workflow: string;
    file: string;
    status: JobStatus;
    attempts: number;
    durationMs: number;
    usage: Usage;
    artifacts: Array<{ path: string; to: string; status: ArtifactResult['status'] }>;
    error?: string;
    /** Id of the step that decided a failed / timed-out / error verdict, when one did. */
    failedStep?: string;
  }>;
  /** pass@k per repeat group; present when any job has `repeat` (issue 6 item 4). */
  groups?: RepeatGroup[];
  /** Aggregates over `groups`; present with it. */
  passAtK?: PassAtK;
  /** Set when the run was interrupted by a signal. */
  interrupted?: 'SIGINT' | 'SIGTERM' | 'SIGHUP';
  exitCode: number;
  /** `--shard i/n`: this run covered one slice of the plan (`rho-flow merge` combines them). */
  shard?: { index: number; total: number };
}

/**
 * The jobs of one id without its `#n` repeat suffix, e.g. `fix[task=a]` for
 * `fix[task=a]#1..#3`. Like `passRate`, only passed / failed / timed-out
 * jobs are verdicts.
 */
export interface RepeatGroup {
  id: string;
  workflow: string;
  /** Repeats declared (`repeat.total`). */
  k: number;
  /** Jobs of the group with a verdict. */
  verdicts: number;
  passed: number;
  /** passed / verdicts; null without a verdict. */
  passAt1: number | null;
  /** At least one repeat passed. */
  anyPass: boolean;
}

export interface PassAtK {
  /** The repeat count when every group has the same one, else null (mixed). */
  k: number | null;
  groups: number;
  /** Mean of the groups' passAt1 over groups with a verdict; null when none has one. */
  passAt1: number | null;
  /** Fraction of groups with a verdict in which any repeat passed (pass@k); null when none has one. */
  anyPass: number | null;
}
