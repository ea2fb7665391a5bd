#!/usr/bin/env node
/* global Buffer, setInterval, clearInterval */
/**
 * Target 4 — scale and memory (issue 7). Needs `npm run build` and bwrap.
 *
 *   node bench/scale-memory.js [--jobs 5000] [--concurrency 8] [--files 1000] [--runs 3] [--json]
 *
 * 1. `rho-flow run` of a batch of N trivial jobs (`run: "true"`, local
 *    backend): peak RSS of the CLI process (`VmHWM`, target ≤ 300 MB) and
 *    its RSS sampled as the 1,000th, 2,000th, … job finishes (read from the
 *    growing results.jsonl), which must stay flat: results are streamed to
 *    disk, not held. The heap grows to its working size over the first
 *    ~2,000 jobs; "flat" is judged after that: RSS growth from 2/5 N to N
 *    finished jobs ≤ 2 MB per 1,000 jobs (2 KB a job; a leaked result of a
 *    trivial job is ~1 KB, its compact summary entry ~0.3 KB).
 * 2. `rho-flow validate` and `rho-flow list` of 1,000 workflow files
 *    (matrix, vars, templates, several steps; 12 jobs each): ≤ 3 s each,
 *    and against a node process that only reads and YAML-parses them.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import {
  BIN,
  runArgs,
  benchArgs,
  benchWorkflow,
  figure,
  machine,
  median,
  progress,
  report,
  requireBuild,
  round,
  rssMb,
  runNode,
  tempDir,
  trivialWorkflow,
} from './lib.js';

const args = benchArgs(process.argv.slice(2), { runs: 3 });
const JOBS = Number(args.get('--jobs') ?? (args.quick ? 1000 : 5000));
const CONCURRENCY = Number(args.get('--concurrency') ?? 8);
const FILES = Number(args.get('--files') ?? (args.quick ? 200 : 1000));
const STEP = Math.max(1, Math.round(JOBS / 5));
/** The `yaml` package rho-flow itself loads (resolved from the repository, not from the temp dir). */
const YAML_ENTRY = createRequire(import.meta.url).resolve('yaml');
requireBuild();

/** Counts newlines appended to `file` since the last call. */
function lineCounter(file) {
  let offset = 0;
  let lines = 0;
  const buf = Buffer.alloc(1 << 16);
  return () => {
    let fd;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return lines;
    }
    try {
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) break;
        offset += n;
        for (let i = 0; i < n; i++) if (buf[i] === 0x0a) lines++;
      }
    } finally {
      fs.closeSync(fd);
    }
    return lines;
  };
}

const tmp = tempDir('rho-flow-bench-scale-');
try {
  const dir = tmp.path;
  const ws = path.join(dir, 'ws');
  fs.mkdirSync(ws);
  fs.writeFileSync(path.join(dir, 'batch.yaml'), trivialWorkflow('batch', JOBS));
  const out = path.join(dir, 'out');

  progress(`scale-memory: ${JOBS} jobs at -j ${CONCURRENCY}`);
  const samples = []; // { finished, rssMb }
  const timeline = [];
  let timer;
  const res = await runNode(
    runArgs(path.join(dir, 'batch.yaml'), CONCURRENCY, out, { extra: ['--run-id', 'scale'] }),
    {
      env: { TMPDIR: ws },
      keepOutput: false,
      expectCode: 0,
      onSpawn: (child) => {
        const count = lineCounter(path.join(out, 'scale', 'results.jsonl'));
        let next = STEP;
        const t0 = Date.now();
        timer = setInterval(() => {
          const finished = count();
          const rss = rssMb(child.pid);
          if (Number.isNaN(rss)) return;
          timeline.push({ t: Date.now() - t0, finished, rssMb: round(rss, 1) });
          while (finished >= next) {
            samples.push({ finished: next, rssMb: round(rss, 1) });
            next += STEP;
          }
        }, 50);
      },
    },
  ).finally(() => clearInterval(timer));
  progress(
    `  ${JOBS} jobs in ${round(res.wallMs)} ms, peak RSS ${round(res.hwmMb)} MB (+ helper ${round(res.helperHwmMb)} MB); RSS at ${samples.map((s) => `${s.finished}: ${s.rssMb}`).join(', ')}`,
  );
  const lines = fs
    .readFileSync(path.join(out, 'scale', 'results.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean).length;
  if (lines !== JOBS) throw new Error(`results.jsonl has ${lines} lines, expected ${JOBS}`);
  fs.rmSync(out, { recursive: true, force: true });

  const first = samples[0]?.rssMb ?? NaN;
  const lastSample = samples.at(-1)?.rssMb ?? NaN;
  const growthPct = ((lastSample - first) / first) * 100;
  // After warm-up: from the sample at 2/5 of the batch to the last one.
  const warm = samples[1] ?? samples[0];
  const slopePer1000 =
    warm && samples.length > 1 ? ((lastSample - warm.rssMb) / (JOBS - warm.finished)) * 1000 : NaN;

  // validate / list of many files
  const wfDir = path.join(dir, 'wf');
  fs.mkdirSync(wfDir);
  const files = [];
  for (let i = 0; i < FILES; i++) {
    const f = path.join(wfDir, `wf-${String(i).padStart(4, '0')}.yaml`);
    fs.writeFileSync(f, benchWorkflow(i));
    files.push(f);
  }
  progress(`  validate / list of ${FILES} files, ${args.runs} runs`);
  // Baseline: a node process that only reads and parses the same files with the `yaml` package.
  const parseOnly = path.join(dir, 'parse-only.mjs');
  fs.writeFileSync(
    parseOnly,
    `import fs from 'node:fs';\nimport { LineCounter, parseDocument } from ${JSON.stringify(YAML_ENTRY)};\n` +
      `for (const f of process.argv.slice(2)) parseDocument(fs.readFileSync(f, 'utf8'), { lineCounter: new LineCounter() }).toJS();\n`,
  );
  const validate = [];
  const list = [];
  const yamlOnly = [];
  for (let r = 0; r < args.runs; r++) {
    yamlOnly.push(await runNode([parseOnly, ...files], { keepOutput: false, expectCode: 0 }));
    validate.push(await runNode([BIN, 'validate', ...files], { keepOutput: false, expectCode: 0 }));
    list.push(await runNode([BIN, 'list', ...files], { keepOutput: false, expectCode: 0 }));
  }
  const vMs = median(validate.map((r) => r.wallMs));
  const lMs = median(list.map((r) => r.wallMs));
  const yMs = median(yamlOnly.map((r) => r.wallMs));

  report(
    {
      bench: 'scale-memory',
      title: `4. Scale and memory — a ${JOBS}-job batch at -j ${CONCURRENCY}; validate and list of ${FILES} files`,
      command: `node bench/scale-memory.js --jobs ${JOBS} --concurrency ${CONCURRENCY} --files ${FILES} --runs ${args.runs}`,
      machine: machine(),
      figures: [
        figure(
          'scale.peakRssMb',
          `peak RSS of the CLI + its spawner helper (VmHWM, summed), ${JOBS} jobs`,
          round(res.hwmMb + res.helperHwmMb),
          'MB',
          300,
          '<=',
          `CLI ${round(res.hwmMb)} MB, helper ${round(res.helperHwmMb)} MB`,
        ),
        figure(
          'scale.rssSlopeMbPer1000',
          `RSS growth per 1,000 finished jobs after warm-up (${warm?.finished ?? '?'} to ${JOBS})`,
          round(slopePer1000, 2),
          'MB',
          2,
          '<=',
          samples.map((s) => `${s.finished}: ${round(s.rssMb)} MB`).join(', '),
        ),
        figure(
          'scale.rssGrowthPct',
          `RSS growth from ${STEP} to ${JOBS} finished jobs`,
          round(growthPct, 1),
          '%',
        ),
        figure(
          'scale.jobsPerSec',
          'batch throughput',
          round((JOBS / res.wallMs) * 1000, 1),
          'jobs/s',
          undefined,
          undefined,
          `wall ${round(res.wallMs / 1000, 1)} s`,
        ),
        figure(
          'scale.validateMs',
          `validate ${FILES} files`,
          round(vMs),
          'ms',
          3000,
          '<=',
          `CPU ${round(median(validate.map((r) => r.cpuMs)))} ms`,
        ),
        figure(
          'scale.listMs',
          `list ${FILES} files (${FILES * 12} jobs)`,
          round(lMs),
          'ms',
          3000,
          '<=',
          `CPU ${round(median(list.map((r) => r.cpuMs)))} ms`,
        ),
        figure(
          'scale.yamlOnlyMs',
          `baseline: node reading and YAML-parsing the same ${FILES} files, nothing else`,
          round(yMs),
          'ms',
        ),
        figure('scale.validateOverYaml', 'validate / that baseline', round(vMs / yMs, 2), '×'),
        figure('scale.listOverYaml', 'list / that baseline', round(lMs / yMs, 2), '×'),
      ],
      details: {
        jobs: JOBS,
        concurrency: CONCURRENCY,
        samples,
        timeline: timeline.filter((_, i) => i % 20 === 0),
        validateMs: validate.map((r) => round(r.wallMs)),
        listMs: list.map((r) => round(r.wallMs)),
        yamlOnlyMs: yamlOnly.map((r) => round(r.wallMs)),
      },
    },
    args.json,
  );
} finally {
  tmp.remove();
}
