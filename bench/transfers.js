#!/usr/bin/env node
/**
 * Target 5 — transfers (issue 7). Needs `npm run build` and bwrap.
 *
 *   node bench/transfers.js [--runs 4] [--local-runs 8] [--json]
 *
 * An upload of a 2,000-file / ~50 MB tree (incompressible content, 40
 * directories) and a download of a 500-file artifact directory, through the
 * `Sandbox` interface of both backends:
 *
 * - local: wall time against `tar -cf - . | tar -xf -` of the same tree into
 *   the same workspace (a sibling of the upload's target: on a file system
 *   whose allocator state differs between directories, as journal-less ext4,
 *   both then create their inodes in the same neighbourhood; a tar into a
 *   directory elsewhere is reported for context) (target ≤ 1.3× the
 *   baseline);
 * - daytona (the fake server, 50 ms injected on upload/download and 30 ms on
 *   exec): the number of HTTP requests, which must not depend on the number of
 *   files (the same transfer of a 20-file tree is the reference), and the
 *   wall time against the same local tar baseline plus the injected latency.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import {
  benchArgs,
  enableTsHelpers,
  figure,
  machine,
  median,
  progress,
  report,
  requireBuild,
  round,
  runShell,
  tempDir,
} from './lib.js';

const args = benchArgs(process.argv.slice(2), { runs: 4 });
const FILES = Number(args.get('--files') ?? (args.quick ? 400 : 2000));
const DOWNLOAD_FILES = Math.min(FILES, Number(args.get('--download-files') ?? (args.quick ? 100 : 500)));
/** Local copies take ~0.1 s each: more runs than the Daytona part, for a stabler median. */
const LOCAL_RUNS = Number(args.get('--local-runs') ?? (args.quick ? 4 : 8));
const LATENCY = { create: 0, exec: 30, upload: 50, download: 50, delete: 0 };
requireBuild();

const { LocalBackend } = await import('../dist/sandbox/local.js');
const { DaytonaBackend } = await import('../dist/sandbox/daytona.js');

/** `files` files in 40 directories; sizes 1..50 KiB (mean ~25.5 KiB: 2,000 files ≈ 50 MB). */
function makeTree(root, files) {
  let bytes = 0;
  for (let i = 0; i < files; i++) {
    const dir = path.join(root, `dir-${String(i % 40).padStart(2, '0')}`);
    if (i < 40) fs.mkdirSync(dir, { recursive: true });
    const size = 1024 * (1 + (i % 50));
    fs.writeFileSync(path.join(dir, `file-${String(i).padStart(4, '0')}.bin`), randomBytes(size));
    bytes += size;
  }
  return bytes;
}

const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
const tarCopy = (src, dst) =>
  runShell(`mkdir -p ${shq(dst)} && tar -C ${shq(src)} -cf - . | tar -C ${shq(dst)} -xf -`);
/** Flushes dirty pages, so one step's writeback does not throttle the next one's writes. */
const settle = () => runShell('sync');

const spec = (n) => ({
  runId: 'bench-transfers',
  jobId: `transfers#${n}`,
  jobSlug: `transfers-${n}`,
  attempt: 1,
  workingDir: '/work',
  network: 'off',
  env: {},
});

const tmp = tempDir('rho-flow-bench-transfers-');
try {
  const dir = tmp.path;
  const tree = path.join(dir, 'tree');
  const bytes = makeTree(tree, FILES);
  const small = path.join(dir, 'small');
  makeTree(small, 20);
  // The artifact directory: the first DOWNLOAD_FILES files of the tree, in 40 directories.
  const artifact = path.join(dir, 'artifact');
  makeTree(artifact, DOWNLOAD_FILES);
  progress(
    `transfers: ${FILES} files / ${round(bytes / 1e6, 1)} MB up, ${DOWNLOAD_FILES} files down, ${LOCAL_RUNS} local and ${args.runs} daytona runs`,
  );

  // ---- local -------------------------------------------------------------
  const local = new LocalBackend({
    isolation: 'strict',
    warn: () => undefined,
    env: { ...process.env, TMPDIR: dir },
  });
  await local.preflight();
  const localUp = [];
  const localDown = [];
  const tarUp = [];
  const tarUpElsewhere = [];
  const tarDown = [];
  let n = 0;
  for (let r = 0; r < LOCAL_RUNS + 1; r++) {
    const sandbox = await local.create(spec(++n));
    try {
      // Alternate which goes first, so neither always inherits the other's writeback.
      const timeUpload = async () => {
        await settle();
        const t0 = performance.now();
        const up = await sandbox.upload(tree, '/work/tree');
        if (up.files !== FILES) throw new Error(`local upload copied ${up.files} files, expected ${FILES}`);
        return performance.now() - t0;
      };
      const timeTar = async () => {
        await settle();
        // Into the same workspace as the upload (a sibling of /work/tree): on a file system whose
        // allocator state differs between directories (see BENCHMARKS.md), both copies then
        // create their inodes in the same neighbourhood.
        return (await tarCopy(tree, path.join(sandbox.id, 'work', `tar-up-${r}`))).wallMs;
      };
      let upMs;
      let baseUp;
      if (r % 2 === 0) {
        upMs = await timeUpload();
        baseUp = await timeTar();
      } else {
        baseUp = await timeTar();
        upMs = await timeUpload();
      }
      // Context: the same tar into a fresh directory elsewhere in $TMPDIR (the earlier baseline).
      await settle();
      const elsewhere = (await tarCopy(tree, path.join(dir, `tar-up-${r}`))).wallMs;
      await sandbox.upload(artifact, '/work/out');
      await settle();
      const dest = path.join(dir, `down-${r}`);
      const t1 = performance.now();
      const down = await sandbox.download('/work/out', dest);
      const downMs = performance.now() - t1;
      if (down.written.length < DOWNLOAD_FILES)
        throw new Error(`local download wrote ${down.written.length} files`);
      await settle();
      const baseDown = (await tarCopy(path.join(sandbox.id, 'work', 'out'), path.join(dir, `tar-down-${r}`)))
        .wallMs;
      if (r > 0) {
        // Run 0 warms the page cache and is not counted.
        localUp.push(upMs);
        tarUp.push(baseUp);
        tarUpElsewhere.push(elsewhere);
        localDown.push(downMs);
        tarDown.push(baseDown);
      }
      progress(
        `  local run ${r}: upload ${round(upMs)} ms (tar ${round(baseUp)} ms, elsewhere ${round(elsewhere)} ms), download ${round(downMs)} ms (tar ${round(baseDown)} ms)`,
      );
    } finally {
      await sandbox.dispose();
      for (const d of [`tar-up-${r}`, `tar-down-${r}`, `down-${r}`])
        fs.rmSync(path.join(dir, d), { recursive: true, force: true });
    }
  }
  await local.close();

  // ---- daytona (fake) ------------------------------------------------------
  await enableTsHelpers();
  const { startFakeDaytona } = await import('../test/helpers/fake-daytona/index.ts');
  const fake = await startFakeDaytona({ latency: LATENCY });
  // A backend per run, as each `rho-flow run` has: its first upload of a source packs it; a second
  // upload of the same source in the same run reuses the archive (measured apart).
  const newBackend = () =>
    new DaytonaBackend({
      isolation: 'auto',
      warn: () => undefined,
      env: { DAYTONA_API_KEY: fake.apiKey, DAYTONA_API_URL: fake.apiUrl },
      daytona: { createsPerMinute: 6000, keepAliveMs: 0 },
    });
  const dUp = [];
  const dUpAgain = [];
  const dDown = [];
  let reqUp;
  let reqUpSmall;
  let reqDown;
  let reqDownSmall;
  try {
    for (let r = 0; r < args.runs; r++) {
      const daytona = newBackend();
      const sandbox = await daytona.create(spec(++n));
      try {
        const count = () => fake.requests.filter((q) => q.sandboxId === sandbox.id).length;
        let c0 = count();
        await sandbox.upload(small, '/work/small');
        reqUpSmall = count() - c0;
        c0 = count();
        const t0 = performance.now();
        const up = await sandbox.upload(tree, '/work/tree');
        dUp.push(performance.now() - t0);
        reqUp = count() - c0;
        if (up.files !== FILES) throw new Error(`daytona upload reported ${up.files} files`);
        const t2 = performance.now();
        await sandbox.upload(tree, '/work/tree-again');
        dUpAgain.push(performance.now() - t2);
        await sandbox.upload(artifact, '/work/out');
        c0 = count();
        await sandbox.download('/work/small', path.join(dir, `d-small-${r}`));
        reqDownSmall = count() - c0;
        c0 = count();
        const t1 = performance.now();
        const down = await sandbox.download('/work/out', path.join(dir, `d-down-${r}`));
        dDown.push(performance.now() - t1);
        reqDown = count() - c0;
        if (down.written.length < DOWNLOAD_FILES)
          throw new Error(`daytona download wrote ${down.written.length} files`);
        progress(
          `  daytona run ${r}: upload ${round(dUp.at(-1))} ms (${reqUp} requests), download ${round(dDown.at(-1))} ms (${reqDown} requests)`,
        );
      } finally {
        await sandbox.dispose();
        await daytona.close();
        for (const d of [`d-small-${r}`, `d-down-${r}`])
          fs.rmSync(path.join(dir, d), { recursive: true, force: true });
      }
    }
  } finally {
    await fake.close();
  }

  const m = (xs) => median(xs);
  const upRatio = m(localUp.map((x, i) => x / tarUp[i]));
  const downRatio = m(localDown.map((x, i) => x / tarDown[i]));
  // Daytona floor: the local tar work plus the injected latency of the requests actually needed (one upload + one exec to unpack; one exec to pack + one download).
  const dUpFloor = m(tarUp) + LATENCY.upload + LATENCY.exec;
  const dDownFloor = m(tarDown) + LATENCY.download + LATENCY.exec;
  report(
    {
      bench: 'transfers',
      title: `5. Transfers — upload of ${FILES} files / ${round(bytes / 1e6)} MB, download of ${DOWNLOAD_FILES} files, vs one tar of the same tree`,
      command: `node bench/transfers.js --runs ${args.runs} --local-runs ${LOCAL_RUNS}`,
      machine: machine(),
      figures: [
        figure(
          'transfers.localUploadRatio',
          'local upload / tar (median of paired runs)',
          round(upRatio, 2),
          '×',
          1.3,
          '<=',
        ),
        figure(
          'transfers.localUploadMs',
          'local upload wall',
          round(m(localUp)),
          'ms',
          undefined,
          undefined,
          `tar ${round(m(tarUp))} ms`,
        ),
        figure(
          'transfers.localUploadRatioElsewhere',
          'local upload / tar into a directory outside the workspace',
          round(m(localUp.map((x, i) => x / tarUpElsewhere[i])), 2),
          '×',
          undefined,
          undefined,
          `tar ${round(m(tarUpElsewhere))} ms (context: where the allocator puts the directories)`,
        ),
        figure(
          'transfers.localDownloadRatio',
          'local download / tar (median of paired runs)',
          round(downRatio, 2),
          '×',
          1.3,
          '<=',
        ),
        figure(
          'transfers.localDownloadMs',
          'local download wall',
          round(m(localDown)),
          'ms',
          undefined,
          undefined,
          `tar ${round(m(tarDown))} ms`,
        ),
        figure(
          'transfers.daytonaUploadRequests',
          `daytona upload requests (${FILES} files)`,
          reqUp,
          '',
          reqUpSmall,
          '<=',
          `20 files: ${reqUpSmall}`,
        ),
        figure(
          'transfers.daytonaDownloadRequests',
          `daytona download requests (${DOWNLOAD_FILES} files)`,
          reqDown,
          '',
          reqDownSmall,
          '<=',
          `20 files: ${reqDownSmall}`,
        ),
        figure(
          'transfers.daytonaUploadMs',
          'daytona upload wall',
          round(m(dUp)),
          'ms',
          undefined,
          undefined,
          `floor (tar + injected latency) ${round(dUpFloor)} ms`,
        ),
        figure('transfers.daytonaUploadRatio', 'daytona upload / floor', round(m(dUp) / dUpFloor, 2), '×'),
        figure(
          'transfers.daytonaUploadAgainMs',
          'daytona upload of the same source again in the run (archive packed once per run)',
          round(m(dUpAgain)),
          'ms',
        ),
        figure(
          'transfers.daytonaDownloadMs',
          'daytona download wall',
          round(m(dDown)),
          'ms',
          undefined,
          undefined,
          `floor ${round(dDownFloor)} ms`,
        ),
        figure(
          'transfers.daytonaDownloadRatio',
          'daytona download / floor',
          round(m(dDown) / dDownFloor, 2),
          '×',
        ),
      ],
      details: {
        files: FILES,
        bytes,
        downloadFiles: DOWNLOAD_FILES,
        latency: LATENCY,
        localUploadMs: localUp.map((x) => round(x)),
        tarUploadMs: tarUp.map((x) => round(x)),
        localDownloadMs: localDown.map((x) => round(x)),
        tarDownloadMs: tarDown.map((x) => round(x)),
        daytonaUploadMs: dUp.map((x) => round(x)),
        daytonaDownloadMs: dDown.map((x) => round(x)),
      },
    },
    args.json,
  );
} finally {
  tmp.remove();
}
