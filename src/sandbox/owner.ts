/**
 * Who owns a sandbox, and whether that owner is still alive. Backend-neutral:
 * the local backend writes an `OwnerMarker` into each run directory it uses; any
 * backend can label its sandboxes with `ownerLabel()` and ask
 * `isOwnerAlive()` before reaping something during `cleanup`.
 *
 * Liveness is decided by pid *and* the pid's start time (field 22 of
 * `/proc/<pid>/stat`), so a pid recycled by an unrelated process after the
 * owner died is recognised as dead. The boot id catches a reboot.
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';

/** What the local backend records about the owner of a run's workspaces (`.owner-<pid>.json`). */
export interface OwnerMarker {
  version: 1;
  runId: string;
  /** `run` in the run lock's marker (results/run-lock.ts); the local backend's run markers leave it out. */
  jobId?: string;
  /** pid of the rho-flow process that created the sandbox. */
  pid: number;
  /** `os.hostname()` of that process. */
  host: string;
  /** Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22); absent where `/proc` is unavailable. */
  pidStartTime?: string;
  /** `/proc/sys/kernel/random/boot_id` when the marker was written. */
  bootId?: string;
  /** ISO 8601. */
  createdAt: string;
  /** Random id of the holder (the run lock's), so a stale holder never removes a newer one's file. */
  nonce?: string;
}

/** Verdict of `isOwnerAlive`. `alive` is true whenever we cannot prove the owner is gone. */
export interface OwnerVerdict {
  alive: boolean;
  reason: string;
}

/**
 * Start time of `pid` (clock ticks since boot) from `/proc/<pid>/stat`, or
 * `undefined` when the process does not exist or `/proc` is unavailable.
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseStartTime(text);
}

/** Field 22 of a `/proc/<pid>/stat` line. The command name (field 2) may contain spaces and parentheses. */
export function parseStartTime(stat: string): string | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  // Fields after the command start at field 3 (state); starttime is field 22.
  const fields = stat.slice(close + 2).split(' ');
  const value = fields[22 - 3];
  return value !== undefined && /^\d+$/.test(value) ? value : undefined;
}

let cachedBootId: string | null | undefined;

/** This machine's boot id, or `undefined` where it cannot be read. Cached. */
export function bootId(): string | undefined {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId ?? undefined;
}

/** This process's start time: it never changes, so it is read once (one file read less per sandbox). */
let ownStartTime: Promise<string | undefined> | undefined;

/** The marker describing the current process as the owner of a new sandbox. */
export async function currentOwner(fields: {
  runId: string;
  jobId?: string;
  nonce?: string;
}): Promise<OwnerMarker> {
  ownStartTime ??= processStartTime(process.pid);
  const pidStartTime = await ownStartTime;
  const boot = bootId();
  return {
    version: 1,
    ...fields,
    pid: process.pid,
    host: os.hostname(),
    ...(pidStartTime !== undefined ? { pidStartTime } : {}),
    ...(boot !== undefined ? { bootId: boot } : {}),
    createdAt: new Date().toISOString(),
  };
}

/** `host:pid`, the value of the Daytona `rho-flow.owner` label. */
export function ownerLabel(): string {
  return `${os.hostname()}:${process.pid}`;
}

/** True when a process with this pid exists (it may belong to another user). */
export function pidExists(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Decides whether the owner recorded in `marker` is still running. Only a
 * provable death counts as dead: a marker from another host, or one whose
 * start time cannot be compared, is treated as alive when its pid exists.
 */
export async function isOwnerAlive(
  marker: Pick<OwnerMarker, 'pid' | 'host' | 'pidStartTime' | 'bootId'>,
): Promise<OwnerVerdict> {
  if (marker.host !== os.hostname()) return { alive: true, reason: `owned by another host (${marker.host})` };
  const boot = bootId();
  if (marker.bootId !== undefined && boot !== undefined && marker.bootId !== boot) {
    return { alive: false, reason: 'the machine rebooted since the owner started' };
  }
  if (!pidExists(marker.pid)) return { alive: false, reason: `owner process ${marker.pid} is gone` };
  if (marker.pidStartTime !== undefined) {
    const now = await processStartTime(marker.pid);
    if (now !== undefined && now !== marker.pidStartTime) {
      return { alive: false, reason: `owner process ${marker.pid} is gone (pid reused by another process)` };
    }
  }
  return { alive: true, reason: `owner process ${marker.pid} is alive` };
}

/** Parses a marker's text; `undefined` when it is not a usable marker. */
export function parseOwnerMarker(text: string): OwnerMarker | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Partial<OwnerMarker>;
  if (typeof m.pid !== 'number' || typeof m.host !== 'string' || typeof m.runId !== 'string')
    return undefined;
  if (typeof m.createdAt !== 'string' || Number.isNaN(Date.parse(m.createdAt))) return undefined;
  return { ...m, version: 1 } as OwnerMarker;
}
