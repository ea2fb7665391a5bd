import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_MODEL,
  DefaultModelProvider,
  isLoopbackUrl,
  mergeModelSettings,
  NO_KEY_PLACEHOLDER,
  preflightModels,
  resolveEndpoint,
  resolveModelName,
} from '../../../src/agent/model-config.js';
import type { ModelRequest } from '../../../src/agent/model.js';
import { Template } from '../../../src/expr/template.js';
import { UserError } from '../../../src/errors.js';
import { Redactor } from '../../../src/util/redact.js';
import type { Job, ModelSettings, PromptStep, RunStep, Workflow } from '../../../src/workflow/types.js';
import { reply, startFakeOpenAI } from '../../helpers/fake-openai-server.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function promptStep(id: string, line: number, extra: Partial<PromptStep> = {}): PromptStep {
  return {
    kind: 'prompt',
    id,
    idExplicit: true,
    name: id,
    continueOnError: false,
    env: {},
    loc: { file: 'flows/a.yaml', line, col: 5 },
    prompt: Template.literal('do it'),
    promptVars: {},
    maxTurns: 10,
    ...extra,
  };
}

const runStep: RunStep = {
  kind: 'run',
  id: 'build',
  idExplicit: true,
  name: 'build',
  continueOnError: false,
  env: {},
  loc: { file: 'flows/a.yaml', line: 3, col: 5 },
  run: Template.literal('make'),
};

/** Only the fields the model edge reads; the rest of a Workflow is irrelevant here. */
function workflow(model: ModelSettings, steps: Array<PromptStep | RunStep>, name = 'a'): Workflow {
  return {
    file: `flows/${name}.yaml`,
    absPath: `/abs/flows/${name}.yaml`,
    name,
    model,
    steps,
    finally: [],
  } as unknown as Workflow;
}

function job(wf: Workflow, id: string, slug: string): Job {
  return { id, slug, workflow: wf, index: 0 };
}

function req(jobId: string, stepId: string, turn = 1): ModelRequest {
  return {
    model: 'm',
    messages: [{ role: 'user', content: 'hi' }],
    tools: [],
    meta: { jobId, stepId, turn },
  };
}

describe('resolveModelName', () => {
  it('--model > step > workflow > OPENAI_MODEL > default; blanks are skipped', () => {
    const env = { OPENAI_MODEL: 'env-model' };
    expect(resolveModelName({ override: 'flag', step: 'step', workflow: 'wf', env })).toBe('flag');
    expect(resolveModelName({ step: 'step', workflow: 'wf', env })).toBe('step');
    expect(resolveModelName({ step: '  ', workflow: 'wf', env })).toBe('wf');
    expect(resolveModelName({ env })).toBe('env-model');
    expect(resolveModelName({ override: '', env: { OPENAI_MODEL: '' } })).toBe(DEFAULT_MODEL);
    expect(DEFAULT_MODEL).toBe('gpt-5-mini');
  });
});

describe('endpoint resolution', () => {
  it('merges step settings over workflow settings field by field', () => {
    const merged = mergeModelSettings(
      { baseUrl: 'http://wf/v1', temperature: 0.5, maxOutputTokens: 100 },
      { temperature: 0, maxOutputTokens: undefined },
    );
    expect(merged).toEqual({ baseUrl: 'http://wf/v1', temperature: 0, maxOutputTokens: 100 });
  });

  it('base-url > OPENAI_BASE_URL > SDK default; key from OPENAI_API_KEY', () => {
    const env = { OPENAI_BASE_URL: 'https://proxy.example/v1', OPENAI_API_KEY: 'sk-1' };
    expect(resolveEndpoint({ baseUrl: 'https://mine.example/v1' }, env)).toEqual({
      baseUrl: 'https://mine.example/v1',
      apiKey: 'sk-1',
    });
    expect(resolveEndpoint({}, env)).toEqual({ baseUrl: 'https://proxy.example/v1', apiKey: 'sk-1' });
    expect(resolveEndpoint({}, {})).toEqual({ baseUrl: undefined, apiKey: undefined });
  });

  it('a loopback endpoint runs without a key (placeholder), a remote one does not', () => {
    expect(resolveEndpoint({ baseUrl: 'http://127.0.0.1:11434/v1' }, {}).apiKey).toBe(NO_KEY_PLACEHOLDER);
    expect(resolveEndpoint({}, { OPENAI_BASE_URL: 'http://localhost:8000/v1' }).apiKey).toBe(
      NO_KEY_PLACEHOLDER,
    );
    expect(resolveEndpoint({ baseUrl: 'http://127.0.0.1:1/v1' }, { OPENAI_API_KEY: 'real' }).apiKey).toBe(
      'real',
    );
    expect(resolveEndpoint({ baseUrl: 'http://gpu-box:8000/v1' }, {}).apiKey).toBeUndefined();
    expect(
      [
        'http://localhost/v1',
        'http://127.0.0.5:1/',
        'http://[::1]:8080/v1',
        'http://ollama.localhost/v1',
      ].map(isLoopbackUrl),
    ).toEqual([true, true, true, true]);
    expect(
      ['http://10.0.0.1/v1', 'https://api.openai.com/v1', 'not a url', 'http://127.example/'].map(
        isLoopbackUrl,
      ),
    ).toEqual([false, false, false, false]);
  });
});

describe('preflightModels', () => {
  it('reports a missing key once, naming the first prompt step and counting the rest', () => {
    const a = workflow({}, [runStep, promptStep('fix', 12), promptStep('review', 20)]);
    const b = workflow({}, [promptStep('other', 7)], 'b');
    const steps = [...a.steps, ...a.steps].map((step) => ({ workflow: a, step }));
    steps.push({ workflow: b, step: b.steps[0]! });
    const errors = preflightModels({ steps, env: {} });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(UserError);
    expect(errors[0]!.message).toBe(
      "OPENAI_API_KEY is not set (needed by prompt step 'fix' in flows/a.yaml:12 and 2 more prompt steps); " +
        'set it, or use --replay <dir> to run from recorded responses',
    );
    const single = preflightModels({ steps: [{ workflow: a, step: a.steps[1]! }], env: {} });
    expect(single[0]!.message).toBe(
      "OPENAI_API_KEY is not set (needed by prompt step 'fix' in flows/a.yaml:12); " +
        'set it, or use --replay <dir> to run from recorded responses',
    );
  });

  it('passes with a key, a loopback endpoint, run steps only, or when replaying', async () => {
    const a = workflow({}, [promptStep('fix', 12)]);
    const steps = [{ workflow: a, step: a.steps[0]! }];
    expect(preflightModels({ steps, env: { OPENAI_API_KEY: 'sk' } })).toEqual([]);
    expect(preflightModels({ steps, env: { OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' } })).toEqual([]);
    expect(preflightModels({ steps: [{ workflow: a, step: runStep }], env: {} })).toEqual([]);
    expect(preflightModels({ steps, env: {}, replayDir: dir })).toEqual([]);
    const local = workflow({ baseUrl: 'http://localhost:8000/v1' }, [promptStep('fix', 12)]);
    expect(preflightModels({ steps: [{ workflow: local, step: local.steps[0]! }], env: {} })).toEqual([]);

    const cassette = path.join(dir, 'fix.json');
    await writeFile(cassette, '{}');
    const withCassette = workflow({}, [promptStep('fix', 12, { cassette })]);
    expect(
      preflightModels({ steps: [{ workflow: withCassette, step: withCassette.steps[0]! }], env: {} }),
    ).toEqual([]);
  });

  it('reports bad URLs, missing cassettes and unusable record/replay directories', async () => {
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'x');
    const missing = path.join(dir, 'missing.json');
    const wf = workflow({}, [
      promptStep('bad-url', 4, { model: { baseUrl: 'ftp://x/v1' } }),
      promptStep('gone', 9, { cassette: missing }),
    ]);
    const messages = preflightModels({
      steps: wf.steps.map((step) => ({ workflow: wf, step })),
      env: { OPENAI_API_KEY: 'sk', OPENAI_BASE_URL: 'not a url' },
      replayDir: path.join(dir, 'nope'),
      recordDir: file,
    }).map((e) => e.message);
    expect(messages).toEqual([
      '--record and --replay cannot be used together',
      `--replay ${path.join(dir, 'nope')}: no such directory`,
      `--record ${file}: exists and is not a directory`,
      "OPENAI_BASE_URL 'not a url' is not a valid URL",
      "model base-url 'ftp://x/v1' (prompt step 'bad-url' in flows/a.yaml:4) must be an http(s) URL",
      `cassette ${missing} (prompt step 'gone' in flows/a.yaml:9) does not exist`,
    ]);
  });
});

describe('DefaultModelProvider', () => {
  it('gives a live model on the step endpoint with the merged settings and the resolved name', async () => {
    await using server = await startFakeOpenAI({ apiKey: 'sk-env', replies: [reply.text('live')] });
    const step = promptStep('fix', 12, { model: { baseUrl: server.url, temperature: 0.1 } });
    const wf = workflow({ maxOutputTokens: 300, pricing: { input: 1, output: 2 } }, [step]);
    const provider = new DefaultModelProvider({
      env: { OPENAI_API_KEY: 'sk-env', OPENAI_MODEL: 'env-model' },
    });
    const resolved = provider.forStep(job(wf, 'a', 'a'), step, '');
    expect(resolved).toMatchObject({
      name: 'env-model',
      temperature: 0.1,
      maxOutputTokens: 300,
      pricing: { input: 1, output: 2 },
    });
    expect(provider.forStep(job(wf, 'a', 'a'), step, 'named').name).toBe('named');
    expect(provider.forStep(job(wf, 'b', 'b'), step, '').model).toBe(resolved.model);
    await expect(resolved.model.getResponse(req('a', 'fix'))).resolves.toMatchObject({ content: 'live' });
    expect(server.requests[0]!.headers.authorization).toBe('Bearer sk-env');
  });

  it('a keyless loopback endpoint gets the placeholder key; a remote one without a key throws UserError', async () => {
    await using server = await startFakeOpenAI({ replies: [reply.text('ok')] });
    const step = promptStep('fix', 12);
    const provider = new DefaultModelProvider({ env: { OPENAI_BASE_URL: server.url } });
    await provider.forStep(job(workflow({}, [step]), 'a', 'a'), step, 'm').model.getResponse(req('a', 'fix'));
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${NO_KEY_PLACEHOLDER}`);

    const remote = new DefaultModelProvider({ env: {} });
    expect(() => remote.forStep(job(workflow({}, [step]), 'a', 'a'), step, 'm')).toThrow(
      /OPENAI_API_KEY is not set \(needed by prompt step 'fix' in flows\/a.yaml:12\)/,
    );
  });

  it('--record writes cassettes under the job slug the engine uses, redacted; --replay answers from them', async () => {
    await using server = await startFakeOpenAI({
      replies: [
        reply.toolCalls([{ name: 'bash', arguments: { command: 'echo TOPSECRET1' } }]),
        reply.text('done'),
      ],
    });
    const step = promptStep('fix', 12);
    const wf = workflow({}, [step]);
    const theJob = job(wf, 'a[x=1]', 'custom-slug');
    const recordDir = path.join(dir, 'rec');
    const recorder = new DefaultModelProvider({
      env: { OPENAI_API_KEY: 'sk', OPENAI_BASE_URL: server.url },
      recordDir,
      redactor: new Redactor(['TOPSECRET1']),
      retry: { baseDelayMs: 1 },
    });
    const live = recorder.forStep(theJob, step, 'm').model;
    const first = await live.getResponse(req('a[x=1]', 'fix', 1));
    expect(first.toolCalls[0]!.arguments).toContain('TOPSECRET1');
    await live.getResponse(req('a[x=1]', 'fix', 2));
    const text = await readFile(path.join(recordDir, 'custom-slug', 'fix.json'), 'utf8');
    expect(text).toContain('***');
    expect(text).not.toContain('TOPSECRET1');

    // Replay needs neither a key nor the server.
    await server.close();
    const replayer = new DefaultModelProvider({ env: {}, replayDir: recordDir });
    const replay = replayer.forStep(theJob, step, 'm').model;
    expect((await replay.getResponse(req('a[x=1]', 'fix', 1))).toolCalls[0]!.name).toBe('bash');
    expect((await replay.getResponse(req('a[x=1]', 'fix', 2))).content).toBe('done');
    await expect(replay.getResponse(req('a[x=1]', 'fix', 3))).rejects.toMatchObject({ code: 'replay-miss' });
  });

  it("a step's cassette wins over --replay and --record", async () => {
    const cassette = path.join(dir, 'step.json');
    await writeFile(
      cassette,
      JSON.stringify({ version: 1, turns: [{ response: { content: 'from the step cassette' } }] }),
    );
    await mkdir(path.join(dir, 'replay'));
    const step = promptStep('fix', 12, { cassette });
    const wf = workflow({}, [step]);
    for (const options of [
      { replayDir: path.join(dir, 'replay') },
      { recordDir: path.join(dir, 'rec') },
      {},
    ]) {
      const provider = new DefaultModelProvider({ env: {}, ...options });
      const model = provider.forStep(job(wf, 'j', 'j'), step, 'm').model;
      expect((await model.getResponse(req('j', 'fix'))).content).toBe('from the step cassette');
    }
  });
});
