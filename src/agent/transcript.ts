/**
 * What a prompt step writes to the job's `transcript.jsonl`, as it happens.
 * One JSON object per event; every event has `type`, `time` (ISO 8601) and
 * `step` (the step id). All strings have passed through the run's redactor
 * before they reach the sink.
 *
 * To keep the file small, nothing is written twice: a `model-request` lists
 * only the *new* system/user messages since the previous request (the first
 * request of a step carries the system prompt and the user prompt); the
 * assistant's messages are the `model-response` events, and the `tool`
 * messages are the `tool-result` events (their `output` is exactly the text
 * the model received, after truncation). Replaying the events in order
 * rebuilds the whole conversation; `messageCount` says how long it was at
 * each request.
 */
import type { ChatMessage, Usage } from './model.js';
import type { ToolName } from '../workflow/types.js';
import type { ToolStatus } from './tools/tool.js';

/** Where transcript events go: the job's `transcript.jsonl` writer, or an in-memory array in tests. */
export interface TranscriptSink {
  write(event: Record<string, unknown>): void;
}

/** A sink that drops everything. */
export const NULL_TRANSCRIPT: TranscriptSink = { write: () => undefined };

/** A sink that keeps the events in memory (tests, the session API). */
export class MemoryTranscript implements TranscriptSink {
  readonly events: Array<Record<string, unknown>> = [];
  write(event: Record<string, unknown>): void {
    this.events.push(event);
  }
}

interface Base {
  time: string;
  step: string;
}

export interface StepStartEvent extends Base {
  type: 'step-start';
  job: string;
  model: string;
  profile: string;
  tools: readonly ToolName[];
  maxTurns: number;
  tokenBudget?: number;
}

export interface ModelRequestEvent extends Base {
  type: 'model-request';
  turn: number;
  /** System/user messages added since the previous request (see the module comment). */
  messages: ReadonlyArray<{ role: 'system' | 'user'; content: string }>;
  /** Length of the conversation sent with this request. */
  messageCount: number;
  /** Names of the tools offered. */
  tools: readonly string[];
}

export interface ModelResponseEvent extends Base {
  type: 'model-response';
  turn: number;
  content: string | null;
  toolCalls: ReadonlyArray<{ id: string; name: string }>;
  usage: Usage;
  finishReason?: string;
  model?: string;
  durationMs: number;
}

export interface ToolCallEvent extends Base {
  type: 'tool-call';
  turn: number;
  id: string;
  name: string;
  /** The parsed arguments object, or the raw text when it was not valid JSON. */
  arguments: unknown;
}

export interface ToolResultEvent extends Base {
  type: 'tool-result';
  turn: number;
  id: string;
  name: string;
  ok: boolean;
  status: ToolStatus;
  /** Exactly what the model received. */
  output: string;
  durationMs: number;
}

export interface UsageEvent extends Base {
  type: 'usage';
  turn: number;
  /** This turn's tokens. */
  usage: Usage;
  /** The step's tokens so far. */
  total: Usage;
  /** The step's cost so far, when the model has pricing. */
  costUsd?: number;
}

export type StepEndStatus = 'passed' | 'failed' | 'timed-out' | 'cancelled' | 'error';

export interface StepEndEvent extends Base {
  type: 'step-end';
  status: StepEndStatus;
  turns: number;
  usage: Usage;
  costUsd?: number;
  /** The final answer (passed). */
  output?: string;
  /** Why it did not pass. */
  error?: { name: string; code?: string; message: string };
}

export type TranscriptEvent =
  | StepStartEvent
  | ModelRequestEvent
  | ModelResponseEvent
  | ToolCallEvent
  | ToolResultEvent
  | UsageEvent
  | StepEndEvent;

/** Distributes `Omit` over the union so each event keeps its own fields. */
export type TranscriptEventInput = TranscriptEvent extends infer E
  ? E extends TranscriptEvent
    ? Omit<E, 'time' | 'step'>
    : never
  : never;

/**
 * Writes events for one step: stamps `time` and `step`, and redacts every
 * string (keys included) before the sink sees it.
 */
export class StepTranscript {
  readonly #sink: TranscriptSink;
  readonly #redact: (text: string) => string;
  readonly #step: string;

  constructor(sink: TranscriptSink, step: string, redact: (text: string) => string) {
    this.#sink = sink;
    this.#step = step;
    this.#redact = redact;
  }

  write(event: TranscriptEventInput): void {
    // `type` first so each JSONL line reads naturally; `time` and `step` stamped here.
    const { type, ...rest } = event;
    const stamped = { type, time: new Date().toISOString(), step: this.#step, ...rest };
    this.#sink.write(redactDeep(stamped, this.#redact) as Record<string, unknown>);
  }
}

/** A copy of a JSON-like value with `redact` applied to every string. */
export function redactDeep(value: unknown, redact: (text: string) => string): unknown {
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k), redactDeep(v, redact)]));
  }
  return value;
}

/** The system/user messages of `messages` (for `model-request` events). */
export function newPromptMessages(
  messages: readonly ChatMessage[],
): Array<{ role: 'system' | 'user'; content: string }> {
  const out: Array<{ role: 'system' | 'user'; content: string }> = [];
  for (const m of messages)
    if (m.role === 'system' || m.role === 'user') out.push({ role: m.role, content: m.content });
  return out;
}
