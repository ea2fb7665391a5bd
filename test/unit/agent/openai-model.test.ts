import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  OpenAIModel,
  type ModelRetryEvent,
  type OpenAIModelOptions,
} from '../../../src/agent/openai-model.js';
import type { ModelRequest } from '../../../src/agent/model.js';
import { ModelError } from '../../../src/errors.js';
import { AbortReason } from '../../../src/util/abort.js';
import { reply, startFakeOpenAI, type FakeOpenAIServer } from '../../helpers/fake-openai-server.js';

const meta = { jobId: 'job-a', stepId: 'fix', turn: 1 };

function request(overrides: Partial<ModelRequest> = {}): ModelRequest {
  return {
    model: 'gpt-test',
    messages: [{ role: 'user', content: 'hello' }],
    tools: [],
    meta,
    ...overrides,
  };
}

/** Fast retries for tests; individual tests override what they measure. */
function modelFor(server: FakeOpenAIServer, options: Partial<OpenAIModelOptions> = {}): OpenAIModel {
  return new OpenAIModel({
    apiKey: 'sk-test-key',
    baseUrl: server.url,
    ...options,
    retry: { baseDelayMs: 1, maxDelayMs: 5, ...options.retry },
  });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

describe('OpenAIModel: wire mapping', () => {
  it('sends messages, tools and options in chat-completions format and maps the reply back', async () => {
    await using server = await startFakeOpenAI({
      replies: [
        reply.toolCalls(
          [
            { id: 'call_a', name: 'bash', arguments: { command: 'ls -la' } },
            { id: 'call_b', name: 'no_such_tool', arguments: '{"path": ' },
            { id: 'call_c', name: 'read', arguments: '' },
          ],
          { usage: { prompt: 1200, completion: 34, cached: 1024 }, model: 'gpt-test-2025' },
        ),
      ],
    });
    const model = modelFor(server);
    const res = await model.getResponse(
      request({
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'list files' },
          {
            role: 'assistant',
            content: null,
            toolCalls: [{ id: 'call_0', name: 'list', arguments: '{"path":"."}' }],
          },
          { role: 'tool', toolCallId: 'call_0', content: 'a.txt\nb.txt' },
          { role: 'assistant', content: 'Looking closer.' },
        ],
        tools: [
          {
            name: 'bash',
            description: 'run a command',
            parameters: {
              type: 'object',
              properties: { command: { type: 'string' } },
              required: ['command'],
            },
          },
        ],
        temperature: 0.2,
        maxOutputTokens: 512,
      }),
    );

    expect(server.requests).toHaveLength(1);
    const sent = server.requests[0]!;
    expect(sent.headers.authorization).toBe('Bearer sk-test-key');
    expect(sent.body).toEqual({
      model: 'gpt-test',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'list files' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_0', type: 'function', function: { name: 'list', arguments: '{"path":"."}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_0', content: 'a.txt\nb.txt' },
        { role: 'assistant', content: 'Looking closer.' },
      ],
      tools: [
        {
          type: 'function',
          function: {
            name: 'bash',
            description: 'run a command',
            parameters: {
              type: 'object',
              properties: { command: { type: 'string' } },
              required: ['command'],
            },
          },
        },
      ],
      temperature: 0.2,
      max_completion_tokens: 512,
    });

    expect(res).toEqual({
      content: null,
      toolCalls: [
        { id: 'call_a', name: 'bash', arguments: '{"command":"ls -la"}' },
        { id: 'call_b', name: 'no_such_tool', arguments: '{"path": ' },
        { id: 'call_c', name: 'read', arguments: '' },
      ],
      usage: { inputTokens: 1200, outputTokens: 34, cachedInputTokens: 1024 },
      finishReason: 'tool_calls',
      model: 'gpt-test-2025',
    });
  });

  it('omits unset options and empty tools; a reply without usage counts zero tokens', async () => {
    await using server = await startFakeOpenAI({ replies: [reply.text('Hi there.', { usage: null })] });
    const res = await modelFor(server).getResponse(request());
    expect(server.requests[0]!.body).toEqual({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(res).toEqual({
      content: 'Hi there.',
      toolCalls: [],
      usage: { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 },
      finishReason: 'stop',
      model: 'gpt-test',
    });
  });

  it('re-sends with max_tokens when a server rejects max_completion_tokens, and keeps using it', async () => {
    await using server = await startFakeOpenAI({
      handler: (req) =>
        'max_completion_tokens' in req.body
          ? reply.error(400, 'Unrecognized request argument supplied: max_completion_tokens', {
              param: 'max_completion_tokens',
            })
          : reply.text('ok'),
    });
    const model = modelFor(server);
    await expect(model.getResponse(request({ maxOutputTokens: 100 }))).resolves.toMatchObject({
      content: 'ok',
    });
    await expect(model.getResponse(request({ maxOutputTokens: 100 }))).resolves.toMatchObject({
      content: 'ok',
    });
    expect(
      server.requests.map((r) => Object.keys(r.body as object).filter((k) => k.startsWith('max'))),
    ).toEqual([['max_completion_tokens'], ['max_tokens'], ['max_tokens']]);
    expect(server.requests[1]!.body).toMatchObject({ max_tokens: 100 });
  });

  it('does not load the openai SDK outside openai-model.ts (static imports are type-only)', async () => {
    const srcDir = path.resolve(import.meta.dirname, '../../../src');
    const files = (await readdir(srcDir, { recursive: true })).filter((f) => f.endsWith('.ts'));
    const offenders: string[] = [];
    for (const f of files) {
      const text = await readFile(path.join(srcDir, f), 'utf8');
      const valueImports = [...text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+['"]openai(\/[^'"]*)?['"]/gm)];
      const dynamic = /import\(\s*['"]openai['"]\s*\)/.test(text);
      if (valueImports.length > 0) offenders.push(`${f}: static value import of openai`);
      if (dynamic && f !== path.join('agent', 'openai-model.ts')) offenders.push(`${f}: imports openai`);
    }
    expect(offenders).toEqual([]);
  });
});

describe('OpenAIModel: retries', () => {
  it('honours Retry-After (seconds) on a 429, then succeeds', async () => {
    await using server = await startFakeOpenAI({
      replies: [reply.rateLimited(1), reply.text('after the wait')],
    });
    const retries: ModelRetryEvent[] = [];
    const model = modelFor(server, { onRetry: (e) => retries.push(e) });
    const started = Date.now();
    const res = await model.getResponse(request());
    const elapsed = Date.now() - started;
    expect(res.content).toBe('after the wait');
    expect(server.requests).toHaveLength(2);
    // The configured backoff is 1-5 ms, so only Retry-After explains a ≥ 1 s wait.
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(5000);
    expect(server.requests[1]!.receivedAt - server.requests[0]!.receivedAt).toBeGreaterThanOrEqual(950);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ attempt: 1, maxAttempts: 5, meta });
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(1000);
    expect(retries[0]!.delayMs).toBeLessThanOrEqual(1100);
    expect(retries[0]!.error).toBeInstanceOf(ModelError);
    expect(retries[0]!.error).toMatchObject({ code: 'rate-limited', status: 429 });
  });

  it('honours retry-after-ms over its own (long) backoff', async () => {
    await using server = await startFakeOpenAI({
      replies: [reply.rateLimited(undefined, { 'retry-after-ms': '30' }), reply.text('ok')],
    });
    const retries: ModelRetryEvent[] = [];
    const model = modelFor(server, {
      retry: { baseDelayMs: 20_000, maxDelayMs: 20_000 },
      onRetry: (e) => retries.push(e),
    });
    const started = Date.now();
    await expect(model.getResponse(request())).resolves.toMatchObject({ content: 'ok' });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(30);
    expect(retries[0]!.delayMs).toBeLessThanOrEqual(33);
  });

  it('caps a Retry-After beyond maxRetryAfterMs at the cap and still retries', async () => {
    await using server = await startFakeOpenAI({ replies: [reply.rateLimited(3600), reply.text('ok')] });
    const retries: ModelRetryEvent[] = [];
    const model = modelFor(server, { retry: { maxRetryAfterMs: 150 }, onRetry: (e) => retries.push(e) });
    const started = Date.now();
    await expect(model.getResponse(request())).resolves.toMatchObject({ content: 'ok' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(retries.map((r) => r.delayMs)).toEqual([150]);
  });

  it('retries 500 three times, then succeeds', async () => {
    await using server = await startFakeOpenAI({
      replies: [reply.error(500), reply.error(502), reply.error(503), reply.text('finally')],
    });
    const retries: ModelRetryEvent[] = [];
    const res = await modelFor(server, { onRetry: (e) => retries.push(e) }).getResponse(request());
    expect(res.content).toBe('finally');
    expect(server.requests).toHaveLength(4);
    expect(retries.map((r) => [r.attempt, r.error.code, r.error.status])).toEqual([
      [1, 'server', 500],
      [2, 'server', 502],
      [3, 'server', 503],
    ]);
  });

  it('gives up after the configured attempts with ModelError code server', async () => {
    await using server = await startFakeOpenAI({
      handler: () => reply.error(500, 'The server had an error'),
    });
    const err = await rejection(modelFor(server).getResponse(request()));
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ code: 'server', status: 500 });
    expect((err as Error).message).toContain('The server had an error');
    expect(server.requests).toHaveLength(5);

    const fewer = await rejection(modelFor(server, { retry: { maxAttempts: 2 } }).getResponse(request()));
    expect(fewer).toMatchObject({ code: 'server' });
    expect(server.requests).toHaveLength(7);
  });

  it.each([
    [400, 'bad-request'],
    [401, 'auth'],
    [403, 'auth'],
    [404, 'bad-request'],
    [422, 'bad-request'],
  ] as const)('does not retry %i (code %s)', async (status, code) => {
    await using server = await startFakeOpenAI({ handler: () => reply.error(status, `nope ${status}`) });
    const retries: ModelRetryEvent[] = [];
    const err = await rejection(modelFor(server, { onRetry: (e) => retries.push(e) }).getResponse(request()));
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ code, status });
    expect(server.requests).toHaveLength(1);
    expect(retries).toHaveLength(0);
  });

  it('names OPENAI_API_KEY when the key is refused, and never echoes the key', async () => {
    await using server = await startFakeOpenAI({ apiKey: 'the-right-key' });
    const err = await rejection(modelFor(server, { apiKey: 'sk-wrong-secret' }).getResponse(request()));
    expect(err).toMatchObject({ code: 'auth', status: 401 });
    expect((err as Error).message).toContain('OPENAI_API_KEY');
    expect((err as Error).message).not.toContain('sk-wrong-secret');
  });

  it('does not retry a 429 insufficient_quota (waiting cannot fix billing)', async () => {
    await using server = await startFakeOpenAI({
      handler: () => reply.error(429, 'You exceeded your current quota', { code: 'insufficient_quota' }),
    });
    const err = await rejection(modelFor(server).getResponse(request()));
    expect(err).toMatchObject({ code: 'rate-limited', status: 429 });
    expect(server.requests).toHaveLength(1);
  });

  it('retries a dropped connection, and reports code connection when every attempt drops', async () => {
    await using server = await startFakeOpenAI({
      replies: [reply.drop(), reply.drop({ afterHeaders: true }), reply.text('ok')],
    });
    const retries: ModelRetryEvent[] = [];
    const model = modelFor(server, { onRetry: (e) => retries.push(e) });
    await expect(model.getResponse(request())).resolves.toMatchObject({ content: 'ok' });
    expect(server.requests).toHaveLength(3);
    expect(retries.map((r) => r.error.code)).toEqual(['connection', 'connection']);

    server.setHandler(() => reply.drop());
    const err = await rejection(modelFor(server, { retry: { maxAttempts: 3 } }).getResponse(request()));
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ code: 'connection', status: undefined });
    expect(server.requests).toHaveLength(6);
  });

  it('retries a malformed JSON body as a server fault', async () => {
    await using server = await startFakeOpenAI({ replies: [reply.malformed(), reply.text('ok')] });
    await expect(modelFor(server).getResponse(request())).resolves.toMatchObject({ content: 'ok' });
    expect(server.requests).toHaveLength(2);

    server.setHandler(() => reply.malformed('{"choices": "not a list"}'));
    const err = await rejection(modelFor(server, { retry: { maxAttempts: 2 } }).getResponse(request()));
    expect(err).toMatchObject({ code: 'server' });
    expect((err as Error).message).toContain('choices');

    server.setHandler(() => reply.malformed());
    const err2 = await rejection(modelFor(server, { retry: { maxAttempts: 2 } }).getResponse(request()));
    expect(err2).toMatchObject({ code: 'server' });
    expect((err2 as Error).message).toMatch(/malformed/);
  });
});

describe('OpenAIModel: timeouts and cancellation', () => {
  it('cuts a hanging response at the per-request timeout, retries, then fails with code timeout', async () => {
    await using server = await startFakeOpenAI({ handler: () => reply.hang() });
    const model = modelFor(server, { timeoutMs: 200, retry: { maxAttempts: 2 } });
    const started = Date.now();
    const err = await rejection(model.getResponse(request()));
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ code: 'timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(server.requests).toHaveLength(2);
    await Promise.all(server.requests.map((r) => r.closed));
    expect(server.requests.every((r) => r.closedEarly)).toBe(true);
  });

  it('a slow response inside the timeout is awaited; one beyond it is cut and retried', async () => {
    await using server = await startFakeOpenAI({
      replies: [
        reply.text('slow but fine', { delayMs: 100 }),
        reply.text('too slow', { delayMs: 5000 }),
        reply.text('fast'),
      ],
    });
    const retries: ModelRetryEvent[] = [];
    const model = modelFor(server, { timeoutMs: 400, onRetry: (e) => retries.push(e) });
    await expect(model.getResponse(request())).resolves.toMatchObject({ content: 'slow but fine' });
    expect(retries).toHaveLength(0);
    const started = Date.now();
    await expect(model.getResponse(request())).resolves.toMatchObject({ content: 'fast' });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(retries.map((r) => r.error.code)).toEqual(['timeout']);
    await server.requests[1]!.closed;
    expect(server.requests[1]!.closedEarly).toBe(true);
  });

  it('the timeout also covers a body that stalls after the headers', async () => {
    await using server = await startFakeOpenAI({
      replies: [reply.hang({ afterHeaders: true }), reply.text('ok')],
    });
    const retries: ModelRetryEvent[] = [];
    const model = modelFor(server, { timeoutMs: 200, onRetry: (e) => retries.push(e) });
    await expect(model.getResponse(request())).resolves.toMatchObject({ content: 'ok' });
    expect(retries.map((r) => r.error.code)).toEqual(['timeout']);
    await server.requests[0]!.closed;
    expect(server.requests[0]!.closedEarly).toBe(true);
  });

  it('an abort cancels the in-flight request at once and rejects with the abort reason', async () => {
    await using server = await startFakeOpenAI({ handler: () => reply.hang() });
    const controller = new AbortController();
    const reason = new AbortReason('step-timeout', 'step timed out');
    const pending = rejection(modelFor(server).getResponse(request({ signal: controller.signal })));
    await server.waitForRequests(1);
    const aborted = Date.now();
    controller.abort(reason);
    const err = await pending;
    expect(err).toBe(reason);
    expect(Date.now() - aborted).toBeLessThan(1000);
    await server.requests[0]!.closed;
    expect(server.requests[0]!.closedEarly).toBe(true);
    expect(server.requests).toHaveLength(1);
  });

  it('an abort during a backoff wait rejects at once with the abort reason', async () => {
    await using server = await startFakeOpenAI({ handler: () => reply.rateLimited(30) });
    const controller = new AbortController();
    const pending = rejection(modelFor(server).getResponse(request({ signal: controller.signal })));
    await server.waitForRequests(1);
    await new Promise((r) => setTimeout(r, 50));
    const aborted = Date.now();
    controller.abort(new AbortReason('cancelled'));
    const err = await pending;
    expect(err).toBeInstanceOf(AbortReason);
    expect(err).toMatchObject({ kind: 'cancelled' });
    expect(Date.now() - aborted).toBeLessThan(1000);
    expect(server.requests).toHaveLength(1);
  });

  it('an already-aborted signal sends nothing', async () => {
    await using server = await startFakeOpenAI({ replies: [reply.text('unused')] });
    const reason = new AbortReason('cancelled');
    const err = await rejection(modelFor(server).getResponse(request({ signal: AbortSignal.abort(reason) })));
    expect(err).toBe(reason);
    expect(server.requests).toHaveLength(0);
  });
});
