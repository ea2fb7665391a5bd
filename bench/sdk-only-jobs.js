#!/usr/bin/env node
/**
 * The floor of target 2 (issue 7): the requests one rho-flow job makes, made
 * through the real `@daytonaio/sdk` exactly as rho-flow's Daytona backend
 * makes them (its client from `dist/`, the SDK on its own thread), with no
 * engine, no files, no reporter — nothing but the SDK. `bench/cloud-concurrency.js`
 * runs it against the same fake server as the CLI and measures it the same
 * way: what this achieves is the best any orchestrator using the real SDK can
 * do on this machine.
 *
 * Environment: DAYTONA_API_KEY, DAYTONA_API_URL, BENCH_JOBS, BENCH_CONCURRENCY,
 * BENCH_ARCHIVE (a small file uploaded as the job's archive), BENCH_DIST,
 * BENCH_MODE (`worker`, the default and rho-flow's, or `main`: the SDK on this thread),
 * BENCH_STAGGER_MS (start lane k of the first wave k × this late; default 0, as rho-flow).
 * Per job, in order (as `cloud-concurrency.js`'s workflow does): create,
 * prepare (the tool probe), upload the archive, unpack it, the step, pack the
 * artifact, download it (into memory), delete.
 */
import path from 'node:path';
import { setTimeout } from 'node:timers';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const dist = process.env.BENCH_DIST ?? '';
const { createDaytonaClient, toolboxReleaser } = await import(
  pathToFileURL(path.join(dist, 'sandbox', 'daytona-client.js')).href
);
const jobs = Number(process.env.BENCH_JOBS);
const concurrency = Number(process.env.BENCH_CONCURRENCY);
const archive = process.env.BENCH_ARCHIVE ?? '';
const client = await createDaytonaClient(
  { apiKey: process.env.DAYTONA_API_KEY, apiUrl: process.env.DAYTONA_API_URL, requestTimeoutMs: 60_000 },
  process.env.BENCH_MODE === 'main' ? 'main' : 'worker',
);
const run = `floor-${process.pid}`;

async function job(i) {
  const sb = await client.create(
    {
      name: `rf-${run}-${i}`,
      image: 'ubuntu:24.04',
      envVars: {},
      labels: { 'rho-flow': 'true', 'rho-flow-run': run, 'rho-flow-job': String(i) },
      autoStopInterval: 30,
      autoDeleteInterval: 60,
      networkBlockAll: true,
    },
    { timeout: 60 },
  );
  const release = toolboxReleaser(sb);
  const exec = async (command) => {
    const r = await sb.process.executeCommand(command, undefined, undefined, 60);
    if (r.exitCode !== 0) throw new Error(`exec exited ${r.exitCode}`);
    return r.result;
  };
  await exec(`mkdir -p /tmp/.rho-flow /work; for t in tar gzip; do command -v "$t"; done`);
  await sb.fs.uploadFileStream(archive, `/tmp/.rho-flow/up-${i}.tar.gz`, { timeout: 60 });
  await exec(`tar -xzpf /tmp/.rho-flow/up-${i}.tar.gz -C /work/input`);
  await exec(`cat input/a.txt > out.txt && echo done`);
  await exec(`tar -czf '/tmp/.rho-flow/down-${i}.tar.gz' ./out.txt`);
  const [res] = await sb.fs.downloadFiles([{ source: `/tmp/.rho-flow/down-${i}.tar.gz` }], 60);
  if (!res || res.error !== undefined || !res.result) throw new Error(`download: ${res?.error}`);
  await sb.delete(60);
  release();
}

let next = 0;
await Promise.all(
  Array.from({ length: Math.min(concurrency, jobs) }, async (_, lane) => {
    await new Promise((r) => setTimeout(r, lane * Number(process.env.BENCH_STAGGER_MS ?? 0)));
    while (next < jobs) await job(next++);
  }),
);
await client[Symbol.asyncDispose]();
