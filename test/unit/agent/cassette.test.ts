import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCassette, stepFileName, type Cassette } from '../../../src/agent/cassette.js';
import type { Model, ModelRequest, ModelResponse } from '../../../src/agent/model.js';
import { OpenAIModel } from '../../../src/agent/openai-model.js';
import { RecordingModel } from '../../../src/agent/recording-model.js';
import { ReplayModel } from '../../../src/agent/replay-model.js';
import { ModelError, UserError } from '../../../src/errors.js';
import { AbortReason } from '../../../src/util/abort.js';
import { Redactor } from '../../../src/util/redact.js';
import { slugify } from '../../../src/workflow/slug.js';
import { reply, startFakeOpenAI } from '../../helpers/fake-openai-server.js';
import { ScriptedModel, scripted } from '../../helpers/scripted-model.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const JOB = 'fix-tests[task=flaky]#2';

function req(turn: number, overrides: Partial<ModelRequest> = {}): ModelRequest {
  return {
    model: 'gpt-test',
    messages: [
      { role: 'system', content: 'sys' },
      { role: 'user', content: `turn ${turn} prompt` },
    ],
    tools: [],
    meta: { jobId: JOB, stepId: 'fix', turn },
    ...overrides,
  };
}

async function readJson(file: string): Promise<Cassette> {
  return JSON.parse(await readFile(file, 'utf8')) as Cassette;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

describe('record then replay', () => {
  it('round-trips a multi-turn step through the real SDK, and replay needs no network', async () => {
    const secret = 'sk-live-SECRET-value-123';
    await using server = await startFakeOpenAI({
      replies: [
        reply.toolCalls(
          [
            { id: 'call_w', name: 'write', arguments: { path: 'hello.txt', content: `token ${secret}` } },
            { id: 'call_bad', name: 'bash', arguments: '{"command": "ls' },
          ],
          { usage: { prompt: 100, completion: 20, cached: 64 } },
        ),
        reply.text(`All done. The token was ${secret}.`, { usage: { prompt: 150, completion: 8 } }),
      ],
    });
    const live = new OpenAIModel({ apiKey: 'k', baseUrl: server.url, retry: { baseDelayMs: 1 } });
    const recorder = new RecordingModel({ inner: live, dir, redactor: new Redactor([secret]) });

    const first = await recorder.getResponse(req(1));
    const second = await recorder.getResponse(
      req(2, {
        messages: [
          { role: 'user', content: 'do it' },
          { role: 'assistant', content: null, toolCalls: first.toolCalls },
          { role: 'tool', toolCallId: 'call_w', content: `wrote ${secret}` },
          { role: 'tool', toolCallId: 'call_bad', content: 'error: bad JSON arguments' },
        ],
      }),
    );
    // The caller gets the real (unredacted) responses.
    expect(second.content).toContain(secret);

    const file = path.join(dir, slugify(JOB), 'fix.json');
    expect(recorder.fileFor(JOB, 'fix')).toBe(file);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(secret);
    expect(text.endsWith('\n')).toBe(true);
    const cassette = parseCassette(text, file);
    expect(cassette).toMatchObject({ version: 1, job: JOB, step: 'fix', model: 'gpt-test' });
    expect(cassette.turns).toHaveLength(2);
    expect(cassette.turns[0]).toEqual({
      request: { messages: 2, lastMessage: { role: 'user', content: 'turn 1 prompt' } },
      response: {
        content: null,
        toolCalls: [
          // readable object when the arguments are a JSON object, verbatim string when malformed
          { id: 'call_w', name: 'write', arguments: { path: 'hello.txt', content: 'token ***' } },
          { id: 'call_bad', name: 'bash', arguments: '{"command": "ls' },
        ],
        usage: { inputTokens: 100, outputTokens: 20, cachedInputTokens: 64 },
        finishReason: 'tool_calls',
        model: 'gpt-test',
      },
    });
    expect(cassette.turns[1]?.request).toEqual({
      messages: 4,
      lastMessage: { role: 'tool', toolCallId: 'call_bad', content: 'error: bad JSON arguments' },
    });

    await server.close();
    const replay = new ReplayModel({ dir });
    const r1 = await replay.getResponse(req(1));
    expect(r1).toEqual({
      content: null,
      toolCalls: [
        { id: 'call_w', name: 'write', arguments: '{"path":"hello.txt","content":"token ***"}' },
        { id: 'call_bad', name: 'bash', arguments: '{"command": "ls' },
      ],
      usage: { inputTokens: 100, outputTokens: 20, cachedInputTokens: 64 },
      finishReason: 'tool_calls',
      model: 'gpt-test',
    });
    const r2 = await replay.getResponse(req(2));
    expect(r2.content).toBe('All done. The token was ***.');
    expect(r2.usage).toEqual({ inputTokens: 150, outputTokens: 8, cachedInputTokens: 0 });
    expect(server.requests).toHaveLength(2);
  });

  it('writes after every turn, so a crash keeps what was already recorded', async () => {
    const inner = new ScriptedModel([scripted.toolCall('bash', { command: 'ls' }), scripted.text('done')]);
    const recorder = new RecordingModel({ inner, dir });
    const file = recorder.fileFor(JOB, 'fix');
    await recorder.getResponse(req(1));
    expect((await readJson(file)).turns).toHaveLength(1);
    await recorder.getResponse(req(2));
    expect((await readJson(file)).turns).toHaveLength(2);
    // no temp files left behind
    expect(await readdir(path.dirname(file))).toEqual(['fix.json']);
  });

  it('a step that starts over (retried job) replaces the stale turns', async () => {
    const inner = new ScriptedModel([
      scripted.toolCall('bash', { command: 'one' }),
      scripted.toolCall('bash', { command: 'two' }),
      scripted.text('attempt 2, turn 1'),
    ]);
    const recorder = new RecordingModel({ inner, dir });
    await recorder.getResponse(req(1));
    await recorder.getResponse(req(2));
    await recorder.getResponse(req(1));
    const cassette = await readJson(recorder.fileFor(JOB, 'fix'));
    expect(cassette.turns.map((t) => t.response.content)).toEqual(['attempt 2, turn 1']);
  });

  it('keeps concurrent jobs and steps in separate files, using the given slug mapping', async () => {
    const inner: Model = {
      getResponse: (r: ModelRequest): Promise<ModelResponse> =>
        new Promise((resolve) =>
          setTimeout(
            () =>
              resolve({
                content: `${r.meta.jobId}/${r.meta.stepId}/${r.meta.turn}`,
                toolCalls: [],
                usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 },
              }),
            Math.random() * 10,
          ),
        ),
    };
    const recorder = new RecordingModel({ inner, dir, slugOf: (id) => `slug-${id}` });
    const calls = [];
    for (const job of ['a', 'b']) {
      for (const step of ['s1', 's2']) {
        calls.push(
          (async () => {
            for (let turn = 1; turn <= 3; turn++) {
              await recorder.getResponse(req(turn, { meta: { jobId: job, stepId: step, turn } }));
            }
          })(),
        );
      }
    }
    await Promise.all(calls);
    expect((await readdir(dir)).sort()).toEqual(['slug-a', 'slug-b']);
    const c = await readJson(path.join(dir, 'slug-b', 's2.json'));
    expect(c.turns.map((t) => t.response.content)).toEqual(['b/s2/1', 'b/s2/2', 'b/s2/3']);
  });

  it('does not record failures of the inner model', async () => {
    const inner = new ScriptedModel([new ModelError('server', 'boom', { status: 500 })]);
    const recorder = new RecordingModel({ inner, dir });
    await expect(recorder.getResponse(req(1))).rejects.toMatchObject({ code: 'server' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('a recording that cannot be written is a UserError naming the file', async () => {
    const blocker = path.join(dir, 'not-a-dir');
    await writeFile(blocker, 'x');
    const recorder = new RecordingModel({ inner: new ScriptedModel(['hi']), dir: blocker });
    const err = await rejection(recorder.getResponse(req(1)));
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(path.join(blocker, slugify(JOB), 'fix.json'));
  });
});

describe('replay', () => {
  async function writeCassette(file: string, content: unknown): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }

  it('answers from a hand-written cassette, filling in defaults', async () => {
    const file = path.join(dir, 'hello.json');
    await writeCassette(file, {
      version: 1,
      turns: [
        { response: { toolCalls: [{ name: 'write', arguments: { path: 'a.txt', content: 'hi' } }] } },
        {
          response: {
            toolCalls: [
              { name: 'bash', arguments: 'not json' },
              { id: 'mine', name: 'list', arguments: {} },
            ],
          },
        },
        { response: { content: 'Done.' } },
      ],
    });
    // a file answers every job
    const replay = new ReplayModel({ file });
    const other = (turn: number): ModelRequest =>
      req(turn, { meta: { jobId: 'any-job', stepId: 'x', turn } });
    expect(await replay.getResponse(other(1))).toEqual({
      content: null,
      toolCalls: [{ id: 'call_1_1', name: 'write', arguments: '{"path":"a.txt","content":"hi"}' }],
      usage: { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 },
    });
    expect((await replay.getResponse(req(2))).toolCalls).toEqual([
      { id: 'call_2_1', name: 'bash', arguments: 'not json' },
      { id: 'mine', name: 'list', arguments: '{}' },
    ]);
    expect((await replay.getResponse(other(3))).content).toBe('Done.');
  });

  it('{ path } picks file or directory mode by what exists', async () => {
    const file = path.join(dir, 'one.json');
    await writeCassette(file, { version: 1, turns: [{ response: { content: 'from file' } }] });
    await writeCassette(path.join(dir, 'cassettes', slugify(JOB), 'fix.json'), {
      version: 1,
      turns: [{ response: { content: 'from dir' } }],
    });
    expect((await new ReplayModel({ path: file }).getResponse(req(1))).content).toBe('from file');
    expect((await new ReplayModel({ path: path.join(dir, 'cassettes') }).getResponse(req(1))).content).toBe(
      'from dir',
    );
    expect(() => new ReplayModel({ dir, file })).toThrow(TypeError);
  });

  it('a missing cassette is a replay-miss naming job, step, turn and file', async () => {
    const err = await rejection(new ReplayModel({ dir }).getResponse(req(1)));
    expect(err).toBeInstanceOf(ModelError);
    expect(err).toMatchObject({ code: 'replay-miss' });
    const msg = (err as Error).message;
    expect(msg).toContain(`job '${JOB}'`);
    expect(msg).toContain("step 'fix'");
    expect(msg).toContain('turn 1');
    expect(msg).toContain(path.join(dir, slugify(JOB), 'fix.json'));
  });

  it('a turn beyond the recording is a replay-miss saying how many turns there are', async () => {
    const file = path.join(dir, 'short.json');
    await writeCassette(file, { version: 1, turns: [{ response: { content: 'only one' } }] });
    const replay = new ReplayModel({ file });
    await replay.getResponse(req(1));
    const err = await rejection(replay.getResponse(req(2)));
    expect(err).toMatchObject({ code: 'replay-miss' });
    expect((err as Error).message).toMatch(/turn 2: cassette .*short\.json has 1 turn \(/);
  });

  it('an invalid cassette is a UserError listing every problem with its path', async () => {
    const file = path.join(dir, 'bad.json');
    await writeCassette(file, {
      version: 2,
      turns: [
        { response: { content: 5, toolCalls: [{ arguments: [] }], usage: { inputTokens: -1, tokens: 3 } } },
        'nope',
      ],
    });
    const err = await rejection(new ReplayModel({ file }).getResponse(req(1)));
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    for (const part of [
      file,
      'version: must be 1 (got 2)',
      'turns[0].response.content: must be a string or null',
      'turns[0].response.toolCalls[0].name: must be a string',
      'turns[0].response.toolCalls[0].arguments: must be a string or an object',
      'turns[0].response.usage.inputTokens: must be a number ≥ 0',
      'turns[0].response.usage.tokens: unknown field',
      'turns[1]: must be an object',
    ]) {
      expect(msg).toContain(part);
    }
    await writeCassette(file, '{ "version": 1, ');
    await expect(new ReplayModel({ file }).getResponse(req(1))).rejects.toThrow(
      /bad\.json is not valid JSON/,
    );
  });

  it('an aborted request rejects with the abort reason', async () => {
    const reason = new AbortReason('cancelled');
    const err = await rejection(
      new ReplayModel({ dir }).getResponse(req(1, { signal: AbortSignal.abort(reason) })),
    );
    expect(err).toBe(reason);
  });

  it('step ids become safe file names', () => {
    expect(stepFileName('fix')).toBe('fix.json');
    expect(stepFileName('../x/y')).toBe('_._x_y.json');
  });
});
