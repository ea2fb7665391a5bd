/**
 * A fake OpenAI-compatible chat-completions server for tests: a real HTTP
 * server on 127.0.0.1 (random port) that the real `openai` package talks to.
 *
 * ```ts
 * await using server = await startFakeOpenAI({
 *   replies: [reply.toolCalls([{ name: 'bash', arguments: { command: 'ls' } }]), reply.text('done')],
 * });
 * const model = new OpenAIModel({ apiKey: 'test', baseUrl: server.url });
 * // … server.requests[0].body.messages, server.requests.length …
 * ```
 *
 * Replies come from a queue (`replies`, `push`) or a `handler(request, index)`
 * (the handler wins when it returns a reply; `undefined` falls through to the
 * queue). Faults: any status/body/headers (`reply.error`, `reply.rateLimited`),
 * `reply.hang()` (never answers; `request.closed` resolves when the client
 * gives up), `reply.drop()` (destroys the socket), `delayMs` on any reply,
 * `reply.malformed()` (200 with a broken JSON body). A request with no scripted
 * reply gets a 400 naming it (not retried, so a test fails fast and clearly).
 *
 * Only `POST /v1/chat/completions` (non-streaming) and `GET /v1/models` exist;
 * `stream: true` is refused with a 400.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeToolCall {
  /** Default `call_<request#>_<n>`. */
  id?: string;
  name: string;
  /** A string is sent verbatim (so it may be malformed JSON); an object is JSON-encoded. */
  arguments: string | Record<string, unknown>;
}

/** Usage as the wire reports it. `null` in a reply omits the `usage` field entirely. */
export interface FakeUsage {
  prompt?: number;
  completion?: number;
  /** `prompt_tokens_details.cached_tokens` */
  cached?: number;
}

interface Timing {
  /** Wait this long before answering (the client may give up meanwhile). */
  delayMs?: number;
}

export type FakeReply =
  | (Timing & {
      kind: 'message';
      /** Default: `null` with tool calls, else `''`. */
      content?: string | null;
      toolCalls?: FakeToolCall[];
      /** Default `{ prompt: 10, completion: 5, cached: 0 }`; `null` omits usage. */
      usage?: FakeUsage | null;
      /** Default `tool_calls` when there are tool calls, else `stop`. */
      finishReason?: string;
      /** Default: the requested model. */
      model?: string;
      headers?: Record<string, string>;
    })
  | (Timing & {
      kind: 'error';
      status: number;
      /** An object is sent as JSON; a string verbatim (as text/plain). Default an OpenAI-style error object. */
      body?: unknown;
      headers?: Record<string, string>;
    })
  | (Timing & { kind: 'raw'; status: number; headers: Record<string, string>; body: string })
  /** Never answers. `afterHeaders`: send the status line and part of the body first, then stall. */
  | { kind: 'hang'; afterHeaders?: boolean }
  /** Destroys the connection. `afterHeaders`: after sending the status line and part of the body. */
  | (Timing & { kind: 'drop'; afterHeaders?: boolean });

/** Builders for {@link FakeReply}. */
export const reply = {
  text(
    content: string,
    options: Omit<Extract<FakeReply, { kind: 'message' }>, 'kind' | 'content'> = {},
  ): FakeReply {
    return { kind: 'message', content, ...options };
  },
  toolCalls(
    calls: FakeToolCall[],
    options: Omit<Extract<FakeReply, { kind: 'message' }>, 'kind' | 'toolCalls'> = {},
  ): FakeReply {
    return { kind: 'message', toolCalls: calls, ...options };
  },
  error(
    status: number,
    message = `fake error ${status}`,
    options: {
      headers?: Record<string, string>;
      type?: string;
      code?: string | null;
      param?: string | null;
    } & Timing = {},
  ): FakeReply {
    const { headers, type, code, param, delayMs } = options;
    return {
      kind: 'error',
      status,
      body: { error: { message, type: type ?? 'fake_error', param: param ?? null, code: code ?? null } },
      ...(headers ? { headers } : {}),
      ...(delayMs === undefined ? {} : { delayMs }),
    };
  },
  /** A 429; `retryAfter` goes in `Retry-After` (seconds or an HTTP date); use `headers` for `retry-after-ms`. */
  rateLimited(retryAfter?: string | number, headers: Record<string, string> = {}): FakeReply {
    return reply.error(429, 'Rate limit reached (fake)', {
      type: 'requests',
      code: 'rate_limit_exceeded',
      headers: { ...(retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }), ...headers },
    });
  },
  hang(options: { afterHeaders?: boolean } = {}): FakeReply {
    return { kind: 'hang', ...options };
  },
  drop(options: { afterHeaders?: boolean } & Timing = {}): FakeReply {
    return { kind: 'drop', ...options };
  },
  /** A 200 `application/json` response whose body is not valid JSON. */
  malformed(body = '{"id": "chatcmpl-broken", "choices": [{"message": '): FakeReply {
    return { kind: 'raw', status: 200, headers: { 'content-type': 'application/json' }, body };
  },
};

/** One chat-completions request as the server saw it. */
export interface RecordedRequest {
  /** 0-based position among chat-completions requests. */
  index: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body (`undefined` if it was not JSON). Typed loosely for convenient assertions. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  rawBody: string;
  receivedAt: number;
  /** True once the client closed the connection before the response was complete. */
  closedEarly: boolean;
  /** Resolves when the exchange ends: response finished, or the client went away (see `closedEarly`). */
  closed: Promise<void>;
}

export type FakeHandler = (
  request: RecordedRequest,
  index: number,
) => FakeReply | undefined | Promise<FakeReply | undefined>;

export interface FakeOpenAIOptions {
  replies?: FakeReply[];
  handler?: FakeHandler;
  /** When set, requests must carry `Authorization: Bearer <apiKey>` or get a 401 (no reply is consumed). */
  apiKey?: string;
}

export interface FakeOpenAIServer extends AsyncDisposable {
  /** Base URL including `/v1`, e.g. `http://127.0.0.1:41234/v1`. */
  readonly url: string;
  /** Every chat-completions request so far, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  /** Scripted replies not used yet. */
  readonly pending: number;
  push(...replies: FakeReply[]): void;
  setHandler(handler: FakeHandler | undefined): void;
  /** Resolves once at least `n` requests have arrived; rejects after `timeoutMs` (default 5 s). */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Closes the server and every connection (hanging ones included). Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_USAGE: Required<FakeUsage> = { prompt: 10, completion: 5, cached: 0 };

/** Starts the fake on 127.0.0.1 with a random port. Dispose it (or `close()`) in the test. */
export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAIServer> {
  const queue: FakeReply[] = [...(options.replies ?? [])];
  let handler = options.handler;
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();

  const server = http.createServer((req, res) => {
    void serve(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { error: { message: `fake-openai crashed: ${String(e)}` } });
      else res.destroy();
    });
  });

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const path = (req.url ?? '/').split('?')[0] ?? '/';

    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      send(res, 401, {
        error: {
          message: 'Incorrect API key provided (fake)',
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        },
      });
      return;
    }
    if (req.method === 'GET' && path === '/v1/models') {
      send(res, 200, { object: 'list', data: [{ id: 'fake-model', object: 'model', owned_by: 'fake' }] });
      return;
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      send(res, 404, {
        error: { message: `fake-openai: no route ${req.method ?? ''} ${path}`, type: 'not_found' },
      });
      return;
    }

    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch {
      body = undefined;
    }
    let closedEarly = false;
    const closed = new Promise<void>((resolve) => {
      res.once('close', () => {
        if (!res.writableFinished) closedEarly = true;
        resolve();
      });
    });
    const index = requests.length;
    const recorded: RecordedRequest = {
      index,
      method: req.method,
      path,
      headers: req.headers,
      body,
      rawBody,
      receivedAt: Date.now(),
      get closedEarly() {
        return closedEarly;
      },
      closed,
    };
    requests.push(recorded);
    for (const w of [...waiters]) w();

    if (body === undefined || typeof body !== 'object' || body === null) {
      send(res, 400, {
        error: { message: 'fake-openai: request body is not a JSON object', type: 'invalid_request_error' },
      });
      return;
    }
    if ((body as Record<string, unknown>)['stream'] === true) {
      send(res, 400, {
        error: {
          message: 'fake-openai: stream: true is not supported (only non-streaming chat completions)',
          type: 'invalid_request_error',
          param: 'stream',
        },
      });
      return;
    }

    const scripted = (await handler?.(recorded, index)) ?? queue.shift();
    if (!scripted) {
      send(res, 400, {
        error: {
          message: `fake-openai: no reply scripted for request #${index + 1}`,
          type: 'fake_script_exhausted',
        },
      });
      return;
    }
    if ('delayMs' in scripted && scripted.delayMs !== undefined && scripted.delayMs > 0) {
      await delay(scripted.delayMs);
      if (res.destroyed || recorded.closedEarly) return;
    }
    answer(res, scripted, recorded);
  }

  function delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });
  }

  function answer(res: http.ServerResponse, r: FakeReply, request: RecordedRequest): void {
    switch (r.kind) {
      case 'message':
        send(res, 200, completionBody(r, request), r.headers);
        return;
      case 'error':
        if (typeof r.body === 'string') {
          res.writeHead(r.status, { 'content-type': 'text/plain', ...r.headers });
          res.end(r.body);
        } else {
          send(
            res,
            r.status,
            r.body ?? { error: { message: `fake error ${r.status}`, type: 'fake_error' } },
            r.headers,
          );
        }
        return;
      case 'raw':
        res.writeHead(r.status, r.headers);
        res.end(r.body);
        return;
      case 'hang':
        if (r.afterHeaders) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"id": "chatcmpl-hanging", ');
        }
        return; // never ends; closed by the client or by close()
      case 'drop':
        if (r.afterHeaders) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"id": "chatcmpl-dropped", ', () => res.socket?.destroy());
        } else {
          res.socket?.destroy();
        }
        return;
      default:
        throw new Error(`Unknown reply kind: ${(r satisfies never as { kind: string }).kind}`);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    get pending() {
      return queue.length;
    },
    push(...replies) {
      queue.push(...replies);
    },
    setHandler(h) {
      handler = h;
    },
    waitForRequests(n, timeoutMs = 5000) {
      if (requests.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (requests.length >= n) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`fake-openai: expected ${n} requests within ${timeoutMs} ms, got ${requests.length}`),
          );
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': `req_fake_${Math.random().toString(16).slice(2, 10)}`,
    ...headers,
  });
  res.end(text);
}

function completionBody(r: Extract<FakeReply, { kind: 'message' }>, request: RecordedRequest): unknown {
  const calls = r.toolCalls ?? [];
  const requested = (request.body as { model?: unknown } | undefined)?.model;
  const message: Record<string, unknown> = {
    role: 'assistant',
    content: r.content !== undefined ? r.content : calls.length > 0 ? null : '',
    refusal: null,
  };
  if (calls.length > 0) {
    message['tool_calls'] = calls.map((c, i) => ({
      id: c.id ?? `call_${request.index + 1}_${i + 1}`,
      type: 'function',
      function: {
        name: c.name,
        arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments),
      },
    }));
  }
  const body: Record<string, unknown> = {
    id: `chatcmpl-fake-${request.index + 1}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: r.model ?? (typeof requested === 'string' ? requested : 'fake-model'),
    choices: [
      {
        index: 0,
        message,
        finish_reason: r.finishReason ?? (calls.length > 0 ? 'tool_calls' : 'stop'),
        logprobs: null,
      },
    ],
  };
  if (r.usage !== null) {
    const u = { ...DEFAULT_USAGE, ...r.usage };
    body['usage'] = {
      prompt_tokens: u.prompt,
      completion_tokens: u.completion,
      total_tokens: u.prompt + u.completion,
      prompt_tokens_details: { cached_tokens: u.cached },
    };
  }
  return body;
}
