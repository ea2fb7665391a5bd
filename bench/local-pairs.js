#!/usr/bin/env node
/* global console */
/**
 * Before/after evidence for target 1 (issue 7): alternates two builds of the
 * CLI on the same batch of trivial local jobs and prints both series, their
 * medians, and how many pairs the second won. Both builds run in the same
 * `$TMPDIR`, one right after the other and in alternating order (ABBA), so
 * the file system's state (see BENCHMARKS.md, "This machine's filesystem"),
 * which degrades with every batch, drifts the same for both.
 *
 *   git worktree add /tmp/before <rev> && (cd /tmp/before && ln -s "$PWD/node_modules" . && npm run build)
 *   node bench/local-pairs.js --before /tmp/before/bin/rho-flow.js [--after bin/rho-flow.js]
 *                             [--jobs 200] [--concurrency 8] [--runs 8]
 */
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import {
  BIN,
  benchArgs,
  median,
  progress,
  round,
  runNode,
  runArgs,
  tempDir,
  trivialWorkflow,
} from './lib.js';

const args = benchArgs(process.argv.slice(2), { runs: 8 });
const before = args.get('--before');
const after = path.resolve(args.get('--after') ?? BIN);
const JOBS = Number(args.get('--jobs') ?? 200);
const CONCURRENCY = Number(args.get('--concurrency') ?? 8);
if (before === undefined || !fs.existsSync(before) || !fs.existsSync(after)) {
  console.error(
    'usage: node bench/local-pairs.js --before <bin/rho-flow.js of the other build> [--after <bin>]',
  );
  process.exit(2);
}

const tmp = tempDir('rho-flow-bench-pairs-');
try {
  const dir = tmp.path;
  const ws = path.join(dir, 'ws');
  fs.mkdirSync(ws);
  fs.writeFileSync(path.join(dir, 'trivial.yaml'), trivialWorkflow('trivial', JOBS));
  const once = async (bin) => {
    const out = path.join(dir, 'out');
    const r = await runNode(
      runArgs(path.join(dir, 'trivial.yaml'), CONCURRENCY, out, { bin: path.resolve(bin) }),
      {
        env: { TMPDIR: ws },
        keepOutput: false,
        expectCode: 0,
      },
    );
    fs.rmSync(out, { recursive: true, force: true });
    return r.wallMs;
  };
  await once(after); // warm-up
  const series = { before: [], after: [] };
  for (let i = 0; i < args.runs; i++) {
    // ABBA: the file system degrades over a series, so the order within a pair alternates.
    if (i % 2 === 0) {
      series.before.push(await once(before));
      series.after.push(await once(after));
    } else {
      series.after.push(await once(after));
      series.before.push(await once(before));
    }
    progress(
      `  pair ${i + 1}: before ${round(series.before.at(-1))} ms, after ${round(series.after.at(-1))} ms`,
    );
  }
  const wins = series.after.filter((a, i) => a < (series.before[i] ?? 0)).length;
  const mb = median(series.before);
  const ma = median(series.after);
  console.log(
    `local-pairs: ${JOBS} trivial jobs at -j ${CONCURRENCY} in ${ws}, ${args.runs} alternating pairs`,
  );
  console.log(`  before ${before}: ${series.before.map((x) => round(x)).join(' ')} (median ${round(mb)} ms)`);
  console.log(`  after  ${after}: ${series.after.map((x) => round(x)).join(' ')} (median ${round(ma)} ms)`);
  console.log(`  after / before ${round(ma / mb, 3)}; after faster in ${wins} of ${args.runs} pairs`);
} finally {
  tmp.remove();
}
