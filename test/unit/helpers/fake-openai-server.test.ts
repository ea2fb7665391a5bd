import { describe, expect, it } from 'vitest';
import { reply, startFakeOpenAI } from '../../helpers/fake-openai-server.js';

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

describe('fake OpenAI server', () => {
  it('answers from the queue, records requests, and explains an empty queue', async () => {
    await using server = await startFakeOpenAI({
      replies: [reply.text('one', { usage: { prompt: 3, completion: 2, cached: 1 } })],
    });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const res = await post(server.url, { model: 'm1', messages: [] }, { 'x-test': 'yes' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      object: 'chat.completion',
      model: 'm1',
      choices: [{ index: 0, message: { role: 'assistant', content: 'one' }, finish_reason: 'stop' }],
      usage: {
        prompt_tokens: 3,
        completion_tokens: 2,
        total_tokens: 5,
        prompt_tokens_details: { cached_tokens: 1 },
      },
    });
    expect(server.requests[0]).toMatchObject({
      index: 0,
      method: 'POST',
      path: '/v1/chat/completions',
      body: { model: 'm1' },
    });
    expect(server.requests[0]!.headers['x-test']).toBe('yes');
    expect(server.pending).toBe(0);

    const empty = await post(server.url, { model: 'm1', messages: [] });
    expect(empty.status).toBe(400);
    expect(JSON.stringify(await empty.json())).toContain('no reply scripted for request #2');
  });

  it('a handler may answer or fall through to the queue', async () => {
    await using server = await startFakeOpenAI({
      replies: [reply.text('queued')],
      handler: (_req, i) =>
        i === 1 ? reply.error(503, 'busy', { headers: { 'retry-after': '2' } }) : undefined,
    });
    expect(await (await post(server.url, { messages: [] })).json()).toMatchObject({
      choices: [{ message: { content: 'queued' } }],
    });
    const busy = await post(server.url, { messages: [] });
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('2');
    expect(await busy.json()).toMatchObject({ error: { message: 'busy' } });
  });

  it('refuses streaming, unknown routes and wrong keys', async () => {
    await using server = await startFakeOpenAI({ apiKey: 'k', replies: [reply.text('x')] });
    expect((await post(server.url, { messages: [] })).status).toBe(401);
    const streamed = await post(server.url, { messages: [], stream: true }, { authorization: 'Bearer k' });
    expect(streamed.status).toBe(400);
    expect(JSON.stringify(await streamed.json())).toContain('stream: true is not supported');
    expect((await fetch(`${server.url}/embeddings`, { headers: { authorization: 'Bearer k' } })).status).toBe(
      404,
    );
    expect(server.pending).toBe(1);
  });

  it('tool calls keep malformed argument strings verbatim', async () => {
    await using server = await startFakeOpenAI({
      replies: [
        reply.toolCalls([
          { name: 'x', arguments: '{oops' },
          { name: 'y', arguments: { a: 1 } },
        ]),
      ],
    });
    const body = (await (await post(server.url, { messages: [] })).json()) as {
      choices: Array<{ message: { content: unknown; tool_calls: unknown }; finish_reason: string }>;
    };
    expect(body.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: {
        content: null,
        tool_calls: [
          { id: 'call_1_1', type: 'function', function: { name: 'x', arguments: '{oops' } },
          { id: 'call_1_2', type: 'function', function: { name: 'y', arguments: '{"a":1}' } },
        ],
      },
    });
  });

  it('a hanging request notices the client leaving, and close() ends hanging connections', async () => {
    const server = await startFakeOpenAI({ replies: [reply.hang(), reply.hang()] });
    const controller = new AbortController();
    const aborted = post(server.url, { messages: [] }, {}, controller.signal).catch(() => 'aborted');
    await server.waitForRequests(1);
    controller.abort();
    expect(await aborted).toBe('aborted');
    await server.requests[0]!.closed;
    expect(server.requests[0]!.closedEarly).toBe(true);

    const left = post(server.url, { messages: [] }).catch(() => 'closed by server');
    await server.waitForRequests(2);
    expect(server.requests[1]!.closedEarly).toBe(false);
    const started = Date.now();
    await server.close();
    await server.close(); // idempotent
    expect(await left).toBe('closed by server');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('waitForRequests times out with a clear message', async () => {
    await using server = await startFakeOpenAI();
    await expect(server.waitForRequests(1, 50)).rejects.toThrow('expected 1 requests within 50 ms, got 0');
  });
});
