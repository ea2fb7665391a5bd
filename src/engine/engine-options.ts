import type { Job, BackendName, PromptStep, Workflow, ModelPricing } from '../workflow/types.js';
import type { SandboxBackend } from '../sandbox/sandbox.js';
import type { RunEvent } from '../events.js';
import type { JobResult } from '../results/types.js';
import type { Model } from '../agent/model.js';
import type { Redactor } from '../util/redact.js';

/** Where the engine writes a job's streaming files (log.txt, transcript.jsonl). */
export interface JobSinks {
  /** Appends run-step output / headers to `log.txt` (redacted by the sink). */
  log(text: string): void;
  /** Appends one event to `transcript.jsonl` (redacted by the sink). */
  transcript(event: Record<string, unknown>): void;
  /** Absolute path of `jobs/<slug>/artifacts/`. */
  artifactsDir: string;
  /** Flushes and closes the files. */
  close(): Promise<void>;
}

/** Receives each job's final result; resolves once it is durably on disk. */
export interface ResultSink {
  recordJob(result: JobResult): Promise<void>;
}

/** The model a prompt step talks to, resolved per job and step (record/replay, overrides, endpoints). */
export interface ResolvedStepModel {
  model: Model;
  name: string;
  temperature?: number;
  maxOutputTokens?: number;
  pricing?: ModelPricing;
}

export interface ModelProvider {
  forStep(job: Job, step: PromptStep, modelName: string): ResolvedStepModel;
}

/** Test hooks to inject faults into the engine itself. @internal */
export interface EngineHooks {
  /** Called right after a job's sandbox was created; throwing simulates an engine bug. */
  afterCreate?: (job: Job) => void | Promise<void>;
}

export interface EngineOptions {
  /** Jobs to run, in plan order. */
  jobs: readonly Job[];
  runId: string;
  /** Live sandboxes across everything. */
  concurrency: number;
  /** Backends by name, already preflighted. */
  backends: ReadonlyMap<BackendName, SandboxBackend>;
  /** `--backend` / `RHO_FLOW_BACKEND` override of the files' backend. */
  backendOverride?: BackendName;
  /** Infrastructure retries per job (status `error`); default 2. */
  retries: number;
  /** Backoff before retry `attempt` (2, 3, …). */
  retryDelayMs: (attempt: number) => number;
  /** Stop starting jobs after this many failed/timed-out jobs. */
  maxFailures?: number;
  /** After cancellation (or a job timeout), how long `finally`, artifacts and teardown may take. */
  gracePeriodMs: number;
  keepSandboxes: 'never' | 'on-failure';
  /** Secret values by secret name, resolved from the host environment before the run. */
  secrets: Readonly<Record<string, string>>;
  redactor: Redactor;
  /** `--model` override. */
  modelOverride?: string;
  models: ModelProvider;
  /** Cancels the run (first SIGINT/SIGTERM). */
  signal: AbortSignal;
  onEvent: (event: RunEvent) => void;
  results: ResultSink;
  openJobSinks: (job: Job) => Promise<JobSinks>;
  hooks?: EngineHooks;
}

/** The backend a job runs on. */
export function backendFor(workflow: Workflow, override: BackendName | undefined): BackendName {
  return override ?? workflow.sandbox.backend;
}
