/**
 * `runPromptStep` — the engine's entry point for a `prompt` step: builds the
 * tool set from the profile (and the step's `tools:` narrowing), the system
 * prompt, and runs the agent loop in the job's sandbox, recording everything
 * to the transcript between a `step-start` and a `step-end` event.
 *
 * Failure semantics (product.md §2) — the step fails by throwing:
 * - `ModelError` (model API failed after retries) → the engine says `error`;
 * - `SandboxError` (infrastructure, not `not-found`/`path-escape`) → `error`;
 * - `MaxTurnsExceededError`, `TokenBudgetExceededError` → `failed`;
 * - the signal's abort reason (step timeout, job timeout, cancellation) →
 *   the engine maps the reason.
 * Tool errors and policy refusals are not failures: the model reads them.
 */
import type { Sandbox } from '../sandbox/sandbox.js';
import type { ChatMessage, Model, Usage } from './model.js';
import { ZERO_USAGE } from './model.js';
import type { ModelPricing, Profile, ToolName } from '../workflow/types.js';
import type { RunEvent } from '../events.js';
import { MaxTurnsExceededError, ModelError, SandboxError, TokenBudgetExceededError } from '../errors.js';
import { abortKind } from '../util/abort.js';
import { offeredTools } from '../profiles/policy.js';
import { toolsByName } from './tools/index.js';
import { defaultSystemPrompt } from './system-prompt.js';
import { runAgentLoop, type StepProgress } from './loop.js';
import { StepTranscript, type StepEndStatus, type TranscriptSink } from './transcript.js';

export type { TranscriptSink } from './transcript.js';
export type { StepProgress } from './loop.js';

export interface PromptStepOptions {
  jobId: string;
  stepId: string;
  /** The job's sandbox; every tool runs in it. */
  sandbox: Sandbox;
  /** The user message, already rendered. */
  userPrompt: string;
  /** Rendered system prompt; `undefined` → the built-in default (see `system-prompt.ts`). */
  systemPrompt?: string | undefined;
  model: Model;
  modelName: string;
  temperature?: number | undefined;
  maxOutputTokens?: number | undefined;
  pricing?: ModelPricing | undefined;
  profile: Profile;
  /** The step's narrowing of the tool set; the profile still decides. */
  tools?: readonly ToolName[] | undefined;
  maxTurns: number;
  /** Remaining per-job token budget (input + output); undefined = unlimited. Exceeding it → `TokenBudgetExceededError`. */
  tokenBudget?: number | undefined;
  /** Aborts everything: the model call and the running tool. */
  signal: AbortSignal;
  /** Every model request/response, tool call/result and usage, as it happens (redacted). */
  transcript: TranscriptSink;
  /** Applied to every string written to the transcript and to event summaries. */
  redact: (text: string) => string;
  /** `{type: 'agent', reason: 'turn' | 'tool-call'}` progress events. */
  onEvent?: ((e: RunEvent) => void) | undefined;
  /**
   * Running totals after every model response. Lets the engine count the
   * tokens (and cost) of a step that then fails — a thrown error carries no usage.
   */
  onProgress?: ((p: StepProgress) => void) | undefined;
}

export interface PromptStepResult {
  /** The model's final answer. */
  output: string;
  /** Model calls made. */
  turns: number;
  usage: Usage;
  /** Set when the model has pricing. */
  costUsd?: number;
}

/** Runs one prompt step to its final answer. See the module comment for how it fails. */
export async function runPromptStep(o: PromptStepOptions): Promise<PromptStepResult> {
  const names = stepToolNames(o.profile, o.tools);
  const system =
    o.systemPrompt ??
    defaultSystemPrompt({ workingDir: o.sandbox.workingDir, tools: names, profile: o.profile });
  const messages: ChatMessage[] = [
    { role: 'system', content: system },
    { role: 'user', content: o.userPrompt },
  ];
  return runConversationStep(o, messages, 0);
}

/** The tools a step offers: the profile's decision, narrowed by the step's `tools:`. */
export function stepToolNames(profile: Profile, narrowed: readonly ToolName[] | undefined): ToolName[] {
  return offeredTools(profile, narrowed);
}

/**
 * Runs the loop on an existing conversation (the session API keeps one across
 * runs), between `step-start` and `step-end` transcript events. `messages`
 * must end with the new user message; it is appended to in place.
 * `transcriptFrom` is the index of the first message not yet in the transcript.
 * @internal
 */
export async function runConversationStep(
  o: Omit<PromptStepOptions, 'userPrompt' | 'systemPrompt'>,
  messages: ChatMessage[],
  transcriptFrom: number,
): Promise<PromptStepResult> {
  const names = stepToolNames(o.profile, o.tools);
  const transcript = new StepTranscript(o.transcript, o.stepId, o.redact);
  let progress: StepProgress = { turns: 0, usage: { ...ZERO_USAGE } };
  transcript.write({
    type: 'step-start',
    job: o.jobId,
    model: o.modelName,
    profile: o.profile.name,
    tools: names,
    maxTurns: o.maxTurns,
    ...(o.tokenBudget !== undefined ? { tokenBudget: o.tokenBudget } : {}),
  });
  try {
    const result = await runAgentLoop({
      jobId: o.jobId,
      stepId: o.stepId,
      model: o.model,
      modelName: o.modelName,
      temperature: o.temperature,
      maxOutputTokens: o.maxOutputTokens,
      pricing: o.pricing,
      messages,
      transcriptFrom,
      tools: toolsByName(names),
      toolContext: { sandbox: o.sandbox, signal: o.signal, profile: o.profile },
      maxTurns: o.maxTurns,
      tokenBudget: o.tokenBudget,
      signal: o.signal,
      transcript,
      redact: o.redact,
      onEvent: o.onEvent,
      onProgress: (p) => {
        progress = p;
        o.onProgress?.(p);
      },
    });
    transcript.write({
      type: 'step-end',
      status: 'passed',
      turns: result.turns,
      usage: result.usage,
      ...(result.costUsd !== undefined ? { costUsd: result.costUsd } : {}),
      output: result.output,
    });
    return result;
  } catch (e) {
    transcript.write({
      type: 'step-end',
      status: endStatus(e, o.signal),
      turns: progress.turns,
      usage: progress.usage,
      ...(progress.costUsd !== undefined ? { costUsd: progress.costUsd } : {}),
      error: describeError(e),
    });
    throw e;
  }
}

/** How the transcript labels a step that threw (the engine makes the real decision from the error). */
export function endStatus(e: unknown, signal: AbortSignal): StepEndStatus {
  if (signal.aborted) {
    const kind = abortKind(signal);
    return kind === 'step-timeout' || kind === 'job-timeout' ? 'timed-out' : 'cancelled';
  }
  if (e instanceof MaxTurnsExceededError || e instanceof TokenBudgetExceededError) return 'failed';
  return 'error';
}

function describeError(e: unknown): { name: string; code?: string; message: string } {
  if (e instanceof SandboxError || e instanceof ModelError)
    return { name: e.name, code: e.code, message: e.message };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}
