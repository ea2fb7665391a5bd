/**
 * The `daytona` backend: one Daytona cloud sandbox per job, through the real
 * `@daytonaio/sdk` (loaded lazily by `daytona-client.ts`).
 *
 * Environment (from `BackendOptions.env`, else `process.env`):
 * - `DAYTONA_API_KEY` (required), `DAYTONA_API_URL` (default
 *   https://app.daytona.io/api), `DAYTONA_TARGET` (region);
 * - defaults when the workflow names none: `DAYTONA_SANDBOX_IMAGE` (else
 *   `ubuntu:latest`), `DAYTONA_SANDBOX_CPU` (cores), `DAYTONA_SANDBOX_MEMORY`
 *   (MB, rounded up to whole GiB), `DAYTONA_SANDBOX_DISK` (GB).
 *
 * - tuning: `RHO_FLOW_DAYTONA_CREATES_PER_MINUTE` and the advanced
 *   `RHO_FLOW_DAYTONA_TUNING` JSON (`daytona-tuning.ts`); `BackendOptions.daytona` wins.
 * - `RHO_FLOW_DAYTONA_THREAD=main` runs the SDK on the calling thread instead
 *   of its own worker thread (`daytona-worker-client.ts`).
 *
 * Guarantees: every sandbox carries the `rho-flow.*` labels and an auto-stop
 * and auto-delete interval (the dead-man's switch, kept from firing by a
 * periodic activity refresh while the sandbox is in use); creation is paced
 * by a token bucket, retried per error class and reconciled by name so no
 * duplicate is left (`daytona-create.ts`); delete falls back to stop
 * (`daytona-cleanup.ts`).
 */
import { SandboxError, UserError, errorMessage } from '../errors.js';
import type {
  BackendOptions,
  CleanupOptions,
  CleanupReport,
  DaytonaTuning,
  SandboxBackend,
  SandboxSpec,
} from './sandbox.js';
import { backoffConfig, type BackoffConfig } from './backoff.js';
import { RateLimiter } from './rate-limiter.js';
import {
  DEFAULT_DAYTONA_API_URL,
  createDaytonaClient,
  daytonaThreadMode,
  prepareDaytonaSdk,
  type DaytonaClientLike,
  type DaytonaThreadMode,
} from './daytona-client.js';
import { buildCreateParams, createSandboxSafely, type DaytonaDefaults } from './daytona-create.js';
import { cleanupDaytona, ownerId } from './daytona-cleanup.js';
import { mergeTuning, readDaytonaTuning } from './daytona-tuning.js';
import { DaytonaSandbox } from './daytona-sandbox.js';
import { UploadArchives } from './upload-archives.js';

/** Defaults of the {@link DaytonaTuning} knobs. */
export const DAYTONA_DEFAULTS = Object.freeze({
  createsPerMinute: 300,
  createTimeoutImageMs: 10 * 60_000,
  createTimeoutSnapshotMs: 2 * 60_000,
  requestTimeoutMs: 60_000,
  transferTimeoutMs: 30 * 60_000,
  maxKeepAliveMs: 5 * 60_000,
  execGraceMs: 20_000,
  killWaitMs: 5_000,
  abortCreateWaitMs: 60_000,
  deleteRetries: 4,
  autoStopMinutes: 30,
  autoDeleteMinutes: 60,
  image: 'ubuntu:latest',
});

interface ResolvedConfig {
  apiKey: string;
  apiUrl: string;
  target?: string;
  defaults: DaytonaDefaults;
}

function positiveNumber(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UserError(`${name} must be a positive number (got '${raw}')`);
  }
  return n;
}

/** Reads and checks the Daytona settings from an environment. Throws `UserError`. */
export function readDaytonaConfig(env: Readonly<Record<string, string | undefined>>): ResolvedConfig {
  const apiKey = env.DAYTONA_API_KEY?.trim();
  if (!apiKey) {
    throw new UserError(
      'DAYTONA_API_KEY is not set: the daytona backend needs an API key (create one in the Daytona dashboard and export DAYTONA_API_KEY)',
    );
  }
  const apiUrl = env.DAYTONA_API_URL?.trim() || DEFAULT_DAYTONA_API_URL;
  try {
    new URL(apiUrl);
  } catch {
    throw new UserError(`DAYTONA_API_URL is not a valid URL: '${apiUrl}'`);
  }
  const cpu = positiveNumber(env, 'DAYTONA_SANDBOX_CPU');
  const memoryMb = positiveNumber(env, 'DAYTONA_SANDBOX_MEMORY');
  const disk = positiveNumber(env, 'DAYTONA_SANDBOX_DISK');
  const target = env.DAYTONA_TARGET?.trim();
  return {
    apiKey,
    apiUrl,
    ...(target ? { target } : {}),
    defaults: {
      image: env.DAYTONA_SANDBOX_IMAGE?.trim() || DAYTONA_DEFAULTS.image,
      ...(cpu !== undefined ? { cpu: Math.ceil(cpu) } : {}),
      ...(memoryMb !== undefined ? { memory: Math.max(1, Math.ceil(memoryMb / 1024)) } : {}),
      ...(disk !== undefined ? { disk: Math.ceil(disk) } : {}),
    },
  };
}

/** The Daytona `SandboxBackend`. Construct with the engine's `BackendOptions`. */
export class DaytonaBackend implements SandboxBackend {
  readonly name = 'daytona' as const;
  readonly #options: BackendOptions;
  readonly #tuning: DaytonaTuning;
  readonly #backoff: BackoffConfig;
  readonly #limiter: RateLimiter;
  readonly #live = new Set<DaytonaSandbox>();
  readonly #background = new Set<Promise<unknown>>();
  /** Upload archives packed once per run (per backend) and shared by its sandboxes. */
  readonly #archives = new UploadArchives();
  #config: ResolvedConfig | undefined;
  #tuningError: Error | undefined;
  #client: Promise<DaytonaClientLike> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: BackendOptions) {
    this.#options = options;
    // Environment tuning (the CLI's only way in); options from a library caller win over it.
    // A bad variable is reported by preflight/create, not here: constructing never throws.
    let fromEnv: DaytonaTuning = {};
    try {
      fromEnv = readDaytonaTuning(options.env ?? process.env);
    } catch (err) {
      this.#tuningError = err instanceof Error ? err : new UserError(String(err));
    }
    this.#tuning = mergeTuning(fromEnv, options.daytona);
    this.#backoff = backoffConfig(this.#tuning.backoff);
    this.#limiter = new RateLimiter({
      perMinute: this.#tuning.createsPerMinute ?? DAYTONA_DEFAULTS.createsPerMinute,
      ...(this.#tuning.createBurst !== undefined ? { burst: this.#tuning.createBurst } : {}),
    });
  }

  #readConfig(): ResolvedConfig {
    if (this.#tuningError !== undefined) throw this.#tuningError;
    this.#config ??= readDaytonaConfig(this.#options.env ?? process.env);
    return this.#config;
  }

  /**
   * Checks credentials and settings and that the SDK is installed. Throws
   * `UserError`. Starts the SDK's thread, which loads the SDK while the run
   * goes on starting.
   */
  async preflight(): Promise<void> {
    this.#readConfig();
    await prepareDaytonaSdk(this.#threadMode());
  }

  #threadMode(): DaytonaThreadMode {
    return daytonaThreadMode(this.#options.env ?? process.env);
  }

  #getClient(): Promise<DaytonaClientLike> {
    if (!this.#client) {
      const config = this.#readConfig();
      this.#client = createDaytonaClient(
        {
          apiKey: config.apiKey,
          apiUrl: config.apiUrl,
          ...(config.target !== undefined ? { target: config.target } : {}),
          requestTimeoutMs: this.#tuning.requestTimeoutMs ?? DAYTONA_DEFAULTS.requestTimeoutMs,
        },
        this.#threadMode(),
      );
      this.#client.catch(() => {
        this.#client = undefined;
      });
    }
    return this.#client;
  }

  #track(work: Promise<unknown>): void {
    const p = work.catch((err: unknown) => this.#options.warn(errorMessage(err)));
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  async create(spec: SandboxSpec, options: { signal?: AbortSignal } = {}): Promise<DaytonaSandbox> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (this.#closing) throw new SandboxError('unavailable', 'the daytona backend has been closed');
    const config = this.#readConfig();
    const client = await this.#getClient();
    const params = buildCreateParams(spec, config.defaults, { owner: ownerId(), now: new Date() });
    const createTimeoutMs =
      this.#tuning.createTimeoutMs ??
      (params.snapshot !== undefined
        ? DAYTONA_DEFAULTS.createTimeoutSnapshotMs
        : DAYTONA_DEFAULTS.createTimeoutImageMs);
    const deleteRetries = this.#tuning.deleteRetries ?? DAYTONA_DEFAULTS.deleteRetries;
    const sdk = await createSandboxSafely(client, params, {
      timeoutMs: createTimeoutMs,
      limiter: this.#limiter,
      backoff: this.#backoff,
      abortWaitMs: this.#tuning.abortCreateWaitMs ?? DAYTONA_DEFAULTS.abortCreateWaitMs,
      deleteRetries,
      ...(signal ? { signal } : {}),
      warn: this.#options.warn,
      track: (work) => this.#track(work),
    });
    const requestTimeoutMs = this.#tuning.requestTimeoutMs ?? DAYTONA_DEFAULTS.requestTimeoutMs;
    const sandbox = await DaytonaSandbox.open(
      sdk,
      {
        workingDir: spec.workingDir,
        backoff: this.#backoff,
        transferTimeoutSec: (this.#tuning.transferTimeoutMs ?? DAYTONA_DEFAULTS.transferTimeoutMs) / 1000,
        requestTimeoutSec: Math.ceil(requestTimeoutMs / 1000),
        execGraceMs: this.#tuning.execGraceMs ?? DAYTONA_DEFAULTS.execGraceMs,
        killWaitMs: this.#tuning.killWaitMs ?? DAYTONA_DEFAULTS.killWaitMs,
        deleteRetries,
        keepAliveMs:
          this.#tuning.keepAliveMs ??
          Math.min(DAYTONA_DEFAULTS.maxKeepAliveMs, (params.autoStopInterval * 60_000) / 3),
        autoDeleteMinutes: params.autoDeleteInterval,
        warn: this.#options.warn,
        archives: this.#archives,
      },
      signal,
    );
    this.#live.add(sandbox);
    sandbox.onDisposed(() => this.#live.delete(sandbox));
    if (signal?.aborted) {
      await sandbox.dispose().catch((err: unknown) => this.#options.warn(errorMessage(err)));
      throw signal.reason;
    }
    return sandbox;
  }

  /** How many upload archives this backend has packed (shared by its sandboxes). @internal */
  get uploadArchivePacks(): number {
    return this.#archives.packs;
  }

  /** Removes leftover sandboxes of dead runs (see `cleanupDaytona`). */
  async cleanup(options: CleanupOptions): Promise<CleanupReport> {
    const client = await this.#getClient();
    return cleanupDaytona(client, options, {
      remove: {
        backoff: this.#backoff,
        retries: this.#tuning.deleteRetries ?? DAYTONA_DEFAULTS.deleteRetries,
        stopFallback: true,
      },
    });
  }

  /**
   * Stops keep-alive timers, waits for the deletion of creates that were
   * still in flight at cancellation (at most the create timeout plus two
   * request timeouts), and disposes the SDK client. Does not delete live
   * sandboxes. Memoized.
   */
  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    for (const sandbox of this.#live) {
      sandbox.stopKeepAlive();
      sandbox.releaseConnections();
    }
    if (this.#background.size > 0) {
      // A create left in flight settles within its own deadline; then one delete.
      const wait =
        (this.#tuning.createTimeoutMs ?? DAYTONA_DEFAULTS.createTimeoutImageMs) +
        2 * (this.#tuning.requestTimeoutMs ?? DAYTONA_DEFAULTS.requestTimeoutMs);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#background]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, wait);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    await this.#archives.close();
    const client = await this.#client?.catch(() => undefined);
    await client?.[Symbol.asyncDispose]();
  }
}
