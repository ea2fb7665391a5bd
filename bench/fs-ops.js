#!/usr/bin/env node
/* global console */
/**
 * Context for target 1 (issue 7): what the file-system calls of a job cost on
 * a given directory, from one thread or spread over the thread pool.
 *
 *   node bench/fs-ops.js [--dir DIR] [--jobs 200] [--runs 3]
 *
 * Per "job": make a directory and a subdirectory, create three empty files,
 * then (after all jobs) remove them all — about what rho-flow does per
 * trivial job. `sync`: every call synchronous on this thread, one after the
 * other (rho-flow's choice for these calls); `pool`: the same calls through
 * `fs.promises`, eight jobs at a time (the thread pool). Prints wall time and
 * this process's CPU (user / system) for each, alternating, `--runs` times.
 * When `pool` costs more CPU for no shorter wall time, the calls are kernel
 * CPU that serialises, not waiting: moving them off the main thread buys nothing.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { benchArgs, median, round } from './lib.js';

const args = benchArgs(process.argv.slice(2), { runs: 3 });
const JOBS = Number(args.get('--jobs') ?? 200);
const BASE = args.get('--dir') ?? os.tmpdir();
const FILES = ['a', 'b', 'c'];

function runSync(root) {
  for (let i = 0; i < JOBS; i++) {
    const d = path.join(root, `j${i}`);
    fs.mkdirSync(d);
    fs.mkdirSync(path.join(d, 'work'));
    for (const f of FILES) fs.closeSync(fs.openSync(path.join(d, f), 'wx'));
  }
  for (let i = 0; i < JOBS; i++) {
    const d = path.join(root, `j${i}`);
    for (const f of FILES) fs.unlinkSync(path.join(d, f));
    fs.rmdirSync(path.join(d, 'work'));
    fs.rmdirSync(d);
  }
}

async function runPool(root) {
  const make = async (i) => {
    const d = path.join(root, `j${i}`);
    await fsp.mkdir(d);
    await fsp.mkdir(path.join(d, 'work'));
    await Promise.all(FILES.map(async (f) => (await fsp.open(path.join(d, f), 'wx')).close()));
  };
  const remove = async (i) => {
    const d = path.join(root, `j${i}`);
    await Promise.all(FILES.map((f) => fsp.unlink(path.join(d, f))));
    await fsp.rmdir(path.join(d, 'work'));
    await fsp.rmdir(d);
  };
  for (const step of [make, remove]) {
    let next = 0;
    const lane = async () => {
      while (next < JOBS) await step(next++);
    };
    await Promise.all(Array.from({ length: 8 }, lane));
  }
}

async function measure(mode) {
  const root = fs.mkdtempSync(path.join(BASE, 'rho-flow-bench-fs-'));
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    if (mode === 'sync') runSync(root);
    else await runPool(root);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    return { wallMs, userMs: cpu.user / 1000, sysMs: cpu.system / 1000 };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const results = { sync: [], pool: [] };
for (let r = 0; r < args.runs; r++) {
  for (const mode of ['sync', 'pool']) results[mode].push(await measure(mode));
}
console.log(`fs-ops: ${JOBS} jobs × (2 dirs + 3 files, then removed) in ${BASE}, ${args.runs} runs, medians`);
for (const mode of ['sync', 'pool']) {
  const rs = results[mode];
  const m = (k) => round(median(rs.map((x) => x[k])));
  console.log(
    `  ${mode === 'sync' ? 'synchronous, one thread' : 'thread pool, 8 at a time'}: wall ${m('wallMs')} ms, CPU ${round(median(rs.map((x) => x.userMs + x.sysMs)))} ms (system ${m('sysMs')} ms)`,
  );
}
