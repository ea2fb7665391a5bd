/**
 * The run directories of the local backend (`$TMPDIR/rho-flow/<run-id>/`) as
 * this process uses them.
 *
 * - **One owner marker per run and process**, `.owner-<pid>.json` in the run
 *   directory, present while the process has workspaces there. It replaced a
 *   marker per workspace: two inode creations and removals fewer per job,
 *   which on a file system where each costs a fraction of a millisecond is a
 *   measurable share of a trivial job (issue 7, target 1). Job slugs never
 *   start with `.`, so the name cannot collide with a workspace.
 * - **Which sandbox holds each workspace path**, in memory: a later attempt
 *   of a job reuses its slug, so a stale handle of an earlier attempt must
 *   recognise that the directory is no longer its own before removing it.
 *   Only this process creates workspaces under a run directory it has marked
 *   (another process's run has another run id; a resumed run reuses it only
 *   once the owner is gone), so an in-process registry is an exact identity.
 *
 * Everything here is synchronous on purpose: a create and a dispose of the
 * same run never interleave between "count" and "write/remove the marker".
 */
import { mkdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { OwnerMarker } from './owner.js';

/** `.owner-<pid>.json`: the marker of one process in a run directory. */
export const OWNER_MARKER = /^\.owner-(\d+)\.json$/;

/** This process's marker file name. */
export function ownerFileName(pid = process.pid): string {
  return `.owner-${pid}.json`;
}

interface RunState {
  /** Workspaces of this process in the run directory (created and not yet disposed). */
  live: number;
  markerPath: string;
}

const runs = new Map<string, RunState>();
const holders = new Map<string, object>();

/**
 * Writes this process's marker into `runDir` (made, 0o700, when missing).
 * Throws when `runDir`'s parent is missing (the caller recreates the root).
 */
export function writeRunMarker(runDir: string, marker: OwnerMarker): void {
  try {
    mkdirSync(runDir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  // Written in place (a previous process with our pid may have left one): a reader that catches
  // it half-written sees no valid marker and, as for a missing one, waits UNMARKED_GRACE_MS.
  writeFileSync(path.join(runDir, ownerFileName()), `${JSON.stringify(marker, null, 2)}\n`, {
    mode: 0o600,
  });
}

/**
 * Counts one more workspace of this process in `runDir`; the first one writes
 * the marker (`writeRunMarker`). Pair every successful call with `leaveRun`.
 */
export function enterRun(runDir: string, marker: OwnerMarker): void {
  let state = runs.get(runDir);
  if (state === undefined || state.live === 0) {
    writeRunMarker(runDir, marker);
    state = { live: 0, markerPath: path.join(runDir, ownerFileName()) };
    runs.set(runDir, state);
  }
  state.live++;
}

/**
 * Counts one workspace of `runDir` less; after the last one, removes the
 * marker and the run directory (when nothing else is left in it).
 */
export function leaveRun(runDir: string): void {
  const state = runs.get(runDir);
  if (state === undefined) return;
  if (--state.live > 0) return;
  runs.delete(runDir);
  try {
    unlinkSync(state.markerPath);
  } catch {
    // removed behind our back
  }
  try {
    rmdirSync(runDir);
  } catch {
    // ENOTEMPTY: a kept workspace, a leftover, another process's marker
  }
}

/** Records that `holder` now owns the workspace at `slugDir` (a later attempt takes over a path). */
export function holdWorkspace(slugDir: string, holder: object): void {
  holders.set(slugDir, holder);
}

/** True when `holder` still owns the workspace at `slugDir`. */
export function holdsWorkspace(slugDir: string, holder: object): boolean {
  return holders.get(slugDir) === holder;
}

/** Forgets `holder`'s claim on `slugDir` (no-op when a later holder took over). */
export function releaseWorkspace(slugDir: string, holder: object): void {
  if (holders.get(slugDir) === holder) holders.delete(slugDir);
}
