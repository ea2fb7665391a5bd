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
 * The thread itself (start, calls, errors, crash) is `daytona-sdk-thread.ts`;
 * the main thread never loads the SDK. If the thread dies, the next call
 * starts a new one, where clients are made again and sandboxes are found
 * again by id (so teardown still works).
 */
import type {
  DaytonaClientConfig,
  DaytonaClientLike,
  DaytonaCreateParams,
  DaytonaFileInfoLike,
  DaytonaSandboxLike,
} from './daytona-client.js';
import { SandboxError } from '../errors.js';
import { sdkThread, type SdkThread } from './daytona-sdk-thread.js';
import { SANDBOX_METHODS, type WireSandbox } from './daytona-worker.js';

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
    const t = sdkThread(this.#sdkError);
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
