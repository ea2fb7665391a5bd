import { mkdtemp, rm, writeFile, mkdir, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { truthy } from '../../../src/expr/evaluate.js';
import { BUILTIN_PROFILES } from '../../../src/profiles/builtin.js';
import { formatDiagnostic } from '../../../src/workflow/diagnostic.js';
import { COMMAND_LINE, loadWorkflowFile, loadWorkflows } from '../../../src/workflow/load.js';
import type { PromptStep, RunStep, Workflow } from '../../../src/workflow/types.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const validDir = `${root}test/fixtures/valid/`;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function write(rel: string, text: string): Promise<string> {
  const file = join(tmp, rel);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, text);
  return file;
}

async function load(file: string, options = {}): Promise<Workflow> {
  const r = await loadWorkflowFile(file, { cwd: root, ...options });
  expect(r.diagnostics.map(formatDiagnostic)).toEqual([]);
  if (!r.workflow) throw new Error('no workflow');
  return r.workflow;
}

const lines = async (patterns: string[], options = {}): Promise<string[]> =>
  (await loadWorkflows(patterns, { cwd: tmp, ...options })).diagnostics.map(formatDiagnostic);

describe('defaults', () => {
  it('fills every field of a minimal workflow', async () => {
    const wf = await load('test/fixtures/valid/minimal.yaml');
    expect(wf.file).toBe('test/fixtures/valid/minimal.yaml');
    expect(wf.absPath).toBe(`${validDir}minimal.yaml`);
    expect(wf.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(wf.name).toBe('minimal');
    expect(wf.sandbox).toEqual({
      backend: 'local',
      workingDir: '/work',
      network: 'off',
      env: {},
      autoStopMs: 30 * 60_000,
      autoDeleteMs: 60 * 60_000,
    });
    expect(wf.timeoutMs).toBe(60 * 60_000);
    expect(wf.profile).toBe(BUILTIN_PROFILES.readonly);
    expect(wf.model).toEqual({});
    expect(wf.uploads).toEqual([]);
    expect(wf.vars).toEqual({});
    expect(wf.secrets).toEqual({});
    expect(wf.strategy).toEqual({ repeat: 1 });
    expect(wf.finally).toEqual([]);
    expect(wf.artifacts).toEqual([]);
    expect(wf.retry).toBeUndefined();
    expect(wf.loc).toEqual({ file: 'test/fixtures/valid/minimal.yaml', line: 1, col: 1 });
    const step = wf.steps[0] as RunStep;
    expect(step).toMatchObject({
      kind: 'run',
      id: 'step-1',
      idExplicit: false,
      name: 'echo hello',
      continueOnError: false,
      env: {},
    });
    expect(step.run.source).toBe('echo hello');
    expect(step.loc).toEqual({ file: 'test/fixtures/valid/minimal.yaml', line: 3, col: 5 });
  });
});

describe('full workflow', () => {
  let wf: Workflow;
  beforeAll(async () => {
    wf = await load('test/fixtures/valid/full.yaml');
  });

  it('normalizes the sandbox (env values as written)', () => {
    expect(wf.sandbox.image?.source).toBe('python:3.13');
    expect(wf.sandbox.resources).toEqual({ cpu: 2, memory: 4, disk: 10 });
    expect(Object.fromEntries(Object.entries(wf.sandbox.env).map(([k, v]) => [k, v.source]))).toEqual({
      PYTHONUNBUFFERED: '1',
      LEVEL: '3.10',
      VERBOSE: 'true',
    });
    expect(wf.sandbox.autoDeleteMs).toBe(2 * 3_600_000);
  });

  it('reads model, profile, uploads, secrets and strategy', () => {
    expect(wf.profile.name).toBe('developer');
    expect(wf.model.name?.source).toBe('gpt-5-mini');
    expect(wf.model).toMatchObject({
      baseUrl: 'http://127.0.0.1:11434/v1',
      temperature: 0,
      maxOutputTokens: 4096,
      pricing: { input: 0.25, output: 2, cachedInput: 0.025 },
    });
    expect(wf.maxTokens).toBe(200000);
    expect(wf.system?.source).toBe('You are careful. Suite ${{ vars.suite }}.');
    expect(wf.uploads.map((u) => [u.from.source, u.to.source, u.exclude])).toEqual([
      [`${validDir}repos/alpha`, '/work/repo', []],
      [`${validDir}files`, '/work/fixtures', ['**/*.tmp']],
    ]);
    expect(wf.uploads[0]?.from.isLiteral).toBe(true);
    expect(wf.secrets).toEqual({ API_TOKEN: { fromEnv: 'API_TOKEN' } });
    expect(wf.strategy.matrix?.axes).toEqual([['task', ['flaky-test', 'type-error']]]);
    expect(wf.strategy.matrix?.include).toEqual([{ task: 'perf-regression' }]);
    expect(wf.strategy.matrix?.loc).toMatchObject({ line: 30, col: 3 });
    expect(wf.strategy).toMatchObject({ repeat: 3, maxParallel: 4 });
    expect(wf.retry).toEqual({ limit: 2, on: ['error', 'timed-out'] });
  });

  it('reads steps: ids, names, conditions, working dirs, timeouts', () => {
    expect(wf.steps.map((s) => [s.kind, s.id, s.idExplicit, s.name])).toEqual([
      ['run', 'baseline', true, 'baseline'],
      ['prompt', 'fix', true, 'fix'],
      ['run', 'verify', true, 'verify'],
      ['run', 'step-4', false, 'echo "verification failed at ${{ steps.verify.conclusion }}"'],
    ]);
    const [baseline, fix, verify, last] = wf.steps;
    expect(baseline).toMatchObject({ timeoutMs: 300_000, continueOnError: true });
    expect(baseline?.env.TOKEN?.source).toBe('${{ secrets.API_TOKEN }}');
    expect((fix as PromptStep).maxTurns).toBe(40);
    expect((fix as PromptStep).model?.name?.source).toBe('gpt-5-mini');
    expect(verify?.workingDir).toBe('/work/repo');
    // A bare `if:` is one expression, as in GitHub Actions.
    expect(verify?.if?.isSingleExpression).toBe(true);
    const ctx = (outcome: string) => ({ contexts: { steps: { fix: { outcome } } } });
    expect(truthy(verify!.if!.evaluateValue(ctx('success')))).toBe(true);
    expect(truthy(verify!.if!.evaluateValue(ctx('failure')))).toBe(false);
    expect(last?.if?.source).toBe('${{ failure() }}');
    expect(wf.finally.map((s) => s.id)).toEqual(['finally-1', 'finally-2']);
  });

  it('reads artifacts', () => {
    expect(wf.artifacts.map((a) => [a.path.source, a.to, a.when, a.ifNoFilesFound])).toEqual([
      ['/work/out/agent.diff', 'diff/', 'always', 'warn'],
      ['/work/out/${{ matrix.task }}-${{ steps.verify.outcome }}.log', 'logs', 'on-failure', 'ignore'],
    ]);
  });

  it('positions template errors through the origin kept on each template', () => {
    const t = wf.steps[1]!.kind === 'prompt' ? (wf.steps[1] as PromptStep).prompt : undefined;
    expect(t?.origin?.locate(t.source.indexOf('matrix'))).toEqual({ line: 45, col: 15 });
  });
});

describe('conditions', () => {
  it('accepts bare expressions, whitespace around ${{ }}, and booleans', async () => {
    const wf = await load('test/fixtures/valid/extension-and-if.yaml');
    const [, recovered, never, release] = wf.steps;
    const ctx = {
      contexts: {
        steps: { probe: { outcome: 'failure' } },
        vars: { branch: 'release/1.0' },
        job: { id: 'x' },
      },
    };
    expect(recovered?.if?.evaluateValue(ctx)).toBe(true);
    expect(never?.if?.evaluateValue(ctx)).toBe(false);
    expect(release?.if?.evaluateValue(ctx)).toBe(true);
  });
});

describe('datasets, templated uploads, prompt files, profiles', () => {
  it('loads dataset items with their line numbers and keeps templated upload sources', async () => {
    const wf = await load('test/fixtures/valid/dataset.yaml');
    expect(wf.strategy.dataset?.file).toBe(`${validDir}data/tasks.jsonl`);
    expect(wf.strategy.dataset?.items.map((i) => i.id)).toEqual(['django-123', 'flask-7']);
    expect(wf.strategy.dataset?.lines).toEqual([1, 3]);
    expect(wf.strategy.repeat).toBe(2);
    const [templated, literal] = wf.uploads;
    expect(templated?.from.isLiteral).toBe(false);
    expect(templated?.from.source).toBe('./repos/${{ item.repo }}');
    expect(templated?.to.source).toBe('/work/repo');
    expect(literal?.to.source).toBe('input');
    // The templated part is positioned inside the short form.
    expect(templated?.from.origin?.locate(templated.from.source.indexOf('item'))).toEqual({
      line: 7,
      col: 17,
    });
  });

  it('loads prompt files and their variables', async () => {
    const wf = await load('test/fixtures/valid/prompt-file.yaml');
    const step = wf.steps[0] as PromptStep;
    expect(step.prompt).toBeUndefined();
    expect(step.name).toBe('fix');
    expect(step.promptFile).toEqual({
      path: `${validDir}prompts/fix.md`,
      description: 'Fix one failing test',
      variables: {
        task: { required: true },
        style: { required: false, default: 'concise' },
        extra: { required: false, default: 'none' },
      },
      body: 'You fix failing tests. Be {{ style }}. Extra notes: {{ extra }}.',
      initialPrompt: 'Fix the {{ task }} problem in /work/repo.\n',
    });
    expect(Object.fromEntries(Object.entries(step.promptVars).map(([k, v]) => [k, v.source]))).toEqual({
      task: '${{ matrix.task }}',
      style: 'thorough',
    });
    expect(step.tools).toEqual(['bash', 'read', 'edit', 'write']);
    expect(step.maxTurns).toBe(20);
  });

  it('loads a custom profile file and per-step built-in profiles', async () => {
    const wf = await load('test/fixtures/valid/custom-profile.yaml');
    expect(wf.profile).toEqual({
      name: 'reviewer',
      description: 'Read-only review',
      shell: 'restricted',
      fileWrite: 'off',
      approval: {
        mode: 'none',
        requiredTools: ['bash', 'write', 'edit', 'run_code'],
        dangerousPatterns: expect.any(Array) as string[],
      },
      shellTimeoutS: 60,
      shellWorkingDir: '/work/repo',
      bashOnly: false,
      source: `${validDir}profiles/reviewer.yaml`,
    });
    expect((wf.steps[0] as PromptStep).profile).toBeUndefined();
    expect((wf.steps[1] as PromptStep).profile).toBe(BUILTIN_PROFILES.developer);
  });
});

describe('vars overrides', () => {
  it('applies --vars-file then --var over vars:', async () => {
    await write(
      'vars/wf.yaml',
      'name: v\nvars: { suite: unit, level: 1, extra: x }\nsteps:\n  - run: echo ${{ vars.suite }} ${{ vars.level }}\n',
    );
    await write('vars/file.yaml', 'suite: e2e\nlevel: 2\n');
    const r = await loadWorkflows(['vars/wf.yaml'], {
      cwd: tmp,
      varsFile: 'vars/file.yaml',
      vars: { level: '3' },
    });
    expect(r.diagnostics).toEqual([]);
    expect(r.workflows[0]?.vars).toEqual({ suite: 'e2e', level: '3', extra: 'x' });
  });

  it('reports a --var key no workflow declares, with a suggestion', async () => {
    await write('vars/a.yaml', 'name: a\nvars: { suite: unit }\nsteps:\n  - run: echo\n');
    await write('vars/b.yaml', 'name: b\nvars: { model: x }\nsteps:\n  - run: echo\n');
    const r = await loadWorkflows(['vars/a.yaml', 'vars/b.yaml'], {
      cwd: tmp,
      vars: { suit: 'e2e', model: 'y' },
    });
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      `${COMMAND_LINE}:1:1: error: --var suit: 'suit' is not declared under vars in any workflow (did you mean 'suite'?)`,
    ]);
    expect(r.workflows).toEqual([]);
    // The same check for a single file.
    const one = await loadWorkflowFile('vars/a.yaml', { cwd: tmp, vars: { nope: '1' } });
    expect(one.workflow).toBeUndefined();
  });

  it('lets templates use override keys', async () => {
    await write('vars/c.yaml', 'name: c\nvars: { a: 1 }\nsteps:\n  - run: echo ${{ vars.a }}\n');
    await write('vars/d.yaml', 'name: d\nvars: { b: 1 }\nsteps:\n  - run: echo ${{ vars.a }}\n');
    // d does not declare `a`, but the run sets it for every workflow.
    expect(await lines(['vars/c.yaml', 'vars/d.yaml'], { vars: { a: '2' } })).toEqual([]);
  });

  it('reports vars-file problems in the vars file', async () => {
    await write('vars/e.yaml', 'name: e\nvars: { suite: unit }\nsteps:\n  - run: echo\n');
    await write('vars/extra.yaml', 'suite: e2e\nsuit: typo\n');
    await write('vars/list.yaml', '- a\n- b\n');
    expect(await lines(['vars/e.yaml'], { varsFile: 'vars/extra.yaml' })).toEqual([
      "vars/extra.yaml:2:1: warning: suit: 'suit' is not declared under vars in any workflow (did you mean 'suite'?)",
    ]);
    expect(await lines(['vars/e.yaml'], { varsFile: 'vars/list.yaml' })).toEqual([
      'vars/list.yaml:1:1: error: a vars file must be a mapping of variable names to values',
    ]);
    expect(await lines(['vars/e.yaml'], { varsFile: 'vars/none.yaml' })).toEqual([
      'vars/none.yaml:1:1: error: vars file not found',
    ]);
    const r = await loadWorkflows(['vars/e.yaml'], { cwd: tmp, varsFile: 'vars/none.yaml' });
    expect(r.workflows).toEqual([]);
  });
});

describe('loadWorkflows', () => {
  beforeAll(async () => {
    for (const n of ['b', 'a', 'c'])
      await write(`many/${n}.yaml`, `name: ${n}\nsteps:\n  - run: echo ${n}\n`);
    await write('many/notes.txt', 'not a workflow');
    await write('dup/one.yaml', 'name: same\nsteps:\n  - run: echo 1\n');
    await write('dup/two.yaml', '# second\nname: same\nsteps:\n  - run: echo 2\n');
  });

  it('expands globs sorted, keeps the given order, drops repeats', async () => {
    const r = await loadWorkflows(['many/c.yaml', 'many/*.yaml', 'many/a.yaml'], { cwd: tmp });
    expect(r.diagnostics).toEqual([]);
    expect(r.workflows.map((w) => w.name)).toEqual(['c', 'a', 'b']);
  });

  it('expands a directory to its YAML files', async () => {
    const r = await loadWorkflows(['many'], { cwd: tmp });
    expect(r.workflows.map((w) => w.file)).toEqual(['many/a.yaml', 'many/b.yaml', 'many/c.yaml']);
  });

  it('reports patterns and paths that name nothing', async () => {
    expect(await lines(['nothing/*.yaml', 'missing.yaml', 'many/notes.txt'])).toEqual([
      "many/notes.txt:1:1: error: a workflow file must be a YAML mapping with at least 'name' and 'steps'",
      'missing.yaml:1:1: error: file not found',
      'nothing/*.yaml:1:1: error: no files match this pattern',
    ]);
  });

  it('requires unique workflow names across the run', async () => {
    const r = await loadWorkflows(['dup/*.yaml'], { cwd: tmp });
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "dup/two.yaml:2:7: error: name: workflow name 'same' is also used by dup/one.yaml:1; names must be unique in one run",
    ]);
    expect(r.workflows.map((w) => w.file)).toEqual(['dup/one.yaml']);
  });

  it('returns the valid workflows next to the diagnostics of invalid ones', async () => {
    const r = await loadWorkflows(['many/a.yaml', `${root}test/fixtures/invalid/unknown-var.yaml`], {
      cwd: tmp,
    });
    expect(r.workflows.map((w) => w.name)).toEqual(['a']);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]?.location.file).toBe(`${root}test/fixtures/invalid/unknown-var.yaml`);
  });
});

describe('referenced files', () => {
  it('hashes the file plus the files it references', async () => {
    await cp(`${validDir}prompts`, join(tmp, 'hash/prompts'), { recursive: true });
    const file = await write(
      'hash/wf.yaml',
      'name: h\nprofile: developer\nsteps:\n  - prompt:\n      file: prompts/fix.md\n      vars: { task: x }\n',
    );
    const h1 = (await load(file)).hash;
    expect((await load(file)).hash).toBe(h1);
    await write(
      'hash/prompts/fix.md',
      '---\nvariables: { task: { required: true } }\ninitial_prompt: Do {{ task }}\n---\nBody\n',
    );
    const h2 = (await load(file)).hash;
    expect(h2).not.toBe(h1);
  });

  it('reports a shared broken profile once, and fails every workflow that uses it', async () => {
    await write('shared/profile.yaml', 'shell:\n  mode: sometimes\n');
    await write('shared/a.yaml', 'name: a\nprofile: ./profile.yaml\nsteps:\n  - run: echo\n');
    await write('shared/b.yaml', 'name: b\nprofile: ./profile.yaml\nsteps:\n  - run: echo\n');
    const r = await loadWorkflows(['shared/a.yaml', 'shared/b.yaml'], { cwd: tmp });
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "shared/profile.yaml:2:9: error: shell.mode: 'sometimes' is not one of: restricted, unrestricted",
    ]);
    expect(r.workflows).toEqual([]);
  });

  it('never throws for unreadable input', async () => {
    const dir = await loadWorkflowFile(tmp, { cwd: tmp });
    expect(dir.diagnostics.map(formatDiagnostic)).toEqual([
      `${tmp}:1:1: error: is a directory, not a workflow file`,
    ]);
    const missing = await loadWorkflowFile('nope.yaml', { cwd: tmp });
    expect(missing.diagnostics.map(formatDiagnostic)).toEqual(['nope.yaml:1:1: error: file not found']);
  });
});

describe('warnings keep a workflow valid', () => {
  it('reports risky but legal settings', async () => {
    await write(
      'warn/wf.yaml',
      [
        'name: w',
        'timeout: 5m',
        'secrets: [TOKEN]',
        'steps:',
        '  - prompt: Use ${{ secrets.TOKEN }} to log in.',
        '    tools: [read, write, run_code]',
        '    timeout: 10m',
        '    cassette: ./cassettes/none.json',
        '',
      ].join('\n'),
    );
    const r = await loadWorkflowFile('warn/wf.yaml', { cwd: tmp });
    expect(r.workflow).toBeDefined();
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "warn/wf.yaml:5:13: warning: steps[0].prompt: the prompt uses secrets.TOKEN: its value is sent to the model provider (it is masked in rho-flow's own output only)",
      "warn/wf.yaml:6:19: warning: steps[0].tools[1]: 'write' is not available under profile 'readonly': its file_write is off",
      "warn/wf.yaml:6:26: warning: steps[0].tools[2]: 'run_code' is not available under profile 'readonly': its shell is restricted",
      'warn/wf.yaml:7:14: warning: steps[0].timeout: the step timeout (10m) is longer than the job timeout (5m); the job timeout wins',
      'warn/wf.yaml:8:15: warning: steps[0].cassette: cassette not found: warn/cassettes/none.json (the step calls the model unless --replay answers it)',
    ]);
  });
});
