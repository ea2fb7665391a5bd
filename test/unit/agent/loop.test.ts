/** The turn loop with an in-process scripted model and a real local sandbox. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  answerDanglingToolCalls,
  costOf,
  runAgentLoop,
  summarize,
  type AgentLoopOptions,
} from '../../../src/agent/loop.js';
import type { ChatMessage } from '../../../src/agent/model.js';
import { TOOLS, toolsByName } from '../../../src/agent/tools/index.js';
import { MemoryTranscript, StepTranscript } from '../../../src/agent/transcript.js';
import {
  MaxTurnsExceededError,
  ModelError,
  SandboxError,
  TokenBudgetExceededError,
} from '../../../src/errors.js';
import type { RunEvent } from '../../../src/events.js';
import { AbortReason } from '../../../src/util/abort.js';
import { Redactor } from '../../../src/util/redact.js';
import type { Profile, ToolName } from '../../../src/workflow/types.js';
import { ScriptedModel, scripted } from '../../helpers/scripted-model.js';
import { openSandbox, PROFILES, type SandboxRig } from './tools/sandbox-rig.js';

let rig: SandboxRig;
beforeAll(async () => {
  rig = await openSandbox();
});
afterAll(async () => {
  await rig.close();
});

interface Harness {
  model: ScriptedModel;
  messages: ChatMessage[];
  sink: MemoryTranscript;
  events: RunEvent[];
  run: () => ReturnType<typeof runAgentLoop>;
}

function harness(
  model: ScriptedModel,
  opts: Partial<AgentLoopOptions> & { profile?: Profile; toolNames?: ToolName[]; secrets?: string[] } = {},
): Harness {
  const sink = new MemoryTranscript();
  const events: RunEvent[] = [];
  const redactor = new Redactor(opts.secrets ?? []);
  const messages: ChatMessage[] = opts.messages ?? [
    { role: 'system', content: 'sys' },
    { role: 'user', content: 'do it' },
  ];
  const profile = opts.profile ?? PROFILES.developer;
  const signal = opts.signal ?? new AbortController().signal;
  const o: AgentLoopOptions = {
    jobId: 'job-1',
    stepId: 'step-1',
    model,
    modelName: 'fake-model',
    messages,
    tools: toolsByName(opts.toolNames ?? ['bash', 'read', 'write', 'edit', 'glob', 'grep', 'list']),
    toolContext: { sandbox: opts.toolContext?.sandbox ?? rig.sandbox, signal, profile },
    maxTurns: 10,
    signal,
    transcript: new StepTranscript(sink, 'step-1', (t) => redactor.redact(t)),
    redact: (t) => redactor.redact(t),
    onEvent: (e) => events.push(e),
    ...opts,
  };
  return { model, messages, sink, events, run: () => runAgentLoop(o) };
}

const toolMessages = (messages: ChatMessage[]): Array<{ id: string; content: string }> =>
  messages.flatMap((m) => (m.role === 'tool' ? [{ id: m.toolCallId, content: m.content }] : []));

describe('runAgentLoop', () => {
  it('returns the final answer, with usage and cost summed over turns', async () => {
    const model = new ScriptedModel([
      scripted.toolCall('list', {}),
      { content: 'all done', usage: { inputTokens: 1000, outputTokens: 100, cachedInputTokens: 400 } },
    ]);
    const h = harness(model, { pricing: { input: 2, output: 10, cachedInput: 0.5 } });
    const r = await h.run();
    expect(r.output).toBe('all done');
    expect(r.turns).toBe(2);
    expect(r.usage).toEqual({ inputTokens: 1010, outputTokens: 105, cachedInputTokens: 400 });
    // (610 × 2 + 400 × 0.5 + 105 × 10) / 1e6
    expect(r.costUsd).toBeCloseTo((610 * 2 + 400 * 0.5 + 105 * 10) / 1e6, 12);
    expect(model.requests[0]?.tools.map((t) => t.name)).toEqual([
      'bash',
      'read',
      'write',
      'edit',
      'glob',
      'grep',
      'list',
    ]);
    expect(model.requests[0]?.meta).toEqual({ jobId: 'job-1', stepId: 'step-1', turn: 1 });
    expect(model.requests[1]?.meta.turn).toBe(2);
  });

  it('runs parallel tool calls sequentially, in order, answering each in order', async () => {
    const model = new ScriptedModel([
      scripted.toolCalls([
        { name: 'write', args: { path: 'par/a.txt', content: 'A' }, id: 'c1' },
        { name: 'bash', args: { command: 'cat par/a.txt; echo -n B >> par/a.txt' }, id: 'c2' },
        { name: 'read', args: { path: 'par/a.txt' }, id: 'c3' },
      ]),
      scripted.text('ok'),
    ]);
    const h = harness(model);
    await h.run();
    const answers = toolMessages(h.messages);
    expect(answers.map((a) => a.id)).toEqual(['c1', 'c2', 'c3']);
    expect(answers[0]?.content).toBe('Created /work/par/a.txt (1 bytes, 1 lines)');
    expect(JSON.parse(answers[1]?.content ?? '{}')).toMatchObject({ output: 'A' });
    expect(answers[2]?.content).toBe('     1  AB');
    // the second request carries the assistant message and the three results, in order
    const sent = model.requests[1]?.messages ?? [];
    expect(sent.slice(2).map((m) => m.role)).toEqual(['assistant', 'tool', 'tool', 'tool']);
  });

  it('returns malformed JSON, unknown tools and schema violations to the model and goes on', async () => {
    const model = new ScriptedModel([
      scripted.toolCalls([
        { name: 'bash', args: '{"command": "ls"', id: 'bad-json' },
        { name: 'reed', args: { path: 'x' }, id: 'unknown' },
        { name: 'read', args: { path: 42 }, id: 'schema' },
        { name: 'list', args: '', id: 'empty-args' },
      ]),
      scripted.text('recovered'),
    ]);
    const h = harness(model);
    expect((await h.run()).output).toBe('recovered');
    const [badJson, unknown, schema, empty] = toolMessages(h.messages);
    expect(badJson?.content).toMatch(
      /^Error: the arguments of this 'bash' call are not valid JSON \(.+\)\. Send a JSON object\.$/,
    );
    expect(unknown?.content).toBe(
      "Error: unknown tool 'reed' (did you mean 'read'?). Available tools: bash, read, write, edit, glob, grep, list.",
    );
    expect(schema?.content).toBe(
      "Error: invalid arguments for 'read': 'path' must be a string, got the number 42.",
    );
    expect(empty?.content).not.toMatch(/^Error/);
    const results = h.sink.events.filter((e) => e.type === 'tool-result');
    expect(results.map((e) => e.status)).toEqual(['error', 'error', 'error', 'ok']);
  });

  it('refuses a real tool the step does not offer, with the policy reason', async () => {
    const model = new ScriptedModel([
      scripted.toolCall('write', { path: 'nope.txt', content: 'x' }),
      scripted.text('fine'),
    ]);
    const h = harness(model, {
      profile: PROFILES.readonly,
      toolNames: ['bash', 'read', 'glob', 'grep', 'list'],
    });
    await h.run();
    const [answer] = toolMessages(h.messages);
    expect(answer?.content).toMatch(
      /^Refused: 'write' is not available: .*file_write: off.*\. Available tools: bash, read, glob, grep, list\.$/,
    );
    expect(await rig.sandbox.stat('nope.txt')).toBeUndefined();
    expect(h.sink.events.find((e) => e.type === 'tool-result')?.status).toBe('refused');
  });

  it('fails with MaxTurnsExceededError after max-turns model calls (their tool calls still ran)', async () => {
    const model = new ScriptedModel([
      scripted.toolCall('bash', { command: 'echo 1 >> turns.txt' }),
      scripted.toolCall('bash', { command: 'echo 2 >> turns.txt' }),
      scripted.text('never asked'),
    ]);
    const h = harness(model, { maxTurns: 2 });
    await expect(h.run()).rejects.toBeInstanceOf(MaxTurnsExceededError);
    expect(model.requests).toHaveLength(2);
    expect((await rig.sandbox.readFile('turns.txt')).toString()).toBe('1\n2\n');
  });

  it('fails with TokenBudgetExceededError once the step uses more than its budget', async () => {
    const model = new ScriptedModel([
      {
        ...{ toolCalls: [{ name: 'list' }] },
        usage: { inputTokens: 60, outputTokens: 10, cachedInputTokens: 0 },
      },
      { content: 'too late', usage: { inputTokens: 80, outputTokens: 10, cachedInputTokens: 0 } },
    ]);
    const h = harness(model, { tokenBudget: 100 });
    const err = await h.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenBudgetExceededError);
    expect(err).toMatchObject({ budget: 100, used: 160 });

    const none = new ScriptedModel([scripted.text('x')]);
    await expect(harness(none, { tokenBudget: 0 }).run()).rejects.toBeInstanceOf(TokenBudgetExceededError);
    expect(none.requests).toHaveLength(0);
  });

  it('propagates a ModelError', async () => {
    const h = harness(new ScriptedModel([new ModelError('server', '500 three times', { status: 500 })]));
    await expect(h.run()).rejects.toMatchObject({ name: 'ModelError', code: 'server' });
  });

  it('throws the abort reason promptly when aborted during a tool, keeping the conversation valid', async () => {
    const ac = new AbortController();
    const reason = new AbortReason('step-timeout');
    const model = new ScriptedModel([
      scripted.toolCalls([
        { name: 'bash', args: { command: 'sleep 30' }, id: 's1' },
        { name: 'bash', args: { command: 'echo never > never.txt' }, id: 's2' },
      ]),
    ]);
    const h = harness(model, { signal: ac.signal });
    setTimeout(() => ac.abort(reason), 300);
    const started = Date.now();
    await expect(h.run()).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await rig.sandbox.stat('never.txt')).toBeUndefined();
    expect(toolMessages(h.messages).map((m) => m.id)).toEqual(['s1', 's2']);
  });

  it('throws the abort reason when aborted during a model call', async () => {
    const ac = new AbortController();
    const reason = new AbortReason('cancelled');
    const h = harness(new ScriptedModel([scripted.hang()]), { signal: ac.signal });
    setTimeout(() => ac.abort(reason), 100);
    await expect(h.run()).rejects.toBe(reason);
  });

  it('propagates sandbox infrastructure faults (the sandbox is gone)', async () => {
    const doomed = await openSandbox();
    await doomed.close();
    const h = harness(new ScriptedModel([scripted.toolCall('bash', { command: 'true' })]), {
      toolContext: {
        sandbox: doomed.sandbox,
        profile: PROFILES.developer,
        signal: new AbortController().signal,
      },
    });
    const err = await h.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect((err as SandboxError).code).not.toBe('not-found');
  });

  it('writes a redacted transcript in order and emits progress events', async () => {
    const secret = 'sk-TOPSECRET-1234';
    await rig.sandbox.writeFile('secret.txt', `token=${secret}\n`);
    const model = new ScriptedModel([
      {
        content: `I will echo ${secret}`,
        toolCalls: [
          { name: 'bash', arguments: JSON.stringify({ command: `cat secret.txt; echo ${secret}` }) },
        ],
      },
      scripted.text(`the token is ${secret}`),
    ]);
    const h = harness(model, { secrets: [secret] });
    const r = await h.run();
    expect(r.output).toContain(secret); // the caller gets the real answer; files get the masked one
    const all = JSON.stringify(h.sink.events);
    expect(all).not.toContain(secret);
    expect(all).not.toContain(Buffer.from(secret).toString('base64'));
    expect(all).toContain('***');
    // the model itself saw the real tool output
    expect(JSON.stringify(model.requests[1]?.messages)).toContain(secret);
    expect(h.sink.events.map((e) => e.type)).toEqual([
      'model-request',
      'model-response',
      'usage',
      'tool-call',
      'tool-result',
      'model-request',
      'model-response',
      'usage',
    ]);
    for (const e of h.sink.events) {
      expect(e.step).toBe('step-1');
      expect(new Date(String(e.time)).toISOString()).toBe(e.time);
    }
    const [firstRequest, , , call, result, secondRequest] = h.sink.events;
    expect(firstRequest).toMatchObject({
      turn: 1,
      messageCount: 2,
      messages: [{ role: 'system' }, { role: 'user', content: 'do it' }],
    });
    expect(secondRequest).toMatchObject({ turn: 2, messageCount: 4, messages: [] });
    expect(call).toMatchObject({ name: 'bash', arguments: { command: 'cat secret.txt; echo ***' } });
    expect(result).toMatchObject({ name: 'bash', ok: true, status: 'ok' });
    expect(h.events).toEqual([
      expect.objectContaining({ type: 'agent', reason: 'turn', turn: 1 }),
      {
        type: 'agent',
        reason: 'tool-call',
        jobId: 'job-1',
        stepId: 'step-1',
        tool: 'bash',
        summary: 'bash: cat secret.txt; echo ***',
      },
      expect.objectContaining({ type: 'agent', reason: 'turn', turn: 2 }),
    ]);
  });

  it('caps oversized tool output before it reaches the model', async () => {
    const model = new ScriptedModel([scripted.toolCall('read', { path: 'huge.txt' }), scripted.text('ok')]);
    await rig.sandbox.writeFile(
      'huge.txt',
      'y'.repeat(400) + '\n'.repeat(1) + Array.from({ length: 3000 }, () => 'z'.repeat(200)).join('\n'),
    );
    const h = harness(model);
    await h.run();
    const [answer] = toolMessages(h.messages);
    expect(Buffer.byteLength(answer?.content ?? '')).toBeLessThanOrEqual(52 * 1024);
    expect(answer?.content).toMatch(/\[Showing lines 1-\d+ of 3001\]/);
  });
});

describe('helpers', () => {
  it('costOf charges cached input at the cached price (default: the input price)', () => {
    const u = { inputTokens: 1_000_000, outputTokens: 1_000_000, cachedInputTokens: 500_000 };
    expect(costOf(u, { input: 1, output: 2 })).toBeCloseTo(3);
    expect(costOf(u, { input: 1, output: 2, cachedInput: 0.1 })).toBeCloseTo(2.55);
  });

  it('summarize gives one short line per call', () => {
    expect(summarize('bash', { command: 'npm   test\n--watch' })).toBe('bash: npm test --watch');
    expect(summarize('read', { path: 'a.txt' })).toBe('read: a.txt');
    expect(summarize('grep', { pattern: 'x'.repeat(300) })).toHaveLength(120);
    expect(summarize('list', undefined)).toBe('list');
  });

  it('answerDanglingToolCalls answers only the unanswered calls of the last assistant message', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'u' },
      {
        role: 'assistant',
        content: null,
        toolCalls: [
          { id: 'a', name: 'bash', arguments: '{}' },
          { id: 'b', name: 'bash', arguments: '{}' },
        ],
      },
      { role: 'tool', toolCallId: 'a', content: 'done' },
    ];
    answerDanglingToolCalls(messages);
    expect(messages.slice(2)).toEqual([
      { role: 'tool', toolCallId: 'a', content: 'done' },
      { role: 'tool', toolCallId: 'b', content: expect.stringContaining('interrupted') as string },
    ]);
    const before = messages.length;
    answerDanglingToolCalls(messages);
    expect(messages).toHaveLength(before);
  });

  it('every tool schema is offered as-is', () => {
    expect(TOOLS.bash.parameters.required).toEqual(['command']);
  });
});
