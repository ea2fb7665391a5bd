/**
 * The model edge: `Model` over the chat-completions API of the real `openai`
 * package. This is the only file in rho-flow that imports `openai`, and it
 * does so lazily (first request), so loading rho-flow never loads the SDK.
 *
 * Works with OpenAI and any compatible server (Ollama, vLLM, …) through the
 * base URL. Retries are ours, not the SDK's (`maxRetries: 0`), so the policy
 * is explicit and observable through `onRetry`:
 * - 429, 408, 409, 5xx, connection errors, per-request timeouts and malformed
 *   response bodies are retried with exponential backoff + jitter, honouring
 *   `Retry-After` / `retry-after-ms` (capped, see `retry.ts`);
 * - 400/401/403/404/422 (and a 429 `insufficient_quota`, which waiting cannot
 *   fix) fail at once.
 * After the last attempt the failure is a `ModelError` with a code and status.
 * Aborting `request.signal` cancels the HTTP request or the backoff wait at
 * once and rejects with the signal's reason, unwrapped.
 */
import type OpenAI from 'openai';
import type { APIError } from 'openai';
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import type {
  ChatMessage,
  Model,
  ModelRequest,
  ModelResponse,
  RequestMeta,
  ToolCall,
  ToolDefinition,
  Usage,
} from './model.js';
import { ModelError, UserError, type ModelErrorCode } from '../errors.js';
import { unreachable } from '../util/unreachable.js';
import {
  backoffPolicy,
  parseRetryAfter,
  transientStatus,
  withRetry,
  type BackoffPolicy,
  type RetryDecision,
  type RetryEvent,
} from './retry.js';

/** Default per-request timeout: 10 minutes (reasoning models can think for a long time). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10 * 60_000;

/** Reported before each retry wait (for logs and transcripts). */
export interface ModelRetryEvent extends RetryEvent<ModelError> {
  meta: RequestMeta;
}

export interface OpenAIModelOptions {
  /** Sent as the bearer token. Callers resolve it (see `model-config.ts`); a placeholder is fine for keyless local servers. */
  apiKey: string;
  /** e.g. `http://127.0.0.1:11434/v1`; default the SDK's (`https://api.openai.com/v1`). `OPENAI_BASE_URL` is not read here. */
  baseUrl?: string | undefined;
  /** Per attempt, covering the whole response (headers and body). Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  timeoutMs?: number | undefined;
  /** Backoff policy; unset fields come from `DEFAULT_BACKOFF` (5 attempts, 1 s base, Retry-After ≤ 60 s). */
  retry?: Partial<BackoffPolicy> | undefined;
  /** Called before each retry wait. Must not throw. */
  onRetry?: ((event: ModelRetryEvent) => void) | undefined;
  /** Extra HTTP headers on every request. */
  headers?: Readonly<Record<string, string>> | undefined;
  /**
   * Which body field carries `maxOutputTokens`. Default `max_completion_tokens`
   * (what current OpenAI models require). When a server rejects the field with a
   * 400 naming it, the request is re-sent once with the other field, and the
   * model keeps using the one that worked.
   */
  maxTokensField?: 'max_completion_tokens' | 'max_tokens' | undefined;
}

type Sdk = typeof import('openai');

let sdkPromise: Promise<Sdk> | undefined;

/** Loads the SDK once. A missing package is a `UserError` saying what to install. */
function loadSdk(): Promise<Sdk> {
  sdkPromise ??= import('openai').catch((e: unknown) => {
    sdkPromise = undefined;
    throw new UserError("the 'openai' package could not be loaded; install it with `npm install openai`", {
      cause: e,
    });
  });
  return sdkPromise;
}

/** Thrown into the attempt's controller when the per-request timer fires, to tell it from a user abort. */
class RequestTimeout extends Error {}

/**
 * `Model` over OpenAI-compatible chat completions. One instance per endpoint
 * (base URL + key); it is safe to share across concurrent jobs.
 */
export class OpenAIModel implements Model {
  readonly #options: OpenAIModelOptions;
  readonly #policy: BackoffPolicy;
  readonly #timeoutMs: number;
  #maxTokensField: 'max_completion_tokens' | 'max_tokens';
  #client: Promise<OpenAI> | undefined;

  constructor(options: OpenAIModelOptions) {
    this.#options = options;
    this.#policy = backoffPolicy(options.retry);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!(this.#timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0 (got ${this.#timeoutMs})`);
    this.#maxTokensField = options.maxTokensField ?? 'max_completion_tokens';
  }

  /** The endpoint requests go to (for messages). */
  get baseUrl(): string {
    return this.#options.baseUrl ?? 'https://api.openai.com/v1';
  }

  #getClient(): Promise<OpenAI> {
    this.#client ??= loadSdk().then(
      (sdk) =>
        new sdk.OpenAI({
          apiKey: this.#options.apiKey,
          baseURL: this.#options.baseUrl ?? null,
          maxRetries: 0,
          timeout: this.#timeoutMs,
          // rho-flow never writes to the terminal from library code.
          logLevel: 'off',
          defaultHeaders: this.#options.headers,
        }),
    );
    return this.#client;
  }

  /**
   * One chat-completions call, with retries. Resolves with the first choice
   * mapped back to our types; rejects with `ModelError` after the attempts are
   * used up (or at once when the failure is not retryable), or with
   * `request.signal.reason` when aborted.
   */
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    const sdk = await loadSdk();
    const client = await this.#getClient();
    return withRetry(() => this.#attempt(sdk, client, request), {
      policy: this.#policy,
      signal: request.signal,
      normalize: (e) => this.#toModelError(sdk, e),
      classify: classify,
      onRetry:
        this.#options.onRetry && ((event) => this.#options.onRetry?.({ ...event, meta: request.meta })),
    });
  }

  async #attempt(sdk: Sdk, client: OpenAI, request: ModelRequest): Promise<ModelResponse> {
    let switched = false;
    for (;;) {
      const field = this.#maxTokensField;
      try {
        const raw: unknown = await this.#send(client, buildBody(request, field), request.signal);
        return parseCompletion(raw, request.meta);
      } catch (e) {
        // Some compatible servers know only one of the two max-token fields; re-send once with the other.
        if (
          !switched &&
          request.maxOutputTokens !== undefined &&
          e instanceof sdk.APIError &&
          (e.status === 400 || e.status === 422) &&
          rejectsField(e as APIError, field)
        ) {
          switched = true;
          this.#maxTokensField = field === 'max_completion_tokens' ? 'max_tokens' : 'max_completion_tokens';
          continue;
        }
        throw e;
      }
    }
  }

  /** Sends one HTTP request under the per-request timer, linked to the caller's signal. */
  async #send(
    client: OpenAI,
    body: ChatCompletionCreateParamsNonStreaming,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    const timer = setTimeout(() => controller.abort(new RequestTimeout()), this.#timeoutMs);
    try {
      // `.asResponse()` is not used: the SDK parses JSON, and a garbled body surfaces as a SyntaxError.
      return await client.chat.completions.create(body, {
        signal: controller.signal,
        maxRetries: 0,
        timeout: this.#timeoutMs,
      });
    } catch (e) {
      if (controller.signal.reason instanceof RequestTimeout && !signal?.aborted)
        throw controller.signal.reason;
      throw e;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Maps whatever an attempt threw to a `ModelError` (an abort never reaches here: `withRetry` rethrows its reason). */
  #toModelError(sdk: Sdk, e: unknown): ModelError {
    if (e instanceof ModelError) return e;
    const where = this.baseUrl;
    if (e instanceof RequestTimeout || e instanceof sdk.APIConnectionTimeoutError) {
      return new ModelError(
        'timeout',
        `model request to ${where} timed out after ${formatMs(this.#timeoutMs)}`,
        {
          cause: e,
        },
      );
    }
    if (e instanceof sdk.APIConnectionError) {
      return new ModelError('connection', `could not reach the model API at ${where} (${describeCause(e)})`, {
        cause: e,
      });
    }
    if (e instanceof sdk.APIError) {
      const api = e as APIError;
      const status = api.status;
      const code = statusCode(status, api.code);
      const hint = code === 'auth' ? ' (check OPENAI_API_KEY)' : '';
      const error = new ModelError(code, `model API at ${where} answered ${api.message}${hint}`, {
        cause: e,
        status,
      });
      retryAfter.set(error, api.code === 'insufficient_quota' ? NOT_RETRYABLE : parseRetryAfter(api.headers));
      return error;
    }
    if (isNetworkError(e)) {
      return new ModelError(
        'connection',
        `connection to the model API at ${where} broke mid-response (${describeCause(e)})`,
        {
          cause: e,
        },
      );
    }
    if (e instanceof SyntaxError) {
      return new ModelError('server', `model API at ${where} sent a malformed response body (${e.message})`, {
        cause: e,
      });
    }
    if (isAbortLike(e)) {
      // An abort we did not cause (not the caller's signal, not our timer): treat as a dropped connection.
      return new ModelError('connection', `model request to ${where} was aborted`, { cause: e });
    }
    return new ModelError(
      'server',
      `model request to ${where} failed: ${e instanceof Error ? e.message : String(e)}`,
      {
        cause: e,
      },
    );
  }
}

const NOT_RETRYABLE = -1;
/** Side table: the server's Retry-After per error (kept off the shared `ModelError` contract). */
const retryAfter = new WeakMap<ModelError, number | undefined>();

function classify(error: ModelError): RetryDecision {
  const after = retryAfter.get(error);
  if (after === NOT_RETRYABLE) return { retryable: false };
  return { retryable: isRetryableCode(error.code), ...(after === undefined ? {} : { retryAfterMs: after }) };
}

/** Whether a `ModelError` code names a transient fault. */
export function isRetryableCode(code: ModelErrorCode): boolean {
  switch (code) {
    case 'rate-limited':
    case 'server':
    case 'connection':
    case 'timeout':
      return true;
    case 'auth':
    case 'bad-request':
    case 'replay-miss':
      return false;
    default:
      throw new Error(`Unknown model error code: ${unreachable(code)}`);
  }
}

function statusCode(status: number | undefined, apiCode: string | null | undefined): ModelErrorCode {
  if (status === undefined) return 'connection';
  if (status === 401 || status === 403) return 'auth';
  if (apiCode === 'insufficient_quota') return 'rate-limited';
  const transient = transientStatus(status);
  return transient ?? 'bad-request';
}

/** True when a 400/422 is about the given body field (unknown / unsupported parameter). */
function rejectsField(e: APIError, field: string): boolean {
  if (e.param === field) return true;
  const text = e.message;
  return (
    text.includes(field) && /unsupported|unrecognized|unknown|not supported|not permitted|extra/i.test(text)
  );
}

const NETWORK_CODES =
  /^(UND_ERR_|ECONNRESET$|ECONNREFUSED$|EPIPE$|ETIMEDOUT$|ENOTFOUND$|EAI_AGAIN$|ECONNABORTED$|EHOSTUNREACH$|ENETUNREACH$)/;

/** A socket-level failure while reading the body (undici: `TypeError: terminated` caused by `UND_ERR_SOCKET`). */
function isNetworkError(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 5; cur = cur.cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.test(code)) return true;
    if (cur instanceof TypeError && cur.message === 'terminated') return true;
  }
  return false;
}

function describeCause(e: unknown): string {
  const parts: string[] = [];
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 5; cur = cur.cause, depth++)
    parts.push(cur.message);
  return parts.join(': ');
}

function isAbortLike(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || e.name === 'APIUserAbortError');
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

/** Our request → the chat-completions body. Optional fields are sent only when set. */
export function buildBody(
  request: ModelRequest,
  maxTokensField: 'max_completion_tokens' | 'max_tokens' = 'max_completion_tokens',
): ChatCompletionCreateParamsNonStreaming {
  const body: ChatCompletionCreateParamsNonStreaming = {
    model: request.model,
    messages: request.messages.map(toWireMessage),
  };
  // Some compatible servers reject an empty `tools` array.
  if (request.tools.length > 0) body.tools = request.tools.map(toWireTool);
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.maxOutputTokens !== undefined) body[maxTokensField] = request.maxOutputTokens;
  return body;
}

function toWireMessage(m: ChatMessage): ChatCompletionMessageParam {
  switch (m.role) {
    case 'system':
      return { role: 'system', content: m.content };
    case 'user':
      return { role: 'user', content: m.content };
    case 'assistant': {
      const calls = m.toolCalls ?? [];
      if (calls.length === 0) return { role: 'assistant', content: m.content ?? '' };
      return {
        role: 'assistant',
        content: m.content,
        tool_calls: calls.map((c) => ({
          id: c.id,
          type: 'function' as const,
          function: { name: c.name, arguments: c.arguments },
        })),
      };
    }
    case 'tool':
      return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
    default:
      throw new Error(`Unknown message role: ${unreachable(m)}`);
  }
}

function toWireTool(t: ToolDefinition): ChatCompletionTool {
  return {
    type: 'function',
    function: { name: t.name, description: t.description, parameters: t.parameters },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

/** Usage from the wire; anything missing counts as zero. */
export function parseUsage(raw: unknown): Usage {
  if (!isRecord(raw)) return { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 };
  const details = raw['prompt_tokens_details'];
  return {
    inputTokens: count(raw['prompt_tokens']),
    outputTokens: count(raw['completion_tokens']),
    cachedInputTokens: isRecord(details) ? count(details['cached_tokens']) : 0,
  };
}

/**
 * A chat-completions body → `ModelResponse`, checked defensively (compatible
 * servers vary). A body without a first choice and message is a `server`
 * error, which is retried.
 */
export function parseCompletion(raw: unknown, meta: RequestMeta): ModelResponse {
  const choices = isRecord(raw) ? raw['choices'] : undefined;
  const choice: unknown = Array.isArray(choices) ? choices[0] : undefined;
  const message = isRecord(choice) ? choice['message'] : undefined;
  if (!isRecord(raw) || !isRecord(choice) || !isRecord(message)) {
    const shown = typeof raw === 'string' ? raw : raw === undefined ? '(empty body)' : JSON.stringify(raw);
    throw new ModelError(
      'server',
      `model API sent a response without choices[0].message: ${shown.slice(0, 200)}`,
    );
  }
  const content = message['content'];
  const toolCalls: ToolCall[] = [];
  const wireCalls = message['tool_calls'];
  if (Array.isArray(wireCalls)) {
    wireCalls.forEach((c: unknown, i) => {
      if (!isRecord(c)) return;
      const id = typeof c['id'] === 'string' && c['id'] !== '' ? c['id'] : `call_${meta.turn}_${i + 1}`;
      const fn = c['function'];
      const custom = c['custom'];
      if (isRecord(fn)) {
        toolCalls.push({ id, name: str(fn['name']), arguments: argumentsText(fn['arguments']) });
      } else if (isRecord(custom)) {
        toolCalls.push({ id, name: str(custom['name']), arguments: argumentsText(custom['input']) });
      }
    });
  }
  const response: ModelResponse = {
    content: typeof content === 'string' ? content : null,
    toolCalls,
    usage: parseUsage(raw['usage']),
  };
  if (typeof choice['finish_reason'] === 'string') response.finishReason = choice['finish_reason'];
  if (typeof raw['model'] === 'string') response.model = raw['model'];
  return response;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** Arguments as text; a server that sends an object (some do) gets it re-serialized. */
function argumentsText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return '';
  return JSON.stringify(v);
}
