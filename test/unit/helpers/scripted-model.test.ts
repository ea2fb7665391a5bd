import { describe, expect, it } from 'vitest';
import type { ChatMessage, ModelRequest } from '../../../src/agent/model.js';
import { ModelError } from '../../../src/errors.js';
import { AbortReason } from '../../../src/util/abort.js';
import { ScriptedModel, scripted } from '../../helpers/scripted-model.js';

function req(messages: ChatMessage[], turn = 1, signal?: AbortSignal): ModelRequest {
  return {
    model: 'm',
    messages,
    tools: [],
    meta: { jobId: 'j', stepId: 's', turn },
    ...(signal ? { signal } : {}),
  };
}

describe('ScriptedModel', () => {
  it('answers in order and records a snapshot of each request', async () => {
    const model = new ScriptedModel([
      scripted.toolCall('bash', { command: 'ls' }),
      scripted.toolCalls([
        { name: 'read', args: '{bad' },
        { name: 'nope', id: 'fixed' },
      ]),
      (r) => `you said ${r.messages.length} things`,
    ]);
    const messages: ChatMessage[] = [{ role: 'user', content: 'go' }];
    const first = await model.getResponse(req(messages));
    expect(first).toEqual({
      content: null,
      toolCalls: [{ id: 'call_1_1', name: 'bash', arguments: '{"command":"ls"}' }],
      usage: { inputTokens: 10, outputTokens: 5, cachedInputTokens: 0 },
      finishReason: 'tool_calls',
    });
    messages.push({ role: 'assistant', content: null, toolCalls: first.toolCalls });
    expect((await model.getResponse(req(messages, 2))).toolCalls).toEqual([
      { id: 'call_2_1', name: 'read', arguments: '{bad' },
      { id: 'fixed', name: 'nope', arguments: '{}' },
    ]);
    expect((await model.getResponse(req(messages, 3))).content).toBe('you said 2 things');
    expect(model.requests.map((r) => r.messages.length)).toEqual([1, 2, 2]);
    expect(model.requests[0]!.meta.turn).toBe(1);
    expect(model.remaining).toBe(0);
    await expect(model.getResponse(req(messages, 4))).rejects.toThrow('no reply scripted for request #4');
  });

  it('throws scripted errors and hangs until aborted', async () => {
    const model = new ScriptedModel([new ModelError('server', 'boom'), scripted.hang()]);
    await expect(model.getResponse(req([]))).rejects.toBeInstanceOf(ModelError);
    const controller = new AbortController();
    const pending = model.getResponse(req([], 2, controller.signal));
    const reason = new AbortReason('step-timeout');
    setTimeout(() => controller.abort(reason), 10);
    await expect(pending).rejects.toBe(reason);
    expect(model.requests[1]!.aborted()).toBe(true);
  });

  it('text replies carry usage overrides', async () => {
    const model = new ScriptedModel().push(scripted.text('hi', { outputTokens: 99 }));
    expect((await model.getResponse(req([]))).usage).toEqual({
      inputTokens: 10,
      outputTokens: 99,
      cachedInputTokens: 0,
    });
  });
});
