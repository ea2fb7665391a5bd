#!/usr/bin/env node
/**
 * CPU per Daytona request through the real `@daytonaio/sdk`, as rho-flow's
 * backend calls it (issue 7, target 2). Needs `npm run build`.
 *
 *   node bench/daytona-request-cost.js [--sandboxes 100] [--concurrency 25] [--runs 3] [--json]
 *
 * The fake Daytona server runs in this process with zero latency and a
 * canned toolbox (`simulate`); the client runs in a child process (so the
 * fake's CPU is not counted), made by `createDaytonaClient` from `dist/` in
 * each thread mode: `main` (the SDK on the calling thread) and `worker` (the
 * SDK on its own thread, through the proxy). Per phase — create, exec (×4 per
 * sandbox), upload (`uploadFileStream` of a small archive), download
 * (`downloadFiles` to a file), delete — `--concurrency` calls are in flight
 * at once, and the child reports its CPU (all threads, `process.cpuUsage()`)
 * and its main thread's (`/proc/self/task/<pid>/stat`, 10 ms ticks) per call.
 * A warm-up round (5 sandboxes, every call once) comes first. Modes
 * alternate run by run; figures are medians. `--modes main|worker` measures
 * one mode; `--dist DIR` measures another build (e.g. `dist/` of a worktree
 * of an earlier commit, for before/after pairs).
 */
import fs from 'node:fs';

import path from 'node:path';
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import {
  ROOT,
  benchArgs,
  enableTsHelpers,
  figure,
  machine,
  median,
  progress,
  report,
  requireBuild,
  round,
  runNode,
  tempDir,
} from './lib.js';

const PHASES = ['create', 'exec', 'upload', 'download', 'delete'];
const EXECS_PER_SANDBOX = 4;

if (process.argv[2] === '--child') await child();
else await parent();

async function parent() {
  const args = benchArgs(process.argv.slice(2), { runs: 3 });
  const sandboxes = Number(args.get('--sandboxes') ?? (args.quick ? 50 : 100));
  const concurrency = Number(args.get('--concurrency') ?? 25);
  const modes = (args.get('--modes') ?? 'main,worker').split(',');
  /** `--dist DIR`: another build to measure (e.g. a worktree of an earlier commit). */
  const dist = path.resolve(args.get('--dist') ?? path.join(ROOT, 'dist'));
  requireBuild();
  await enableTsHelpers();
  const { startFakeDaytona } = await import('../test/helpers/fake-daytona/index.ts');
  const { rhoFlowSimulation } = await import('../test/helpers/fake-daytona/simulate.ts');
  const tmp = tempDir('rho-flow-bench-reqcost-');
  try {
    const archive = path.join(tmp.path, 'up.tar.gz');
    fs.writeFileSync(archive, Buffer.alloc(300, 7));
    const results = Object.fromEntries(modes.map((m) => [m, []]));
    progress(
      `daytona-request-cost: ${sandboxes} sandboxes, ${concurrency} calls in flight, ${args.runs} runs`,
    );
    for (let i = 0; i < args.runs; i++) {
      for (const mode of i % 2 === 0 ? modes : [...modes].reverse()) {
        const fake = await startFakeDaytona({ simulate: rhoFlowSimulation({ stdout: 'done\n' }) });
        try {
          const res = await runNode([path.join(ROOT, 'bench', 'daytona-request-cost.js'), '--child'], {
            env: {
              DAYTONA_API_KEY: fake.apiKey,
              DAYTONA_API_URL: fake.apiUrl,
              DAYTONA_TARGET: undefined,
              BENCH_MODE: mode,
              BENCH_SANDBOXES: String(sandboxes),
              BENCH_CONCURRENCY: String(concurrency),
              BENCH_ARCHIVE: archive,
              BENCH_TMP: tmp.path,
              BENCH_DIST: dist,
            },
            expectCode: 0,
          });
          const r = JSON.parse(res.stdout.trim().split('\n').at(-1));
          results[mode].push(r);
          progress(
            `  ${mode}: ` +
              PHASES.map((p) => `${p} ${round(r[p].cpuUs)} µs (main ${round(r[p].mainUs)})`).join(', '),
          );
        } finally {
          await fake.close();
        }
      }
    }
    const figures = [];
    for (const mode of modes) {
      for (const p of PHASES) {
        figures.push(
          figure(
            `reqcost.${mode}.${p}`,
            `${mode} thread: CPU per ${p} call (all threads)`,
            round(median(results[mode].map((r) => r[p].cpuUs))),
            'µs',
            undefined,
            undefined,
            `main thread ${round(median(results[mode].map((r) => r[p].mainUs)))} µs`,
          ),
        );
      }
      const perJob = (r) =>
        PHASES.reduce((s, p) => s + r[p].cpuUs * (p === 'exec' ? EXECS_PER_SANDBOX : 1), 0);
      figures.push(
        figure(
          `reqcost.${mode}.job`,
          `${mode} thread: CPU of one job's 8 calls (create, 4 exec, upload, download, delete)`,
          round(median(results[mode].map(perJob))),
          'µs',
        ),
      );
    }
    report(
      {
        bench: 'daytona-request-cost',
        title: 'Daytona SDK: CPU per request (fake server, zero latency)',
        command: `node bench/daytona-request-cost.js --sandboxes ${sandboxes} --concurrency ${concurrency} --runs ${args.runs}`,
        machine: machine(),
        figures,
        details: { sandboxes, concurrency, results },
      },
      args.json,
    );
  } finally {
    tmp.remove();
  }
}

/** CPU ticks (utime + stime) of one thread of this process. */
function threadTicks(tid) {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function child() {
  const { createDaytonaClient, toolboxReleaser } = await import(
    pathToFileURL(path.join(process.env.BENCH_DIST, 'sandbox', 'daytona-client.js')).href
  );
  const mode = process.env.BENCH_MODE;
  const total = Number(process.env.BENCH_SANDBOXES);
  const concurrency = Number(process.env.BENCH_CONCURRENCY);
  const archive = process.env.BENCH_ARCHIVE;
  const tmp = process.env.BENCH_TMP;
  const client = await createDaytonaClient(
    { apiKey: process.env.DAYTONA_API_KEY, apiUrl: process.env.DAYTONA_API_URL, requestTimeoutMs: 60_000 },
    mode,
  );
  const tickUs = 1e6 / 100; // USER_HZ
  let seq = 0;

  /** Runs `fn(i)` for i < n with `concurrency` in flight. */
  async function pool(n, fn) {
    let next = 0;
    const lanes = Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await fn(next++);
    });
    await Promise.all(lanes);
  }

  /** One round over `n` sandboxes; returns CPU per call per phase (only meaningful when n is large). */
  async function cycle(n) {
    const out = {};
    const sandboxes = [];
    const releasers = [];
    const measure = async (phase, calls, fn) => {
      const cpu0 = process.cpuUsage();
      const main0 = threadTicks(process.pid);
      await pool(n, fn);
      const cpu = process.cpuUsage(cpu0);
      out[phase] = {
        cpuUs: (cpu.user + cpu.system) / calls,
        mainUs: ((threadTicks(process.pid) - main0) * tickUs) / calls,
      };
    };
    const run = `bench-${process.pid}`;
    await measure('create', n, async (i) => {
      const sb = await client.create(
        {
          name: `rf-${run}-${seq++}`,
          image: 'ubuntu:24.04',
          envVars: {},
          labels: { 'rho-flow': 'true', 'rho-flow-run': run, 'rho-flow-job': String(i) },
          autoStopInterval: 15,
          autoDeleteInterval: 0,
          networkBlockAll: false,
        },
        { timeout: 60 },
      );
      sandboxes[i] = sb;
      releasers[i] = toolboxReleaser(sb);
    });
    await measure('exec', n * EXECS_PER_SANDBOX, async (i) => {
      for (let k = 0; k < EXECS_PER_SANDBOX; k++) {
        const r = await sandboxes[i].process.executeCommand(`echo ${k}`, undefined, undefined, 60);
        if (r.exitCode !== 0) throw new Error(`exec exited ${r.exitCode}`);
      }
    });
    await measure('upload', n, (i) =>
      sandboxes[i].fs.uploadFileStream(archive, `/tmp/.rho-flow/up-${i}.tar.gz`, { timeout: 60 }),
    );
    await measure('download', n, async (i) => {
      const [res] = await sandboxes[i].fs.downloadFiles(
        [
          {
            source: `/tmp/.rho-flow/down-${i}.tar.gz`,
            destination: path.join(tmp, `down-${process.pid}-${i}`),
          },
        ],
        60,
      );
      if (!res || res.error !== undefined) throw new Error(`download: ${res?.error}`);
    });
    await measure('delete', n, async (i) => {
      await sandboxes[i].delete(60);
      releasers[i]();
    });
    return out;
  }

  await cycle(5);
  const out = await cycle(total);
  await client[Symbol.asyncDispose]();
  for (const f of fs.readdirSync(tmp)) if (f.startsWith(`down-${process.pid}-`)) fs.rmSync(path.join(tmp, f));
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
