#!/usr/bin/env node
/* global console */
/**
 * Target 1 — local overhead (issue 7). Needs `npm run build` and bwrap.
 *
 *   node bench/local-overhead.js [--jobs 200] [--concurrency 8] [--runs 4] [--json]
 *
 * rho-flow runs N trivial jobs (`run: "true"`) at `-j C` on the local
 * backend; the baseline is a shell script doing the irreducible work of one
 * job — make a workspace, one `bwrap … true` with the very flags rho-flow
 * uses (taken from dist/sandbox/bwrap.js), remove the workspace — run
 * through `xargs -P C`. Both alternate, `--runs` times each; medians.
 *
 * Figures: wall time ratio rho-flow / baseline (target ≤ 1.5), jobs/s,
 * per-job overhead (wall difference / N), rho-flow's own CPU per job, the
 * fixed cost (a 1-job run), processes spawned per job, and what fsync costs
 * (the same run with every fsync turned into a no-op by bench/meter.js).
 */
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import {
  BIN,
  ROOT,
  benchArgs,
  figure,
  machine,
  median,
  progress,
  report,
  requireBuild,
  round,
  runNode,
  runShell,
  tempDir,
} from './lib.js';

const args = benchArgs(process.argv.slice(2), { runs: 4 });
const JOBS = Number(args.get('--jobs') ?? (args.quick ? 40 : 200));
const CONCURRENCY = Number(args.get('--concurrency') ?? 8);
const METER = path.join(ROOT, 'bench', 'meter.js');

requireBuild();
const { bwrapArgs, envArgsData, findBwrap, commandEnv } = await import('../dist/sandbox/bwrap.js');

const bwrap = findBwrap(process.env);
if (!bwrap) {
  console.error('bench: bwrap not found; the local overhead benchmark needs it');
  process.exit(2);
}

function shq(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

/** The baseline job script: the same jail flags and environment as a local run step. */
function baselineScript(dir) {
  const env = commandEnv({ home: '/work', tmpdir: '/tmp' }, {});
  fs.writeFileSync(path.join(dir, 'env.args'), envArgsData(env));
  const flags = bwrapArgs(
    { workspace: '@WS@', workingDir: '/work', cwd: '/work', network: 'off', readOnly: false },
    { args: 0, status: 3 },
  ).map((a) => (a === '@WS@' ? '"$ws/work"' : shq(a)));
  return [
    '#!/bin/bash',
    "# One job: workspace, one jailed `true` with rho-flow's flags, remove the workspace.",
    'set -e',
    `ws="$BENCH_ROOT/job-$1"`,
    'mkdir -p "$ws/work"',
    `${shq(bwrap)} ${flags.join(' ')} true < ${shq(path.join(dir, 'env.args'))} 3>/dev/null`,
    'rm -rf "$ws"',
    '',
  ].join('\n');
}

function workflow(n) {
  return `name: trivial
sandbox:
  backend: local
strategy:
  repeat: ${n}
steps:
  - run: "true"
`;
}

const tmp = tempDir('rho-flow-bench-local-');
try {
  const dir = tmp.path;
  fs.writeFileSync(path.join(dir, 'job.sh'), baselineScript(dir), { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'trivial.yaml'), workflow(JOBS));
  fs.writeFileSync(path.join(dir, 'one.yaml'), workflow(1));
  const workRoot = path.join(dir, 'ws');
  fs.mkdirSync(workRoot);
  const meterFile = path.join(dir, 'meter.json');

  const baseline = async () => {
    const r = await runShell(
      `seq ${JOBS} | xargs -P ${CONCURRENCY} -I{} ${shq(path.join(dir, 'job.sh'))} {}`,
      { env: { BENCH_ROOT: workRoot } },
    );
    return r.wallMs;
  };
  let outN = 0;
  const rho = async (file, extraEnv = {}) => {
    const out = path.join(dir, `out-${++outN}`);
    const r = await runNode(
      [BIN, 'run', path.join(dir, file), '-j', String(CONCURRENCY), '-o', out, '--reporter', 'plain'],
      {
        nodeArgs: ['--import', METER],
        env: { TMPDIR: workRoot, RHO_FLOW_BENCH_METER_FILE: meterFile, ...extraEnv },
        keepOutput: false,
        expectCode: 0,
      },
    );
    const meter = JSON.parse(fs.readFileSync(meterFile, 'utf8'));
    fs.rmSync(out, { recursive: true, force: true });
    return { ...r, meter };
  };

  // Warm-up (page cache, bwrap binary, node's compile cache): not counted.
  progress(`local-overhead: ${JOBS} jobs at -j ${CONCURRENCY}, ${args.runs} runs`);
  await baseline();
  await rho('one.yaml');

  const base = [];
  const flow = [];
  const noSync = [];
  const one = [];
  for (let i = 0; i < args.runs; i++) {
    base.push(await baseline());
    flow.push(await rho('trivial.yaml'));
    noSync.push(await rho('trivial.yaml', { RHO_FLOW_BENCH_NO_FSYNC: '1' }));
    one.push(await rho('one.yaml'));
    progress(
      `  run ${i + 1}: baseline ${round(base.at(-1))} ms, rho-flow ${round(flow.at(-1).wallMs)} ms, no fsync ${round(noSync.at(-1).wallMs)} ms, 1 job ${round(one.at(-1).wallMs)} ms`,
    );
  }

  const baseMs = median(base);
  const flowMs = median(flow.map((r) => r.wallMs));
  const noSyncMs = median(noSync.map((r) => r.wallMs));
  const oneMs = median(one.map((r) => r.wallMs));
  const ratio = median(flow.map((r, i) => r.wallMs / base[i]));
  const cpuPerJob = median(flow.map((r) => r.cpuMs)) / JOBS;
  const oneCpu = median(one.map((r) => r.cpuMs));
  const fsyncs = median(flow.map((r) => r.meter.fsyncs));
  const fsyncMs = median(flow.map((r) => r.meter.fsyncMs));
  const spawnsPerJob =
    (median(flow.map((r) => r.meter.spawns)) - median(one.map((r) => r.meter.spawns))) / (JOBS - 1);
  const spawnBlock = median(flow.map((r) => r.meter.spawnBlockMs / r.meter.spawns));

  const result = {
    bench: 'local-overhead',
    title: `1. Local overhead — ${JOBS} trivial jobs at -j ${CONCURRENCY} vs xargs -P ${CONCURRENCY} of workspace + bwrap true + rm`,
    command: `node bench/local-overhead.js --jobs ${JOBS} --concurrency ${CONCURRENCY} --runs ${args.runs}`,
    machine: machine(),
    figures: [
      figure(
        'local.ratio',
        'wall time rho-flow / baseline (median of paired runs)',
        round(ratio, 2),
        '×',
        1.5,
        '<=',
      ),
      figure('local.baselineMs', 'baseline wall time (xargs + bwrap)', round(baseMs), 'ms'),
      figure('local.rhoMs', 'rho-flow wall time', round(flowMs), 'ms'),
      figure('local.jobsPerSec', 'rho-flow jobs/s', round((JOBS / flowMs) * 1000, 1), 'jobs/s'),
      figure('local.baselineJobsPerSec', 'baseline jobs/s', round((JOBS / baseMs) * 1000, 1), 'jobs/s'),
      figure(
        'local.overheadPerJobMs',
        'overhead per job (wall difference / jobs)',
        round((flowMs - baseMs) / JOBS, 1),
        'ms',
      ),
      figure('local.cpuPerJobMs', 'rho-flow process CPU per job (user+sys)', round(cpuPerJob, 1), 'ms'),
      figure(
        'local.oneJobMs',
        'fixed cost: a 1-job run, wall',
        round(oneMs),
        'ms',
        undefined,
        undefined,
        `CPU ${round(oneCpu)} ms`,
      ),
      figure('local.spawnsPerJob', 'processes rho-flow spawns per job', round(spawnsPerJob, 2), ''),
      figure('local.spawnBlockMs', 'event-loop block per spawn (median)', round(spawnBlock, 2), 'ms'),
      figure('local.fsyncsPerJob', 'fsyncs per job', round(fsyncs / JOBS, 2), ''),
      figure(
        'local.fsyncMsPerJob',
        'fsync latency per job (awaited before the slot is freed)',
        round(fsyncMs / JOBS, 2),
        'ms',
      ),
      figure('local.noFsyncRatio', 'wall time without fsync / with', round(noSyncMs / flowMs, 2), '×'),
    ],
    details: {
      jobs: JOBS,
      concurrency: CONCURRENCY,
      runs: args.runs,
      baselineMs: base.map((x) => round(x)),
      rhoMs: flow.map((r) => round(r.wallMs)),
      rhoCpuMs: flow.map((r) => round(r.cpuMs)),
      rhoPeakRssMb: flow.map((r) => round(r.hwmMb)),
      noFsyncMs: noSync.map((r) => round(r.wallMs)),
      oneJobMs: one.map((r) => round(r.wallMs)),
      meter: flow.map((r) => r.meter),
    },
  };
  report(result, args.json);
} finally {
  tmp.remove();
}
