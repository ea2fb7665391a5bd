/**
 * Removing Daytona sandboxes: the robust delete used by `dispose()` and by
 * failed creates, and the `rho-flow cleanup --backend daytona` sweep.
 *
 * Delete policy (peers.md: harbor#2127, daytona#5137): retry with backoff;
 * a 404 means it is already gone; when Daytona refuses the delete (401/403)
 * or it keeps failing, stop the sandbox instead so it stops costing money,
 * and let its auto-delete interval or a later cleanup remove it.
 */
import { ownerLabel, pidExists } from './owner.js';
import { createHash } from 'node:crypto';
import os from 'node:os';
import pLimit from 'p-limit';
import { SandboxError, errorMessage } from '../errors.js';
import { sleep } from '../util/abort.js';
import type { CleanupOptions, CleanupReport } from './sandbox.js';
import type { DaytonaClientLike, DaytonaSandboxLike } from './daytona-client.js';
import { backoffDelay, classifyError, withBackoff, type BackoffConfig } from './backoff.js';

/** Label keys every rho-flow sandbox carries (product.md §1). */
export const LABELS = Object.freeze({
  managed: 'rho-flow.managed',
  runId: 'rho-flow.run-id',
  jobId: 'rho-flow.job-id',
  owner: 'rho-flow.owner',
  createdAt: 'rho-flow.created-at',
});

const MAX_LABEL_VALUE = 63;

function hash8(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/**
 * A label value that any label store accepts: characters outside
 * `[A-Za-z0-9._:@=+-]` become `_`, at most 63 characters. When anything had
 * to change, a short hash of the raw value keeps distinct ids distinct.
 * Deterministic, so filters (cleanup by run id) compute the same value.
 */
export function labelValue(raw: string): string {
  const safe = raw.replace(/[^A-Za-z0-9._:@=+-]/g, '_');
  if (safe === raw && raw.length <= MAX_LABEL_VALUE && raw.length > 0) return raw;
  return `${safe.slice(0, MAX_LABEL_VALUE - 9)}-${hash8(raw)}`;
}

export interface RemoveOptions {
  backoff: BackoffConfig;
  /** Delete retries after the first attempt. */
  retries: number;
  /** Stop the sandbox when it cannot be deleted. */
  stopFallback: boolean;
  /** Per-request deadline for delete/stop, seconds (default 60). */
  timeoutSec?: number;
}

/** How a removal ended. `stopped` carries the delete error that forced the fallback. */
export type RemoveOutcome =
  { outcome: 'deleted' } | { outcome: 'already-gone' } | { outcome: 'stopped'; deleteError: unknown };

function isGone(err: unknown): boolean {
  const e = err as { statusCode?: unknown; name?: unknown };
  return e.statusCode === 404 || e.statusCode === 410 || e.name === 'DaytonaNotFoundError';
}

function isRefused(err: unknown): boolean {
  const status = (err as { statusCode?: unknown }).statusCode;
  return status === 401 || status === 403;
}

/**
 * Deletes `sandbox`, retrying everything but a refusal; 404 counts as
 * deleted. If it cannot be deleted and `stopFallback` is set, stops it.
 * Throws `SandboxError('delete-failed')` only when neither worked.
 */
export async function removeSandbox(sandbox: DaytonaSandboxLike, o: RemoveOptions): Promise<RemoveOutcome> {
  const timeoutSec = o.timeoutSec ?? 60;
  let deleteError: unknown;
  for (let attempt = 0; attempt <= o.retries; attempt++) {
    try {
      await sandbox.delete(timeoutSec);
      return { outcome: 'deleted' };
    } catch (err) {
      if (isGone(err)) return { outcome: 'already-gone' };
      deleteError = err;
      if (isRefused(err) || attempt === o.retries) break;
      const c = classifyError(err);
      const policy = c.kind === 'rate-limit' ? o.backoff.rateLimit : o.backoff.transient;
      await sleep(backoffDelay(policy, attempt + 1, c.retryAfterMs));
    }
  }
  const details = { id: sandbox.id, name: sandbox.name, deleteError: errorMessage(deleteError) };
  if (!o.stopFallback) {
    throw new SandboxError(
      'delete-failed',
      `could not delete Daytona sandbox ${sandbox.id}: ${details.deleteError}`,
      {
        cause: deleteError,
        details,
      },
    );
  }
  try {
    await withBackoff(() => sandbox.stop(timeoutSec), { config: o.backoff });
    return { outcome: 'stopped', deleteError };
  } catch (stopError) {
    throw new SandboxError(
      'delete-failed',
      `could not delete (${details.deleteError}) nor stop (${errorMessage(stopError)}) Daytona sandbox ${sandbox.id}`,
      { cause: deleteError, details: { ...details, stopError: errorMessage(stopError) } },
    );
  }
}

/** `host:pid` of this process, the value of the `rho-flow.owner` label (shared with the local backend's owner marker). */
export const ownerId = ownerLabel;

/** True when a process with this pid exists on this host. */
export const isPidAlive = pidExists;

export interface CleanupContext {
  remove: RemoveOptions;
  hostname?: string;
  isAlive?: (pid: number) => boolean;
  now?: () => number;
  /** Parallel deletes (default 8). */
  concurrency?: number;
}

/**
 * The cleanup sweep. Lists sandboxes labelled `rho-flow.managed=true` (and
 * `rho-flow.run-id` when `runId` is given) and deletes those whose owner is
 * gone. Never touches:
 * - a sandbox whose owner process (`host:pid` label) is alive on this host;
 * - one younger than `olderThanMs` (by its `rho-flow.created-at` label);
 * - one owned by another host, unless the caller scoped the sweep with
 *   `runId` or `olderThanMs` (we cannot see whether that owner is alive).
 * With `dryRun` nothing is deleted; the would-be deletions are listed in
 * `removed` with a reason starting with `dry run`.
 */
export async function cleanupDaytona(
  client: DaytonaClientLike,
  options: CleanupOptions,
  ctx: CleanupContext,
): Promise<CleanupReport> {
  const hostname = ctx.hostname ?? os.hostname();
  const isAlive = ctx.isAlive ?? isPidAlive;
  const now = (ctx.now ?? Date.now)();
  const labels: Record<string, string> = { [LABELS.managed]: 'true' };
  if (options.runId !== undefined) labels[LABELS.runId] = labelValue(options.runId);

  const report: CleanupReport = { removed: [], kept: [], failed: [] };
  const doomed: Array<{ sandbox: DaytonaSandboxLike; runId: string | undefined; reason: string }> = [];
  for await (const sandbox of client.list({ labels })) {
    options.signal?.throwIfAborted();
    const runId = sandbox.labels[LABELS.runId];
    const entry = { id: sandbox.id, ...(runId !== undefined ? { runId } : {}) };
    if (sandbox.state === 'destroyed' || sandbox.state === 'destroying') continue;

    const owner = sandbox.labels[LABELS.owner] ?? '';
    const sep = owner.lastIndexOf(':');
    const ownerHost = sep > 0 ? owner.slice(0, sep) : '';
    const ownerPid = sep > 0 ? Number(owner.slice(sep + 1)) : NaN;
    const created = Date.parse(sandbox.labels[LABELS.createdAt] ?? sandbox.createdAt ?? '');
    const ageMs = Number.isNaN(created) ? Infinity : now - created;

    if (ownerHost === hostname && isAlive(ownerPid)) {
      report.kept.push({ ...entry, reason: `owner process ${ownerPid} is still running on this host` });
      continue;
    }
    if (options.olderThanMs !== undefined && ageMs < options.olderThanMs) {
      report.kept.push({ ...entry, reason: `younger than ${Math.round(options.olderThanMs / 1000)}s` });
      continue;
    }
    const foreign = ownerHost !== '' && ownerHost !== hostname;
    if (foreign && options.runId === undefined && options.olderThanMs === undefined) {
      report.kept.push({
        ...entry,
        reason: `owned by another host (${ownerHost}); pass a run id or an age limit to remove it`,
      });
      continue;
    }
    const why = foreign
      ? `owner on ${ownerHost}, in scope`
      : ownerHost
        ? `owner process ${ownerPid} is gone`
        : 'no owner';
    if (options.dryRun) {
      report.removed.push({ ...entry, reason: `dry run: would delete (${why})` });
      continue;
    }
    doomed.push({ sandbox, runId, reason: why });
  }

  const limit = pLimit(ctx.concurrency ?? 8);
  await Promise.all(
    doomed.map(({ sandbox, runId, reason }) =>
      limit(async () => {
        const entry = { id: sandbox.id, ...(runId !== undefined ? { runId } : {}) };
        try {
          const r = await removeSandbox(sandbox, ctx.remove);
          const how =
            r.outcome === 'stopped' ? `stopped (delete refused: ${errorMessage(r.deleteError)})` : 'deleted';
          report.removed.push({ ...entry, reason: `${how}: ${reason}` });
        } catch (err) {
          report.failed.push({ id: sandbox.id, error: errorMessage(err) });
        }
      }),
    ),
  );
  return report;
}
