#!/usr/bin/env node
/**
 * Target 2 — cloud concurrency efficiency (issue 7). Needs `npm run build`.
 *
 *   node bench/cloud-concurrency.js [--jobs 100] [--concurrency 25] [--runs 3] [--json] [--realistic]
 *                                   [--dump requests.json] [--headroom 2]
 *   BENCH_SDK_MODE=main|worker BENCH_SDK_PROCS=N BENCH_STAGGER_MS=N   (the SDK-only floor's variants)
 *
 * `rho-flow run --backend daytona -j 25` of 100 jobs (an upload, one run step,
 * one artifact) against the fake Daytona server in this process, with
 * injected latency: create 300 ms, each exec 30 ms, upload/download 50 ms,
 * delete 100 ms. The CLI is a separate process, as in real use.
 *
 * The fake answers the toolbox from memory (`simulate`: canned exec results,
 * uploads drained, a prepared artifact archive), so what the figure measures
 * is rho-flow, not the fake: a real sandbox does its work on other machines.
 * `--realistic` makes the fake run every exec in a bwrap jail and write every
 * transfer on these same cores instead (what the e2e tests use).
 *
 * Ideal wall time = waves × the per-job critical path, where waves =
 * ceil(jobs / concurrency) and the critical path is the injected latency of
 * the requests one job makes, one after the other (read from the server's
 * request log). Efficiency = ideal / actual, with actual = the batch window
 * the server saw (first request to last answer; the target) and the CLI's
 * whole wall time (node startup and validation included, for context).
 * Target ≥ 0.9, and peak live sandboxes (`fake.peakLive`) = the concurrency.
 *
 * The creation-rate limiter is set high (6,000/min) so that `-j` binds; one
 * extra run with the default (300/min, 10 s of burst) shows which limit
 * binds then.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Buffer } from 'node:buffer';
import process from 'node:process';
import {
  runArgs,
  ROOT,
  benchArgs,
  enableTsHelpers,
  figure,
  keyFigure,
  machine,
  median,
  progress,
  report,
  requireBuild,
  round,
  runNode,
  tempDir,
} from './lib.js';

const args = benchArgs(process.argv.slice(2), { runs: 3 });
const JOBS = Number(args.get('--jobs') ?? (args.quick ? 50 : 100));
const CONCURRENCY = Number(args.get('--concurrency') ?? 25);
const LATENCY = { create: 300, exec: 30, upload: 50, download: 50, delete: 100 };
/**
 * `--headroom K` (default 2; 0 skips it, as `--quick` does): one more batch of
 * rho-flow and of the SDK-only floor with every injected latency × K — the
 * same requests and the same CPU per request, K times less dense in time.
 * If the shortfall at × 1 were a delay of rho-flow's own (a lock, a timer, a
 * serialised step) it would stay the same in ms per job; if it is the CPU of
 * the requests queueing on two cores it shrinks as the latency grows.
 */
const HEADROOM = Number(args.get('--headroom') ?? (args.quick ? 0 : 2));
const scaled = (k) => Object.fromEntries(Object.entries(LATENCY).map(([e, ms]) => [e, ms * k]));
requireBuild();
await enableTsHelpers();
const { startFakeDaytona } = await import('../test/helpers/fake-daytona/index.ts');
const { FAST_DAYTONA } = await import('../test/helpers/fake-daytona/backend.ts');
const { rhoFlowSimulation } = await import('../test/helpers/fake-daytona/simulate.ts');
/** `--realistic`: the fake runs every exec in a jail and writes every transfer, on the same cores. */
const REALISTIC = process.argv.includes('--realistic');
/** `--dump FILE`: the server's request log of every run (endpoint, sandbox, arrival, duration) as JSON. */
const DUMP = args.get('--dump');

function workflow(n) {
  return `name: cloud
sandbox:
  backend: daytona
  image: ubuntu:24.04
strategy:
  repeat: ${n}
uploads:
  - ./input:/work/input
steps:
  - id: work
    run: cat input/a.txt > out.txt && echo done
artifacts:
  - path: /work/out.txt
`;
}

/** Per sandbox: first request to last answer (what one job took, seen from the server). */
function jobSpans(reqs) {
  const spans = new Map();
  for (const r of reqs) {
    if (r.sandboxId === undefined) continue;
    const s = spans.get(r.sandboxId) ?? { from: Infinity, to: 0 };
    s.from = Math.min(s.from, r.at);
    s.to = Math.max(s.to, r.at + r.durationMs);
    spans.set(r.sandboxId, s);
  }
  return [...spans.values()].map((s) => s.to - s.from);
}

/**
 * The SDK-only floor (`bench/sdk-only-jobs.js`): `BENCH_SDK_PROCS` processes
 * (default 1, as rho-flow) share the jobs and the concurrency so that each
 * runs the same number of waves; `BENCH_SDK_MODE` (worker, as rho-flow, or
 * main) and `BENCH_STAGGER_MS` pass through. Returns the first process's
 * timings with the CPU of all of them (the window is read from the server's log).
 */
async function sdkOnly(env, dir) {
  const procs = Math.max(1, Math.min(CONCURRENCY, Number(process.env.BENCH_SDK_PROCS ?? 1)));
  const waves = Math.ceil(JOBS / CONCURRENCY);
  const shares = Array.from({ length: procs }, (_, k) => {
    const concurrency = Math.floor(CONCURRENCY / procs) + (k < CONCURRENCY % procs ? 1 : 0);
    return { concurrency, jobs: concurrency * waves };
  });
  // The last process takes what is left, so the jobs add up to JOBS.
  const last = shares[shares.length - 1];
  last.jobs = JOBS - shares.slice(0, -1).reduce((n, x) => n + x.jobs, 0);
  const runs = await Promise.all(
    shares.map(({ concurrency, jobs }) =>
      runNode([path.join(ROOT, 'bench', 'sdk-only-jobs.js')], {
        env: {
          ...env,
          BENCH_JOBS: String(jobs),
          BENCH_CONCURRENCY: String(concurrency),
          BENCH_ARCHIVE: path.join(dir, 'input.tar.gz'),
          BENCH_DIST: path.join(ROOT, 'dist'),
          BENCH_MODE: process.env.BENCH_SDK_MODE ?? 'worker',
          BENCH_STAGGER_MS: process.env.BENCH_STAGGER_MS ?? '0',
        },
        keepOutput: false,
        expectCode: 0,
      }),
    ),
  );
  return { ...runs[0], cpuMs: runs.reduce((n, r) => n + r.cpuMs, 0) };
}

/**
 * One batch against a fresh fake; returns the timings and the fake's view of
 * it. `driver`: `cli` (rho-flow itself) or `sdk` (`bench/sdk-only-jobs.js`: the
 * same requests through the real SDK and nothing else — the floor).
 * `latency`: what the fake injects (default: the target's).
 */
async function runBatch(dir, label, tuning, driver = 'cli', latency = LATENCY) {
  const fake = await startFakeDaytona({
    latency,
    ...(REALISTIC ? {} : { simulate: rhoFlowSimulation({ stdout: 'done\n' }) }),
  });
  try {
    const out = path.join(dir, `out-${label}`);
    const fakeCpu0 = process.cpuUsage();
    const env = { DAYTONA_API_KEY: fake.apiKey, DAYTONA_API_URL: fake.apiUrl, DAYTONA_TARGET: undefined };
    const res =
      driver === 'sdk'
        ? await sdkOnly(env, dir)
        : await runNode(runArgs(path.join(dir, 'cloud.yaml'), CONCURRENCY, out), {
            env: { ...env, RHO_FLOW_DAYTONA_TUNING: JSON.stringify({ ...FAST_DAYTONA, ...tuning }) },
            keepOutput: false,
            expectCode: 0,
          });
    const fakeCpu = process.cpuUsage(fakeCpu0);
    fs.rmSync(out, { recursive: true, force: true });
    const reqs = fake.requests;
    dumped.push({
      label,
      latency, // the headroom batches inject more than the top-level `latency`
      requests: reqs.map(({ endpoint, sandboxId, at, durationMs }) => ({
        endpoint,
        sandboxId,
        at,
        durationMs,
      })),
    });
    const first = Math.min(...reqs.map((r) => r.at));
    const last = Math.max(...reqs.map((r) => r.at + r.durationMs));
    const perSandbox = new Map();
    for (const r of reqs) {
      if (r.sandboxId === undefined) continue;
      const e = perSandbox.get(r.sandboxId) ?? { latency: 0, served: 0, requests: 0, byEndpoint: {} };
      e.latency += latency[r.endpoint] ?? 0;
      e.served += r.durationMs;
      e.requests++;
      e.byEndpoint[r.endpoint] = (e.byEndpoint[r.endpoint] ?? 0) + 1;
      perSandbox.set(r.sandboxId, e);
    }
    const creates = reqs
      .filter((r) => r.endpoint === 'create')
      .map((r) => r.at)
      .sort((a, b) => a - b);
    if (fake.live().length !== 0) throw new Error(`${fake.live().length} sandboxes left alive`);
    const paths = [...perSandbox.values()];
    return {
      wallMs: res.wallMs,
      cpuMs: res.cpuMs,
      fakeCpuMs: (fakeCpu.user + fakeCpu.system) / 1000,
      windowMs: last - first,
      peakLive: fake.peakLive,
      sandboxes: fake.sandboxes.length,
      criticalPathMs: median(paths.map((p) => p.latency)),
      servedPathMs: median(paths.map((p) => p.served)),
      jobSpanMs: median(jobSpans(reqs)),
      requestsPerJob: median(paths.map((p) => p.requests)),
      byEndpoint: paths[0]?.byEndpoint,
      createSpanMs: (creates.at(-1) ?? 0) - (creates[0] ?? 0),
    };
  } finally {
    await fake.close();
  }
}

/** Figures of the `--headroom` batches; `extraAt1` = rho-flow's job span − critical path at × 1. */
function headroomFigures(batches, extraAt1) {
  const [cli, sdk] = batches;
  if (!cli || !sdk) return [];
  return [
    keyFigure(
      'cloud.efficiencyHeadroom',
      `ideal / actual with every injected latency × ${HEADROOM} (same requests and CPU, ${HEADROOM}× less dense)`,
      round(cli.eff, 3),
      '',
      undefined,
      undefined,
      `the SDK alone: ${round(sdk.eff, 3)}; one job's span over its critical path: ${round(cli.extraPerJobMs)} ms (× 1: ${round(extraAt1)} ms)`,
    ),
  ];
}

const dumped = [];
const tmp = tempDir('rho-flow-bench-cloud-');
try {
  const dir = tmp.path;
  fs.mkdirSync(path.join(dir, 'input'));
  fs.writeFileSync(path.join(dir, 'input', 'a.txt'), 'hello\n');
  fs.writeFileSync(path.join(dir, 'input', 'b.txt'), 'world\n');
  fs.writeFileSync(path.join(dir, 'cloud.yaml'), workflow(JOBS));
  fs.writeFileSync(path.join(dir, 'input.tar.gz'), Buffer.alloc(300, 7));
  const waves = Math.ceil(JOBS / CONCURRENCY);
  progress(`cloud-concurrency: ${JOBS} jobs at -j ${CONCURRENCY} (${waves} waves), ${args.runs} runs`);
  const runs = [];
  const floors = [];
  for (let i = 0; i < args.runs; i++) {
    const r = await runBatch(dir, `run-${i}`, { createsPerMinute: 6000 });
    runs.push(r);
    progress(
      `  run ${i + 1}: window ${round(r.windowMs)} ms, wall ${round(r.wallMs)} ms, critical path ${r.criticalPathMs} ms (served ${round(r.servedPathMs)} ms, job span ${round(r.jobSpanMs)} ms), peak live ${r.peakLive}, ${r.requestsPerJob} requests/job`,
    );
    const f = await runBatch(dir, `sdk-only-${i}`, {}, 'sdk');
    floors.push(f);
    progress(
      `  SDK only ${i + 1}: window ${round(f.windowMs)} ms (ideal / actual ${round((waves * f.criticalPathMs) / f.windowMs, 3)}), job span ${round(f.jobSpanMs)} ms, ${f.requestsPerJob} requests/job, CPU per job ${round(f.cpuMs / JOBS, 1)} ms`,
    );
  }
  const dflt = await runBatch(dir, 'default-limit', {});
  progress(
    `  default creation limit: window ${round(dflt.windowMs)} ms, creates spread over ${round(dflt.createSpanMs)} ms`,
  );
  /** The headroom batches (`--headroom`): efficiency and extra ms per job over the critical path. */
  const headroom = [];
  if (HEADROOM > 0) {
    for (const driver of ['cli', 'sdk']) {
      const tuning = driver === 'cli' ? { createsPerMinute: 6000 } : {};
      const h = await runBatch(dir, `headroom-${driver}`, tuning, driver, scaled(HEADROOM));
      const eff = (waves * h.criticalPathMs) / h.windowMs;
      headroom.push({ driver, eff, extraPerJobMs: h.jobSpanMs - h.criticalPathMs, ...h });
      progress(
        `  latency × ${HEADROOM}, ${driver === 'cli' ? 'rho-flow' : 'SDK only'}: window ${round(h.windowMs)} ms (ideal / actual ${round(eff, 3)}), job span ${round(h.jobSpanMs)} ms for a critical path of ${h.criticalPathMs} ms`,
      );
    }
  }

  const path1 = median(runs.map((r) => r.criticalPathMs));
  const served = median(runs.map((r) => r.servedPathMs));
  const span = median(runs.map((r) => r.jobSpanMs));
  const ideal = waves * path1;
  const windowMs = median(runs.map((r) => r.windowMs));
  const floorEff = median(floors.map((f) => (waves * f.criticalPathMs) / f.windowMs));
  const wallMs = median(runs.map((r) => r.wallMs));
  const peak = Math.max(...runs.map((r) => r.peakLive));
  // Default limiter (sandbox/daytona.ts): 300 creates/min, a burst of 10 s worth (50): the rest wait for tokens.
  const limiterSpanMs = (Math.max(0, JOBS - 50) / (300 / 60)) * 1000;
  const bindsAtDefault = limiterSpanMs > 0 && dflt.createSpanMs >= 0.9 * limiterSpanMs;
  // At 6,000/min the same arithmetic: the creates must spread over less than the limiter allows.
  const fastLimiterSpanMs = (Math.max(0, JOBS - 1000) / (6000 / 60)) * 1000;
  report(
    {
      bench: 'cloud-concurrency',
      title: `2. Cloud concurrency — ${JOBS} jobs at -j ${CONCURRENCY} against the fake Daytona server (create ${LATENCY.create} ms, exec ${LATENCY.exec} ms, up/download ${LATENCY.upload} ms, delete ${LATENCY.delete} ms)`,
      command: `node bench/cloud-concurrency.js --jobs ${JOBS} --concurrency ${CONCURRENCY} --runs ${args.runs} --headroom ${HEADROOM}`,
      machine: machine(),
      figures: [
        figure(
          'cloud.efficiency',
          'ideal / actual (batch window at the server)',
          round(ideal / windowMs, 3),
          '',
          0.9,
          '>=',
        ),
        figure(
          'cloud.peakLive',
          'peak live sandboxes',
          peak,
          '',
          CONCURRENCY,
          '<=',
          `target: = ${CONCURRENCY}`,
        ),
        figure(
          'cloud.peakLiveReached',
          'peak live sandboxes reached the concurrency',
          peak === CONCURRENCY ? 1 : 0,
          '',
          1,
          '>=',
        ),
        figure(
          'cloud.limiterSpanMs',
          'creation-rate limiter at 6,000/min: least possible spread of the creates',
          round(fastLimiterSpanMs),
          'ms',
          undefined,
          undefined,
          `actual spread ${round(median(runs.map((r) => r.createSpanMs)))} ms: --concurrency binds`,
        ),
        keyFigure(
          'cloud.floorEfficiency',
          'the same requests through the real SDK alone (no engine, files, reporter): ideal / actual',
          round(floorEff, 3),
          '',
          undefined,
          undefined,
          `what any orchestrator using the real SDK reaches here; window ${round(median(floors.map((f) => f.windowMs)))} ms, CPU per job ${round(median(floors.map((f) => f.cpuMs)) / JOBS, 1)} ms`,
        ),
        keyFigure(
          'cloud.efficiencyOfFloor',
          "rho-flow's efficiency / the SDK-only floor's",
          round(ideal / windowMs / floorEff, 3),
          '',
        ),
        figure('cloud.idealMs', `ideal: ${waves} waves × critical path ${path1} ms`, ideal, 'ms'),
        figure('cloud.windowMs', 'actual batch window', round(windowMs), 'ms'),
        figure(
          'cloud.servedPathMs',
          "per-job path as served (injected latency + the fake's own work: jails, files)",
          round(served),
          'ms',
        ),
        figure(
          'cloud.efficiencyServed',
          'waves × served path / actual window (rho-flow between requests)',
          round((waves * served) / windowMs, 3),
          '',
        ),
        figure(
          'cloud.jobSpanMs',
          "one job's span at the server (first request to last answer)",
          round(span),
          'ms',
        ),
        figure(
          'cloud.efficiencyEndToEnd',
          'ideal / CLI wall time (incl. node startup)',
          round(ideal / wallMs, 3),
          '',
          undefined,
          undefined,
          `wall ${round(wallMs)} ms`,
        ),
        figure(
          'cloud.requestsPerJob',
          'requests per job',
          median(runs.map((r) => r.requestsPerJob)),
          '',
          undefined,
          undefined,
          JSON.stringify(runs[0]?.byEndpoint ?? {}),
        ),
        figure(
          'cloud.cliCpuPerJobMs',
          'CLI CPU per job (all its threads, startup included)',
          round(median(runs.map((r) => r.cpuMs)) / JOBS, 1),
          'ms',
        ),
        figure(
          'cloud.fakeCpuPerJobMs',
          "the fake server's CPU per job (this process, same two cores)",
          round(median(runs.map((r) => r.fakeCpuMs)) / JOBS, 1),
          'ms',
        ),
        figure(
          'cloud.cpuBoundWindowMs',
          'least window the two cores allow: (CLI + fake CPU) / cores',
          round(median(runs.map((r) => r.cpuMs + r.fakeCpuMs)) / os.cpus().length),
          'ms',
        ),
        figure(
          'cloud.overheadPerJobMs',
          'overhead per job and wave ((actual − ideal) / waves)',
          round((windowMs - ideal) / waves),
          'ms',
        ),
        ...headroomFigures(headroom, span - path1),
        figure(
          'cloud.defaultLimitWindowMs',
          'same batch with the default creation limit (300/min, burst 50)',
          round(dflt.windowMs),
          'ms',
          undefined,
          undefined,
          `binding limit: ${bindsAtDefault ? 'the creation rate' : '--concurrency'} (creates spread over ${round(dflt.createSpanMs)} ms; the limiter alone needs ${round(limiterSpanMs)} ms)`,
        ),
      ],
      details: {
        jobs: JOBS,
        concurrency: CONCURRENCY,
        waves,
        latency: LATENCY,
        runs,
        floors,
        defaultLimit: dflt,
        headroom: { scale: HEADROOM, batches: headroom },
      },
    },
    args.json,
  );
  if (DUMP) fs.writeFileSync(DUMP, JSON.stringify({ latency: LATENCY, runs: dumped }));
} finally {
  tmp.remove();
}
