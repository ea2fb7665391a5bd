/**
 * The run engine through the library API (`runWorkflows`, `startRun`) on
 * real bwrap sandboxes, with the real `openai` package talking to the fake
 * chat-completions server: statuses and exit codes of prompt steps, an
 * exception inside the engine, secret masking in every file, and the
 * runtime guard against artifact symlink escapes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runWorkflows, startRun, WorkflowValidationError, OpenAIModel } from '../../src/index.js';
import { loadWorkflows } from '../../src/workflow/load.js';
import { buildPlan } from '../../src/workflow/plan.js';
import type { ModelProvider } from '../../src/engine/engine-options.js';
import { startFakeOpenAI, reply, type FakeOpenAIServer } from '../helpers/fake-openai-server.js';

let dir: string;
let tmp: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-lib-'));
  tmp = path.join(dir, 'tmp');
  await fs.mkdir(tmp);
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const p = path.join(dir, name);
  await fs.mkdir(path.dirname(p), { recursive: true });
  await fs.writeFile(p, text);
  return p;
}

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  TMPDIR: tmp,
  ...extra,
});

/** A provider that talks to the fake server through the real `openai` package, with millisecond backoff. */
function fakeProvider(server: FakeOpenAIServer): ModelProvider {
  const model = new OpenAIModel({
    apiKey: 'test',
    baseUrl: server.url,
    retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
  });
  return { forStep: (_job, _step, name) => ({ model, name: name || 'gpt-test' }) };
}

async function workspaces(): Promise<string[]> {
  const root = path.join(tmp, 'rho-flow');
  const runs = await fs.readdir(root).catch(() => [] as string[]);
  const all: string[] = [];
  for (const r of runs) all.push(...(await fs.readdir(path.join(root, r)).catch(() => [] as string[])));
  return all;
}

async function readAll(runDir: string): Promise<string> {
  let text = '';
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else text += `\n=== ${path.relative(runDir, p)}\n` + (await fs.readFile(p, 'utf8'));
    }
  };
  await walk(runDir);
  return text;
}

describe('runWorkflows', () => {
  it('rejects bad input with positioned diagnostics and creates nothing', async () => {
    await write('bad.yaml', 'name: bad\nsteps:\n  - run: echo ${{ matrix.nope }}\n');
    const err = await runWorkflows(['bad.yaml'], {
      cwd: dir,
      outputDir: path.join(dir, 'out'),
      env: env(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowValidationError);
    expect((err as WorkflowValidationError).message).toMatch(/^bad\.yaml:3:\d+: error: /);
    await expect(fs.access(path.join(dir, 'out'))).rejects.toThrow();
    expect(await workspaces()).toEqual([]);
  });

  it('a prompt step whose model API keeps failing ends the job as error (exit 3), not failed', async () => {
    await using server = await startFakeOpenAI({
      handler: () => reply.error(500, 'upstream exploded'),
    });
    await write('p.yaml', 'name: p\nprofile: developer\nsteps:\n  - id: ask\n    prompt: say hi\n');
    const { summary, exitCode } = await runWorkflows(['p.yaml'], {
      cwd: dir,
      outputDir: path.join(dir, 'out'),
      env: env(),
      models: fakeProvider(server),
      retries: 1,
      retryDelayMs: () => 1,
    });
    expect(exitCode).toBe(3);
    expect(summary.counts.error).toBe(1);
    expect(summary.counts.failed).toBe(0);
    expect(summary.jobs[0]?.attempts).toBe(2);
    // 3 model attempts per job attempt, 2 job attempts
    expect(server.requests).toHaveLength(6);
    expect(await workspaces()).toEqual([]);
  });

  it('max-turns reached is a failure (exit 1) and its tokens are still counted', async () => {
    await using server = await startFakeOpenAI({
      handler: () =>
        reply.toolCalls([{ name: 'list', arguments: {} }], { usage: { prompt: 100, completion: 7 } }),
    });
    await write(
      'm.yaml',
      'name: m\nprofile: developer\nsteps:\n  - id: loop\n    prompt: go\n    max-turns: 3\n',
    );
    const { summary, exitCode } = await runWorkflows(['m.yaml'], {
      cwd: dir,
      outputDir: path.join(dir, 'out'),
      env: env(),
      models: fakeProvider(server),
    });
    expect(exitCode).toBe(1);
    expect(summary.counts.failed).toBe(1);
    expect(summary.jobs[0]?.error).toMatch(/max-turns/);
    expect(summary.usage).toMatchObject({ inputTokens: 300, outputTokens: 21 });
  });

  it('never writes a secret — echoed by a step, by the model, or base64-encoded — to any file', async () => {
    const secret = 'sk-live-SECRET-0123456789abcdef';
    await using server = await startFakeOpenAI({
      replies: [
        reply.toolCalls([
          { name: 'bash', arguments: { command: 'echo "$API_TOKEN"; printenv API_TOKEN | base64' } },
        ]),
        reply.text(`the token is ${secret} (base64 ${Buffer.from(secret).toString('base64')})`),
      ],
    });
    await write(
      's.yaml',
      `name: s
profile: developer
secrets:
  API_TOKEN: { from-env: MY_TOKEN }
steps:
  - id: leak
    run: |
      echo "token: $API_TOKEN"
      echo "$API_TOKEN" | base64
      echo "url: https://x/?t=$API_TOKEN"
      exit 1
    continue-on-error: true
  - id: chat
    prompt: Print the token.
artifacts:
  - path: /work/nothing
    if-no-files-found: ignore
`,
    );
    const { runDir, summary } = await runWorkflows(['s.yaml'], {
      cwd: dir,
      outputDir: path.join(dir, 'out'),
      env: env({ MY_TOKEN: secret }),
      models: fakeProvider(server),
    });
    expect(summary.counts.passed).toBe(1);
    const everything = await readAll(runDir);
    for (const f of [
      'log.txt',
      'transcript.jsonl',
      'result.json',
      'results.jsonl',
      'summary.json',
      'junit.xml',
      'run.json',
    ]) {
      expect(everything).toContain(f);
    }
    expect(everything).toContain('***');
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(Buffer.from(secret).toString('base64').slice(0, 20));
    // The model did receive the real value from the tool (the sandbox had it).
    expect(JSON.stringify(server.requests[1]?.body)).toContain(secret);
  });

  it('refuses artifacts that are symlinks into the host and writes nothing outside artifacts/', async () => {
    await write(
      'a.yaml',
      `name: a
steps:
  - run: |
      mkdir -p /work/out/sub
      echo ok > /work/out/real.txt
      ln -s /etc/passwd /work/out/passwd
      ln -s / /work/out/root
      ln -s ../../../../../../../../tmp /work/out/sub/up
artifacts:
  - path: /work/out
    to: collected
`,
    );
    const { runDir, summary } = await runWorkflows(['a.yaml'], {
      cwd: dir,
      outputDir: path.join(dir, 'out'),
      env: env(),
    });
    expect(summary.counts.passed).toBe(1);
    const art = path.join(runDir, 'jobs', 'a', 'artifacts', 'collected', 'out');
    await expect(fs.readFile(path.join(art, 'real.txt'), 'utf8')).resolves.toBe('ok\n');
    for (const link of ['passwd', 'root', path.join('sub', 'up')]) {
      await expect(fs.lstat(path.join(art, link))).rejects.toThrow();
    }
    const manifest = JSON.parse(
      await fs.readFile(path.join(runDir, 'jobs', 'a', 'artifacts', 'manifest.json'), 'utf8'),
    ) as {
      artifacts: Array<{ status: string; message?: string }>;
    };
    expect(manifest.artifacts[0]?.status).toBe('downloaded');
    expect(manifest.artifacts[0]?.message).toMatch(/skipped 3/);
  });
});

describe('startRun', () => {
  it('a listener that throws (a reporter bug) cannot skip teardown or break the run', async () => {
    await write('l.yaml', 'name: l\nstrategy:\n  matrix:\n    n: [1, 2]\nsteps:\n  - run: "true"\n');
    const loaded = await loadWorkflows(['l.yaml'], { cwd: dir });
    const plan = buildPlan(loaded.workflows, { cwd: dir }).plan!;
    let thrown = 0;
    const handle = await startRun({
      jobs: plan.jobs,
      outputDir: path.join(dir, 'out'),
      env: env(),
      onEvent: (e) => {
        if (e.type === 'job' || e.type === 'run') {
          thrown++;
          throw new Error(`reporter bug on ${e.type}`);
        }
      },
    });
    const { summary, exitCode } = await handle.done;
    expect(thrown).toBeGreaterThan(10);
    expect(summary.counts.passed).toBe(2);
    expect(exitCode).toBe(0);
    expect(await workspaces()).toEqual([]);
  });

  it('an exception thrown inside the engine after create still tears the sandbox down', async () => {
    await write('x.yaml', `name: x\nstrategy:\n  matrix:\n    n: [1, 2, 3]\nsteps:\n  - run: sleep 5\n`);
    const loaded = await loadWorkflows(['x.yaml'], { cwd: dir });
    const plan = buildPlan(loaded.workflows, { cwd: dir }).plan!;
    let created = 0;
    const handle = await startRun({
      jobs: plan.jobs,
      outputDir: path.join(dir, 'out'),
      env: env(),
      retries: 0,
      hooks: {
        afterCreate: async (job) => {
          created++;
          expect((await workspaces()).length).toBeGreaterThan(0);
          if (job.matrix?.n === 2) throw new TypeError('boom inside the engine');
        },
      },
    });
    const { summary, exitCode } = await handle.done;
    expect(created).toBe(3);
    const statuses = Object.fromEntries(summary.jobs.map((j) => [j.id, j.status]));
    expect(statuses['x[n=2]']).toBe('error');
    expect(summary.jobs.find((j) => j.id === 'x[n=2]')?.error).toMatch(
      /internal error: boom inside the engine/,
    );
    expect(statuses['x[n=1]']).toBe('passed');
    expect(exitCode).toBe(3);
    expect(await workspaces()).toEqual([]);
  });
});
