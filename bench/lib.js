/**
 * Shared helpers of the benchmark scripts (not a benchmark itself).
 *
 * Every benchmark prints its figures for a human, or with `--json` one JSON
 * document on stdout (progress goes to stderr) that `bench/run-all.js`
 * collects:
 *
 *   { bench, title, command, machine, figures: [{ id, label, value, unit,
 *     target, op, met, note }], details }
 *
 * A figure with a `target` is judged with `op` (`<=` or `>=`); figures
 * without one are context (baselines, breakdowns). Figures are ratios
 * against a baseline measured in the same run wherever the target allows,
 * so they hold on a busy machine.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import console from 'node:console';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL, URL } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The CLI entry point (needs `npm run build`). */
export const BIN = path.join(ROOT, 'bin', 'rho-flow.js');
/** The TS loader that lets node import the test helpers (fake servers) in place. */
export const TS_LOADER = path.join(ROOT, 'test', 'helpers', 'local-ts-loader.js');

/** Parses the common flags: `--json`, `--runs N`, `--quick` (smaller sizes, for smoke runs). */
export function benchArgs(argv = process.argv.slice(2), defaults = { runs: 5 }) {
  const get = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const runs = Number(get('--runs'));
  return {
    json: argv.includes('--json'),
    quick: argv.includes('--quick'),
    runs: Number.isInteger(runs) && runs > 0 ? runs : defaults.runs,
    get,
  };
}

/** Exits early with a clear message when `dist/` is missing. */
export function requireBuild() {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    console.error('bench: dist/ is missing — run `npm run build` first');
    process.exit(2);
  }
}

/** Makes the TS test helpers importable (`await import('../test/helpers/….ts')`). */
export async function enableTsHelpers() {
  await import(TS_LOADER);
}

/**
 * CPU time the whole machine spent busy (user, nice, system, irq, softirq; all
 * cores, every process) since boot, in ms, from `/proc/stat`. Differences of
 * two readings tell how much of the cores a run kept busy.
 */
export function machineBusyMs() {
  const cpu =
    fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = cpu;
  return ((user + nice + system + irq + softirq) * 1000) / 100; // USER_HZ
}

/** The machine the figures come from. */
export function machine() {
  let memTotalGiB = os.totalmem() / 2 ** 30;
  let memAvailableGiB;
  try {
    const info = fs.readFileSync('/proc/meminfo', 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    memTotalGiB = kb('MemTotal') / 2 ** 20;
    memAvailableGiB = kb('MemAvailable') / 2 ** 20;
  } catch {
    // not Linux: os.totalmem() it is
  }
  return {
    cores: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
    memTotalGiB: round(memTotalGiB, 1),
    ...(memAvailableGiB !== undefined ? { memAvailableGiB: round(memAvailableGiB, 1) } : {}),
    node: process.version,
    kernel: os.release(),
    loadavg: os.loadavg().map((l) => round(l, 2)),
    nodeExtraCaCerts: process.env.NODE_EXTRA_CA_CERTS
      ? `${KEEP_CA_ENV ? 'kept' : 'unset for measured processes'} (${process.env.NODE_EXTRA_CA_CERTS})`
      : 'not set',
    date: new Date().toISOString(),
  };
}

export function round(x, digits = 0) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Median of a non-empty list (the mean of the two middle values for even lengths). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Temp dir under os.tmpdir(); `await using` removes it. */
export function tempDir(prefix = 'rho-flow-bench-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    path: dir,
    [Symbol.asyncDispose]: async () => fs.promises.rm(dir, { recursive: true, force: true }),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Whether measured node processes keep `NODE_EXTRA_CA_CERTS`
 * (`RHO_FLOW_BENCH_MACHINE_ENV=1`). By default they run without it: node 20
 * reads and parses that file's certificates before it runs any JavaScript
 * (nodejs/node#40524; later versions load them lazily, nodejs/node#59856), so where it is set —
 * here to the system bundle of 144 certificates — every node start costs
 * ~60-100 ms more, for any program, whatever it loads. That is this
 * machine's configuration, not rho-flow's startup: `bench/startup.js`
 * measures both, so the cost stays visible.
 */
export const KEEP_CA_ENV = process.env.RHO_FLOW_BENCH_MACHINE_ENV === '1';

/** The environment of a measured process: this one's (see {@link KEEP_CA_ENV}) with `extra` over it. */
export function measuredEnv(extra = {}, keepCa = KEEP_CA_ENV) {
  const env = { ...process.env, ...extra };
  if (!keepCa) delete env.NODE_EXTRA_CA_CERTS;
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined));
}

/** Preloaded into measured node children: their CPU time and peak RSS, and their spawner helper's. */
const STATS_HOOK = pathToFileURL(
  path.join(path.dirname(fileURLToPath(import.meta.url)), 'stats-hook.js'),
).href;

let statsCounter = 0;

/**
 * Runs `node [--import hook] <args>` (stdout and stderr piped, never a
 * file: a file would make node's stdout synchronous). Resolves with the
 * wall time, the child's own CPU time and peak RSS, and its output (kept
 * unless `keepOutput` is false; `onLine` sees stdout lines as they come).
 * `onSpawn(child)` can sample the running process. `RHO_FLOW_BENCH_NODE_ARGS`
 * (space-separated) adds node flags to every run, e.g. `--cpu-prof
 * --cpu-prof-dir=/tmp/prof` to profile what a benchmark measures. The
 * environment is {@link measuredEnv}'s (`keepCaEnv` overrides {@link KEEP_CA_ENV}).
 */
export function runNode(args, options = {}) {
  const statsFile = path.join(os.tmpdir(), `rho-flow-bench-stats-${process.pid}-${++statsCounter}.json`);
  const env = measuredEnv(
    { NO_COLOR: '1', ...options.env, RHO_FLOW_BENCH_STATS_FILE: statsFile },
    options.keepCaEnv ?? KEEP_CA_ENV,
  );
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--import',
      STATS_HOOK,
      ...(process.env.RHO_FLOW_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ...(options.nodeArgs ?? []),
      ...args,
    ],
    {
      cwd: options.cwd ?? process.cwd(),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  options.onSpawn?.(child);
  const keep = options.keepOutput !== false;
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    if (keep) stdout += chunk;
    if (options.onLine) {
      const text = partial + chunk;
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.onLine(line);
    }
  });
  child.stderr.on('data', (chunk) => {
    if (stderr.length < 1 << 20) stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const wallMs = performance.now() - t0;
      let stats = { userMs: NaN, sysMs: NaN, hwmKb: NaN };
      try {
        stats = JSON.parse(fs.readFileSync(statsFile, 'utf8'));
        fs.rmSync(statsFile, { force: true });
      } catch {
        // killed before exit hooks ran
      }
      const result = {
        code,
        signal,
        wallMs,
        cpuMs: stats.userMs + stats.sysMs,
        userMs: stats.userMs,
        sysMs: stats.sysMs,
        hwmMb: stats.hwmKb / 1024,
        helperCpuMs: stats.helperCpuMs ?? 0,
        helperHwmMb: (stats.helperHwmKb ?? 0) / 1024,
        stdout,
        stderr,
      };
      if (options.expectCode !== undefined && code !== options.expectCode) {
        reject(
          new Error(
            `node ${args.slice(0, 3).join(' ')} … exited ${code ?? signal} (expected ${options.expectCode}):\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`,
          ),
        );
        return;
      }
      resolve(result);
    });
  });
}

/** Runs a shell command line with bash; resolves with wall time and the CPU of all children. */
export function runShell(script, options = {}) {
  const t0 = performance.now();
  const child = spawn('/bin/bash', ['-c', script], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      if (code !== 0) {
        reject(new Error(`bash -c ${script.slice(0, 80)}… exited ${code}: ${err.slice(-2000)}`));
        return;
      }
      resolve({ wallMs, stdout: out, stderr: err });
    });
  });
}

/** Reads `VmRSS` of a running process in MB (NaN when it is gone). */
export function rssMb(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

/** A figure; `met` is computed when there is a target. */
export function figure(id, label, value, unit, target, op = '<=', note) {
  const f = { id, label, value, unit };
  if (target !== undefined) {
    f.target = target;
    f.op = op;
    f.met = op === '<=' ? value <= target : value >= target;
  }
  if (note !== undefined) f.note = note;
  return f;
}

function fmt(value, unit) {
  if (typeof value !== 'number') return String(value);
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)}${unit ? ` ${unit}` : ''}`;
}

/** Formats a figure's value, target and verdict for tables. */
/** A context figure (no target) that `npm run bench`'s table shows too: it explains a target's figure. */
export function keyFigure(...args) {
  return { ...figure(...args), key: true };
}

export function describeFigure(f) {
  return {
    value: fmt(f.value, f.unit),
    target: f.target === undefined ? '' : `${f.op} ${fmt(f.target, f.unit)}`,
    met: f.target === undefined ? '' : f.met ? 'met' : 'NOT MET',
  };
}

/** Prints a result for a human, or as JSON with `--json`. */
export function report(result, json) {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const m = result.machine;
  console.log(`\n${result.title}`);
  console.log(`  command: ${result.command}`);
  console.log(
    `  machine: ${m.cores} cores, ${m.memTotalGiB} GiB, node ${m.node}, load ${m.loadavg.join(' ')}, ${m.date}; NODE_EXTRA_CA_CERTS ${m.nodeExtraCaCerts}`,
  );
  const rows = result.figures.map((f) => ({ label: f.label, ...describeFigure(f), note: f.note ?? '' }));
  const w = Math.max(...rows.map((r) => r.label.length), 10);
  const wv = Math.max(...rows.map((r) => r.value.length), 5);
  const wt = Math.max(...rows.map((r) => r.target.length), 6);
  for (const r of rows) {
    console.log(
      `  ${r.label.padEnd(w)}  ${r.value.padStart(wv)}  ${r.target.padEnd(wt)}  ${r.met.padEnd(7)} ${r.note}`,
    );
  }
}

/** Progress line on stderr (kept off stdout so `--json` stays parseable). */
export function progress(message) {
  process.stderr.write(`[bench] ${message}\n`);
}

/**
 * Arguments of a measured `rho-flow run`: `file` at `-j concurrency` into `out`, plain reporter
 * (`bin`: another build's `bin/rho-flow.js`; `extra`: more flags).
 */
export function runArgs(file, concurrency, out, { bin = BIN, extra = [] } = {}) {
  return [bin, 'run', file, '-j', String(concurrency), '-o', out, ...extra, '--reporter', 'plain'];
}

/** The trivial batch of targets 1 and 4: `n` jobs of one `run: "true"` step on the local backend. */
export function trivialWorkflow(name, n) {
  return `name: ${name}\nsandbox:\n  backend: local\nstrategy:\n  repeat: ${n}\nsteps:\n  - run: "true"\n`;
}

/**
 * The validation corpus of scale-memory.js and validate-many.js: a realistic workflow (sandbox,
 * vars, a matrix with include/exclude, run and prompt steps, artifacts; 12 jobs), named by `i`.
 */
export function benchWorkflow(i) {
  return `# yaml-language-server: $schema=../schemas/workflow.schema.json
name: bench-${i}
description: Generated workflow ${i} for the validation benchmark.
sandbox:
  backend: local
  working-dir: /work
  network: off
  env:
    PYTHONUNBUFFERED: "1"
    SUITE: \${{ vars.suite }}
timeout: 30m
profile: developer
model: gpt-5-mini
vars:
  suite: unit
  retries: 2
strategy:
  matrix:
    task: [flaky-test, type-error, perf-${i}]
    python: ["3.12", "3.13"]
    exclude:
      - { task: perf-${i}, python: "3.12" }
    include:
      - { task: docs, python: "3.13", extra: yes }
  repeat: 2
steps:
  - id: baseline
    run: |
      echo "task=\${{ matrix.task }} python=\${{ matrix.python }}"
      echo "result=ok" >> "$RHO_FLOW_OUTPUT"
    timeout: 5m
    continue-on-error: true
  - id: fix
    prompt: |
      Fix \${{ matrix.task }} (suite \${{ vars.suite }}, attempt \${{ repeat.index }}).
      The baseline said: \${{ steps.baseline.outputs.result }}
    max-turns: 20
    timeout: 10m
  - id: verify
    if: \${{ success() && steps.baseline.outputs.result == 'ok' }}
    run: echo verify \${{ job.id }}
finally:
  - run: echo done
artifacts:
  - path: /work/out
    to: out/
    when: always
`;
}
