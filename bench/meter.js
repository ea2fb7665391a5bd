/**
 * Preloaded into a measured rho-flow process (`node --import ./bench/meter.js …`)
 * to see where its time goes without changing its code:
 *
 * - `FileHandle.sync` (every fsync of results.jsonl, result.json, reports):
 *   count and total latency; with `RHO_FLOW_BENCH_NO_FSYNC=1` each becomes a
 *   no-op, to measure what durability costs.
 *
 * At exit the counters go to `$RHO_FLOW_BENCH_METER_FILE` as JSON.
 */
import fs from 'node:fs';
import process from 'node:process';
import { performance } from 'node:perf_hooks';

const stats = { fsyncs: 0, fsyncMs: 0, fsyncSkipped: false };

const noFsync = process.env.RHO_FLOW_BENCH_NO_FSYNC === '1';
stats.fsyncSkipped = noFsync;
const probe = await fs.promises.open(process.execPath, 'r');
const FileHandle = Object.getPrototypeOf(probe);
await probe.close();
const sync = FileHandle.sync;
FileHandle.sync = async function meteredSync() {
  stats.fsyncs++;
  if (noFsync) return;
  const t0 = performance.now();
  try {
    await sync.call(this);
  } finally {
    stats.fsyncMs += performance.now() - t0;
  }
};

process.on('exit', () => {
  const file = process.env.RHO_FLOW_BENCH_METER_FILE;
  if (file) fs.writeFileSync(file, JSON.stringify(stats));
});
