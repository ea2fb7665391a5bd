/**
 * An in-process `Model` for agent-loop unit tests: answers from a queue of
 * scripted replies and records every request it was asked.
 *
 * ```ts
 * const model = new ScriptedModel([
 *   scripted.toolCall('bash', { command: 'ls' }),
 *   scripted.text('done'),
 * ]);
 * // … run the loop …
 * expect(model.requests[1]?.messages.at(-1)).toMatchObject({ role: 'tool' });
 * ```
 *
 * A reply is a `ModelResponse` (partial: missing fields default), a string
 * (final text), an `Error` (thrown, e.g. a `ModelError`), a function of the
 * request (computed reply), or `scripted.hang()` (never answers; rejects with
 * the signal's reason when the request is aborted). An empty queue throws a
 * plain `Error` naming the turn, so an unexpected extra call fails the test.
 */
import type { Model, ModelRequest, ModelResponse, ToolCall, Usage } from '../../src/agent/model.js';

const HANG = Symbol('hang');

export type ScriptedReply =
  | string
  | Error
  | (Partial<Omit<ModelResponse, 'toolCalls'>> & { toolCalls?: Array<Partial<ToolCall> & { name: string }> })
  | ((request: ModelRequest, index: number) => ScriptedReply | Promise<ScriptedReply>)
  | typeof HANG;

/** A recorded request: a deep copy taken when the call arrived (later mutation by the loop does not show). */
export type RecordedModelRequest = Omit<ModelRequest, 'signal'> & { aborted: () => boolean };

/** Builders for {@link ScriptedReply}. */
export const scripted = {
  text(content: string, usage?: Partial<Usage>): ScriptedReply {
    return { content, ...(usage ? { usage: { ...DEFAULT_USAGE, ...usage } } : {}) };
  },
  /** One tool call; `args` may be an object (JSON-encoded) or a raw, possibly malformed string. */
  toolCall(name: string, args: Record<string, unknown> | string = {}, id?: string): ScriptedReply {
    return { content: null, toolCalls: [{ name, arguments: encode(args), ...(id ? { id } : {}) }] };
  },
  /** Several tool calls in one turn (parallel calls). */
  toolCalls(
    calls: Array<{ name: string; args?: Record<string, unknown> | string; id?: string }>,
  ): ScriptedReply {
    return {
      content: null,
      toolCalls: calls.map((c) => ({
        name: c.name,
        arguments: encode(c.args ?? {}),
        ...(c.id ? { id: c.id } : {}),
      })),
    };
  },
  /** Never answers; rejects with the request signal's reason when it aborts. */
  hang(): ScriptedReply {
    return HANG;
  },
};

const DEFAULT_USAGE: Usage = { inputTokens: 10, outputTokens: 5, cachedInputTokens: 0 };

function encode(args: Record<string, unknown> | string): string {
  return typeof args === 'string' ? args : JSON.stringify(args);
}

export class ScriptedModel implements Model {
  readonly #queue: ScriptedReply[];
  readonly requests: RecordedModelRequest[] = [];

  constructor(replies: ScriptedReply[] = []) {
    this.#queue = [...replies];
  }

  /** Appends replies to the queue. */
  push(...replies: ScriptedReply[]): this {
    this.#queue.push(...replies);
    return this;
  }

  /** Replies not used yet. */
  get remaining(): number {
    return this.#queue.length;
  }

  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    const { signal, ...rest } = request;
    const index = this.requests.length;
    this.requests.push({ ...structuredClone(rest), aborted: () => signal?.aborted ?? false });
    signal?.throwIfAborted();
    let next = this.#queue.shift();
    if (next === undefined) {
      throw new Error(
        `ScriptedModel: no reply scripted for request #${index + 1} (job ${request.meta.jobId}, step ${request.meta.stepId}, turn ${request.meta.turn})`,
      );
    }
    while (typeof next === 'function') next = await next(request, index);
    if (next === HANG) return hang(signal);
    if (next instanceof Error) throw next;
    signal?.throwIfAborted();
    return toResponse(next, index);
  }
}

function hang(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

function toResponse(
  reply: Exclude<ScriptedReply, Error | typeof HANG | ((...a: never[]) => unknown)>,
  index: number,
): ModelResponse {
  if (typeof reply === 'string')
    return { content: reply, toolCalls: [], usage: { ...DEFAULT_USAGE }, finishReason: 'stop' };
  const toolCalls: ToolCall[] = (reply.toolCalls ?? []).map((c, i) => ({
    id: c.id ?? `call_${index + 1}_${i + 1}`,
    name: c.name,
    arguments: c.arguments ?? '{}',
  }));
  const response: ModelResponse = {
    content: reply.content !== undefined ? reply.content : toolCalls.length > 0 ? null : '',
    toolCalls,
    usage: { ...DEFAULT_USAGE, ...reply.usage },
    finishReason: reply.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
  };
  if (reply.model !== undefined) response.model = reply.model;
  return response;
}
