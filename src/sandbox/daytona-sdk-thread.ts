/**
 * The Daytona SDK's worker thread, as the main thread sees it: starts the
 * program of `daytona-worker.ts`, sends it calls and settles their promises
 * (see `daytona-worker-client.ts` for why the SDK runs there).
 *
 * - One thread per process, started by `DaytonaBackend.preflight()`
 *   ({@link startDaytonaThread}): it loads the SDK (and the modules the SDK
 *   loads on first use) while the main thread goes on starting the run.
 * - The thread holds the event loop only while a call is pending (`ref`), so
 *   an idle client never keeps the process alive; it dies with the process.
 * - Errors cross as plain data (`WireError`) and come back as `Error`s with
 *   the same name, message, stack, status, code, headers and cause; a call
 *   whose signal aborted rejects with the signal's reason.
 * - If the thread dies, its pending calls fail with a `SandboxError`
 *   ('unavailable'); the next call starts a new thread.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { SandboxError } from '../errors.js';
import {
  DAYTONA_WORKER_SOURCE,
  SANDBOX_METHODS,
  SDK_AXIOS_DEFAULTS,
  type FromWorker,
  type ToWorker,
  type WireError,
} from './daytona-worker.js';

/** Modules the SDK requires on first use (`utils/Import.js`), loaded by the thread at start. */
const WARM_MODULES = ['busboy', 'form-data'];

/** A call to the thread (its id is added when sent). */
export type Request =
  Omit<Extract<ToWorker, { type: 'client' }>, 'id'> | Omit<Extract<ToWorker, { type: 'call' }>, 'id'>;

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** A thrown value as it was on the SDK's thread. */
export function reviveError(w: WireError): Error {
  const e = new Error(w.message, w.cause ? { cause: reviveError(w.cause) } : undefined);
  Object.defineProperty(e, 'name', { value: w.name, writable: true, configurable: true });
  if (w.stack !== undefined) e.stack = w.stack;
  const { name: _n, message: _m, stack: _s, cause: _c, ...fields } = w;
  return Object.assign(e, fields);
}

/** One worker thread running the SDK. */
export class SdkThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #loadError: unknown;
  #crash: Error | undefined;
  /** Set once the thread has exited: every call fails with it. */
  dead: Error | undefined;
  #loaded = false;
  #markLoaded: () => void = () => undefined;
  readonly #loadedPromise = new Promise<void>((resolve) => {
    this.#markLoaded = resolve;
  });

  constructor(sdkPath: string, sdkError: (err: unknown) => unknown) {
    this.#worker = new Worker(DAYTONA_WORKER_SOURCE, {
      eval: true,
      workerData: {
        sdkPath,
        warm: WARM_MODULES,
        methods: SANDBOX_METHODS,
        axiosDefaults: SDK_AXIOS_DEFAULTS,
      },
    });
    this.#worker.unref();
    this.#worker.on('message', (m: FromWorker) => {
      if (m.type === 'loaded') {
        if (m.error) this.#loadError = sdkError(reviveError(m.error));
        this.#setLoaded();
        return;
      }
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#settled(m.id, p);
      if (m.type === 'result') p.resolve(m.value);
      else p.reject(p.signal?.aborted ? p.signal.reason : reviveError(m.error));
    });
    this.#worker.on('error', (err) => {
      this.#crash = err;
    });
    this.#worker.on('exit', (code) => {
      const why = this.#crash ? `: ${this.#crash.message}` : ` (exit code ${code})`;
      this.dead =
        this.#loadError instanceof Error
          ? this.#loadError
          : new SandboxError('unavailable', `the Daytona SDK thread stopped${why}`, {
              ...(this.#crash ? { cause: this.#crash } : {}),
            });
      for (const [id, p] of [...this.#pending]) {
        this.#settled(id, p);
        p.reject(this.dead);
      }
      this.#setLoaded();
    });
  }

  #setLoaded(): void {
    this.#loaded = true;
    this.#markLoaded();
    if (this.#pending.size === 0) this.#worker.unref();
  }

  /**
   * Resolves once the thread has loaded the SDK (or failed to, or died: the
   * next call reports that). Holds the process meanwhile.
   */
  loaded(): Promise<void> {
    if (!this.#loaded) this.#worker.ref();
    return this.#loadedPromise;
  }

  #settled(id: number, p: Pending): void {
    this.#pending.delete(id);
    if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort);
    if (this.#pending.size === 0) this.#worker.unref();
  }

  /** Sends a call; `transfer` moves buffers instead of copying them; `signal` cancels it in the thread. */
  request<T>(m: Request, options: { transfer?: ArrayBuffer[]; signal?: AbortSignal } = {}): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const { signal } = options;
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the abort's own reason, as the SDK's call would
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { resolve, reject };
      if (signal) {
        p.signal = signal;
        p.onAbort = () => this.post({ type: 'abort', id });
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, p);
      this.#worker.postMessage({ ...m, id }, options.transfer ?? []);
    });
  }

  /** A message without an answer (abort, arm, release). */
  post(m: Extract<ToWorker, { type: 'abort' | 'arm' | 'release' }>): void {
    if (!this.dead) this.#worker.postMessage(m);
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}

let current: SdkThread | undefined;
let sdkPath: string | undefined;

/**
 * Starts the SDK's thread (once; again after it died). Throws (what
 * `sdkError` makes of it) when the SDK is not installed.
 */
export function startDaytonaThread(sdkError: (err: unknown) => unknown): void {
  try {
    sdkPath ??= createRequire(import.meta.url).resolve('@daytonaio/sdk');
  } catch (err) {
    throw sdkError(err);
  }
  if (!current || current.dead) current = new SdkThread(sdkPath, sdkError);
}

/**
 * Resolves once the SDK's thread has loaded the SDK. The backend waits for it
 * before its first request, so that a creation-rate token is never spent
 * while the request would still sit in the thread's queue (the server would
 * then see it late and the next one early).
 */
export function daytonaThreadLoaded(sdkError: (err: unknown) => unknown): Promise<void> {
  return sdkThread(sdkError).loaded();
}

/** The current thread (started when there is none or it died). */
export function sdkThread(sdkError: (err: unknown) => unknown): SdkThread {
  startDaytonaThread(sdkError);
  return current as SdkThread;
}

/** Ends the SDK's thread as a crash would (its pending calls fail). @internal */
export async function terminateDaytonaThread(): Promise<void> {
  await current?.terminate();
}
