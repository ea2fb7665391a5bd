/** runPromptStep: tool set, system prompt, transcript framing, failure labels. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endStatus, runPromptStep, type PromptStepOptions } from '../../../src/agent/prompt-step.js';
import type { StepProgress } from '../../../src/agent/loop.js';
import { MemoryTranscript } from '../../../src/agent/transcript.js';
import {
  MaxTurnsExceededError,
  ModelError,
  SandboxError,
  TokenBudgetExceededError,
} from '../../../src/errors.js';
import { AbortReason } from '../../../src/util/abort.js';
import { ScriptedModel, scripted } from '../../helpers/scripted-model.js';
import { openSandbox, PROFILES, type SandboxRig } from './tools/sandbox-rig.js';

let rig: SandboxRig;
beforeAll(async () => {
  rig = await openSandbox();
});
afterAll(async () => {
  await rig.close();
});

function options(
  model: ScriptedModel,
  extra: Partial<PromptStepOptions> = {},
): PromptStepOptions & { sink: MemoryTranscript } {
  const sink = new MemoryTranscript();
  return {
    jobId: 'job',
    stepId: 'fix',
    sandbox: rig.sandbox,
    userPrompt: 'Fix the bug.',
    model,
    modelName: 'fake-model',
    profile: PROFILES.developer,
    maxTurns: 5,
    signal: new AbortController().signal,
    transcript: sink,
    redact: (t) => t,
    sink,
    ...extra,
  };
}

describe('runPromptStep', () => {
  it('uses the built-in system prompt: working dir, offered tools, unattended', async () => {
    const model = new ScriptedModel([scripted.text('done')]);
    const r = await runPromptStep(options(model));
    expect(r).toEqual({
      output: 'done',
      turns: 1,
      usage: { inputTokens: 10, outputTokens: 5, cachedInputTokens: 0 },
    });
    const [system, user] = model.requests[0]?.messages ?? [];
    expect(system?.role).toBe('system');
    expect(system?.content).toContain('/work');
    expect(system?.content).toMatch(/unattended/);
    for (const t of ['bash', 'read', 'write', 'edit', 'glob', 'grep', 'list'])
      expect(system?.content).toContain(`- ${t} — `);
    expect(user).toEqual({ role: 'user', content: 'Fix the bug.' });
  });

  it('uses a given system prompt verbatim', async () => {
    const model = new ScriptedModel([scripted.text('ok')]);
    await runPromptStep(options(model, { systemPrompt: 'You are a poet.' }));
    expect(model.requests[0]?.messages[0]).toEqual({ role: 'system', content: 'You are a poet.' });
  });

  it('offers what the profile allows, narrowed by the step', async () => {
    const readonly = new ScriptedModel([scripted.text('ok')]);
    await runPromptStep(options(readonly, { profile: PROFILES.readonly }));
    const offered = readonly.requests[0]?.tools.map((t) => t.name) ?? [];
    expect(offered).toContain('bash');
    expect(offered).not.toContain('write');
    expect(offered).not.toContain('edit');
    expect(offered).not.toContain('run_code');
    expect(readonly.requests[0]?.messages[0]?.content).toContain('You may not modify files.');

    const narrowed = new ScriptedModel([scripted.text('ok')]);
    await runPromptStep(options(narrowed, { tools: ['read', 'grep'] }));
    expect(narrowed.requests[0]?.tools.map((t) => t.name)).toEqual(['read', 'grep']);

    const unrestricted = new ScriptedModel([scripted.text('ok')]);
    await runPromptStep(options(unrestricted, { profile: PROFILES.unrestricted }));
    expect(unrestricted.requests[0]?.tools.map((t) => t.name)).toContain('run_code');
  });

  it('passes model settings through', async () => {
    const model = new ScriptedModel([scripted.text('ok')]);
    const r = await runPromptStep(
      options(model, { temperature: 0.2, maxOutputTokens: 321, pricing: { input: 1, output: 1 } }),
    );
    expect(model.requests[0]).toMatchObject({ model: 'fake-model', temperature: 0.2, maxOutputTokens: 321 });
    expect(r.costUsd).toBeCloseTo(15 / 1e6, 12);
  });

  it('frames the transcript with step-start and step-end', async () => {
    const model = new ScriptedModel([scripted.toolCall('list'), scripted.text('answer')]);
    const o = options(model, { tokenBudget: 1000 });
    await runPromptStep(o);
    const types = o.sink.events.map((e) => e.type);
    expect(types[0]).toBe('step-start');
    expect(types.at(-1)).toBe('step-end');
    expect(o.sink.events[0]).toMatchObject({
      step: 'fix',
      job: 'job',
      model: 'fake-model',
      profile: 'developer',
      maxTurns: 5,
      tokenBudget: 1000,
    });
    expect(o.sink.events.at(-1)).toMatchObject({
      status: 'passed',
      turns: 2,
      output: 'answer',
      usage: { inputTokens: 20 },
    });
  });

  it('records a failed step with its usage, reports progress, and rethrows', async () => {
    const model = new ScriptedModel([scripted.toolCall('list'), scripted.toolCall('list')]);
    const progress: StepProgress[] = [];
    const o = options(model, { maxTurns: 2, onProgress: (p) => progress.push(p) });
    await expect(runPromptStep(o)).rejects.toBeInstanceOf(MaxTurnsExceededError);
    expect(o.sink.events.at(-1)).toMatchObject({
      type: 'step-end',
      status: 'failed',
      turns: 2,
      usage: { inputTokens: 20, outputTokens: 10 },
      error: { name: 'MaxTurnsExceededError' },
    });
    expect(progress.map((p) => p.turns)).toEqual([1, 2]);
  });

  it('labels model errors as error and a step timeout as timed-out', async () => {
    const failing = options(
      new ScriptedModel([new ModelError('server', 'HTTP 500 after 3 attempts', { status: 500 })]),
    );
    await expect(runPromptStep(failing)).rejects.toBeInstanceOf(ModelError);
    expect(failing.sink.events.at(-1)).toMatchObject({
      status: 'error',
      error: { name: 'ModelError', code: 'server' },
    });

    const ac = new AbortController();
    const timedOut = options(new ScriptedModel([scripted.hang()]), { signal: ac.signal });
    setTimeout(() => ac.abort(new AbortReason('step-timeout')), 50);
    await expect(runPromptStep(timedOut)).rejects.toBeInstanceOf(AbortReason);
    expect(timedOut.sink.events.at(-1)).toMatchObject({ status: 'timed-out' });
  });
});

describe('endStatus', () => {
  const live = new AbortController().signal;
  it('maps errors and abort reasons', () => {
    expect(endStatus(new MaxTurnsExceededError(3), live)).toBe('failed');
    expect(endStatus(new TokenBudgetExceededError(3, 4), live)).toBe('failed');
    expect(endStatus(new SandboxError('gone', 'x'), live)).toBe('error');
    expect(endStatus(new Error('bug'), live)).toBe('error');
    expect(endStatus(new Error('x'), AbortSignal.abort(new AbortReason('job-timeout')))).toBe('timed-out');
    expect(endStatus(new Error('x'), AbortSignal.abort(new AbortReason('cancelled')))).toBe('cancelled');
    expect(endStatus(new Error('x'), AbortSignal.abort())).toBe('cancelled');
  });
});
