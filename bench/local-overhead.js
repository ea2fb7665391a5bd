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
 * through `xargs -P C`. Both alternate, `--runs` times each (odd rounds in reverse order); medians.
 *
 * Figures: wall time ratio rho-flow / baseline (target ≤ 1.5), jobs/s,
 * per-job overhead (wall difference / N), rho-flow's own CPU per job, the
 * fixed cost (a 1-job run), and what fsync costs (the same run with every
 * fsync turned into a no-op by bench/meter.js). A second baseline runs, in the
 * same jail, what a run step is specified to start (`bash -eo pipefail -c`,
 * with its outputs file bound in as rho-flow does): rho-flow / baseline 2 is
 * rho-flow's own share of the time. A third adds the files every job leaves
 * in the run directory by contract (its folder, log.txt, transcript.jsonl,
 * result.json, written with shell builtins): rho-flow / baseline 3 is what
 * rho-flow adds to the work its contract requires.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import {
  runArgs,
  ROOT,
  benchArgs,
  machineBusyMs,
  figure,
  keyFigure,
  machine,
  median,
  progress,
  report,
  requireBuild,
  round,
  runNode,
  runShell,
  tempDir,
  trivialWorkflow,
} from './lib.js';

const args = benchArgs(process.argv.slice(2), { runs: 4 });
const JOBS = Number(args.get('--jobs') ?? (args.quick ? 40 : 200));
const CONCURRENCY = Number(args.get('--concurrency') ?? 8);
const METER = path.join(ROOT, 'bench', 'meter.js');

requireBuild();
const { bwrapArgs, envArgsData, findBwrap, commandEnv, JAIL_OUTPUT_PATH } =
  await import('../dist/sandbox/bwrap.js');

const bwrap = findBwrap(process.env);
if (!bwrap) {
  console.error('bench: bwrap not found; the local overhead benchmark needs it');
  process.exit(2);
}

function shq(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

/**
 * A baseline job script: workspace, one jail with rho-flow's flags and
 * environment running `command`, remove the workspace.
 */
function baselineScript(dir, command, what, outputs = false, jobFiles = false) {
  const env = commandEnv(
    { home: '/work', tmpdir: '/tmp' },
    outputs ? { RHO_FLOW_OUTPUT: JAIL_OUTPUT_PATH } : {},
  );
  const envFile = path.join(dir, outputs ? 'env-step.args' : 'env.args');
  fs.writeFileSync(envFile, envArgsData(env));
  const flags = bwrapArgs(
    {
      workspace: '@WS@',
      workingDir: '/work',
      cwd: '/work',
      network: 'off',
      readOnly: false,
      ...(outputs ? { outputFile: '@OUT@' } : {}),
    },
    { args: 0, status: 3 },
  ).map((a) => (a === '@WS@' ? '"$ws/work"' : a === '@OUT@' ? '"$ws/output"' : shq(a)));
  return [
    '#!/bin/bash',
    `# One job: workspace, ${what} with rho-flow's jail flags, remove the workspace.`,
    'set -e',
    `ws="$BENCH_ROOT/job-$1"`,
    jobFiles ? 'o="$BENCH_OUT/job-$1"; mkdir -p "$ws/work" "$o"' : 'mkdir -p "$ws/work"',
    ...(outputs ? [': > "$ws/output"'] : []),
    `${shq(bwrap)} ${flags.join(' ')} ${command} < ${shq(envFile)} 3>/dev/null >/dev/null`,
    'rm -rf "$ws"',
    // The files every job leaves in the run directory by contract, about as large as rho-flow's
    // (shell builtins only: no process more than baseline 2).
    ...(jobFiles
      ? [
          `printf '%s\\n' "=== job-$1 · attempt 1 · local ===" '$ true' > "$o/log.txt"`,
          `printf '{"type":"%s","job":"job-%s","time":"2026-01-01T00:00:00.000Z"}\\n' job-start "$1" step-start "$1" step-end "$1" job-end "$1" > "$o/transcript.jsonl"`,
          `printf '{"runId":"r","id":"job-%s","status":"passed","steps":[{"id":"step-1","status":"passed","exitCode":0}],"padding":"%0600d"}\\n' "$1" 0 > "$o/result.json"`,
        ]
      : []),
    '',
  ].join('\n');
}

const tmp = tempDir('rho-flow-bench-local-');
try {
  const dir = tmp.path;
  fs.writeFileSync(path.join(dir, 'job.sh'), baselineScript(dir, 'true', 'one jailed `true`'), {
    mode: 0o755,
  });
  // What rho-flow's contract starts per run step: one `bash -eo pipefail -c`, its outputs file bound in.
  fs.writeFileSync(
    path.join(dir, 'job-step.sh'),
    baselineScript(dir, '/bin/bash -eo pipefail -c true bash', 'a jailed run step of `true`', true),
    { mode: 0o755 },
  );
  // Baseline 3: baseline 2 plus the files every job leaves by contract (its folder, log.txt,
  // transcript.jsonl, result.json), on the same file system as rho-flow's output directory.
  fs.writeFileSync(
    path.join(dir, 'job-files.sh'),
    baselineScript(dir, '/bin/bash -eo pipefail -c true bash', 'a jailed run step of `true`', true, true),
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(dir, 'trivial.yaml'), trivialWorkflow('trivial', JOBS));
  fs.writeFileSync(path.join(dir, 'one.yaml'), trivialWorkflow('trivial', 1));
  const workRoot = path.join(dir, 'ws');
  fs.mkdirSync(workRoot);
  const meterFile = path.join(dir, 'meter.json');

  const baseOut = path.join(dir, 'base-out');
  /** Machine CPU busy during each run of the plain baseline (all cores, all processes). */
  const baseBusy = [];
  const baseline = async (script = 'job.sh') => {
    fs.mkdirSync(baseOut, { recursive: true });
    const busy0 = machineBusyMs();
    const r = await runShell(`seq ${JOBS} | xargs -P ${CONCURRENCY} -I{} ${shq(path.join(dir, script))} {}`, {
      env: { BENCH_ROOT: workRoot, BENCH_OUT: baseOut },
    });
    const busyMs = machineBusyMs() - busy0;
    fs.rmSync(baseOut, { recursive: true, force: true });
    if (script === 'job.sh') baseBusy.push(busyMs);
    return r.wallMs;
  };
  let outN = 0;
  const rho = async (file, extraEnv = {}) => {
    const out = path.join(dir, `out-${++outN}`);
    const busy0 = machineBusyMs();
    const r = await runNode(runArgs(path.join(dir, file), CONCURRENCY, out), {
      nodeArgs: ['--import', METER],
      env: { TMPDIR: workRoot, RHO_FLOW_BENCH_METER_FILE: meterFile, ...extraEnv },
      keepOutput: false,
      expectCode: 0,
    });
    const busyMs = machineBusyMs() - busy0;
    const meter = JSON.parse(fs.readFileSync(meterFile, 'utf8'));
    fs.rmSync(out, { recursive: true, force: true });
    return { ...r, meter, busyMs };
  };

  // Warm-up (page cache, bwrap binary, node's compile cache): not counted.
  progress(`local-overhead: ${JOBS} jobs at -j ${CONCURRENCY}, ${args.runs} runs`);
  await baseline();
  await rho('one.yaml');

  const base = [];
  const baseStep = [];
  const baseFiles = [];
  const flow = [];
  const noSync = [];
  const one = [];
  /** `node -e 0` (with the same preloaded stats hook): node's own start, which any node orchestrator pays. */
  const nodeOnly = [];
  // Every case of a round, in order; odd rounds run them in reverse. What a run costs on this
  // journal-less ext4 depends on what the runs just before it deleted (see BENCHMARKS.md), so
  // a fixed order would favour whichever case always comes first.
  const roundCases = [
    async () => base.push(await baseline()),
    async () => baseStep.push(await baseline('job-step.sh')),
    async () => baseFiles.push(await baseline('job-files.sh')),
    async () => flow.push(await rho('trivial.yaml')),
    async () => noSync.push(await rho('trivial.yaml', { RHO_FLOW_BENCH_NO_FSYNC: '1' })),
    async () => one.push(await rho('one.yaml')),
    async () => nodeOnly.push((await runNode(['-e', '0'], { keepOutput: false, expectCode: 0 })).wallMs),
  ];
  for (let i = 0; i < args.runs; i++) {
    for (const step of i % 2 === 0 ? roundCases : [...roundCases].reverse()) await step();
    progress(
      `  run ${i + 1}: baseline ${round(base.at(-1))} ms, with the step's processes ${round(baseStep.at(-1))} ms, and the job's files ${round(baseFiles.at(-1))} ms, rho-flow ${round(flow.at(-1).wallMs)} ms, no fsync ${round(noSync.at(-1).wallMs)} ms, 1 job ${round(one.at(-1).wallMs)} ms`,
    );
  }

  const cores = os.cpus().length;
  const baseMs = median(base);
  const flowMs = median(flow.map((r) => r.wallMs));
  const noSyncMs = median(noSync.map((r) => r.wallMs));
  const oneMs = median(one.map((r) => r.wallMs));
  const ratio = median(flow.map((r, i) => r.wallMs / base[i]));
  const cpuPerJob = median(flow.map((r) => r.cpuMs)) / JOBS;
  const helperCpuPerJob = median(flow.map((r) => r.helperCpuMs)) / JOBS;
  const oneCpu = median(one.map((r) => r.cpuMs));
  const fsyncs = median(flow.map((r) => r.meter.fsyncs));
  const fsyncMs = median(flow.map((r) => r.meter.fsyncMs));
  const baseStepMs = median(baseStep);
  const stepRatio = median(flow.map((r, i) => r.wallMs / baseStep[i]));
  const baseFilesMs = median(baseFiles);
  const filesRatio = median(flow.map((r, i) => r.wallMs / baseFiles[i]));
  const contractFloor = median(base.map((b, i) => ((baseFiles[i] ?? 0) + (nodeOnly[i] ?? 0)) / b));

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
        'local.helperCpuPerJobMs',
        'its spawner helper process, CPU per job (user+sys)',
        round(helperCpuPerJob, 1),
        'ms',
      ),
      figure(
        'local.oneJobMs',
        'fixed cost: a 1-job run, wall',
        round(oneMs),
        'ms',
        undefined,
        undefined,
        `CPU ${round(oneCpu)} ms`,
      ),
      figure(
        'local.stepBaselineMs',
        "baseline 2: a run step's processes (bwrap, bash -eo pipefail -c true, the outputs file bound in)",
        round(baseStepMs),
        'ms',
      ),
      figure(
        'local.stepRatio',
        "wall time rho-flow / baseline 2 (rho-flow's own share)",
        round(stepRatio, 2),
        '×',
      ),
      figure(
        'local.filesBaselineMs',
        "baseline 3: baseline 2 and the job's files by contract (folder, log.txt, transcript.jsonl, result.json)",
        round(baseFilesMs),
        'ms',
      ),
      keyFigure(
        'local.filesRatio',
        'wall time rho-flow / baseline 3 (what rho-flow adds to the work its contract requires)',
        round(filesRatio, 2),
        '×',
      ),
      figure(
        'local.contractFloorRatio',
        "(baseline 3 + node's own start) / baseline: the contract's files and starting node, before any orchestration",
        round(contractFloor, 2),
        '×',
        undefined,
        undefined,
        `node -e 0: ${round(median(nodeOnly))} ms; left for everything else under 1.5×: ${round(((1.5 - contractFloor) * baseMs) / JOBS, 2)} ms per job`,
      ),
      figure(
        'local.budgetVsFixedMs',
        "left under 1.5× for everything but the contract's files and node, whole batch: (1.5 − that) × baseline",
        round((1.5 - contractFloor) * baseMs),
        'ms',
        undefined,
        undefined,
        `rho-flow's fixed cost alone (a 1-job run − node -e 0, one job's work included): ${round(oneMs - median(nodeOnly))} ms`,
      ),
      figure(
        'local.busyShare',
        'cores kept busy (machine CPU time / (cores × wall)): baseline / rho-flow',
        round(median(baseBusy.map((b, i) => b / (cores * base[i]))), 2),
        '',
        undefined,
        undefined,
        `rho-flow ${round(median(flow.map((r) => r.busyMs / (cores * r.wallMs))), 2)}; machine CPU per job: baseline ${round(median(baseBusy) / JOBS, 1)} ms, rho-flow ${round(median(flow.map((r) => r.busyMs)) / JOBS, 1)} ms`,
      ),
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
      baseline2Ms: baseStep.map((x) => round(x)),
      baseline3Ms: baseFiles.map((x) => round(x)),
      rhoMs: flow.map((r) => round(r.wallMs)),
      rhoCpuMs: flow.map((r) => round(r.cpuMs)),
      helperCpuMs: flow.map((r) => round(r.helperCpuMs)),
      rhoPeakRssMb: flow.map((r) => round(r.hwmMb)),
      noFsyncMs: noSync.map((r) => round(r.wallMs)),
      oneJobMs: one.map((r) => round(r.wallMs)),
      nodeOnlyMs: nodeOnly.map((x) => round(x)),
      meter: flow.map((r) => r.meter),
    },
  };
  report(result, args.json);
} finally {
  tmp.remove();
}
