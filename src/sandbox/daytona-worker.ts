/**
 * The program of the Daytona SDK's worker thread, and the messages it
 * exchanges with `daytona-worker-client.ts` (which explains why it exists).
 *
 * It is plain JavaScript in a string, run with `new Worker(…, { eval: true })`
 * as `spawner.ts` does: there is no file to find, whether rho-flow runs from
 * its sources under vitest, from `dist/` as a library or from the bundled CLI,
 * and no TypeScript loader is needed in the worker. It loads the SDK with
 * `require` from the path the main thread resolved, then holds the SDK's
 * objects (clients, sandboxes, list iterators) in a table by number and runs
 * the calls it is sent on them. Node's own modules are loaded with `import()`
 * so that it runs whether eval'd code is CommonJS or an ES module.
 */

/** An error as it crosses the thread: what `classifyError` and the backend read. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  statusCode?: number;
  status?: number;
  code?: string | number;
  errorCode?: string;
  source?: string;
  headers?: Record<string, string>;
  response?: { status?: number; headers?: Record<string, string> };
  cause?: WireError;
}

/** A sandbox's data, sent with every answer that may have changed it. */
export interface WireSandbox {
  ref: number;
  id: string;
  name: string;
  state?: string;
  labels: Record<string, string>;
  errorReason?: string;
  createdAt?: string;
}

export type ToWorker =
  | { type: 'client'; id: number; config: Record<string, unknown> }
  | { type: 'call'; id: number; ref: number; method: string; args: unknown[]; signalArg?: number }
  /** Cancels the call `id` (its `signalArg` option's signal aborts). */
  | { type: 'abort'; id: number }
  /** Puts every toolbox request of sandbox `ref` under one switch (`toolboxReleaser`)… */
  | { type: 'arm'; ref: number }
  /** …and throws it. */
  | { type: 'release'; ref: number };

export type FromWorker =
  | { type: 'loaded'; error?: WireError }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: WireError };

/** Sandbox methods a call may name (`fs.*` and `process.*` live on the sandbox's sub-objects). */
export const SANDBOX_METHODS = [
  'process.executeCommand',
  'fs.uploadFiles',
  'fs.uploadFileStream',
  'fs.downloadFile',
  'fs.downloadFiles',
  'fs.getFileDetails',
  'fs.listFiles',
  'fs.searchFiles',
  'fs.deleteFile',
  'delete',
  'stop',
  'refreshData',
  'refreshActivity',
  'waitUntilStarted',
] as const;

/**
 * Defaults given to every axios instance of the SDK — the client's (control
 * plane) and each sandbox's (toolbox) — in both thread modes
 * (`tuneSdkAxios`), settings that change what a request costs, not what it
 * does:
 * - `maxRedirects: 0`: axios then sends through node's `http`/`https`
 *   directly instead of wrapping every request in follow-redirects (~0.2 ms
 *   of CPU per request). Neither the Daytona API nor the toolbox answers
 *   with a redirect; the SDK already sends its uploads with
 *   `maxRedirects: 0` (`FileSystem.js`). A 3xx would now fail the request
 *   (axios' `validateStatus`) instead of being followed.
 */
export const SDK_AXIOS_DEFAULTS: Readonly<Record<string, unknown>> = Object.freeze({ maxRedirects: 0 });

export const DAYTONA_WORKER_SOURCE = `
(async () => {
  const { parentPort: port, workerData } = await import('node:worker_threads');
  const { createRequire } = await import('node:module');
  const post = (m, transfer) => port.postMessage(m, transfer);

  function encodeHeaders(h) {
    if (!h || typeof h !== 'object') return undefined;
    const plain = typeof h.toJSON === 'function' ? h.toJSON() : h;
    const out = {};
    for (const [k, v] of Object.entries(plain)) {
      if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
      else if (Array.isArray(v)) out[k] = v.join(', ');
    }
    return out;
  }
  function encodeError(e, depth = 0) {
    if (e === null || typeof e !== 'object') return { name: 'Error', message: String(e) };
    const out = { name: String(e.name || 'Error'), message: String(e.message ?? '') };
    if (typeof e.stack === 'string') out.stack = e.stack;
    for (const k of ['statusCode', 'status', 'code', 'errorCode', 'source']) {
      try {
        const v = e[k];
        if (typeof v === 'string' || typeof v === 'number') out[k] = v;
      } catch {}
    }
    const headers = encodeHeaders(e.headers);
    if (headers) out.headers = headers;
    if (e.response && typeof e.response === 'object') {
      out.response = { status: e.response.status, headers: encodeHeaders(e.response.headers) };
    }
    if (e.cause !== undefined && depth < 3) out.cause = encodeError(e.cause, depth + 1);
    return out;
  }

  let sdk;
  try {
    const req = createRequire(workerData.sdkPath);
    sdk = req(workerData.sdkPath);
    // Modules the SDK only loads on first use, i.e. inside the first wave of jobs.
    for (const name of workerData.warm) {
      try { req(name); } catch {}
    }
  } catch (e) {
    post({ type: 'loaded', error: encodeError(e) });
    return; // no listener: the thread ends
  }
  post({ type: 'loaded' });

  const objects = new Map(); // ref -> { kind: 'client' | 'sandbox' | 'iterator', value, owner }
  const calls = new Map(); // call id -> AbortController
  const releasers = new Map(); // sandbox ref -> AbortController
  let nextRef = 1;
  const add = (kind, value, owner) => {
    const ref = nextRef++;
    objects.set(ref, { kind, value, owner });
    return ref;
  };
  const snapshot = (s) => ({
    id: s.id, name: s.name, state: s.state, labels: s.labels, errorReason: s.errorReason, createdAt: s.createdAt,
  });
  // As tuneSdkAxios (daytona-client.ts): the same defaults on every axios instance of the SDK.
  const tune = (instance) => {
    if (instance && instance.defaults) Object.assign(instance.defaults, workerData.axiosDefaults);
  };
  const sandboxOut = (s, owner) => {
    tune(s.axiosInstance);
    return { ref: add('sandbox', s, owner), ...snapshot(s) };
  };
  /** A buffer the main thread can take over without a copy (a view of a shared pool is copied first). */
  const movable = (b, transfer) => {
    const u8 = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
    const view = new Uint8Array(u8.buffer, u8.byteOffset, u8.byteLength);
    transfer.push(view.buffer);
    return view;
  };
  const toBuffer = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

  async function clientCall(client, ref, method, args, transfer) {
    if (method === 'create') {
      const [params, options] = args;
      // The SDK mutates \`labels\` (adds \`code-toolbox-language\`): the copy crossing the thread is ours.
      return sandboxOut(await client.create(params, options), ref);
    }
    if (method === 'get') return sandboxOut(await client.get(args[0]), ref);
    if (method === 'list') return add('iterator', client.list(args[0])[Symbol.asyncIterator](), ref);
    if (method === 'dispose') {
      await client[Symbol.asyncDispose]();
      for (const [r, o] of objects) if (r === ref || o.owner === ref) objects.delete(r);
      return undefined;
    }
    throw new Error('unknown client method ' + method);
  }

  async function sandboxCall(s, method, args, transfer) {
    if (!workerData.methods.includes(method)) throw new Error('unknown sandbox method ' + method);
    const dot = method.indexOf('.');
    const target = dot < 0 ? s : s[method.slice(0, dot)];
    const name = method.slice(dot + 1);
    if (method === 'fs.uploadFiles') {
      args[0] = args[0].map((f) => typeof f.source === 'string' ? f : { ...f, source: toBuffer(f.source) });
    }
    const value = await target[name](...args);
    if (method === 'fs.downloadFile') return movable(value, transfer);
    if (method === 'fs.downloadFiles') {
      return value.map((r) => Buffer.isBuffer(r.result) ? { ...r, result: movable(r.result, transfer) } : r);
    }
    // Lifecycle calls (delete, refreshData, …) may change the sandbox's data: send it along.
    return dot > 0 ? value : snapshot(s);
  }

  async function call(m) {
    const o = objects.get(m.ref);
    if (!o) throw new Error('the Daytona SDK thread has no object ' + m.ref);
    const transfer = [];
    if (m.signalArg !== undefined) {
      const controller = new AbortController();
      calls.set(m.id, controller);
      m.args[m.signalArg] = { ...m.args[m.signalArg], signal: controller.signal };
    }
    try {
      let value;
      if (o.kind === 'client') value = await clientCall(o.value, m.ref, m.method, m.args, transfer);
      else if (o.kind === 'sandbox') value = await sandboxCall(o.value, m.method, m.args, transfer);
      else if (m.method === 'next') {
        const r = await o.value.next();
        if (r.done) objects.delete(m.ref);
        value = r.done ? { done: true } : { done: false, sandbox: sandboxOut(r.value, o.owner) };
      } else {
        objects.delete(m.ref);
        await o.value.return?.();
      }
      post({ type: 'result', id: m.id, value }, transfer);
    } finally {
      calls.delete(m.id);
    }
  }

  port.on('message', (m) => {
    if (m.type === 'abort') {
      calls.get(m.id)?.abort();
      return;
    }
    if (m.type === 'arm') {
      // As toolboxReleaser: the sandbox's (private) axios instance gets a default signal.
      const s = objects.get(m.ref)?.value;
      const instance = s && s.axiosInstance;
      if (!instance || !instance.defaults) return;
      const controller = new AbortController();
      instance.defaults.signal = controller.signal;
      releasers.set(m.ref, controller);
      return;
    }
    if (m.type === 'release') {
      releasers.get(m.ref)?.abort(new Error('the sandbox was released'));
      releasers.delete(m.ref);
      return;
    }
    const work = m.type === 'client'
      ? Promise.resolve().then(() => {
          const client = new sdk.Daytona(m.config);
          tune(client.sandboxApi && client.sandboxApi.axios);
          post({ type: 'result', id: m.id, value: add('client', client, 0) });
        })
      : call(m);
    work.catch((e) => post({ type: 'error', id: m.id, error: encodeError(e) }));
  });
})();
`;
