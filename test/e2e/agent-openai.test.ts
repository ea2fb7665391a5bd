/**
 * Acceptance tests of prompt steps end to end at the edges: the real `openai`
 * package (through OpenAIModel) over HTTP against the fake chat-completions
 * server, and tools running in real local bwrap sandboxes.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenAIModel } from '../../src/agent/openai-model.js';
import { runPromptStep, type PromptStepOptions } from '../../src/agent/prompt-step.js';
import { MemoryTranscript } from '../../src/agent/transcript.js';
import { MaxTurnsExceededError, ModelError, TokenBudgetExceededError } from '../../src/errors.js';
import { AbortReason, timeoutSignal } from '../../src/util/abort.js';
import { Redactor } from '../../src/util/redact.js';
import type { Profile } from '../../src/workflow/types.js';
import { reply, startFakeOpenAI, type FakeOpenAIServer } from '../helpers/fake-openai-server.js';
import { openSandbox, PROFILES, type SandboxRig } from '../unit/agent/tools/sandbox-rig.js';

let server: FakeOpenAIServer;
let rig: SandboxRig;
let model: OpenAIModel;

beforeAll(async () => {
  server = await startFakeOpenAI();
  rig = await openSandbox();
  model = new OpenAIModel({
    apiKey: 'test-key',
    baseUrl: server.url,
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, jitter: 0 },
  });
});
afterAll(async () => {
  await server.close();
  await rig.close();
});

let requestsBefore = 0;
let pendingBefore = 0;
beforeEach(() => {
  requestsBefore = server.requests.length;
  pendingBefore = server.pending;
  server.setHandler(undefined);
});
afterEach(() => {
  // Every test consumes exactly what it scripted.
  expect(server.pending).toBe(pendingBefore === 0 ? 0 : pendingBefore);
});

/** The parts of a chat-completions request body these tests look at. */
interface WireBody {
  model: string;
  tools: Array<{ function: { name: string } }>;
  messages: Array<{ role: string; content: string | null; tool_call_id?: string }>;
}

/** Requests of the current test, as the server saw them (JSON bodies). */
const sent = (): WireBody[] => server.requests.slice(requestsBefore).map((r) => r.body as WireBody);
const offeredOn = (body: WireBody | undefined): string[] => body?.tools.map((t) => t.function.name) ?? [];

function step(extra: Partial<PromptStepOptions> = {}): PromptStepOptions & { sink: MemoryTranscript } {
  const sink = new MemoryTranscript();
  return {
    jobId: 'e2e-job',
    stepId: 'agent',
    sandbox: rig.sandbox,
    userPrompt: 'Do the task.',
    model,
    modelName: 'gpt-test',
    profile: PROFILES.developer,
    maxTurns: 10,
    signal: new AbortController().signal,
    transcript: sink,
    redact: (t) => t,
    sink,
    ...extra,
  };
}

const fileText = async (p: string): Promise<string> => (await rig.sandbox.readFile(p)).toString('utf8');
const toolMsgs = (body: WireBody | undefined): Array<{ tool_call_id: string; content: string }> =>
  (body?.messages ?? []).flatMap((m) =>
    m.role === 'tool' ? [{ tool_call_id: m.tool_call_id ?? '', content: m.content ?? '' }] : [],
  );

describe('prompt step over the openai SDK', () => {
  it('writes, edits, reads and greps files in the sandbox over several turns', async () => {
    server.push(
      reply.toolCalls([
        { name: 'write', arguments: { path: 'proj/app.py', content: 'def add(a, b):\n    return a - b\n' } },
      ]),
      reply.toolCalls([
        {
          name: 'edit',
          arguments: { path: 'proj/app.py', old_string: 'return a - b', new_string: 'return a + b' },
        },
      ]),
      reply.toolCalls([{ name: 'read', arguments: { path: 'proj/app.py' } }]),
      reply.toolCalls([{ name: 'grep', arguments: { pattern: 'a \\+ b', path: 'proj' } }]),
      reply.text('Fixed add() in proj/app.py.', { usage: { prompt: 100, completion: 20, cached: 40 } }),
    );
    const o = step({ pricing: { input: 1, output: 2, cachedInput: 0.5 } });
    const r = await runPromptStep(o);
    expect(r.output).toBe('Fixed add() in proj/app.py.');
    expect(r.turns).toBe(5);
    expect(r.usage).toEqual({ inputTokens: 140, outputTokens: 40, cachedInputTokens: 40 });
    expect(r.costUsd).toBeCloseTo((100 * 1 + 40 * 0.5 + 40 * 2) / 1e6, 12);
    // the file really exists in the sandbox, edited
    expect(await fileText('proj/app.py')).toBe('def add(a, b):\n    return a + b\n');
    const bodies = sent();
    expect(bodies).toHaveLength(5);
    expect(bodies[0]?.model).toBe('gpt-test');
    expect(toolMsgs(bodies[1])[0]?.content).toBe('Created /work/proj/app.py (32 bytes, 2 lines)');
    expect(toolMsgs(bodies[2])[1]?.content).toBe('Edited /work/proj/app.py: exact match');
    expect(toolMsgs(bodies[3])[2]?.content).toBe('     1  def add(a, b):\n     2      return a + b');
    expect(toolMsgs(bodies[4])[3]?.content).toBe('proj/app.py:2:    return a + b\n\n[1 match]');
    // tool results are answered with the ids the model gave
    expect(toolMsgs(bodies[4]).map((m) => m.tool_call_id)).toEqual([
      'call_1_1',
      'call_2_1',
      'call_3_1',
      'call_4_1',
    ]);
  });

  it('answers parallel tool calls in order, each with its own tool message', async () => {
    server.push(
      reply.toolCalls([
        { id: 'p1', name: 'bash', arguments: { command: 'echo first' } },
        { id: 'p2', name: 'write', arguments: { path: 'par.txt', content: 'x' } },
        { id: 'p3', name: 'bash', arguments: { command: 'cat par.txt' } },
      ]),
      reply.text('done'),
    );
    await runPromptStep(step());
    const answers = toolMsgs(sent()[1]);
    expect(answers.map((m) => m.tool_call_id)).toEqual(['p1', 'p2', 'p3']);
    expect(JSON.parse(answers[0]?.content ?? '')).toMatchObject({ output: 'first\n' });
    expect(JSON.parse(answers[2]?.content ?? '')).toMatchObject({ output: 'x' });
  });

  it('returns malformed arguments and unknown tools to the model as errors and continues', async () => {
    server.push(
      reply.toolCalls([
        { id: 'm1', name: 'bash', arguments: '{"command": "echo hi"' },
        { id: 'm2', name: 'delete_everything', arguments: {} },
      ]),
      reply.text('sorry, retried'),
    );
    const r = await runPromptStep(step());
    expect(r.output).toBe('sorry, retried');
    const [bad, unknown] = toolMsgs(sent()[1]);
    expect(bad?.content).toMatch(/^Error: the arguments of this 'bash' call are not valid JSON/);
    expect(unknown?.content).toMatch(
      /^Error: unknown tool 'delete_everything'\. Available tools: bash, read, write/,
    );
  });

  it('waits for Retry-After on a 429, then succeeds', async () => {
    server.push(reply.rateLimited(1), reply.text('after the wait'));
    const r = await runPromptStep(step());
    expect(r.output).toBe('after the wait');
    const [first, second] = server.requests.slice(requestsBefore);
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(900);
  });

  it('fails with ModelError when the server answers 500 on every attempt', async () => {
    server.push(reply.error(500), reply.error(500), reply.error(500));
    const o = step();
    const err = await runPromptStep(o).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ status: 500 });
    expect(sent()).toHaveLength(3);
    expect(o.sink.events.at(-1)).toMatchObject({ type: 'step-end', status: 'error' });
  });

  it('cuts a hanging response promptly when the step timeout aborts the signal', async () => {
    server.push(reply.hang());
    const timer = timeoutSignal(300, 'step-timeout');
    const started = Date.now();
    const err = await runPromptStep(step({ signal: timer.signal })).catch((e: unknown) => e);
    timer.clear();
    expect(err).toBeInstanceOf(AbortReason);
    expect((err as AbortReason).kind).toBe('step-timeout');
    expect(Date.now() - started).toBeLessThan(3000);
    const hung = server.requests[requestsBefore];
    await hung!.closed;
    expect(hung!.closedEarly).toBe(true);
  });

  it('fails with MaxTurnsExceededError when the model keeps calling tools', async () => {
    server.push(...Array.from({ length: 3 }, () => reply.toolCalls([{ name: 'list', arguments: {} }])));
    await expect(runPromptStep(step({ maxTurns: 3 }))).rejects.toBeInstanceOf(MaxTurnsExceededError);
    expect(sent()).toHaveLength(3);
  });

  it('fails with TokenBudgetExceededError when the job budget runs out', async () => {
    server.push(
      reply.toolCalls([{ name: 'list', arguments: {} }], { usage: { prompt: 400, completion: 50 } }),
      reply.toolCalls([{ name: 'list', arguments: {} }], { usage: { prompt: 500, completion: 60 } }),
    );
    const err = await runPromptStep(step({ tokenBudget: 800 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenBudgetExceededError);
    expect(err).toMatchObject({ budget: 800, used: 1010 });
  });

  it('caps huge tool output with a visible marker', async () => {
    server.push(
      reply.toolCalls([{ name: 'bash', arguments: { command: 'seq 1 200000' } }]),
      reply.text('ok'),
    );
    await runPromptStep(step());
    const [answer] = toolMsgs(sent()[1]);
    expect(Buffer.byteLength(answer!.content)).toBeLessThan(64 * 1024);
    expect(answer!.content).toMatch(/\[… truncated: \d+ lines omitted …\]/);
    expect(answer!.content).toContain('200000');
  });

  it('edits with the whitespace-tolerant fallback and refuses ambiguous edits', async () => {
    await rig.sandbox.writeFile('ws.py', 'def f():\n        x  =  1   \n        return x\nx = 1\nx = 1\n');
    server.push(
      reply.toolCalls([
        {
          id: 'e1',
          name: 'edit',
          arguments: { path: 'ws.py', old_string: 'x = 1\nreturn x', new_string: 'x = 2\nreturn x' },
        },
      ]),
      reply.toolCalls([
        {
          id: 'e2',
          name: 'edit',
          arguments: { path: 'ws.py', old_string: 'x = 1\n', new_string: 'x = 3\n' },
        },
      ]),
      reply.text('done'),
    );
    await runPromptStep(step());
    expect(toolMsgs(sent()[1])[0]?.content).toBe('Edited /work/ws.py: whitespace-flexible match at line 2');
    expect(toolMsgs(sent()[2])[1]?.content).toMatch(/appears 2 times/);
    expect(await fileText('ws.py')).toBe('def f():\n        x = 2\n        return x\nx = 1\nx = 1\n');
  });

  it('runs python with run_code under an unrestricted shell', async () => {
    server.push(
      reply.toolCalls([
        { name: 'run_code', arguments: { language: 'python', code: 'print(sum(range(10)))' } },
      ]),
      reply.text('45'),
    );
    await runPromptStep(step({ profile: PROFILES.unrestricted }));
    expect(offeredOn(sent()[0])).toContain('run_code');
    expect(JSON.parse(toolMsgs(sent()[1])[0]!.content)).toMatchObject({
      output: '45\n',
      metadata: { exit_code: 0 },
    });
  });
});

describe('profiles enforced before the sandbox', () => {
  it('readonly: write/edit are not offered, and calls to them are refused', async () => {
    server.push(
      reply.toolCalls([
        { id: 'w', name: 'write', arguments: { path: 'ro-written.txt', content: 'x' } },
        {
          id: 'e',
          name: 'edit',
          arguments: { path: 'proj/app.py', old_string: 'a + b', new_string: 'a * b' },
        },
      ]),
      reply.text('could not'),
    );
    await runPromptStep(step({ profile: PROFILES.readonly }));
    const offered = offeredOn(sent()[0]);
    expect(offered).not.toContain('write');
    expect(offered).not.toContain('edit');
    expect(offered).toContain('read');
    const [w, e] = toolMsgs(sent()[1]);
    expect(w?.content).toMatch(
      /^Refused: 'write' is not available: the profile 'readonly' does not allow writing files/,
    );
    expect(e?.content).toMatch(/^Refused: 'edit' is not available: /);
    expect(await rig.sandbox.stat('ro-written.txt')).toBeUndefined();
  });

  it('readonly: refused bash commands come back as refusals and nothing runs', async () => {
    const attempts = [
      'echo pwned > ro-marker-1',
      'touch ro-marker-2',
      'ls; touch ro-marker-3',
      'cat $(touch ro-marker-4)',
      'find . -name x -exec touch ro-marker-5 \\;',
    ];
    server.push(
      reply.toolCalls(attempts.map((command, i) => ({ id: `b${i}`, name: 'bash', arguments: { command } }))),
      reply.text('no'),
    );
    await runPromptStep(step({ profile: PROFILES.readonly }));
    const answers = toolMsgs(sent()[1]);
    expect(answers).toHaveLength(attempts.length);
    for (const a of answers) expect(a.content).toMatch(/^Refused: /);
    for (let i = 1; i <= attempts.length; i++)
      expect(await rig.sandbox.stat(`ro-marker-${i}`)).toBeUndefined();
  });

  it('create-only: new files are created, overwrites refused', async () => {
    server.push(
      reply.toolCalls([
        { id: 'c1', name: 'write', arguments: { path: 'co/new.txt', content: 'v1' } },
        { id: 'c2', name: 'write', arguments: { path: 'co/new.txt', content: 'v2' } },
      ]),
      reply.text('done'),
    );
    await runPromptStep(step({ profile: PROFILES.createOnly }));
    const [c1, c2] = toolMsgs(sent()[1]);
    expect(c1?.content).toBe('Created /work/co/new.txt (2 bytes, 1 lines)');
    expect(c2?.content).toMatch(/File already exists: \/work\/co\/new\.txt/);
    expect(await fileText('co/new.txt')).toBe('v1');
  });

  it('a profile that requires approval gets its calls refused, never executed', async () => {
    const approvalAll: Profile = {
      ...PROFILES.developer,
      name: 'ask-everything',
      approval: { mode: 'all', requiredTools: [], dangerousPatterns: [] },
    };
    server.push(
      reply.toolCalls([{ id: 'a1', name: 'bash', arguments: { command: 'touch approval-marker' } }]),
      reply.text('ok'),
    );
    await runPromptStep(step({ profile: approvalAll }));
    expect(toolMsgs(sent()[1])[0]?.content).toMatch(/^Refused: .*approval/);
    expect(await rig.sandbox.stat('approval-marker')).toBeUndefined();

    const dangerous: Profile = {
      ...approvalAll,
      name: 'ask-dangerous',
      approval: { mode: 'dangerous', requiredTools: [], dangerousPatterns: ['rm -rf'] },
    };
    await rig.sandbox.writeFile('precious/keep.txt', 'keep');
    server.push(
      reply.toolCalls([{ id: 'a2', name: 'bash', arguments: { command: 'rm -rf precious' } }]),
      reply.text('ok'),
    );
    await runPromptStep(step({ profile: dangerous }));
    expect(toolMsgs(sent()[1])[0]?.content).toMatch(/^Refused: .*approval/);
    expect(await fileText('precious/keep.txt')).toBe('keep');
  });
});

describe('secrets', () => {
  it('a secret echoed by the model and printed by a tool never reaches the transcript', async () => {
    const secret = 'ghp_S3cretValue_0123456789';
    await rig.sandbox.writeFile('creds.env', `API_TOKEN=${secret}\n`);
    server.push(
      reply.toolCalls([{ name: 'bash', arguments: { command: `cat creds.env; echo ${secret} | base64` } }], {
        content: `Let me check ${secret}`,
      }),
      reply.text(`The token is ${secret} (base64 ${Buffer.from(`${secret}\n`).toString('base64')})`),
    );
    const redactor = new Redactor([secret]);
    const o = step({ redact: (t) => redactor.redact(t) });
    const r = await runPromptStep(o);
    expect(r.output).toContain(secret);
    const transcript = o.sink.events.map((e) => JSON.stringify(e)).join('\n');
    expect(transcript).not.toContain(secret);
    expect(transcript).not.toContain(Buffer.from(secret).toString('base64').slice(0, 20));
    expect(transcript).toContain('***');
    expect(o.sink.events.some((e) => e.type === 'tool-result')).toBe(true);
  });
});
