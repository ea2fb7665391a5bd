/** The session library API: real local sandboxes, the real openai package against the fake server. */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent, type AgentSession } from '../../../src/agent/session.js';
import { MemoryTranscript } from '../../../src/agent/transcript.js';
import { MaxTurnsExceededError, SandboxError, UserError } from '../../../src/errors.js';
import { reply, startFakeOpenAI, type FakeOpenAIServer } from '../../helpers/fake-openai-server.js';
import { ScriptedModel, scripted } from '../../helpers/scripted-model.js';

let server: FakeOpenAIServer;
let tmp: string;
beforeAll(async () => {
  server = await startFakeOpenAI();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});
afterAll(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('createAgent / openSession', () => {
  it('keeps history and the sandbox across run() calls, and deletes the sandbox on dispose', async () => {
    const agent = createAgent({
      profile: 'developer',
      model: { name: 'gpt-session', baseUrl: server.url, apiKey: 'k' },
      systemPrompt: 'You are a session test.',
      env: {},
    });
    const first = server.requests.length;
    server.push(
      reply.toolCalls([{ name: 'write', arguments: { path: 'notes.txt', content: 'remember 42' } }]),
      reply.text('Wrote it.'),
      reply.toolCalls([{ name: 'read', arguments: { path: 'notes.txt' } }]),
      reply.text('It says 42.'),
    );
    let sandboxDir: string;
    {
      await using session = await agent.openSession();
      sandboxDir = session.sandbox.id;
      expect(session.runId).toMatch(/^session-[a-z0-9]+-[0-9a-f]{6}$/);
      const r1 = await session.run('Write a note.');
      expect(r1).toMatchObject({ text: 'Wrote it.', turns: 2 });
      const r2 = await session.run('What does the note say?');
      expect(r2.text).toBe('It says 42.');
      expect(session.runCount).toBe(2);
      expect(session.usage).toEqual({ inputTokens: 40, outputTokens: 20, cachedInputTokens: 0 });

      // the second run's first request carries the whole first conversation
      const body = server.requests[first + 2]?.body as {
        model: string;
        messages: Array<{ role: string; content: string | null }>;
      };
      expect(body.model).toBe('gpt-session');
      expect(body.messages.map((m) => m.role)).toEqual([
        'system',
        'user',
        'assistant',
        'tool',
        'assistant',
        'user',
      ]);
      expect(body.messages[0]?.content).toBe('You are a session test.');
      expect(body.messages[4]?.content).toBe('Wrote it.');
      expect(body.messages[5]?.content).toBe('What does the note say?');

      // direct file transfer through the sandbox
      await writeFile(path.join(tmp, 'upload.txt'), 'from host');
      await session.sandbox.upload(path.join(tmp, 'upload.txt'), 'in/upload.txt');
      await session.sandbox.download('notes.txt', path.join(tmp, 'out'));
      expect(await readFile(path.join(tmp, 'out', 'notes.txt'), 'utf8')).toBe('remember 42');
      expect((await session.sandbox.readFile('in/upload.txt')).toString()).toBe('from host');
      expect(existsSync(sandboxDir)).toBe(true);
    }
    expect(existsSync(sandboxDir)).toBe(false);
  });

  it('stays usable after a failed run, and close() is idempotent and ends runs', async () => {
    const model = new ScriptedModel([scripted.toolCall('list'), scripted.text('second run answer')]);
    const sink = new MemoryTranscript();
    const session: AgentSession = await createAgent({
      model,
      modelName: 'scripted',
      maxTurns: 1,
      transcript: sink,
      env: {},
    }).openSession();
    try {
      await expect(session.run('first')).rejects.toBeInstanceOf(MaxTurnsExceededError);
      expect(session.usage.inputTokens).toBe(10);
      const r = await session.run('second');
      expect(r.text).toBe('second run answer');
      // the transcript recorded both runs as steps run-1 and run-2
      expect(sink.events.filter((e) => e.type === 'step-end').map((e) => [e.step, e.status])).toEqual([
        ['run-1', 'failed'],
        ['run-2', 'passed'],
      ]);
      // the default profile is readonly: no write tools
      expect(model.requests[0]?.tools.map((t) => t.name)).not.toContain('write');
      model.push(scripted.hang());
      const hanging = session.run('third').catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 50));
      await Promise.all([session.close(), session.close()]);
      expect(await hanging).toBeInstanceOf(UserError);
      await expect(session.run('after close')).rejects.toThrow(/closed/);
      await expect(session.sandbox.exec('true')).rejects.toBeInstanceOf(SandboxError);
    } finally {
      await session.close();
    }
  });

  it('rejects one run while another is in flight', async () => {
    const model = new ScriptedModel([scripted.hang()]);
    await using session = await createAgent({ model, env: {} }).openSession();
    const first = session.run('one').catch((e: unknown) => e);
    await expect(session.run('two')).rejects.toThrow(/one prompt at a time/);
    await session.close();
    expect(await first).toMatchObject({ message: 'the session was closed' });
  });

  it('reports bad configuration as UserError before creating anything', async () => {
    await expect(createAgent({ profile: 'no-such-profile', env: {} }).openSession()).rejects.toBeInstanceOf(
      UserError,
    );
    await expect(createAgent({ env: {} }).openSession()).rejects.toThrow(/OPENAI_API_KEY/);
    await expect(
      createAgent({ profile: path.join(tmp, 'missing.yaml'), env: { OPENAI_API_KEY: 'k' } }).openSession(),
    ).rejects.toThrow(/profile file not found/);
  });
});
