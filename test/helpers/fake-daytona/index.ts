/**
 * A fake Daytona API + toolbox server for tests, spoken to by the real
 * `@daytonaio/sdk` over HTTP on 127.0.0.1 (wire protocol: daytona-sdk.md §3–4).
 *
 * ```ts
 * await using fake = await startFakeDaytona({ latency: { create: 300 } });
 * const env = { DAYTONA_API_KEY: fake.apiKey, DAYTONA_API_URL: fake.apiUrl };
 * fake.inject({ endpoint: 'create', times: 3, status: 429, headers: { 'retry-after-ms': '20' } });
 * // … run the backend …
 * expect(fake.live()).toEqual([]);
 * expect(fake.sandboxes[0]!.createBody.labels).toMatchObject({ 'rho-flow.managed': 'true' });
 * expect(fake.count('upload')).toBe(1);
 * ```
 *
 * The control plane lives under `/api` and the toolbox of sandbox `id` under
 * `/toolbox/{id}` on the same server (DTOs carry `toolboxProxyUrl`). Each
 * sandbox is a temp directory; `process/execute` runs the command for real in
 * a bubblewrap jail where that directory is `/` (see jail.ts for the path
 * mapping). State for assertions: every sandbox ever created with its full
 * create body (`sandboxes`), `live()`, `deleted()`, `peakLive`, the request
 * log (`requests`, `count()`). Faults: `inject()` (see `FaultSpec`),
 * `create` behaviour (`creating` → `started`/`error`/`build_failed` after a
 * delay), per-endpoint `latency`, `hiddenCommands`.
 *
 * With `simulate` (benchmarks), the toolbox answers from memory instead
 * (`simulate.ts` has the canned answers for rho-flow's backend): no jail, no
 * files, so only the HTTP exchange and the injected latency remain.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { assertBwrap, killSandboxProcesses } from './jail.js';
import {
  HOME_DIR,
  bulkDownload,
  bulkUpload,
  createFolder,
  daemonError,
  deleteFile,
  execute,
  getFileInfo,
  json,
  listFiles,
  readJson,
  searchFiles,
  simulatedToolbox,
  type Reply,
} from './toolbox.js';
import {
  TOOLBOX_ENDPOINTS,
  type CreateBehaviour,
  type FakeDaytonaOptions,
  type FakeEndpoint,
  type FakeRequest,
  type FakeSandbox,
  type Fault,
  type FaultSpec,
} from './types.js';

export type * from './types.js';

export interface FakeDaytona extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/api` — pass as `DAYTONA_API_URL`. */
  readonly apiUrl: string;
  readonly origin: string;
  readonly apiKey: string;
  /** Every sandbox ever created (or seeded), in creation order. */
  readonly sandboxes: readonly FakeSandbox[];
  /** Every request, in arrival order. */
  readonly requests: readonly FakeRequest[];
  /** Most sandboxes alive at once. */
  readonly peakLive: number;
  /** How `POST /sandbox` brings sandboxes up (mutable between requests). */
  create: CreateBehaviour;
  /** Per-endpoint latency in ms (mutable). */
  latency: Partial<Record<FakeEndpoint, number>>;
  /** Sandboxes not deleted (any state but `destroyed`). */
  live(): FakeSandbox[];
  deleted(): FakeSandbox[];
  /** Requests to `endpoint` (all when omitted), optionally of one sandbox. */
  count(endpoint?: FakeEndpoint, sandboxId?: string): number;
  /** Registers a fault; it applies to the next matching requests. */
  inject(spec: FaultSpec): Fault;
  /** Removes all pending faults. */
  clearFaults(): void;
  /** Adds a sandbox directly (not through the API), e.g. a leftover for cleanup tests. */
  seed(init: {
    name?: string;
    labels?: Record<string, string>;
    state?: FakeSandbox['state'];
    createdAt?: string;
  }): Promise<FakeSandbox>;
  /** Deletes a sandbox server-side, as `DELETE /sandbox/{id}` would (no request is logged). */
  remove(id: string): Promise<void>;
  /** Host path of sandbox path `p` in sandbox `sb`. */
  hostPath(sb: FakeSandbox, p: string): string;
  close(): Promise<void>;
}

interface Route {
  endpoint: FakeEndpoint;
  sandboxKey?: string;
  rest?: string;
}

function route(method: string, pathname: string): Route {
  const api = /^\/api\/sandbox(?:\/([^/]+)(?:\/(.+))?)?$/.exec(pathname);
  if (api) {
    const key = api[1] !== undefined ? decodeURIComponent(api[1]) : undefined;
    const sub = api[2];
    if (key === undefined) {
      if (method === 'POST') return { endpoint: 'create' };
      if (method === 'GET') return { endpoint: 'list' };
      return { endpoint: 'other' };
    }
    if (sub === undefined) {
      if (method === 'GET') return { endpoint: 'get', sandboxKey: key };
      if (method === 'DELETE') return { endpoint: 'delete', sandboxKey: key };
    }
    if (sub === 'stop' && method === 'POST') return { endpoint: 'stop', sandboxKey: key };
    if (sub === 'start' && method === 'POST') return { endpoint: 'start', sandboxKey: key };
    if (sub === 'last-activity' && method === 'POST') return { endpoint: 'activity', sandboxKey: key };
    if (sub === 'toolbox-proxy-url' && method === 'GET')
      return { endpoint: 'toolbox-proxy-url', sandboxKey: key };
    return { endpoint: 'other', sandboxKey: key };
  }
  const tb = /^\/toolbox\/([^/]+)\/(.+)$/.exec(pathname);
  if (tb?.[1] !== undefined && tb[2] !== undefined) {
    const key = decodeURIComponent(tb[1]);
    const rest = tb[2];
    const ep: FakeEndpoint =
      rest === 'process/execute'
        ? 'exec'
        : rest === 'files/bulk-upload'
          ? 'upload'
          : rest === 'files/bulk-download'
            ? 'download'
            : rest === 'files/info'
              ? 'file-info'
              : rest === 'files/search'
                ? 'file-search'
                : rest === 'files/folder'
                  ? 'folder'
                  : rest === 'files' && method === 'GET'
                    ? 'file-list'
                    : rest === 'files' && method === 'DELETE'
                      ? 'file-delete'
                      : rest === 'user-home-dir' || rest === 'work-dir'
                        ? 'home-dir'
                        : 'other';
    return { endpoint: ep, sandboxKey: key, rest };
  }
  return { endpoint: 'other' };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts the fake on 127.0.0.1 (random port). Needs bubblewrap, unless it only `simulate`s the toolbox. */
export async function startFakeDaytona(options: FakeDaytonaOptions = {}): Promise<FakeDaytona> {
  if (!options.simulate) assertBwrap();
  const apiKey = options.apiKey ?? 'fake-daytona-key';
  const hidden = options.hiddenCommands ?? [];
  const pageSize = options.pageSize ?? 100;
  const simulate = options.simulate;
  const tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-fake-daytona-'));
  const sandboxes: FakeSandbox[] = [];
  const requests: FakeRequest[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const running = new Set<{ kill: () => void; done: Promise<unknown> }>();
  const timers = new Set<NodeJS.Timeout>();
  let peakLive = 0;
  let origin = '';
  let closed = false;

  const liveList = (): FakeSandbox[] => sandboxes.filter((s) => s.state !== 'destroyed');
  const notePeak = (): void => {
    peakLive = Math.max(peakLive, liveList().length);
  };
  const find = (key: string | undefined): FakeSandbox | undefined =>
    key === undefined ? undefined : liveList().find((s) => s.id === key || s.name === key);

  const dto = (sb: FakeSandbox): Record<string, unknown> => {
    const b = sb.createBody;
    return {
      id: sb.id,
      name: sb.name,
      organizationId: 'org-fake',
      user: 'daytona',
      env: sb.env,
      labels: sb.labels,
      public: false,
      networkBlockAll: b.networkBlockAll ?? false,
      target: b.target ?? 'us',
      snapshot: b.snapshot,
      cpu: b.cpu ?? 1,
      gpu: b.gpu ?? 0,
      memory: b.memory ?? 1,
      disk: b.disk ?? 3,
      state: sb.state,
      desiredState: sb.state === 'stopped' ? 'stopped' : sb.state === 'destroyed' ? 'destroyed' : 'started',
      errorReason: sb.errorReason,
      autoStopInterval: b.autoStopInterval ?? 15,
      autoArchiveInterval: 10080,
      autoDeleteInterval: b.autoDeleteInterval ?? -1,
      createdAt: sb.createdAt,
      updatedAt: new Date().toISOString(),
      toolboxProxyUrl: `${origin}/toolbox`,
    };
  };

  const makeSandbox = async (
    body: Record<string, unknown>,
    state: FakeSandbox['state'],
    seeded: boolean,
    createdAt = new Date().toISOString(),
  ): Promise<FakeSandbox> => {
    const id = randomUUID();
    const root = path.join(tmpRoot, id);
    if (!simulate) {
      await fs.mkdir(path.join(root, HOME_DIR), { recursive: true });
      await fs.mkdir(path.join(root, 'tmp'), { recursive: true, mode: 0o1777 });
    }
    const sb: FakeSandbox = {
      id,
      name: typeof body.name === 'string' && body.name ? body.name : id,
      createBody: body,
      labels: { ...((body.labels ?? {}) as Record<string, string>) },
      env: { ...((body.env ?? {}) as Record<string, string>) },
      state,
      root,
      createdAt,
      activityRefreshes: 0,
      seeded,
    };
    sandboxes.push(sb);
    notePeak();
    return sb;
  };

  const destroy = async (sb: FakeSandbox): Promise<void> => {
    sb.state = 'destroyed';
    sb.deletedAt = new Date().toISOString();
    if (simulate) return;
    await killSandboxProcesses(sb.id);
    await fs.rm(sb.root, { recursive: true, force: true });
  };

  const takeFault = (
    r: Route,
    sandboxId: string | undefined,
    method: string,
    url: string,
    body: unknown,
  ): Fault | undefined => {
    for (const f of faults) {
      if (f.remaining <= 0) continue;
      const epMatch =
        f.endpoint === r.endpoint || (f.endpoint === 'toolbox' && TOOLBOX_ENDPOINTS.has(r.endpoint));
      if (!epMatch) continue;
      if (f.sandboxId !== undefined && f.sandboxId !== sandboxId) continue;
      if (f.match && !f.match({ method, url, body })) continue;
      f.hits++;
      return f;
    }
    return undefined;
  };

  const faultReply = (f: Fault): Reply => {
    const status = f.status ?? 500;
    return {
      status,
      ...(f.headers ? { headers: f.headers } : {}),
      body: {
        statusCode: status,
        message: f.message ?? `injected fault (${status})`,
        error: http.STATUS_CODES[status] ?? 'Error',
        ...(f.code ? { code: f.code, source: 'DAYTONA_API' } : {}),
      },
    };
  };

  /** Handles a request whose body is still unread (upload) or already parsed. */
  const handle = async (
    r: Route,
    method: string,
    url: URL,
    req: http.IncomingMessage,
    body: unknown,
  ): Promise<Reply> => {
    const q = url.searchParams;
    switch (r.endpoint) {
      case 'create': {
        const b = (body ?? {}) as Record<string, unknown>;
        const name = typeof b.name === 'string' ? b.name : undefined;
        if (name && find(name)) {
          return json(409, {
            statusCode: 409,
            message: `Sandbox with name ${name} already exists`,
            error: 'Conflict',
          });
        }
        let behaviour = fake.create;
        if (behaviour.times !== undefined) {
          if (behaviour.times <= 0) behaviour = {};
          else fake.create = { ...behaviour, times: behaviour.times - 1 };
        }
        const initial = behaviour.initialState ?? 'started';
        const sb = await makeSandbox(b, initial, false);
        if (initial !== 'started') {
          const t = setTimeout(() => {
            timers.delete(t);
            if (sb.state === 'destroyed') return;
            sb.state = behaviour.finalState ?? 'started';
            if (sb.state !== 'started') sb.errorReason = behaviour.errorReason ?? `fake ${sb.state}`;
          }, behaviour.settleMs ?? 300);
          timers.add(t);
        }
        return json(200, dto(sb));
      }
      case 'list': {
        let filter: Record<string, string> = {};
        const labels = q.get('labels');
        if (labels) filter = JSON.parse(labels) as Record<string, string>;
        const matching = liveList().filter((s) =>
          Object.entries(filter).every(([k, v]) => s.labels[k] === v),
        );
        const limit = Number(q.get('limit') ?? pageSize) || pageSize;
        const start = Number(q.get('cursor') ?? 0) || 0;
        const page = matching.slice(start, start + limit);
        const next = start + limit < matching.length ? String(start + limit) : null;
        return json(200, { items: page.map(dto), nextCursor: next });
      }
      default:
        break;
    }
    const sb = find(r.sandboxKey);
    if (!sb) {
      if (r.endpoint === 'upload') req.resume();
      return json(404, {
        statusCode: 404,
        message: `Sandbox with ID or name ${r.sandboxKey ?? '?'} not found`,
        error: 'Not Found',
      });
    }
    if (TOOLBOX_ENDPOINTS.has(r.endpoint) && sb.state !== 'started') {
      if (r.endpoint === 'upload') req.resume();
      return json(409, { statusCode: 409, message: `Sandbox ${sb.id} is not started (state ${sb.state})` });
    }
    switch (r.endpoint) {
      case 'get':
      case 'toolbox-proxy-url':
        return r.endpoint === 'get' ? json(200, dto(sb)) : json(200, { url: `${origin}/toolbox` });
      case 'delete':
        await destroy(sb);
        return json(200, dto(sb));
      case 'stop':
        sb.state = 'stopped';
        sb.stoppedAt = new Date().toISOString();
        if (!simulate) await killSandboxProcesses(sb.id);
        return json(200, dto(sb));
      case 'start':
        sb.state = 'started';
        return json(200, dto(sb));
      case 'activity':
        sb.activityRefreshes++;
        return { status: 201 };
      default:
        break;
    }
    if (simulate && TOOLBOX_ENDPOINTS.has(r.endpoint))
      return simulatedToolbox(r.endpoint, simulate, req, body);
    switch (r.endpoint) {
      case 'exec':
        return execute(sb, body as Record<string, unknown>, {
          hidden,
          argv: options.execMode === 'argv',
          track: (kill, done) => {
            const entry = { kill, done };
            running.add(entry);
            void done.finally(() => running.delete(entry));
          },
        });
      case 'upload':
        return bulkUpload(sb, req);
      case 'download':
        return bulkDownload(sb, body as { paths?: unknown });
      case 'file-info':
        return getFileInfo(sb, q.get('path'));
      case 'file-list':
        return listFiles(sb, q.get('path'), q.get('depth'));
      case 'file-search':
        return searchFiles(sb, q.get('path'), q.get('pattern'));
      case 'file-delete':
        return deleteFile(sb, q.get('path'), q.get('recursive') === 'true');
      case 'folder':
        return createFolder(sb, q.get('path'), q.get('mode'));
      case 'home-dir':
        return json(200, { dir: HOME_DIR });
      default:
        return daemonError(404, `no route for ${method} ${url.pathname}`);
    }
  };

  const send = (res: http.ServerResponse, reply: Reply): void => {
    if (res.destroyed || res.headersSent) return;
    const isBuffer = Buffer.isBuffer(reply.body);
    const payload =
      reply.body === undefined
        ? undefined
        : isBuffer
          ? (reply.body as Buffer)
          : Buffer.from(JSON.stringify(reply.body));
    res.writeHead(reply.status, {
      ...(payload && !isBuffer ? { 'content-type': 'application/json' } : {}),
      ...(payload ? { 'content-length': String(payload.length) } : {}),
      ...reply.headers,
    });
    res.end(payload);
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://fake');
    const r = route(method, url.pathname);
    const record: FakeRequest = {
      method,
      url: `${url.pathname}${url.search}`,
      endpoint: r.endpoint,
      status: 0,
      at: Date.now(),
      durationMs: 0,
      faulted: false,
    };
    requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
      record.durationMs = Date.now() - record.at;
    });
    res.on('close', () => {
      record.closedAt = Date.now();
    });
    void (async () => {
      if (req.headers.authorization !== `Bearer ${apiKey}`) {
        req.resume();
        send(res, json(401, { statusCode: 401, message: 'Unauthorized', error: 'Unauthorized' }));
        return;
      }
      // Upload bodies are streamed into busboy; everything else is JSON (or empty).
      const body = r.endpoint === 'upload' ? undefined : await readJson(req).catch(() => undefined);
      if (
        body !== undefined &&
        !(typeof body === 'object' && body !== null && Object.keys(body).length === 0)
      ) {
        record.body = body;
      }
      const sb = find(r.sandboxKey);
      if (sb) record.sandboxId = sb.id;
      const latency = fake.latency[r.endpoint];
      if (latency) await sleep(latency);
      const fault = takeFault(r, sb?.id, method, record.url, body);
      if (fault) record.faulted = true;
      if (fault?.delayMs) await sleep(fault.delayMs);
      const mode = fault?.mode ?? 'respond';
      if (fault && (mode === 'respond' || mode === 'hang' || mode === 'drop')) {
        if (r.endpoint === 'upload') req.resume();
        if (mode === 'hang') return;
        if (mode === 'drop') {
          req.socket.destroy();
          return;
        }
        send(res, faultReply(fault));
        return;
      }
      const reply = await handle(r, method, url, req, body);
      if (
        record.sandboxId === undefined &&
        reply.body &&
        typeof reply.body === 'object' &&
        'id' in reply.body
      ) {
        record.sandboxId = String(reply.body.id);
      }
      if (!fault || mode === 'delay') {
        send(res, reply);
        return;
      }
      if (mode === 'hang-after') return;
      if (mode === 'drop-after') {
        req.socket.destroy();
        return;
      }
      send(res, faultReply(fault));
    })().catch((err: unknown) => {
      send(res, json(500, { statusCode: 500, message: `fake daytona crashed: ${String(err)}` }));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    for (const r of running) r.kill();
    await Promise.allSettled([...running].map((r) => r.done));
    if (!simulate) for (const sb of sandboxes) await killSandboxProcesses(sb.id);
    await fs.rm(tmpRoot, { recursive: true, force: true });
  };

  const fake: FakeDaytona = {
    apiUrl: `${origin}/api`,
    origin,
    apiKey,
    sandboxes,
    requests,
    get peakLive() {
      return peakLive;
    },
    create: { ...options.create },
    latency: { ...options.latency },
    live: liveList,
    deleted: () => sandboxes.filter((s) => s.state === 'destroyed'),
    count: (endpoint, sandboxId) =>
      requests.filter(
        (r) =>
          (endpoint === undefined || r.endpoint === endpoint) &&
          (sandboxId === undefined || r.sandboxId === sandboxId),
      ).length,
    inject(spec) {
      const fault: Fault = {
        ...spec,
        hits: 0,
        get remaining() {
          return (spec.times ?? 1) - this.hits;
        },
      };
      faults.push(fault);
      return fault;
    },
    clearFaults() {
      faults.length = 0;
    },
    async seed(init) {
      const body: Record<string, unknown> = { name: init.name, labels: init.labels ?? {} };
      return makeSandbox(body, init.state ?? 'started', true, init.createdAt);
    },
    async remove(id) {
      const sb = find(id);
      if (sb) await destroy(sb);
      notePeak();
    },
    hostPath: (sb, p) => path.join(sb.root, path.posix.resolve(HOME_DIR, p)),
    close,
    [Symbol.asyncDispose]: close,
  };
  return fake;
}
