#!/usr/bin/env node
/**
 * Startup and validation speed of the real CLI (needs `npm run build`):
 *
 *   node bench/validate-many.js [--runs 5] [--json]
 *
 * Generates 200 and 1,000 workflow files (matrix, vars, templates, several
 * steps) in a temp dir and times `node bin/rho-flow.js validate <dir>/*.yaml`,
 * plus `--version` and the validation of one file. Prints the median and the
 * best of `--runs` runs of each, against the targets:
 *   --version < 150 ms, validate 1 file < 300 ms, 200 files < 2 s, 1,000 files < 3 s.
 * Wall-clock times include node's own startup. The CPU time of each child
 * (user + system) is printed too, with the load average: on a busy machine
 * wall times inflate, CPU times much less.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import process from 'node:process';
import console from 'node:console';
import { performance } from 'node:perf_hooks';
import { benchWorkflow, measuredEnv } from './lib.js';

const BIN = fileURLToPath(new URL('../bin/rho-flow.js', import.meta.url));

const argv = process.argv.slice(2);
const runsFlag = argv.indexOf('--runs');
const RUNS = runsFlag >= 0 ? Math.max(1, Number(argv[runsFlag + 1]) || 5) : 5;
const JSON_OUT = argv.includes('--json');

function generate(dir, n) {
  fs.mkdirSync(dir, { recursive: true });
  const files = [];
  for (let i = 0; i < n; i++) {
    const file = path.join(dir, `wf-${String(i).padStart(4, '0')}.yaml`);
    fs.writeFileSync(file, benchWorkflow(i));
    files.push(file);
  }
  return files;
}

/**
 * Records the child's CPU time (user + system, all threads) at exit, so the
 * figures mean something on a busy machine too.
 */
const CPU_HOOK =
  'data:text/javascript,' +
  encodeURIComponent(
    "import fs from 'node:fs'; process.on('exit', () => { const u = process.cpuUsage(); " +
      'fs.writeFileSync(process.env.RHO_FLOW_BENCH_CPU_FILE, String((u.user + u.system) / 1000)); });',
  );

/** Runs the CLI `RUNS` times; returns sorted wall and CPU times in ms (and fails loudly on a wrong exit code). */
function time(args, cpuFile, expectCode = 0) {
  const wall = [];
  const cpu = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    const script = args[0] === '-e' ? [] : [BIN];
    const res = spawnSync(process.execPath, ['--import', CPU_HOOK, ...script, ...args], {
      encoding: 'utf8',
      env: measuredEnv({ NO_COLOR: '1', RHO_FLOW_BENCH_CPU_FILE: cpuFile }),
    });
    wall.push(performance.now() - t0);
    if (res.status !== expectCode) {
      throw new Error(
        `rho-flow ${args.slice(0, 2).join(' ')} … exited ${res.status}:\n${res.stdout}\n${res.stderr}`,
      );
    }
    cpu.push(Number(fs.readFileSync(cpuFile, 'utf8')));
  }
  return { wall: wall.sort((a, b) => a - b), cpu: cpu.sort((a, b) => a - b) };
}

const median = (xs) => xs[Math.floor(xs.length / 2)];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rho-flow-bench-'));
try {
  const many200 = generate(path.join(tmp, 'w200'), 200);
  const many1000 = generate(path.join(tmp, 'w1000'), 1000);
  const cases = [
    // Baseline: node itself, to read the other figures against on a busy machine.
    { name: 'node -e 0 (baseline)', args: ['-e', '0'], targetMs: Infinity },
    { name: '--version', args: ['--version'], targetMs: 150 },
    { name: 'validate 1 file', args: ['validate', many200[0]], targetMs: 300 },
    { name: 'validate 200 files', args: ['validate', ...many200], targetMs: 2000 },
    { name: 'validate 1,000 files', args: ['validate', ...many1000], targetMs: 3000 },
  ];
  const load = os.loadavg()[0];
  const cpuFile = path.join(tmp, 'cpu.txt');
  const results = cases.map((c) => {
    const t = time(c.args, cpuFile);
    return {
      name: c.name,
      medianMs: Math.round(median(t.wall)),
      bestMs: Math.round(t.wall[0]),
      cpuMedianMs: Math.round(median(t.cpu)),
      targetMs: c.targetMs,
    };
  });
  if (JSON_OUT) {
    console.log(
      JSON.stringify(
        { node: process.version, cpus: os.cpus().length, loadavg1: load, runs: RUNS, results },
        null,
        2,
      ),
    );
  } else {
    console.log(
      `rho-flow CLI timings — node ${process.version}, ${os.cpus().length} CPUs, load ${load.toFixed(2)}, ${RUNS} runs each`,
    );
    console.log('case                   wall median  wall best  cpu median   target');
    for (const r of results) {
      const ok = r.targetMs === Infinity ? '' : r.medianMs <= r.targetMs ? 'ok' : 'MISSED';
      console.log(
        `${r.name.padEnd(22)} ${String(r.medianMs).padStart(8)} ms ${String(r.bestMs).padStart(7)} ms ${String(r.cpuMedianMs).padStart(8)} ms ${r.targetMs === Infinity ? '     -   ' : `${String(r.targetMs).padStart(6)} ms`}  ${ok}`,
      );
    }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
