/**
 * The model interface the agent loop talks to. No SDK import here: the
 * `openai` package lives only in `openai-model.ts`; tests and replay use
 * other implementations.
 */

export interface ToolCall {
  id: string;
  name: string;
  /** Raw JSON text as the model produced it (may be malformed). */
  arguments: string;
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string | null; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; content: string };

export interface ToolDefinition {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** Input tokens served from the provider's prompt cache (subset of `inputTokens`). */
  cachedInputTokens: number;
}

export const ZERO_USAGE: Usage = Object.freeze({ inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 });

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
  };
}

/** Where a request comes from; used by record/replay to name cassettes and by messages. */
export interface RequestMeta {
  jobId: string;
  stepId: string;
  /** 1-based turn number within the step. */
  turn: number;
}

export interface ModelRequest {
  model: string;
  messages: readonly ChatMessage[];
  tools: readonly ToolDefinition[];
  temperature?: number;
  maxOutputTokens?: number;
  meta: RequestMeta;
  signal?: AbortSignal;
}

export interface ModelResponse {
  content: string | null;
  toolCalls: ToolCall[];
  usage: Usage;
  finishReason?: string;
  /** Model name the server reports. */
  model?: string;
}

/** Something that answers chat requests. Implementations throw `ModelError` on API failure (after their own retries). */
export interface Model {
  getResponse(request: ModelRequest): Promise<ModelResponse>;
}
