/**
 * Types of the fake Daytona server: the sandbox records it keeps, the
 * request log, and the fault-injection vocabulary.
 */

/** The endpoints the fake distinguishes (for latency, faults and counts). */
export type FakeEndpoint =
  | 'create'
  | 'get'
  | 'list'
  | 'delete'
  | 'stop'
  | 'start'
  | 'activity'
  | 'toolbox-proxy-url'
  | 'exec'
  | 'upload'
  | 'download'
  | 'file-info'
  | 'file-list'
  | 'file-search'
  | 'file-delete'
  | 'folder'
  | 'home-dir'
  | 'other';

export const TOOLBOX_ENDPOINTS: ReadonlySet<FakeEndpoint> = new Set([
  'exec',
  'upload',
  'download',
  'file-info',
  'file-list',
  'file-search',
  'file-delete',
  'folder',
  'home-dir',
]);

export type FakeSandboxState =
  'creating' | 'pending_build' | 'started' | 'stopped' | 'error' | 'build_failed' | 'destroyed';

/** Everything the fake knows about one sandbox, ever. */
export interface FakeSandbox {
  id: string;
  name: string;
  /** The create request body exactly as received (labels, resources, env, intervals, networkBlockAll, name…). */
  createBody: Record<string, unknown>;
  labels: Record<string, string>;
  env: Record<string, string>;
  state: FakeSandboxState;
  errorReason?: string;
  /** Host directory standing in for the sandbox's `/`. */
  root: string;
  createdAt: string;
  deletedAt?: string;
  stoppedAt?: string;
  /** `POST /sandbox/{id}/last-activity` calls (the keep-alive). */
  activityRefreshes: number;
  /** Created through `seed()`, not through the API. */
  seeded: boolean;
}

/** One request as the fake saw it. */
export interface FakeRequest {
  method: string;
  /** Path and query. */
  url: string;
  endpoint: FakeEndpoint;
  sandboxId?: string;
  /** 0 while unanswered (or when it was never answered). */
  status: number;
  at: number;
  durationMs: number;
  /** A fault was applied to this request. */
  faulted: boolean;
  /** Parsed JSON body (absent for uploads and empty bodies), e.g. a create's `name`, an exec's `command`. */
  body?: unknown;
  /** When the exchange ended: answered, or the client went away (a hung request the client gave up on). */
  closedAt?: number;
}

/**
 * One scripted fault. It applies to the next `times` requests that match
 * `endpoint` (`'toolbox'` = any toolbox endpoint) and, if given, `sandboxId`
 * / `match`.
 */
export interface FaultSpec {
  endpoint: FakeEndpoint | 'toolbox';
  /** Default 1; `Infinity` = every matching request. */
  times?: number;
  sandboxId?: string;
  match?: (req: { method: string; url: string; body: unknown }) => boolean;
  /**
   * - `respond` (default): answer `status` instead of handling the request;
   * - `after`: handle it (e.g. really create the sandbox), then answer `status`;
   * - `hang`: never answer (the socket stays open until the client gives up or the fake closes);
   * - `hang-after`: handle it, then never answer;
   * - `drop`: destroy the connection without answering;
   * - `drop-after`: handle it, then destroy the connection;
   * - `delay`: handle it normally after `delayMs` (reorders concurrent requests).
   */
  mode?: 'respond' | 'after' | 'hang' | 'hang-after' | 'drop' | 'drop-after' | 'delay';
  /** Default 500. */
  status?: number;
  message?: string;
  /** Error `code` (and `source: DAYTONA_*`) in the body, for the SDK's finer error classes. */
  code?: string;
  headers?: Record<string, string>;
  /** Wait before answering. */
  delayMs?: number;
}

/** A registered fault; `hits` counts the requests it applied to. */
export interface Fault extends FaultSpec {
  hits: number;
  readonly remaining: number;
}

/** How `POST /sandbox` brings a sandbox up. */
export interface CreateBehaviour {
  /** State in the create response (default `started`). */
  initialState?: 'started' | 'creating' | 'pending_build';
  /** When not started at once: after this long the state becomes `finalState` (default 300 ms). */
  settleMs?: number;
  finalState?: 'started' | 'error' | 'build_failed';
  errorReason?: string;
  /** Apply to the next N creates only; later ones start at once (default: all). */
  times?: number;
}

export interface FakeDaytonaOptions {
  /** Bearer token the fake accepts (default `fake-daytona-key`). */
  apiKey?: string;
  /** Added to every request of an endpoint, ms (e.g. `{ create: 300, exec: 30, upload: 50, download: 50, delete: 100 }`). */
  latency?: Partial<Record<FakeEndpoint, number>>;
  create?: CreateBehaviour;
  /** Commands missing from the "image" (e.g. `['tar']`): bind-mounted over with /dev/null in the jail. */
  hiddenCommands?: readonly string[];
  /**
   * How `process/execute` reads the command: `shell` (default; newest daemons
   * feed it to bash on stdin) or `argv` (older daemons split it on spaces and
   * quotes and exec it without a shell).
   */
  execMode?: 'shell' | 'argv';
  /** Page size of `GET /sandbox` (default 100). */
  pageSize?: number;
  /**
   * Answer the toolbox from memory instead of doing the work (benchmarks): no
   * jail per exec, no files on disk, sandboxes are records only. What is left
   * is the HTTP exchange and the injected `latency`, so a benchmark measures
   * its client rather than the fake's own jails and file copies on the same
   * cores. The default (realistic) mode is what the tests use.
   */
  simulate?: SimulatedToolbox;
}

/** The canned toolbox of `FakeDaytonaOptions.simulate`. */
export interface SimulatedToolbox {
  /** The answer to `process/execute` of `command` (the command line exactly as sent). */
  exec(command: string): { exitCode: number; output: string };
  /** The bytes `files/bulk-download` returns for sandbox path `path`; undefined: not found. */
  file(path: string): Buffer | undefined;
}
