/**
 * The Daytona SDK on a worker thread: a `DaytonaClientLike` whose calls are
 * messages to the thread of `daytona-worker.ts`, which holds the real SDK
 * objects by number.
 *
 * Why: every HTTP request through the SDK (axios, follow-redirects, form-data,
 * busboy, its own wrappers) costs 1.6–2 ms of CPU, eight per job. All jobs of
 * a wave reach each step at the same moment, so on rho-flow's main thread
 * those costs queue behind each other and behind the engine, longer than a
 * 30 ms exec (issue 7, target 2). On their own thread they run beside the
 * engine, results and reporters.
 *
 * - One thread per process, started by `DaytonaBackend.preflight()`
 *   ({@link startDaytonaThread}): it loads the SDK (and the modules the SDK
 *   loads on first use) while the main thread goes on starting the run; the
 *   main thread never loads the SDK.
 * - The thread holds the event loop only while a call is pending (`ref`), so
 *   an idle client never keeps the process alive; it dies with the process.
 * - Errors cross as plain data (`WireError`) and come back as `Error`s with
 *   the same name, message, stack, status, code, headers and cause; a call
 *   whose signal aborted rejects with the signal's reason.
 * - If the thread dies, its pending calls fail with a `SandboxError`
 *   ('unavailable'); the next call starts a new thread, where clients are
 *   made again and sandboxes are found again by id (so teardown still works).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { SandboxError } from '../errors.js';
import type {
  DaytonaClientConfig,
  DaytonaClientLike,
  DaytonaCreateParams,
  DaytonaFileInfoLike,
  DaytonaSandboxLike,
} from './daytona-client.js';
import {
  DAYTONA_WORKER_SOURCE,
  SANDBOX_METHODS,
  SDK_AXIOS_DEFAULTS,
  type FromWorker,
  type ToWorker,
  type WireError,
  type WireSandbox,
} from './daytona-worker.js';

/** Modules the SDK requires on first use (`utils/Import.js`), loaded by the thread at start. */
const WARM_MODULES = ['busboy', 'form-data'];

type Request =
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
class SdkThread {
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
  return thread(sdkError).loaded();
}

function thread(sdkError: (err: unknown) => unknown): SdkThread {
  startDaytonaThread(sdkError);
  return current as SdkThread;
}

/** Ends the SDK's thread as a crash would (its pending calls fail). @internal */
export async function terminateDaytonaThread(): Promise<void> {
  await current?.terminate();
}

/** The symbol under which a thread-backed sandbox offers its `toolboxReleaser`. */
export const WORKER_RELEASER = Symbol('rho-flow.daytona.releaser');

/** A client whose SDK lives on the thread. */
export class WorkerDaytonaClient implements DaytonaClientLike {
  readonly #config: DaytonaClientConfig & Record<string, unknown>;
  readonly #sdkError: (err: unknown) => unknown;
  #thread: SdkThread | undefined;
  #ref: Promise<number> | undefined;

  constructor(sdkConfig: DaytonaClientConfig & Record<string, unknown>, sdkError: (err: unknown) => unknown) {
    this.#config = sdkConfig;
    this.#sdkError = sdkError;
  }

  /** The thread and this client's number in it (made again in a new thread). */
  async #at(): Promise<{ t: SdkThread; ref: number }> {
    const t = thread(this.#sdkError);
    if (t !== this.#thread || !this.#ref) {
      this.#thread = t;
      this.#ref = t.request<number>({ type: 'client', config: this.#config });
      this.#ref.catch(() => {
        if (this.#thread === t) this.#ref = undefined;
      });
    }
    return { t, ref: await this.#ref };
  }

  /** Calls `method` on this client or on object `ref` of the current thread (answer typed by the caller). @internal */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the answer's shape is the method's
  async call<T>(
    method: string,
    args: unknown[],
    on?: (t: SdkThread) => Promise<number>,
    options: { transfer?: ArrayBuffer[]; signal?: AbortSignal; signalArg?: number } = {},
  ): Promise<{ t: SdkThread; value: T }> {
    const at = await this.#at();
    const ref = on ? await on(at.t) : at.ref;
    const { signalArg, ...rest } = options;
    const value = await at.t.request<T>(
      { type: 'call', ref, method, args, ...(signalArg !== undefined ? { signalArg } : {}) },
      rest,
    );
    return { t: at.t, value };
  }

  async create(params: DaytonaCreateParams, options: { timeout: number }): Promise<DaytonaSandboxLike> {
    const { t, value } = await this.call<WireSandbox>('create', [params, options]);
    return new WorkerSandbox(this, t, value);
  }

  async get(idOrName: string): Promise<DaytonaSandboxLike> {
    const { t, value } = await this.call<WireSandbox>('get', [idOrName]);
    return new WorkerSandbox(this, t, value);
  }

  async *list(query: { labels?: Record<string, string>; limit?: number }): AsyncIterable<DaytonaSandboxLike> {
    const { t, value: iterator } = await this.call<number>('list', [query]);
    let done = false;
    try {
      for (;;) {
        const r = await t.request<{ done: boolean; sandbox?: WireSandbox }>({
          type: 'call',
          ref: iterator,
          method: 'next',
          args: [],
        });
        if (r.done || !r.sandbox) {
          done = true;
          return;
        }
        yield new WorkerSandbox(this, t, r.sandbox);
      }
    } finally {
      if (!done) void t.request({ type: 'call', ref: iterator, method: 'return', args: [] }).catch(() => {});
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#thread || this.#thread.dead || !this.#ref) return;
    await this.call('dispose', []);
  }
}

const copyOut = (b: Buffer, transfer: ArrayBuffer[]): Uint8Array => {
  const u8 = new Uint8Array(b); // the caller keeps its buffer: send an exact-size copy, moved
  transfer.push(u8.buffer);
  return u8;
};
const toBuffer = (u8: Uint8Array): Buffer => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

/** A sandbox whose SDK object lives on the thread. */
class WorkerSandbox implements DaytonaSandboxLike {
  readonly id: string;
  name: string;
  state?: string;
  labels: Record<string, string>;
  errorReason?: string;
  createdAt?: string;
  readonly process: DaytonaSandboxLike['process'];
  readonly fs: DaytonaSandboxLike['fs'];
  readonly #client: WorkerDaytonaClient;
  #thread: SdkThread;
  #ref: number;
  #armed = false;
  #released = false;

  constructor(client: WorkerDaytonaClient, t: SdkThread, data: WireSandbox) {
    this.#client = client;
    this.#thread = t;
    this.#ref = data.ref;
    this.id = data.id;
    this.name = data.name;
    this.labels = data.labels;
    this.#apply(data);
    const call = <T>(
      method: (typeof SANDBOX_METHODS)[number],
      args: unknown[],
      options?: Parameters<WorkerDaytonaClient['call']>[3],
    ) => this.#call<T>(method, args, options);
    this.process = {
      executeCommand: (...args) => call<{ exitCode: number; result: string }>('process.executeCommand', args),
    };
    this.fs = {
      uploadFiles: (files, timeout) => {
        const transfer: ArrayBuffer[] = [];
        const sent = files.map((f) =>
          typeof f.source === 'string' ? f : { ...f, source: copyOut(f.source, transfer) },
        );
        return call<undefined>('fs.uploadFiles', [sent, timeout], { transfer });
      },
      uploadFileStream: (source, remotePath, options = {}) => {
        const { signal, ...rest } = options;
        return call<undefined>('fs.uploadFileStream', [source, remotePath, rest], {
          ...(signal ? { signal, signalArg: 2 } : {}),
        });
      },
      downloadFile: async (remotePath, timeout) =>
        toBuffer(await call<Uint8Array>('fs.downloadFile', [remotePath, timeout])),
      downloadFiles: async (files, timeoutSec) =>
        (
          await call<Array<{ source: string; result?: string | Uint8Array; error?: string }>>(
            'fs.downloadFiles',
            [files, timeoutSec],
          )
        ).map(({ result, ...r }) =>
          result === undefined ? r : { ...r, result: typeof result === 'string' ? result : toBuffer(result) },
        ),
      getFileDetails: (p) => call<DaytonaFileInfoLike>('fs.getFileDetails', [p]),
      listFiles: (p, options) => call<DaytonaFileInfoLike[]>('fs.listFiles', [p, options]),
      searchFiles: (p, pattern) => call<{ files: string[] }>('fs.searchFiles', [p, pattern]),
      deleteFile: (p, recursive) => call<undefined>('fs.deleteFile', [p, recursive]),
    };
  }

  #apply(data: Omit<WireSandbox, 'ref' | 'id'>): void {
    this.name = data.name;
    this.labels = data.labels;
    this.state = data.state;
    this.errorReason = data.errorReason;
    this.createdAt = data.createdAt;
  }

  /** This sandbox's number in thread `t`: after a new thread started, it is looked up by id. */
  async #refIn(t: SdkThread): Promise<number> {
    if (t !== this.#thread) {
      const found = await this.#client.call<WireSandbox>('get', [this.id]);
      if (found.t !== t) throw t.dead ?? new SandboxError('unavailable', 'the Daytona SDK thread changed');
      this.#thread = t;
      this.#ref = found.value.ref;
      if (this.#armed) t.post({ type: 'arm', ref: this.#ref });
      if (this.#released) t.post({ type: 'release', ref: this.#ref });
    }
    return this.#ref;
  }

  async #call<T>(
    method: (typeof SANDBOX_METHODS)[number],
    args: unknown[],
    options?: Parameters<WorkerDaytonaClient['call']>[3],
  ): Promise<T> {
    return (await this.#client.call<T>(method, args, (t) => this.#refIn(t), options)).value;
  }

  async #lifecycle(
    method: 'delete' | 'stop' | 'refreshData' | 'refreshActivity' | 'waitUntilStarted',
    args: unknown[],
  ) {
    this.#apply(await this.#call<WireSandbox>(method, args));
  }

  delete(timeout?: number): Promise<void> {
    return this.#lifecycle('delete', [timeout]);
  }
  stop(timeout?: number): Promise<void> {
    return this.#lifecycle('stop', [timeout]);
  }
  refreshData(): Promise<void> {
    return this.#lifecycle('refreshData', []);
  }
  refreshActivity(): Promise<void> {
    return this.#lifecycle('refreshActivity', []);
  }
  waitUntilStarted(timeout?: number): Promise<void> {
    return this.#lifecycle('waitUntilStarted', [timeout]);
  }

  /** `toolboxReleaser` across the thread: arm the switch there now, throw it on call. */
  [WORKER_RELEASER](): () => void {
    this.#armed = true;
    this.#thread.post({ type: 'arm', ref: this.#ref });
    return () => {
      this.#released = true;
      this.#thread.post({ type: 'release', ref: this.#ref });
    };
  }
}
