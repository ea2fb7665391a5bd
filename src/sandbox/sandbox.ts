/**
 * The one interface every sandbox backend implements (local bubblewrap,
 * Daytona). The engine and the agent tools only ever talk to this.
 *
 * Paths: every `path` argument is a path *inside* the sandbox. Relative paths
 * are relative to `workingDir`. Implementations must never let a path (or a
 * symlink planted by the job) reach outside what the job itself can see.
 *
 * Errors: infrastructure faults throw `SandboxError` (errors.ts). A command
 * that exits non-zero is not an error: it is an `ExecResult`. A missing file
 * is a `SandboxError` with code `not-found`.
 */
import type { BackendName, Resources } from '../workflow/types.js';

export interface SandboxSpec {
  runId: string;
  jobId: string;
  jobSlug: string;
  /** Attempt number (1-based); part of the Daytona sandbox name so each attempt is distinct. */
  attempt: number;
  image?: string;
  snapshot?: string;
  resources?: Resources;
  /** Absolute path inside the sandbox; created if missing. */
  workingDir: string;
  network: 'on' | 'off';
  /** Sandbox environment: the workflow's env plus secrets. */
  env: Readonly<Record<string, string>>;
  /** Dead-man's switch (Daytona): minutes of inactivity before auto-stop. */
  autoStopMinutes?: number;
  /** Dead-man's switch (Daytona): minutes after stop before auto-delete. */
  autoDeleteMinutes?: number;
  /** Extra labels (Daytona). The backend adds the `rho-flow.*` labels itself. */
  labels?: Readonly<Record<string, string>>;
}

export interface ExecOptions {
  /** Absolute or working-dir-relative directory; default the working dir. */
  cwd?: string;
  /** Extra env on top of the sandbox env. */
  env?: Readonly<Record<string, string>>;
  /** Kill the command's whole process group after this long; the result then has `timedOut: true`. */
  timeoutMs?: number;
  /** Aborting kills the command's whole process group and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Bytes to write to the command's stdin. */
  stdin?: string | Buffer;
  /** Run with the working dir mounted read-only where the backend can (local: profile `file_write: off`). */
  readOnly?: boolean;
  /** Live output, for logs. Chunks are decoded UTF-8. */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  /** Cap on the stdout/stderr kept in the result (each); the rest is dropped with a marker. Default 10 MiB. */
  maxOutputBytes?: number;
  /**
   * Run `command` as a workflow `run` step (product.md §2): with
   * `bash -eo pipefail -c` instead of `bash -c`, and with `$RHO_FLOW_OUTPUT`
   * naming a fresh, empty file in the sandbox whose content after the command
   * comes back as `ExecResult.outputs`. One shell, no wrapper script: the
   * command's exit code, stdout and stderr are its own.
   */
  runStep?: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  /** Empty when the backend can only return combined output (it is then all in `stdout`). */
  stderr: string;
  timedOut: boolean;
  durationMs: number;
  /**
   * With `runStep`: what the command wrote to `$RHO_FLOW_OUTPUT` (capped at
   * `maxOutputBytes`). Absent when the command timed out or the backend could
   * not read the file back.
   */
  outputs?: string;
}

export type FileType = 'file' | 'dir' | 'symlink' | 'other';

export interface FileInfo {
  /** Path inside the sandbox, as absolute path. */
  path: string;
  name: string;
  type: FileType;
  size: number;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  mtimeMs: number;
}

export interface ListOptions {
  recursive?: boolean;
  /** With `recursive`: how deep (1 = direct children only). */
  maxDepth?: number;
  /** Include dot-files. Default false. */
  showHidden?: boolean;
  /** Stop after this many entries (the result is then truncated). */
  limit?: number;
  signal?: AbortSignal;
}

export interface TransferStats {
  files: number;
  bytes: number;
  durationMs: number;
  /** Network requests made (Daytona); 0 for local. */
  requests: number;
}

export interface DownloadResult extends TransferStats {
  /** Local paths written, relative to the destination directory. */
  written: string[];
  /** Entries skipped for safety (symlinks pointing outside, special files), with the reason. */
  skipped: Array<{ path: string; reason: string }>;
}

/** Options of `Sandbox.download`. */
export interface DownloadOptions {
  signal?: AbortSignal;
  /**
   * Called once the download has read everything it needs from the sandbox,
   * where the backend can tell that apart from writing the local files
   * (Daytona: the archive has arrived and is unpacked locally). From then on
   * the sandbox may be disposed while the download finishes. Not called when
   * the download fails before that point; a backend that cannot tell the two
   * apart does not call it (the download's promise settling means the same).
   */
  onFetched?: () => void;
}

export interface Sandbox extends AsyncDisposable {
  readonly backend: BackendName;
  /** Backend-specific id (local: workspace path; Daytona: sandbox id). */
  readonly id: string;
  readonly workingDir: string;

  exec(command: string, options?: ExecOptions): Promise<ExecResult>;

  readFile(path: string, options?: { signal?: AbortSignal; maxBytes?: number }): Promise<Buffer>;
  /** Creates parent directories. With `createOnly`, fails with code `exists`-like `SandboxError('exec-failed')` if the file exists. */
  writeFile(
    path: string,
    data: string | Buffer,
    options?: { signal?: AbortSignal; mode?: number; createOnly?: boolean },
  ): Promise<void>;
  /** `undefined` when nothing is at `path`. Does not follow a final symlink (reports `symlink`). */
  stat(path: string, options?: { signal?: AbortSignal }): Promise<FileInfo | undefined>;
  /** Entries of a directory (sorted by path). Throws `not-found` when `path` is not a directory. */
  list(path: string, options?: ListOptions): Promise<FileInfo[]>;
  /** Paths (absolute, sorted) matching a glob (`**`, `*`, `?`, `{a,b}`) relative to `cwd` (default working dir). */
  glob(pattern: string, options?: { cwd?: string; limit?: number; signal?: AbortSignal }): Promise<string[]>;
  remove(path: string, options?: { recursive?: boolean; signal?: AbortSignal }): Promise<void>;

  /**
   * Copies a local file or directory tree to `remotePath` (a directory tree
   * lands *at* `remotePath`). Preserves modes and symlinks; never follows a
   * symlink out of the source; `exclude` globs are relative to the source root.
   */
  upload(
    localPath: string,
    remotePath: string,
    options?: { exclude?: readonly string[]; signal?: AbortSignal },
  ): Promise<TransferStats>;
  /**
   * Copies a file, a directory tree or the matches of a glob from the sandbox
   * into `localDir` (created if needed). A file lands as `localDir/<basename>`,
   * a directory's contents under `localDir/<basename>/`, glob matches keep
   * their path relative to the glob's static base. Writes nothing outside
   * `localDir`: symlinks and `..` entries are skipped and reported.
   * Throws `not-found` when nothing matches.
   */
  download(remotePath: string, localDir: string, options?: DownloadOptions): Promise<DownloadResult>;

  /**
   * Deletes the sandbox. Idempotent and memoized: concurrent and repeated
   * calls share one promise; resolves once the sandbox is gone.
   */
  dispose(): Promise<void>;
}

/** Result of a backend cleanup sweep. */
export interface CleanupReport {
  removed: Array<{ id: string; runId?: string; reason: string }>;
  kept: Array<{ id: string; runId?: string; reason: string }>;
  failed: Array<{ id: string; error: string }>;
}

export interface CleanupOptions {
  runId?: string;
  /** Only touch sandboxes older than this (ms). */
  olderThanMs?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface BackendOptions {
  /** `strict`: refuse to run without isolation (local: bwrap missing). */
  isolation: 'auto' | 'strict';
  /** One-line warnings/notes for the user (reporters print them). */
  warn: (message: string) => void;
  /** Host environment (for credentials); defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Tuning of the Daytona backend; every field is optional. */
  daytona?: DaytonaTuning;
}

/** Retry schedule of one error class (milliseconds). */
export interface RetryScheduleTuning {
  /** Retries after the first attempt. */
  retries?: number;
  /** First delay; doubles per retry. */
  baseMs?: number;
  /** Cap of the computed delay. */
  maxMs?: number;
  /** Fraction 0..1 of the delay that is randomised. */
  jitter?: number;
  /** Cap of a server-requested `Retry-After`. */
  maxRetryAfterMs?: number;
}

/** Daytona backend knobs (defaults in `sandbox/daytona.ts`). Tests set them to milliseconds. */
export interface DaytonaTuning {
  /** Sandbox creations per minute, a token bucket separate from `--concurrency` (default 300). */
  createsPerMinute?: number;
  /** Creations allowed back to back before pacing starts (default: 10 seconds' worth). */
  createBurst?: number;
  /** Deadline of one create-and-start attempt (default 10 min from `image`, 2 min from `snapshot`). */
  createTimeoutMs?: number;
  /** Deadline of one control-plane / toolbox HTTP request (default 60 s). */
  requestTimeoutMs?: number;
  /** Deadline of one upload / download request (default 30 min). */
  transferTimeoutMs?: number;
  /** Period of the activity refresh that keeps a live sandbox from auto-stopping (default min(5 min, auto-stop / 3)). */
  keepAliveMs?: number;
  /** How long past an exec's `timeoutMs` to wait for the toolbox before giving up on it (default 20 s). */
  execGraceMs?: number;
  /** How long an abort waits for the in-sandbox kill command (default 5 s). */
  killWaitMs?: number;
  /** How long an abort waits for an in-flight create to settle so it can be deleted (default 60 s). */
  abortCreateWaitMs?: number;
  /** Delete retries before falling back to stop (default 4). */
  deleteRetries?: number;
  /** Retry schedules per error class. */
  backoff?: { rateLimit?: RetryScheduleTuning; transient?: RetryScheduleTuning };
}

/** A sandbox provider. `create` may be called many times concurrently. */
export interface SandboxBackend {
  readonly name: BackendName;
  /**
   * Checks that the backend can run at all (bwrap present or allowed missing,
   * credentials present) before anything is created. Throws `UserError`.
   */
  preflight(): Promise<void>;
  /**
   * Creates a sandbox. If `signal` aborts while creation is in flight, the
   * backend still waits for the creation to settle and deletes what it
   * created, then rejects with the abort reason.
   */
  create(spec: SandboxSpec, options?: { signal?: AbortSignal }): Promise<Sandbox>;
  /** Removes leftovers of dead runs (product.md §6.1). */
  cleanup(options: CleanupOptions): Promise<CleanupReport>;
  /** Releases clients (sockets, timers). Does not delete sandboxes. */
  close(): Promise<void>;
}
