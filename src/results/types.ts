/** Result records written to disk (results.jsonl, result.json, summary.json). */
import type { Usage } from '../agent/model.js';
import type { ExprValue } from '../expr/evaluate.js';

/** Final status of a job (product.md §5). */
export type JobStatus = 'passed' | 'failed' | 'timed-out' | 'error' | 'cancelled' | 'skipped';
export const JOB_STATUSES: readonly JobStatus[] = ['passed', 'failed', 'timed-out', 'error', 'cancelled', 'skipped'];

export type StepStatus = 'passed' | 'failed' | 'timed-out' | 'error' | 'cancelled' | 'skipped';

export interface ErrorInfo {
  /** `sandbox` and `model` are infrastructure errors (status `error`). */
  kind: 'sandbox' | 'model' | 'user' | 'internal' | 'step';
  code?: string;
  message: string;
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
    workflow: string;
    file: string;
    status: JobStatus;
    attempts: number;
    durationMs: number;
    usage: Usage;
    artifacts: Array<{ path: string; to: string; status: ArtifactResult['status'] }>;
    error?: string;
  }>;
  /** Set when the run was interrupted by a signal. */
  interrupted?: 'SIGINT' | 'SIGTERM' | 'SIGHUP';
  exitCode: number;
}
