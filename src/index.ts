/**
 * rho-flow as a library. The CLI (`rho-flow`) is one caller of this API.
 *
 * - Workflows: `loadWorkflowFile`, `loadWorkflows`, `buildPlan` (validation with
 *   positioned diagnostics, expansion into jobs).
 * - Running: `runWorkflows` (one call), or `startRun` (a handle with
 *   `done`, `forceTeardown`), events through `onEvent`.
 * - Agents: `createAgent` → `openSession()` → `session.run(prompt)`, one
 *   sandbox per session, deleted on dispose.
 * - Sandboxes: `loadBackend('local' | 'daytona', …)` and the `Sandbox` interface.
 */

// Workflows
export { loadWorkflowFile, loadWorkflows, type LoadOptions } from './workflow/load.js';
export {
  buildPlan,
  selectShard,
  type Plan,
  type PlanOptions,
  type PlanResult,
  type Shard,
} from './workflow/plan.js';
export { formatDiagnostic, formatGithubDiagnostic } from './workflow/diagnostic.js';
export type { Diagnostic, Location, Position, Severity } from './workflow/diagnostic.js';
export type * from './workflow/types.js';
export { loadSchema, schemaFile } from './workflow/validate.js';
export { parsePromptFile, loadPromptFile } from './workflow/prompt-file.js';
export { BUILTIN_PROFILES, BUILTIN_PROFILE_NAMES, DEFAULT_PROFILE } from './profiles/builtin.js';
export { loadProfileFile, parseProfile } from './profiles/load-profile.js';
export { checkRestrictedCommand, checkToolCall, offeredTools, isSensitivePath } from './profiles/policy.js';
export type { Decision } from './profiles/policy.js';

// Expressions
export { Template, TemplateError, parseExpression, evaluate, checkTemplate } from './expr/index.js';
export type { ExprValue, ExprContext } from './expr/index.js';

// Running
export { runWorkflows, WorkflowValidationError, type RunWorkflowsOptions } from './api.js';
export {
  startRun,
  defaultRetryDelay,
  modelRetryFromEnv,
  type RunOptions,
  type RunHandle,
} from './engine/run-workflows.js';
export { planResume, type ResumeDecision, type ResumeOptions } from './engine/resume.js';
export { mergeRuns, type MergeOutcome, type MergeRunsOptions } from './results/merge-runs.js';
export { runExitCode, signalExitCode, type InterruptSignal } from './engine/run-exit-code.js';
export { newRunId } from './engine/run-id.js';
export type { ModelProvider, ResolvedStepModel } from './engine/engine-options.js';
export type { RunEvent, RunEventListener, PlannedJob, JobPhase } from './events.js';
export type * from './results/types.js';
export { RunWriter, planRecordFromJobs } from './results/run-writer.js';
export {
  readResults,
  readResultIndex,
  readSummary,
  readRunRecord,
  latestRunId,
} from './results/read-results.js';
export { writeJUnitReport } from './results/junit.js';
export { publishGitHub } from './results/github.js';
export { chooseReporter, type Reporter, type ReporterMode } from './reporters/reporter.js';

// Agents and models
export { createAgent, Agent, AgentSession } from './agent/session.js';
export type { AgentConfig, AgentModelConfig, SessionRunResult, SessionRunOptions } from './agent/session.js';
export { runPromptStep, type PromptStepOptions, type PromptStepResult } from './agent/prompt-step.js';
export { MemoryTranscript, type TranscriptSink, type TranscriptEvent } from './agent/transcript.js';
export { defaultSystemPrompt } from './agent/system-prompt.js';
export { TOOLS } from './agent/tools/index.js';
export type {
  Model,
  ModelRequest,
  ModelResponse,
  ChatMessage,
  ToolCall,
  ToolDefinition,
  Usage,
} from './agent/model.js';
export { OpenAIModel, type OpenAIModelOptions } from './agent/openai-model.js';
export { ReplayModel } from './agent/replay-model.js';
export { RecordingModel } from './agent/recording-model.js';
export {
  DefaultModelProvider,
  preflightModels,
  resolveModelName,
  DEFAULT_MODEL,
} from './agent/model-config.js';

// Sandboxes
export { loadBackend } from './sandbox/registry.js';
export type * from './sandbox/sandbox.js';

// Errors and utilities
export {
  RhoFlowError,
  UserError,
  InternalError,
  SandboxError,
  ModelError,
  MaxTurnsExceededError,
  TokenBudgetExceededError,
  type SandboxErrorCode,
  type ModelErrorCode,
} from './errors.js';
export { Redactor } from './util/redact.js';
