/**
 * Creating a Daytona sandbox safely.
 *
 * Harbor's lesson (peers.md §2.3): a create can succeed on the server and
 * still answer 502 or time out on the client; retrying with a fresh identity
 * then leaves duplicates and orphans. So every job attempt gets one stable
 * sandbox `name`, reused by every retry of that attempt:
 * - after any failure that may have created something (timeout, 5xx,
 *   connection drop, 409 name conflict, a sandbox that failed to start), the
 *   sandbox is looked up by name first; a started one is adopted, a starting
 *   one is waited for, a broken one is deleted;
 * - a retry can never create a second sandbox: the server refuses the same
 *   name twice (409), which again leads to the lookup.
 * A create still in flight when the caller aborts is awaited (bounded) and
 * whatever it created is deleted before the abort reason is thrown.
 */
import { createHash } from 'node:crypto';
import { SandboxError } from '../errors.js';
import { sleep } from '../util/abort.js';
import type { SandboxSpec } from './sandbox.js';
import type { DaytonaClientLike, DaytonaCreateParams, DaytonaSandboxLike } from './daytona-client.js';
import { backoffDelay, classifyError, type BackoffConfig, type Classified } from './backoff.js';
import type { RateLimiter } from './rate-limiter.js';
import { LABELS, labelValue, removeSandbox } from './daytona-cleanup.js';

function hash8(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

function slugPart(text: string, max: number): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return s.slice(0, max).replace(/-+$/, '') || 'x';
}

/**
 * The stable sandbox name of one job attempt: `rf-<run>-<job>-<hash>-a<n>`,
 * lower-case alphanumerics and dashes, at most 63 characters. The hash covers
 * the full run id and job slug, so truncation never makes two jobs collide.
 */
export function sandboxName(runId: string, jobSlug: string, attempt: number): string {
  return `rf-${slugPart(runId, 16)}-${slugPart(jobSlug, 24)}-${hash8(`${runId}\0${jobSlug}`)}-a${attempt}`;
}

/** Defaults read from `DAYTONA_SANDBOX_*` (the workflow file wins over them). */
export interface DaytonaDefaults {
  image: string;
  cpu?: number;
  /** GiB */
  memory?: number;
  /** GiB */
  disk?: number;
}

/** The SDK create parameters for `spec` (labels, resources, intervals, network). */
export function buildCreateParams(
  spec: SandboxSpec,
  defaults: DaytonaDefaults,
  meta: { owner: string; now: Date },
): DaytonaCreateParams {
  const labels: Record<string, string> = { ...spec.labels };
  labels[LABELS.managed] = 'true';
  labels[LABELS.runId] = labelValue(spec.runId);
  labels[LABELS.jobId] = labelValue(spec.jobId);
  labels[LABELS.owner] = meta.owner;
  labels[LABELS.createdAt] = meta.now.toISOString();

  const params: DaytonaCreateParams = {
    name: sandboxName(spec.runId, spec.jobSlug, spec.attempt),
    envVars: { ...spec.env },
    labels,
    // The dead-man's switch: always set, whole minutes, never 0 ("never").
    autoStopInterval: Math.max(1, Math.ceil(spec.autoStopMinutes ?? 30)),
    autoDeleteInterval: Math.max(1, Math.ceil(spec.autoDeleteMinutes ?? 60)),
    networkBlockAll: spec.network === 'off',
  };
  if (spec.snapshot !== undefined) {
    params.snapshot = spec.snapshot;
    // Resources only when the file asks: the API rejects them for most snapshots,
    // and the env defaults describe images.
    if (spec.resources) params.resources = { ...spec.resources };
  } else {
    params.image = spec.image ?? defaults.image;
    const resources = {
      ...(defaults.cpu !== undefined ? { cpu: defaults.cpu } : {}),
      ...(defaults.memory !== undefined ? { memory: defaults.memory } : {}),
      ...(defaults.disk !== undefined ? { disk: defaults.disk } : {}),
      ...spec.resources,
    };
    if (Object.keys(resources).length > 0) params.resources = resources;
  }
  return params;
}

export interface SafeCreateOptions {
  /** Deadline of one create-and-start attempt. */
  timeoutMs: number;
  limiter: RateLimiter;
  backoff: BackoffConfig;
  /** How long an abort waits for the in-flight create before leaving it to a background delete. */
  abortWaitMs: number;
  deleteRetries: number;
  signal?: AbortSignal;
  /** One-line notes (retries, reconciliations). */
  warn: (message: string) => void;
  /** Receives background clean-ups still running after `abortWaitMs` (the backend awaits them in `close()`). */
  track: (work: Promise<unknown>) => void;
}

type Settled<T> = { kind: 'ok'; value: T } | { kind: 'error'; error: unknown } | { kind: 'aborted' };

function settleOrAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<Settled<T>> {
  return new Promise((resolve) => {
    const onAbort = (): void => resolve({ kind: 'aborted' });
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal?.removeEventListener('abort', onAbort);
        resolve({ kind: 'ok', value });
      },
      (error: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        resolve({ kind: 'error', error });
      },
    );
  });
}

function settleWithin<T>(promise: Promise<T>, ms: number): Promise<Settled<T> | { kind: 'timeout' }> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ kind: 'timeout' }), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve({ kind: 'ok', value });
      },
      (error: unknown) => {
        clearTimeout(timer);
        resolve({ kind: 'error', error });
      },
    );
  });
}

/** Statuses that prove the server created nothing. */
const DEFINITE_REJECTIONS = new Set([400, 401, 403, 422, 429]);

function mayHaveCreated(c: Classified, err: unknown): boolean {
  if (c.kind === 'cancelled') return false;
  const name = (err as { name?: unknown }).name;
  if (name === 'DaytonaInvalidArgumentError' || name === 'DaytonaAuthenticationError') return false;
  return c.status === undefined || !DEFINITE_REJECTIONS.has(c.status);
}

const PENDING_STATES = new Set([
  'creating',
  'starting',
  'restoring',
  'pending_build',
  'building_snapshot',
  'pulling_snapshot',
  'unknown',
  undefined,
]);

function isNotFound(err: unknown): boolean {
  const e = err as { statusCode?: unknown; name?: unknown };
  return e.statusCode === 404 || e.statusCode === 410 || e.name === 'DaytonaNotFoundError';
}

type Lookup =
  | { kind: 'adopted'; sandbox: DaytonaSandboxLike }
  | { kind: 'absent' }
  | { kind: 'broken'; buildFailed: boolean; reason: string }
  | { kind: 'unknown'; error: unknown };

/**
 * Looks `name` up after an ambiguous failure: adopts a started sandbox, waits
 * for a starting one, deletes a broken one.
 */
async function lookUpByName(client: DaytonaClientLike, name: string, o: SafeCreateOptions): Promise<Lookup> {
  let found: DaytonaSandboxLike | undefined;
  let lastError: unknown;
  for (let retry = 0; retry <= o.backoff.transient.retries; retry++) {
    try {
      found = await client.get(name);
      break;
    } catch (err) {
      if (isNotFound(err)) return { kind: 'absent' };
      lastError = err;
      if (retry < o.backoff.transient.retries) {
        await sleep(backoffDelay(o.backoff.transient, retry + 1, classifyError(err).retryAfterMs));
      }
    }
  }
  if (!found) return { kind: 'unknown', error: lastError };
  if (found.state === 'destroyed' || found.state === 'destroying') return { kind: 'absent' };
  if (found.state === 'started') return { kind: 'adopted', sandbox: found };
  if (PENDING_STATES.has(found.state)) {
    const waited = await settleOrAbort(found.waitUntilStarted(o.timeoutMs / 1000), o.signal);
    if (waited.kind === 'ok') return { kind: 'adopted', sandbox: found };
    await found.refreshData().catch(() => undefined);
  }
  const state = found.state ?? 'unknown';
  const reason = `sandbox ${name} was ${state}${found.errorReason ? `: ${found.errorReason}` : ''}`;
  await deleteQuietly(found, o);
  return { kind: 'broken', buildFailed: state === 'build_failed', reason };
}

async function deleteQuietly(sandbox: DaytonaSandboxLike, o: SafeCreateOptions): Promise<void> {
  try {
    await removeSandbox(sandbox, { backoff: o.backoff, retries: o.deleteRetries, stopFallback: true });
  } catch (err) {
    o.warn(
      `could not remove Daytona sandbox ${sandbox.name} (${sandbox.id}) left by a failed create: ${String(err)}`,
    );
  }
}

/** After an abort: wait (bounded) for the in-flight create and delete whatever it made. */
async function reconcileAfterAbort(
  client: DaytonaClientLike,
  name: string,
  inflight: Promise<DaytonaSandboxLike>,
  o: SafeCreateOptions,
): Promise<void> {
  const lookUpAndDelete = async (): Promise<void> => {
    const found = await client.get(name).catch(() => undefined);
    if (found && found.state !== 'destroyed') await deleteQuietly(found, o);
  };
  const settled = await settleWithin(inflight, o.abortWaitMs);
  if (settled.kind === 'ok') {
    await deleteQuietly(settled.value, o);
  } else if (settled.kind === 'error') {
    await lookUpAndDelete();
  } else {
    o.warn(`sandbox create ${name} still in flight after cancellation; it will be deleted when it settles`);
    o.track(
      inflight.then(
        (sandbox) => deleteQuietly(sandbox, o),
        () => lookUpAndDelete(),
      ),
    );
  }
}

function fatalError(err: unknown, c: Classified, name: string): SandboxError {
  const details = { name, status: c.status, reason: c.reason };
  if (c.status === 401 || c.status === 403) {
    return new SandboxError('auth', `Daytona refused to create sandbox ${name}: ${c.reason}`, {
      cause: err,
      details,
    });
  }
  const what = c.buildFailed ? 'image build failed' : c.reason;
  return new SandboxError('create-failed', `could not create Daytona sandbox ${name}: ${what}`, {
    cause: err,
    details,
    retryable: false,
  });
}

/**
 * Creates (or adopts) the sandbox named `params.name`, retrying per error
 * class. Resolves with a started sandbox. Rejects with a `SandboxError`
 * (`rate-limited`, `create-failed`, `auth`) or, when `signal` aborts, with the
 * abort reason after deleting whatever the in-flight create made.
 */
export async function createSandboxSafely(
  client: DaytonaClientLike,
  params: DaytonaCreateParams,
  o: SafeCreateOptions,
): Promise<DaytonaSandboxLike> {
  const name = params.name;
  let rateRetries = 0;
  let transientRetries = 0;
  for (;;) {
    o.signal?.throwIfAborted();
    await o.limiter.take(o.signal);
    const inflight = client.create(params, { timeout: o.timeoutMs / 1000 });
    const settled = await settleOrAbort(inflight, o.signal);
    if (settled.kind === 'ok') return settled.value;
    if (settled.kind === 'aborted') {
      await reconcileAfterAbort(client, name, inflight, o);
      throw o.signal?.reason;
    }
    const err = settled.error;
    let c = classifyError(err);
    if (mayHaveCreated(c, err)) {
      const found = await lookUpByName(client, name, o);
      if (found.kind === 'adopted') {
        if (o.signal?.aborted) {
          await deleteQuietly(found.sandbox, o);
          throw o.signal.reason;
        }
        o.warn(`adopted Daytona sandbox ${name} after a failed create (${c.reason})`);
        return found.sandbox;
      }
      if (found.kind === 'broken') {
        if (found.buildFailed) {
          c = { ...c, kind: 'fatal', buildFailed: true, reason: found.reason };
        } else if (c.kind === 'fatal') {
          c = { ...c, kind: 'transient', reason: found.reason };
        }
      }
      // A 409 whose sandbox vanished (or is being destroyed) clears up by itself.
      if (c.status === 409 && !c.buildFailed) c = { ...c, kind: 'transient' };
    }
    if (o.signal?.aborted) throw o.signal.reason;

    let delayMs: number;
    if (c.kind === 'rate-limit') {
      if (rateRetries >= o.backoff.rateLimit.retries) {
        throw new SandboxError(
          'rate-limited',
          `Daytona kept rate-limiting the creation of ${name} (${rateRetries + 1} attempts): ${c.reason}`,
          { cause: err, retryable: true, details: { name, attempts: rateRetries + 1, status: c.status } },
        );
      }
      rateRetries++;
      delayMs = backoffDelay(o.backoff.rateLimit, rateRetries, c.retryAfterMs);
    } else if (c.kind === 'transient') {
      if (transientRetries >= o.backoff.transient.retries) {
        throw new SandboxError(
          'create-failed',
          `could not create Daytona sandbox ${name} after ${transientRetries + 1} attempts: ${c.reason}`,
          {
            cause: err,
            retryable: true,
            details: { name, attempts: transientRetries + 1, status: c.status },
          },
        );
      }
      transientRetries++;
      delayMs = backoffDelay(o.backoff.transient, transientRetries, c.retryAfterMs);
    } else if (c.kind === 'cancelled') {
      throw err;
    } else {
      throw fatalError(err, c, name);
    }
    o.warn(`creating Daytona sandbox ${name}: ${c.reason}; retrying in ${Math.round(delayMs / 100) / 10}s`);
    await sleep(delayMs, o.signal);
  }
}
