/**
 * The only contract between the engine and the terminal: the engine emits
 * these events, reporters render them. The engine never writes to stdout.
 */
import type { JobResult, JobStatus, RunSummary, StepResult } from './results/types.js';
import type { Usage } from './agent/model.js';

export interface PlannedJob {
  id: string;
  slug: string;
  workflow: string;
  file: string;
}

/** `--resume`: what the resumed run keeps from earlier sessions and what it runs again. */
export interface ResumedInfo {
  /** Jobs whose earlier result (a verdict) is kept; they are not in `jobs`. */
  kept: number;
  keptByStatus: Partial<Record<JobStatus, number>>;
  /** Jobs run again (= `jobs.length`), by reason. */
  rerun: number;
  reasons: { missing: number; error: number; cancelled: number; skipped: number; changed: number };
}

export type JobPhase = 'create' | 'upload' | 'steps' | 'finally' | 'artifacts' | 'teardown';

export type RunEvent =
  | {
      type: 'run';
      reason: 'started';
      runId: string;
      outputDir: string;
      jobs: readonly PlannedJob[];
      /** Jobs not run this time (resume: already finished; shard: other shards). */
      skipped: number;
      /** Set when this run continues an earlier one (`--resume`). */
      resumed?: ResumedInfo;
      concurrency: number;
      startedAt: string;
      /** `<outputDir>/<runId>` (reporters derive it when absent). */
      runDir?: string;
    }
  | { type: 'run'; reason: 'interrupted'; signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP'; forced: boolean }
  | {
      type: 'run';
      reason: 'finished';
      summary: RunSummary;
      outputDir: string;
      /** `<outputDir>/<runId>` (reporters derive it when absent). */
      runDir?: string;
      /** Path of the JUnit report when not `<runDir>/junit.xml` (shards). */
      junitPath?: string;
    }
  | { type: 'job'; reason: 'started'; jobId: string; attempt: number }
  | { type: 'job'; reason: 'phase'; jobId: string; phase: JobPhase }
  | { type: 'job'; reason: 'retrying'; jobId: string; attempt: number; error: string; delayMs: number }
  | { type: 'job'; reason: 'finished'; result: JobResult }
  | { type: 'step'; reason: 'started'; jobId: string; stepId: string; name: string; finally: boolean }
  | { type: 'step'; reason: 'finished'; jobId: string; result: StepResult }
  | { type: 'step'; reason: 'output'; jobId: string; stepId: string; text: string }
  | { type: 'agent'; reason: 'turn'; jobId: string; stepId: string; turn: number; usage: Usage }
  | { type: 'agent'; reason: 'tool-call'; jobId: string; stepId: string; tool: string; summary: string }
  | { type: 'warning'; message: string; jobId?: string };

export type RunEventListener = (event: RunEvent) => void;
