#!/usr/bin/env node
/* global AbortController */
/**
 * Target 3 — agent loop overhead (issue 7). Needs `npm run build` and bwrap.
 *
 *   node bench/agent-loop.js [--turns 300] [--runs 3] [--json]
 *
 * One prompt step (`runPromptStep`, the engine's entry point) in a real local
 * sandbox, writing a real transcript.jsonl through the run's redactor, with a
 * model that answers instantly: every turn is one `read` of a small file,
 * then a final answer. Target ≥ 100 turns/s. Two models:
 *
 * - in-process (the main figure): a `Model` object that returns at once, so
 *   everything measured is rho-flow's own loop;
 * - the real `openai` package over HTTP against the fake OpenAI server (run
 *   in a child process, so its JSON work does not land on our event loop).
 *
 * Where the time goes is measured with `performance.now()` around each phase:
 * the model call, the sandbox calls of the tool (stat + readFile), the
 * transcript writes (redaction + JSON + stream write), and the rest of the
 * loop (argument parsing and validation, policy, truncation, bookkeeping).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import {
  ROOT,
  TS_LOADER,
  benchArgs,
  figure,
  machine,
  median,
  progress,
  report,
  requireBuild,
  round,
  tempDir,
} from './lib.js';

const args = benchArgs(process.argv.slice(2), { runs: 3 });
const TURNS = Number(args.get('--turns') ?? (args.quick ? 60 : 300));
requireBuild();

const { LocalBackend } = await import('../dist/sandbox/local.js');
const { runPromptStep } = await import('../dist/agent/prompt-step.js');
const { JobFiles } = await import('../dist/results/job-files.js');
const { Redactor } = await import('../dist/util/redact.js');
const { BUILTIN_PROFILES } = await import('../dist/profiles/builtin.js');
const { OpenAIModel } = await import('../dist/agent/openai-model.js');

const NOTES = Array.from(
  { length: 20 },
  (_, i) => `line ${i + 1}: the quick brown fox jumps over the lazy dog`,
).join('\n');

/** Adds the time of every call of `obj[name]` to `acc[key]`. */
function meter(obj, name, acc, key) {
  const original = obj[name].bind(obj);
  obj[name] = (...a) => {
    const t0 = performance.now();
    const r = original(...a);
    if (r && typeof r.then === 'function') {
      return r.finally(() => {
        acc[key] += performance.now() - t0;
      });
    }
    acc[key] += performance.now() - t0;
    return r;
  };
}

/** A model that answers at once: `turns` reads, then the final answer. */
function instantModel(turns) {
  let i = 0;
  return {
    async getResponse() {
      i++;
      const usage = { inputTokens: 100, outputTokens: 10, cachedInputTokens: 0 };
      if (i > turns) return { content: 'done', toolCalls: [], usage, finishReason: 'stop' };
      return {
        content: null,
        toolCalls: [{ id: `call_${i}`, name: 'read', arguments: JSON.stringify({ path: 'notes.txt' }) }],
        usage,
        finishReason: 'tool_calls',
      };
    },
  };
}

/** Starts the fake OpenAI server in a child process; resolves with its URL and a stop function. */
async function startFakeOpenAIChild(turns) {
  const code = `
    import { startFakeOpenAI, reply } from ${JSON.stringify(path.join(ROOT, 'test/helpers/fake-openai-server.ts'))};
    const server = await startFakeOpenAI({
      handler: (_req, i) => i < ${turns}
        ? reply.toolCalls([{ name: 'read', arguments: { path: 'notes.txt' } }], { usage: { prompt: 100, completion: 10 } })
        : reply.text('done'),
    });
    process.stdout.write(server.url + '\\n');
    process.stdin.resume();
    process.stdin.on('end', () => server.close().then(() => process.exit(0)));
  `;
  const child = spawn(process.execPath, ['--import', TS_LOADER, '--input-type=module', '-e', code], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (c) => reject(new Error(`fake OpenAI server exited ${c}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.on('exit', resolve);
        child.stdin.end();
      }),
  };
}

async function runOnce(dir, n, model, label) {
  const backend = new LocalBackend({
    isolation: 'strict',
    warn: () => undefined,
    env: { ...process.env, TMPDIR: dir },
  });
  await backend.preflight();
  const sandbox = await backend.create({
    runId: `bench-${label}`,
    jobId: 'agent#1',
    jobSlug: `agent-${n}`,
    attempt: 1,
    workingDir: '/work',
    network: 'off',
    env: {},
  });
  const files = await JobFiles.open({
    dir: path.join(dir, 'out', `${label}-${n}`),
    redactor: new Redactor(['s3cr3t-token-value']),
  });
  try {
    await sandbox.writeFile('notes.txt', `${NOTES}\n`);
    const t = { model: 0, sandbox: 0, transcript: 0 };
    meter(model, 'getResponse', t, 'model');
    meter(sandbox, 'stat', t, 'sandbox');
    meter(sandbox, 'readFile', t, 'sandbox');
    const sink = { write: (e) => files.transcript(e) };
    meter(sink, 'write', t, 'transcript');
    const redactor = new Redactor(['s3cr3t-token-value']);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const out = await runPromptStep({
      jobId: 'agent#1',
      stepId: 'fix',
      sandbox,
      userPrompt: 'Read notes.txt until told to stop.',
      model,
      modelName: 'bench-model',
      profile: BUILTIN_PROFILES.readonly,
      maxTurns: TURNS + 1,
      signal: new AbortController().signal,
      transcript: sink,
      redact: (s) => redactor.redact(s),
    });
    await files.flush();
    const totalMs = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    if (out.turns !== TURNS + 1 || out.output !== 'done')
      throw new Error(`unexpected result ${JSON.stringify(out)}`);
    const transcriptBytes = fs.statSync(files.transcriptPath).size;
    return {
      totalMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      turnsPerSec: (TURNS / totalMs) * 1000,
      modelMs: t.model,
      sandboxMs: t.sandbox,
      transcriptMs: t.transcript,
      loopMs: totalMs - t.model - t.sandbox - t.transcript,
      transcriptBytes,
    };
  } finally {
    await files.close();
    await sandbox.dispose();
    await backend.close();
  }
}

const tmp = tempDir('rho-flow-bench-agent-');
try {
  progress(`agent-loop: ${TURNS} turns, ${args.runs} runs per model`);
  await runOnce(tmp.path, 0, instantModel(TURNS), 'warmup');
  const inProc = [];
  for (let i = 0; i < args.runs; i++)
    inProc.push(await runOnce(tmp.path, i + 1, instantModel(TURNS), 'inproc'));

  const http = [];
  for (let i = 0; i < args.runs; i++) {
    // The fake's handler counts requests from its start: one server per run.
    const server = await startFakeOpenAIChild(TURNS);
    try {
      const model = new OpenAIModel({ apiKey: 'bench', baseUrl: server.url });
      http.push(await runOnce(tmp.path, i + 1, model, 'openai'));
    } finally {
      await server.stop();
    }
  }

  const med = (xs, k) => median(xs.map((x) => x[k]));
  const best = inProc.reduce((a, b) => (a.turnsPerSec >= b.turnsPerSec ? a : b));
  const bestHttp = http.reduce((a, b) => (a.turnsPerSec >= b.turnsPerSec ? a : b));
  const share = (r, k) => `${round((r[k] / r.totalMs) * 100)}%`;
  const perTurn = (r, k) => round((r[k] / TURNS) * 1000) / 1000;
  report(
    {
      bench: 'agent-loop',
      title: `3. Agent loop — one prompt step of ${TURNS} turns, each a read of a small file, instant model, local backend`,
      command: `node bench/agent-loop.js --turns ${TURNS} --runs ${args.runs}`,
      machine: machine(),
      figures: [
        figure(
          'agent.turnsPerSec',
          'turns/s, in-process instant model',
          round(med(inProc, 'turnsPerSec')),
          'turns/s',
          100,
          '>=',
        ),
        figure(
          'agent.msPerTurn',
          'ms per turn, in-process model',
          round(med(inProc, 'totalMs') / TURNS, 2),
          'ms',
        ),
        figure(
          'agent.sandboxMsPerTurn',
          '  of which sandbox calls (stat + readFile)',
          perTurn(best, 'sandboxMs'),
          'ms',
          undefined,
          undefined,
          share(best, 'sandboxMs'),
        ),
        figure(
          'agent.transcriptMsPerTurn',
          '  of which transcript writes (4 events/turn)',
          perTurn(best, 'transcriptMs'),
          'ms',
          undefined,
          undefined,
          share(best, 'transcriptMs'),
        ),
        figure(
          'agent.modelMsPerTurn',
          '  of which model client (in-process)',
          perTurn(best, 'modelMs'),
          'ms',
          undefined,
          undefined,
          share(best, 'modelMs'),
        ),
        figure(
          'agent.loopMsPerTurn',
          '  of which tool dispatch and loop bookkeeping',
          perTurn(best, 'loopMs'),
          'ms',
          undefined,
          undefined,
          share(best, 'loopMs'),
        ),
        figure(
          'agent.openaiTurnsPerSec',
          'turns/s, real openai client over HTTP (fake server)',
          round(med(http, 'turnsPerSec')),
          'turns/s',
        ),
        figure(
          'agent.openaiModelMsPerTurn',
          '  of which model client + HTTP + server',
          perTurn(bestHttp, 'modelMs'),
          'ms',
          undefined,
          undefined,
          share(bestHttp, 'modelMs'),
        ),
        figure(
          'agent.transcriptKbPerTurn',
          'transcript size per turn',
          round(best.transcriptBytes / TURNS / 1024, 2),
          'KiB',
        ),
      ],
      details: { turns: TURNS, inProcess: inProc, openai: http },
    },
    args.json,
  );
} finally {
  tmp.remove();
}
