/**
 * The only module that touches `@daytonaio/sdk`. It is imported lazily (so a
 * run on the local backend never loads the SDK's ~170 packages) and narrowed
 * to the small `DaytonaClientLike` / `DaytonaSandboxLike` surface the backend
 * uses, which keeps the rest of the backend honest about what it depends on.
 *
 * Client settings, and why (daytona-sdk.md):
 * - `apiUrl` is always passed explicitly: without it the SDK refuses to start
 *   when `DAYTONA_API_URL` is in the environment *and* a `.env` file in the cwd
 *   names it too (the endpoint-ambiguity check).
 * - `useDeprecatedPolling: true`: the default socket.io event stream keeps the
 *   Node process alive for ~3 minutes when the websocket cannot connect. Polling
 *   costs a few GETs while a sandbox starts; nothing else uses the socket.
 * - `requestTimeoutMs`: the SDK default is 24 hours per HTTP request.
 */
import { createRequire } from 'node:module';
import { UserError } from '../errors.js';
import { daytonaThreadLoaded, startDaytonaThread } from './daytona-sdk-thread.js';
import { WORKER_RELEASER, WorkerDaytonaClient } from './daytona-worker-client.js';
import { SDK_AXIOS_DEFAULTS } from './daytona-worker.js';

/** File metadata as the Daytona toolbox returns it. */
export interface DaytonaFileInfoLike {
  name: string;
  path?: string;
  isDir: boolean;
  size: number;
  /** Go `FileMode.String()`, e.g. `-rw-r--r--`, `drwxr-xr-x`, `Lrwxrwxrwx`. */
  mode: string;
  /** Octal permission bits, e.g. `0644`. */
  permissions: string;
  modTime: string;
}

/** The part of the SDK's `Sandbox` the backend uses. */
export interface DaytonaSandboxLike {
  readonly id: string;
  name: string;
  state?: string;
  labels: Record<string, string>;
  errorReason?: string;
  createdAt?: string;
  process: {
    executeCommand(
      command: string,
      cwd?: string,
      env?: Record<string, string>,
      timeout?: number,
    ): Promise<{ exitCode: number; result: string }>;
  };
  fs: {
    uploadFiles(
      files: Array<{ source: string | Buffer; destination: string }>,
      timeout?: number,
    ): Promise<void>;
    uploadFileStream(
      source: string,
      remotePath: string,
      options?: { signal?: AbortSignal; timeout?: number },
    ): Promise<void>;
    downloadFile(remotePath: string, timeout?: number): Promise<Buffer>;
    downloadFiles(
      files: Array<{ source: string; destination?: string }>,
      timeoutSec?: number,
    ): Promise<Array<{ source: string; result?: string | Buffer; error?: string }>>;
    getFileDetails(path: string): Promise<DaytonaFileInfoLike>;
    listFiles(path: string, options?: { depth?: number }): Promise<DaytonaFileInfoLike[]>;
    searchFiles(path: string, pattern: string): Promise<{ files: string[] }>;
    deleteFile(path: string, recursive?: boolean): Promise<void>;
  };
  delete(timeout?: number): Promise<void>;
  stop(timeout?: number): Promise<void>;
  refreshData(): Promise<void>;
  refreshActivity(): Promise<void>;
  waitUntilStarted(timeout?: number): Promise<void>;
}

/** Create parameters the backend sends (a subset of the SDK's). */
export interface DaytonaCreateParams {
  name: string;
  image?: string;
  snapshot?: string;
  resources?: { cpu?: number; memory?: number; disk?: number; gpu?: number };
  envVars: Record<string, string>;
  labels: Record<string, string>;
  autoStopInterval: number;
  autoDeleteInterval: number;
  networkBlockAll: boolean;
}

/** The part of the SDK's `Daytona` client the backend uses. */
export interface DaytonaClientLike {
  create(params: DaytonaCreateParams, options: { timeout: number }): Promise<DaytonaSandboxLike>;
  get(idOrName: string): Promise<DaytonaSandboxLike>;
  list(query: { labels?: Record<string, string>; limit?: number }): AsyncIterable<DaytonaSandboxLike>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface DaytonaClientConfig {
  apiKey: string;
  apiUrl: string;
  target?: string;
  requestTimeoutMs: number;
}

/**
 * Where the SDK runs: `worker` (the default), a worker thread of its own
 * (`daytona-worker-client.ts`); `main`, the calling thread
 * (`RHO_FLOW_DAYTONA_THREAD=main`).
 */
export type DaytonaThreadMode = 'worker' | 'main';

/** The mode `RHO_FLOW_DAYTONA_THREAD` asks for (anything but `main` is `worker`). */
export function daytonaThreadMode(env: Readonly<Record<string, string | undefined>>): DaytonaThreadMode {
  return env.RHO_FLOW_DAYTONA_THREAD?.trim() === 'main' ? 'main' : 'worker';
}

/**
 * Makes the SDK ready to use without waiting for it: in `worker` mode, starts
 * its thread (which loads it while this thread goes on); in `main` mode,
 * loads it here. Throws the `UserError` of a missing SDK.
 */
export async function prepareDaytonaSdk(mode: DaytonaThreadMode): Promise<void> {
  if (mode === 'worker') startDaytonaThread(sdkImportError);
  else await loadDaytonaSdk();
}

type SdkModule = typeof import('@daytonaio/sdk');

/** Default API endpoint, as the SDK's. */
export const DEFAULT_DAYTONA_API_URL = 'https://app.daytona.io/api';

let sdkPromise: Promise<SdkModule> | undefined;

/**
 * Loads `@daytonaio/sdk` once. A missing package becomes a `UserError`
 * saying what to install.
 *
 * Its CommonJS build, with `require`: the SDK's ES module build imports ~500
 * CommonJS files of its dependencies, and node parses each of them once more
 * for its named exports when an ES module imports it (cjs-module-lexer). The
 * same code through `require` loads in ~300 ms instead of ~630 ms (issue 7,
 * startup of every Daytona run).
 */
export function loadDaytonaSdk(): Promise<SdkModule> {
  sdkPromise ??= new Promise<SdkModule>((resolve) => {
    resolve(createRequire(import.meta.url)('@daytonaio/sdk') as SdkModule);
  }).catch((err: unknown) => {
    sdkPromise = undefined;
    throw sdkImportError(err);
  });
  return sdkPromise;
}

/** A failed import of the SDK as the error to show: a missing package is a `UserError`. @internal */
export function sdkImportError(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
    return new UserError(
      'the daytona backend needs the @daytonaio/sdk package: run `npm install @daytonaio/sdk` next to rho-flow',
      { cause: err },
    );
  }
  return err;
}

/** Creates an SDK client with the settings above. */
export async function createDaytonaClient(
  config: DaytonaClientConfig,
  mode: DaytonaThreadMode = 'worker',
): Promise<DaytonaClientLike> {
  const settings = {
    apiKey: config.apiKey,
    apiUrl: config.apiUrl,
    ...(config.target !== undefined ? { target: config.target } : {}),
    useDeprecatedPolling: true,
    otelEnabled: false,
    requestTimeoutMs: config.requestTimeoutMs,
  };
  if (mode === 'worker') {
    await daytonaThreadLoaded(sdkImportError); // starts the thread if preflight did not
    return new WorkerDaytonaClient(settings, sdkImportError);
  }
  const { Daytona } = await loadDaytonaSdk();
  return adapt(new Daytona(settings));
}

/**
 * Puts every toolbox request of `sandbox` under one abort switch and returns
 * the function that throws it: requests still in flight are cancelled and new
 * ones fail at once. Why: an exec without a timeout is sent with a 24 h HTTP
 * deadline (the SDK lifts `requestTimeoutMs` for execs), so an exec the
 * backend gave up on — a hung toolbox, an abort — would otherwise hold a
 * socket open and keep the whole process alive after the run. Control-plane
 * requests (delete, stop) use the client's own connection and are unaffected.
 *
 * The SDK has no public hook for this; it reaches the sandbox's (private)
 * axios instance and sets its default `signal`. Objects without one (test
 * doubles) get a no-op. A sandbox on the SDK's thread does the same there.
 */
export function toolboxReleaser(sandbox: DaytonaSandboxLike): () => void {
  const across = (sandbox as { [WORKER_RELEASER]?: () => () => void })[WORKER_RELEASER];
  if (across) return across.call(sandbox);
  const instance = (sandbox as { axiosInstance?: { defaults?: { signal?: unknown } } }).axiosInstance;
  if (!instance?.defaults) return () => undefined;
  const controller = new AbortController();
  instance.defaults.signal = controller.signal;
  return () => {
    controller.abort(new Error('the sandbox was released'));
  };
}

/**
 * Gives an axios instance of the SDK `SDK_AXIOS_DEFAULTS` (`daytona-worker.ts`
 * says which and why); the SDK's thread does the same to its own. The
 * instances are private to the SDK: the client's is its `sandboxApi.axios`,
 * a sandbox's its `axiosInstance` (as in `toolboxReleaser`). Anything
 * without `defaults` (a test double) is left alone. @internal
 */
export function tuneSdkAxios(instance: unknown): void {
  const defaults = (instance as { defaults?: Record<string, unknown> } | undefined)?.defaults;
  if (defaults) Object.assign(defaults, SDK_AXIOS_DEFAULTS);
}

function adapt(client: InstanceType<SdkModule['Daytona']>): DaytonaClientLike {
  tuneSdkAxios((client as unknown as { sandboxApi?: { axios?: unknown } }).sandboxApi?.axios);
  const tuned = <T extends object>(sandbox: T): T => {
    tuneSdkAxios((sandbox as { axiosInstance?: unknown }).axiosInstance);
    return sandbox;
  };
  return {
    // The SDK mutates `labels` (adds `code-toolbox-language`): pass a copy.
    create: async (params, options) =>
      tuned(await client.create({ ...params, labels: { ...params.labels } }, options)),
    get: async (idOrName) => tuned(await client.get(idOrName)),
    list: async function* (query) {
      for await (const sandbox of client.list(query)) yield tuned(sandbox);
    },
    [Symbol.asyncDispose]: () => client[Symbol.asyncDispose](),
  };
}
