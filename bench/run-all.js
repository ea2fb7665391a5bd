#!/usr/bin/env node
/* global setTimeout, clearTimeout */
/**
 * The whole benchmark suite of issue 7 (`npm run bench`). Needs
 * `npm run build` and bwrap; takes about 5 minutes on 2 cores.
 *
 *   node bench/run-all.js [--only local-overhead,startup] [--quick] [--all] [--out results.json]
 *
 * Runs each benchmark script in its own process with `--json` (so one
 * benchmark's heap never weighs on the next), then prints one table of
 * figure / value / target / met (`--all`: context figures too). `--out` writes every result (with the
 * machine and the per-run details) as JSON, for BENCHMARKS.md. Exit code 0
 * even when a target is missed (the table says so); 1 when a benchmark
 * fails to run.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import console from 'node:console';
import { performance } from 'node:perf_hooks';
import { ROOT, benchArgs, describeFigure, machine, requireBuild, round } from './lib.js';

const SUITE = [
  { name: 'local-overhead', file: 'local-overhead.js', timeoutS: 180 },
  { name: 'cloud-concurrency', file: 'cloud-concurrency.js', timeoutS: 150 },
  { name: 'agent-loop', file: 'agent-loop.js', timeoutS: 90 },
  { name: 'scale-memory', file: 'scale-memory.js', timeoutS: 300 },
  { name: 'transfers', file: 'transfers.js', timeoutS: 150 },
  { name: 'startup', file: 'startup.js', timeoutS: 60 },
];

const args = benchArgs(process.argv.slice(2));
const only = args.get('--only')?.split(',');
const outFile = args.get('--out');
requireBuild();

function runBench(entry) {
  const extra = args.quick ? ['--quick'] : [];
  const child = spawn(process.execPath, [path.join(ROOT, 'bench', entry.file), '--json', ...extra], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (c) => (out += c));
  const timer = setTimeout(() => child.kill('SIGTERM'), entry.timeoutS * 1000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        resolve({ bench: entry.name, error: `exited ${code ?? signal}` });
        return;
      }
      try {
        resolve(JSON.parse(out));
      } catch (e) {
        resolve({ bench: entry.name, error: `unparseable output: ${String(e)}` });
      }
    });
  });
}

const started = performance.now();
const startMachine = machine();
const results = [];
for (const entry of SUITE) {
  if (only && !only.includes(entry.name)) continue;
  const t0 = performance.now();
  process.stderr.write(`\n[bench] === ${entry.name} ===\n`);
  const r = await runBench(entry);
  r.elapsedS = round((performance.now() - t0) / 1000, 1);
  results.push(r);
}
const totalS = round((performance.now() - started) / 1000, 1);

const showAll = process.argv.includes('--all');
const rows = [];
for (const r of results) {
  if (r.error) {
    rows.push({ figure: `${r.bench}: FAILED (${r.error})`, value: '', target: '', met: 'ERROR' });
    continue;
  }
  rows.push({
    figure: `${r.title.split(' — ')[0]} (${r.elapsedS} s)`,
    value: '',
    target: '',
    met: '',
    header: true,
  });
  for (const f of r.figures) {
    // Context figures only with --all, except those a benchmark marks as key to reading its target.
    if (f.target === undefined && !f.key && !showAll) continue;
    rows.push({ figure: `  ${f.label}`, ...describeFigure(f) });
  }
}
const w = Math.max(...rows.map((r) => r.figure.length), 6);
const wv = Math.max(...rows.map((r) => r.value.length), 5);
const wt = Math.max(...rows.map((r) => r.target.length), 6);
const m = startMachine;
const loadEnd = os.loadavg().map((l) => round(l, 2));
console.log(
  `\nrho-flow benchmarks — ${m.cores} cores (${m.cpuModel}), ${m.memTotalGiB} GiB, node ${m.node}, ${m.date}; load average ${m.loadavg.join(' ')} at start, ${loadEnd.join(' ')} at the end; ${totalS} s; NODE_EXTRA_CA_CERTS ${m.nodeExtraCaCerts}`,
);
console.log(`${'figure'.padEnd(w)}  ${'value'.padStart(wv)}  ${'target'.padEnd(wt)}  met`);
for (const row of rows) {
  console.log(
    row.header
      ? row.figure
      : `${row.figure.padEnd(w)}  ${row.value.padStart(wv)}  ${row.target.padEnd(wt)}  ${row.met}`,
  );
}
const missed = rows.filter((r) => r.met === 'NOT MET').length;
const metCount = rows.filter((r) => r.met === 'met').length;
const failed = results.filter((r) => r.error).length;
console.log(`\n${metCount} met, ${missed} not met, ${failed} failed to run (details: node bench/<name>.js)`);
if (outFile) {
  fs.writeFileSync(outFile, `${JSON.stringify({ machine: startMachine, totalS, results }, null, 2)}\n`);
  console.log(`results written to ${outFile}`);
}
process.exitCode = failed > 0 ? 1 : 0;
