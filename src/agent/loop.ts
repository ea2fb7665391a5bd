/**
 * The turn loop: model → tool calls → tool results → model … until the model
 * answers without tool calls; that answer is the result.
 *
 * What callers can rely on:
 * - A turn is one model call; `maxTurns` bounds model calls. The tool calls
 *   of the last allowed turn still run (their side effects are what the agent
 *   asked for), then the loop fails with `MaxTurnsExceededError`.
 * - Parallel tool calls of one turn run sequentially, in the order given,
 *   and each gets its own `tool` message in that order.
 * - Tool failures, refusals, malformed JSON arguments, unknown tools and
 *   schema violations become tool results the model reads; the loop goes on.
 * - What ends the loop with an error: the model failing (`ModelError`, after
 *   the model's own retries), a sandbox infrastructure fault (`SandboxError`
 *   other than `not-found` / `path-escape`), `MaxTurnsExceededError`,
 *   `TokenBudgetExceededError`, or the signal aborting — then the signal's
 *   reason is thrown, whatever the model or sandbox threw on the way out.
 * - `messages` is appended to in place, and stays a valid conversation even
 *   when the loop throws (tool calls left unanswered get an "interrupted"
 *   result), so a session can continue after a failed run.
 */
import type { ChatMessage, Model, ToolCall, Usage } from './model.js';
import { addUsage, ZERO_USAGE } from './model.js';
import type { ModelPricing } from '../workflow/types.js';
import type { RunEvent } from '../events.js';
import { MaxTurnsExceededError, TokenBudgetExceededError } from '../errors.js';
import { checkToolCall } from '../profiles/policy.js';
import { didYouMeanSuffix } from '../util/did-you-mean.js';
import { TOOL_NAMES, type ToolName } from '../workflow/types.js';
import { toolDefinitions } from './tools/index.js';
import {
  fail,
  refuse,
  toolErrorToText,
  validateArgs,
  type AnyTool,
  type ToolContext,
  type ToolOutput,
} from './tools/tool.js';
import { truncateOutput } from './tools/truncate.js';
import { newPromptMessages, type StepTranscript } from './transcript.js';

/** Safety cap on any one tool message (tools cap themselves lower; this guards the JSON-wrapped ones). */
const TOOL_MESSAGE_MAX_BYTES = 96 * 1024;

/** Running totals of a step, reported after every model response. */
export interface StepProgress {
  turns: number;
  usage: Usage;
  costUsd?: number;
}

export interface AgentLoopOptions {
  jobId: string;
  stepId: string;
  model: Model;
  modelName: string;
  temperature?: number | undefined;
  maxOutputTokens?: number | undefined;
  pricing?: ModelPricing | undefined;
  /** The conversation so far (system prompt, earlier turns, the new user message). Appended to in place. */
  messages: ChatMessage[];
  /** Index of the first message not yet recorded in the transcript (default 0). */
  transcriptFrom?: number;
  /** The tools offered to the model (already filtered by the profile). */
  tools: readonly AnyTool[];
  toolContext: ToolContext;
  maxTurns: number;
  /** Tokens (input + output) this loop may use; undefined = unlimited. */
  tokenBudget?: number | undefined;
  signal: AbortSignal;
  transcript: StepTranscript;
  /** Masks secrets in event summaries. */
  redact: (text: string) => string;
  onEvent?: ((e: RunEvent) => void) | undefined;
  /** Called after every model response with the running totals (also when the loop later throws). */
  onProgress?: ((p: StepProgress) => void) | undefined;
}

export interface AgentLoopResult {
  output: string;
  turns: number;
  usage: Usage;
  costUsd?: number;
}

/** USD for `usage` at `pricing` (USD per million tokens; cached input at `cachedInput ?? input`). */
export function costOf(usage: Usage, pricing: ModelPricing): number {
  const cached = Math.min(usage.cachedInputTokens, usage.inputTokens);
  const fresh = usage.inputTokens - cached;
  return (
    (fresh * pricing.input +
      cached * (pricing.cachedInput ?? pricing.input) +
      usage.outputTokens * pricing.output) /
    1e6
  );
}

/** Runs turns until a final answer. See the module comment for the contract. */
export async function runAgentLoop(o: AgentLoopOptions): Promise<AgentLoopResult> {
  const { signal, messages, transcript } = o;
  const definitions = toolDefinitions(o.tools, {
    profile: o.toolContext.profile,
    workingDir: o.toolContext.sandbox.workingDir,
  });
  const toolNames = o.tools.map((t) => t.name);
  let usage: Usage = { ...ZERO_USAGE };
  let costUsd: number | undefined = o.pricing ? 0 : undefined;
  let recorded = o.transcriptFrom ?? 0;
  try {
    if (o.tokenBudget !== undefined && o.tokenBudget <= 0)
      throw new TokenBudgetExceededError(o.tokenBudget, 0);
    for (let turn = 1; ; turn++) {
      signal.throwIfAborted();
      if (turn > o.maxTurns) throw new MaxTurnsExceededError(o.maxTurns);

      transcript.write({
        type: 'model-request',
        turn,
        messages: newPromptMessages(messages.slice(recorded)),
        messageCount: messages.length,
        tools: toolNames,
      });
      recorded = messages.length;
      const started = performance.now();
      const response = await o.model.getResponse({
        model: o.modelName,
        messages: [...messages],
        tools: definitions,
        ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
        ...(o.maxOutputTokens !== undefined ? { maxOutputTokens: o.maxOutputTokens } : {}),
        meta: { jobId: o.jobId, stepId: o.stepId, turn },
        signal,
      });
      signal.throwIfAborted();
      const durationMs = Math.round(performance.now() - started);

      usage = addUsage(usage, response.usage);
      if (o.pricing) costUsd = costOf(usage, o.pricing);
      transcript.write({
        type: 'model-response',
        turn,
        content: response.content,
        toolCalls: response.toolCalls.map((c) => ({ id: c.id, name: c.name })),
        usage: response.usage,
        ...(response.finishReason !== undefined ? { finishReason: response.finishReason } : {}),
        ...(response.model !== undefined ? { model: response.model } : {}),
        durationMs,
      });
      transcript.write({
        type: 'usage',
        turn,
        usage: response.usage,
        total: usage,
        ...(costUsd !== undefined ? { costUsd } : {}),
      });
      o.onProgress?.({ turns: turn, usage, ...(costUsd !== undefined ? { costUsd } : {}) });
      o.onEvent?.({ type: 'agent', reason: 'turn', jobId: o.jobId, stepId: o.stepId, turn, usage });

      messages.push({
        role: 'assistant',
        content: response.content,
        ...(response.toolCalls.length > 0 ? { toolCalls: response.toolCalls } : {}),
      });
      recorded = messages.length;

      const used = usage.inputTokens + usage.outputTokens;
      if (o.tokenBudget !== undefined && used > o.tokenBudget)
        throw new TokenBudgetExceededError(o.tokenBudget, used);

      if (response.toolCalls.length === 0) {
        return {
          output: response.content ?? '',
          turns: turn,
          usage,
          ...(costUsd !== undefined ? { costUsd } : {}),
        };
      }
      for (const call of response.toolCalls) {
        signal.throwIfAborted();
        const content = await executeToolCall(o, call, turn);
        messages.push({ role: 'tool', toolCallId: call.id, content });
        recorded = messages.length;
      }
    }
  } catch (e) {
    answerDanglingToolCalls(messages);
    // Whatever the model or sandbox threw while being cancelled, the reason of the abort is what callers map.
    if (signal.aborted) throw signal.reason;
    throw e;
  }
}

/** Runs one tool call to a text for the model; throws only for aborts and infrastructure faults. */
async function executeToolCall(o: AgentLoopOptions, call: ToolCall, turn: number): Promise<string> {
  const { transcript, signal } = o;
  const parsed = parseArguments(call.arguments);
  transcript.write({
    type: 'tool-call',
    turn,
    id: call.id,
    name: call.name,
    arguments: parsed.ok ? parsed.value : call.arguments,
  });
  o.onEvent?.({
    type: 'agent',
    reason: 'tool-call',
    jobId: o.jobId,
    stepId: o.stepId,
    tool: call.name,
    summary: o.redact(summarize(call.name, parsed.ok ? parsed.value : undefined)),
  });
  const started = performance.now();
  const out = await decideAndRun(o, call, parsed);
  const capped = truncateOutput(out.output === '' ? '(no output)' : out.output, {
    maxBytes: TOOL_MESSAGE_MAX_BYTES,
    maxLines: 4000,
    keep: 'head-tail',
  }).text;
  transcript.write({
    type: 'tool-result',
    turn,
    id: call.id,
    name: call.name,
    ok: out.status === 'ok',
    status: out.status,
    output: capped,
    durationMs: Math.round(performance.now() - started),
  });
  signal.throwIfAborted();
  return capped;
}

async function decideAndRun(
  o: AgentLoopOptions,
  call: ToolCall,
  parsed: { ok: true; value: unknown } | { ok: false; error: string },
): Promise<ToolOutput> {
  const { profile } = o.toolContext;
  const tool = o.tools.find((t) => t.name === call.name);
  if (tool === undefined) {
    const offered = o.tools.map((t) => t.name);
    if (isToolName(call.name)) {
      // A real tool this step does not offer (profile or `tools:` narrowing): the policy says why.
      const decision = checkToolCall(profile, call.name, parsed.ok ? asRecord(parsed.value) : {}, offered);
      const why = decision.allowed ? `'${call.name}' is not enabled for this step` : decision.reason;
      return refuse(`Refused: ${why}. Available tools: ${offered.join(', ') || 'none'}.`);
    }
    return fail(
      `Error: unknown tool '${call.name}'${didYouMeanSuffix(call.name, offered)}. Available tools: ${offered.join(', ') || 'none'}.`,
    );
  }
  if (!parsed.ok) {
    return fail(
      `Error: the arguments of this '${call.name}' call are not valid JSON (${parsed.error}). Send a JSON object.`,
    );
  }
  const valid = validateArgs(tool.parameters, parsed.value);
  if (!valid.ok) return fail(`Error: invalid arguments for '${call.name}': ${valid.error}.`);
  const decision = checkToolCall(profile, tool.name, valid.value);
  if (!decision.allowed) return refuse(`Refused: ${decision.reason}`);
  try {
    return await tool.run(valid.value, o.toolContext);
  } catch (e) {
    if (o.signal.aborted) throw o.signal.reason;
    const text = toolErrorToText(e);
    if (text === undefined) throw e;
    return fail(text);
  }
}

function parseArguments(raw: string): { ok: true; value: unknown } | { ok: false; error: string } {
  // Some servers send an empty string for a call without arguments.
  if (raw.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

const isToolName = (name: string): name is ToolName => (TOOL_NAMES as readonly string[]).includes(name);

function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** A one-line description of a call for progress events (`bash: npm test`). */
export function summarize(name: string, args: unknown): string {
  const a = asRecord(args);
  const pick = (k: string): string | undefined => (typeof a[k] === 'string' ? a[k] : undefined);
  const detail =
    name === 'bash'
      ? pick('command')
      : name === 'glob' || name === 'grep'
        ? pick('pattern')
        : name === 'run_code'
          ? pick('language')
          : pick('path');
  const oneLine = (detail ?? '').replace(/\s+/g, ' ').trim();
  const text = oneLine === '' ? name : `${name}: ${oneLine}`;
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

/**
 * Gives every tool call of the last assistant message a result, so the
 * conversation stays valid for the next request (chat APIs reject a tool
 * call without its tool message).
 */
export function answerDanglingToolCalls(messages: ChatMessage[]): void {
  let i = messages.length - 1;
  while (i >= 0 && messages[i]?.role === 'tool') i--;
  const last = messages[i];
  if (last?.role !== 'assistant' || !last.toolCalls) return;
  const answered = new Set(messages.slice(i + 1).map((m) => (m.role === 'tool' ? m.toolCallId : '')));
  for (const call of last.toolCalls) {
    if (!answered.has(call.id)) {
      messages.push({
        role: 'tool',
        toolCallId: call.id,
        content: 'Error: not executed: the run was interrupted before this call.',
      });
    }
  }
}
