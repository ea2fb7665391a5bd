/**
 * Workspace layout of the local backend and the sweep that removes the
 * leftovers of dead runs (product.md §6.1).
 *
 * ```
 * $TMPDIR/rho-flow/<run-id>/.owner-<pid>.json          who runs it (OwnerMarker; one per process, see local-run-dir.ts)
 * $TMPDIR/rho-flow/<run-id>/<job-slug>/work/           bound into the jail at the working dir
 * $TMPDIR/rho-flow/<run-id>/<job-slug>/tmp/            TMPDIR of unjailed commands
 * $TMPDIR/rho-flow/<run-id>/<job-slug>/step-output.<n> a run step's outputs file, while it runs
 * ```
 *
 * The markers live outside every `work/`, so a job can neither read nor forge them.
 */
import { rmdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CleanupOptions, CleanupReport } from './sandbox.js';
import { OWNER_MARKER } from './local-run-dir.js';
import { isOwnerAlive, parseOwnerMarker, type OwnerMarker, type OwnerVerdict } from './owner.js';

export const WORK_DIR = 'work';
export const TMP_DIR = 'tmp';
/** A run directory without a marker may be one being created right now; leave it alone this long. */
export const UNMARKED_GRACE_MS = 60_000;

/** `$TMPDIR/rho-flow`, with TMPDIR taken from `env` (default `os.tmpdir()`). */
export function workspacesRoot(env: Readonly<Record<string, string | undefined>>): string {
  const tmp = env.TMPDIR !== undefined && env.TMPDIR !== '' ? env.TMPDIR : os.tmpdir();
  return path.join(path.resolve(tmp), 'rho-flow');
}

/**
 * SIGKILLs host processes that belong to the workspace `slugDir`: a `bwrap`
 * whose arguments bind its `work/` directory, or any process whose current
 * directory is inside it (unjailed commands). Returns how many were signalled.
 */
export async function killWorkspaceProcesses(slugDir: string): Promise<number> {
  const work = path.join(slugDir, WORK_DIR);
  let names: string[];
  try {
    names = await fs.readdir('/proc');
  } catch {
    return 0;
  }
  let killed = 0;
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let match: boolean;
    try {
      const argv = (await fs.readFile(`/proc/${pid}/cmdline`)).toString('utf8').split('\0');
      match = path.basename(argv[0] ?? '') === 'bwrap' && argv.includes(work);
      if (!match) {
        const cwd = (await fs.readlink(`/proc/${pid}/cwd`)).replace(/ \(deleted\)$/, '');
        match = cwd === slugDir || cwd.startsWith(`${slugDir}/`);
      }
    } catch {
      continue; // gone, or not ours to inspect
    }
    if (!match) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // already gone
    }
  }
  return killed;
}

/**
 * The owner markers in a run directory (`.owner-<pid>.json`, one per process
 * that had workspaces there); unreadable or corrupt ones are left out.
 */
export async function readRunMarkers(runDir: string): Promise<OwnerMarker[]> {
  let names: string[];
  try {
    names = (await fs.readdir(runDir, { withFileTypes: true }))
      .filter((d) => d.isFile() && OWNER_MARKER.test(d.name))
      .map((d) => d.name);
  } catch {
    return [];
  }
  const markers = await Promise.all(
    names.map((n) => fs.readFile(path.join(runDir, n), 'utf8').then(parseOwnerMarker, () => undefined)),
  );
  return markers.filter((m): m is OwnerMarker => m !== undefined);
}

/**
 * Removes a workspace that holds only what the backend put there — an empty
 * `work/` (and, unjailed, an empty `tmp/`) — with a few synchronous `rmdir`
 * calls instead of a recursive walk (issue 7, target 1: a recursive `fs.rm`
 * is ~10 thread-pool round trips per job). Returns false, having removed
 * nothing of the content, as soon as something else is there (the caller then
 * removes the tree recursively). Never follows a symlink (`rmdir` acts on the
 * link itself and fails).
 */
export function removeWorkspaceLayout(slugDir: string, unjailed = false): boolean {
  const gone = (e: unknown): boolean => (e as NodeJS.ErrnoException).code === 'ENOENT';
  try {
    for (const dir of unjailed ? [WORK_DIR, TMP_DIR] : [WORK_DIR]) {
      try {
        rmdirSync(path.join(slugDir, dir));
      } catch (e) {
        if (!gone(e)) return false;
      }
    }
    rmdirSync(slugDir);
    return true;
  } catch (e) {
    return gone(e);
  }
}

/** Removes a workspace after killing what still runs in it. */
export async function removeWorkspace(slugDir: string): Promise<void> {
  await killWorkspaceProcesses(slugDir);
  await fs.rm(slugDir, { recursive: true, force: true, maxRetries: 3 });
}

/** `rmdir` that ignores a non-empty or missing directory. */
export async function removeIfEmpty(dir: string): Promise<void> {
  try {
    await fs.rmdir(dir);
  } catch {
    // ENOTEMPTY / ENOENT: someone else still uses it, or it is gone already.
  }
}

/**
 * Scans `root/<run-id>/<job-slug>` and removes the workspaces of runs whose
 * owners are all provably gone (dead pid, reused pid, reboot), then their
 * markers and run directory. Never removes a workspace of a run with a live
 * owner or one on another host. `runId` restricts the sweep to one run,
 * `olderThanMs` to workspaces created at least that long ago; with `dryRun`,
 * `removed` lists what would be removed and nothing is touched.
 */
export async function cleanupWorkspaces(
  root: string,
  options: CleanupOptions,
  now = Date.now(),
): Promise<CleanupReport> {
  const report: CleanupReport = { removed: [], kept: [], failed: [] };
  for (const runId of await subdirs(root)) {
    if (options.runId !== undefined && runId !== options.runId) continue;
    const runDir = path.join(root, runId);
    let verdict: { keep: boolean; reason: string };
    try {
      verdict = await judgeRun(runDir, now);
    } catch (e) {
      report.failed.push({ id: runDir, error: e instanceof Error ? e.message : String(e) });
      continue;
    }
    let left = 0;
    for (const slug of (await subdirs(runDir)).filter((n) => !n.startsWith('.'))) {
      options.signal?.throwIfAborted();
      const id = path.join(runDir, slug);
      try {
        const young = await youngerThan(id, options.olderThanMs, now);
        if (verdict.keep || young !== undefined) {
          report.kept.push({ id, runId, reason: young ?? verdict.reason });
          left++;
          continue;
        }
        if (options.dryRun !== true) await removeWorkspace(id);
        report.removed.push({ id, runId, reason: verdict.reason });
      } catch (e) {
        left++;
        report.failed.push({ id, error: e instanceof Error ? e.message : String(e) });
      }
    }
    if (options.dryRun === true || verdict.keep || left > 0) continue;
    // Every workspace of a dead run is gone: its markers go, then the directory (if nothing else is there).
    for (const name of await fs.readdir(runDir).catch(() => [] as string[])) {
      if (OWNER_MARKER.test(name)) await fs.unlink(path.join(runDir, name)).catch(() => undefined);
    }
    await removeIfEmpty(runDir);
  }
  return report;
}

/** `olderThanMs` given and the workspace (by its creation time, else mtime) younger: the reason to keep it. */
async function youngerThan(
  slugDir: string,
  olderThanMs: number | undefined,
  now: number,
): Promise<string | undefined> {
  if (olderThanMs === undefined) return undefined;
  const st = await fs.lstat(slugDir);
  const createdMs = st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs;
  return now - createdMs < olderThanMs ? `younger than ${Math.round(olderThanMs / 1000)}s` : undefined;
}

/**
 * A run directory is kept while any of its owners may be alive; without a
 * (readable) marker, while it was touched less than UNMARKED_GRACE_MS ago.
 */
async function judgeRun(runDir: string, now: number): Promise<{ keep: boolean; reason: string }> {
  const markers = await readRunMarkers(runDir);
  if (markers.length === 0) {
    const st = await fs.lstat(runDir);
    if (now - st.mtimeMs < UNMARKED_GRACE_MS)
      return { keep: true, reason: 'no owner marker yet (being created?)' };
    return { keep: false, reason: 'no owner marker' };
  }
  let dead: OwnerVerdict | undefined;
  for (const marker of markers) {
    const verdict = await isOwnerAlive(marker);
    if (verdict.alive) return { keep: true, reason: verdict.reason };
    dead ??= verdict;
  }
  return { keep: false, reason: dead?.reason ?? 'owner gone' };
}

/** Names of the real subdirectories of `dir` (symlinks are never entered); `[]` when it does not exist. */
async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}
