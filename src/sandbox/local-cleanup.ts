/**
 * Workspace layout of the local backend and the sweep that removes the
 * leftovers of dead runs (product.md §6.1).
 *
 * ```
 * $TMPDIR/rho-flow/<run-id>/<job-slug>/owner.json   who created it (OwnerMarker)
 * $TMPDIR/rho-flow/<run-id>/<job-slug>/work/        bound into the jail at the working dir
 * $TMPDIR/rho-flow/<run-id>/<job-slug>/tmp/         TMPDIR of unjailed commands
 * ```
 *
 * The marker lives outside `work/`, so a job can neither read nor forge it.
 */
import { readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CleanupOptions, CleanupReport } from './sandbox.js';
import { isOwnerAlive, parseOwnerMarker, type OwnerMarker } from './owner.js';

export const OWNER_FILE = 'owner.json';
export const WORK_DIR = 'work';
export const TMP_DIR = 'tmp';
/** A workspace without a marker may be one being created right now; leave it alone this long. */
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

/** Reads `<slugDir>/owner.json`; `undefined` when missing or unreadable. */
export async function readOwnerMarker(slugDir: string): Promise<OwnerMarker | undefined> {
  try {
    return parseOwnerMarker(await fs.readFile(path.join(slugDir, OWNER_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Reads `<slugDir>/owner.json` synchronously (one small file: cheaper than
 * four thread-pool round trips); `undefined` when missing or unreadable.
 */
export function readOwnerMarkerSync(slugDir: string): OwnerMarker | undefined {
  try {
    return parseOwnerMarker(readFileSync(path.join(slugDir, OWNER_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Removes a workspace that holds only what the backend put there — an empty
 * `work/` (and `tmp/`), the owner marker — with a handful of synchronous
 * `rmdir`/`unlink` calls instead of a recursive walk (issue 7, target 1: a
 * recursive `fs.rm` is ~10 thread-pool round trips per job). `work/` goes
 * first and the marker last but one, so an interruption never leaves an
 * unmarked workspace with content. Returns false, having removed nothing of
 * the content, as soon as something else is there (the caller then removes
 * the tree recursively). Never follows a symlink (`rmdir`/`unlink` act on the
 * link itself).
 */
export function removeWorkspaceLayout(slugDir: string): boolean {
  const gone = (e: unknown): boolean => (e as NodeJS.ErrnoException).code === 'ENOENT';
  try {
    for (const dir of [WORK_DIR, TMP_DIR]) {
      try {
        rmdirSync(path.join(slugDir, dir));
      } catch (e) {
        if (!gone(e)) return false;
      }
    }
    try {
      unlinkSync(path.join(slugDir, OWNER_FILE));
    } catch (e) {
      if (!gone(e)) return false;
    }
    rmdirSync(slugDir);
    return true;
  } catch (e) {
    return gone(e);
  }
}

/** `rmdirSync` that ignores a non-empty or missing directory (one syscall; see `removeIfEmpty`). */
export function removeIfEmptySync(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // ENOTEMPTY / ENOENT: someone else still uses it, or it is gone already.
  }
}

/** Removes a workspace after killing what still runs in it, then its run directory when that is empty. */
export async function removeWorkspace(slugDir: string): Promise<void> {
  await killWorkspaceProcesses(slugDir);
  await fs.rm(slugDir, { recursive: true, force: true, maxRetries: 3 });
  await removeIfEmpty(path.dirname(slugDir));
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
 * Scans `root/<run-id>/<job-slug>` and removes workspaces whose owner process
 * is provably gone (dead pid, reused pid, reboot). Never removes one whose
 * owner is alive or on another host. `runId` restricts the sweep to one run,
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
    for (const slug of await subdirs(runDir)) {
      options.signal?.throwIfAborted();
      const id = path.join(runDir, slug);
      try {
        const verdict = await judge(id, options, now);
        if (verdict.keep) {
          report.kept.push({ id, runId, reason: verdict.reason });
          continue;
        }
        if (options.dryRun !== true) await removeWorkspace(id);
        report.removed.push({ id, runId, reason: verdict.reason });
      } catch (e) {
        report.failed.push({ id, error: e instanceof Error ? e.message : String(e) });
      }
    }
    if (options.dryRun !== true) await removeIfEmpty(runDir);
  }
  return report;
}

async function judge(
  slugDir: string,
  options: CleanupOptions,
  now: number,
): Promise<{ keep: boolean; reason: string }> {
  const marker = await readOwnerMarker(slugDir);
  const st = await fs.lstat(slugDir);
  const createdMs = marker ? Date.parse(marker.createdAt) : st.mtimeMs;
  if (options.olderThanMs !== undefined && now - createdMs < options.olderThanMs) {
    return { keep: true, reason: `younger than ${Math.round(options.olderThanMs / 1000)}s` };
  }
  if (!marker) {
    if (now - st.mtimeMs < UNMARKED_GRACE_MS)
      return { keep: true, reason: 'no owner marker yet (being created?)' };
    return { keep: false, reason: 'no owner marker' };
  }
  const verdict = await isOwnerAlive(marker);
  return { keep: verdict.alive, reason: verdict.reason };
}

/** Names of the real subdirectories of `dir` (symlinks are never entered); `[]` when it does not exist. */
async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}
