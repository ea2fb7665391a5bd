/**
 * One live Daytona sandbox behind the `Sandbox` interface.
 *
 * exec goes through the wrapper of `daytona-exec.ts` (one request per
 * command, stdout/stderr separated, timeout enforced inside the sandbox, abort
 * kills the process group). Output is not streamed: `onOutput` sees the whole
 * stdout, then stderr, when the command ends. `readOnly` cannot be enforced on
 * Daytona (profiles are enforced before the call, on every backend).
 *
 * Files go through the toolbox file API (`fs.*`), transfers through
 * `daytona-transfer.ts`; dispose deletes with retries and falls back to stop.
 * The daemon's file info comes from `os.Stat`, so `stat`/`list` follow
 * symlinks (a link to a file reports `file`); `glob` returns files only.
 */
import path from 'node:path';
import { SandboxError, errorMessage } from '../errors.js';
import type {
  DownloadOptions,
  DownloadResult,
  ExecOptions,
  ExecResult,
  FileInfo,
  FileType,
  ListOptions,
  Sandbox,
  TransferStats,
} from './sandbox.js';
import { toolboxReleaser, type DaytonaFileInfoLike, type DaytonaSandboxLike } from './daytona-client.js';
import { classifyError, withBackoff, type BackoffConfig } from './backoff.js';
import { removeSandbox } from './daytona-cleanup.js';
import {
  MAX_INLINE_SCRIPT,
  SCRATCH_DIR,
  downloadPath,
  encodeCommand,
  hasGlobMagic,
  nonce,
  shq,
  splitGlob,
  uploadPath,
  type ScriptResult,
  type TransferHost,
} from './daytona-transfer.js';
import type { UploadArchives } from './upload-archives.js';
import { DEFAULT_MAX_OUTPUT, TIMEOUT_EXIT, execScript, killScript, parseExecOutput } from './daytona-exec.js';

/** Settings a sandbox needs from its backend. */
export interface DaytonaSandboxSettings {
  workingDir: string;
  backoff: BackoffConfig;
  /** Seconds. */
  transferTimeoutSec: number;
  /** Seconds; deadline of short helper commands. */
  requestTimeoutSec: number;
  execGraceMs: number;
  killWaitMs: number;
  deleteRetries: number;
  /** Activity refresh period; 0 disables. */
  keepAliveMs: number;
  autoDeleteMinutes: number;
  warn: (message: string) => void;
  /** The run's upload archives, packed once and shared by its sandboxes. */
  archives?: UploadArchives;
}

function isNotFound(err: unknown): boolean {
  const e = err as { statusCode?: unknown; name?: unknown };
  return (
    e.statusCode === 404 ||
    e.statusCode === 410 ||
    e.name === 'DaytonaNotFoundError' ||
    e.name === 'DaytonaFileNotFoundError'
  );
}

function isTimeout(err: unknown): boolean {
  const e = err as { statusCode?: unknown; name?: unknown };
  return (
    e.statusCode === 408 ||
    e.name === 'DaytonaTimeoutError' ||
    e.name === 'DaytonaConnectionTimeoutError' ||
    e.name === 'DaytonaProcessExecutionTimeoutError'
  );
}

/** Maps an SDK error of operation `op` to a `SandboxError`. */
function apiError(
  op: string,
  err: unknown,
  code: 'exec-failed' | 'transfer-failed',
  id: string,
): SandboxError {
  if (err instanceof SandboxError) return err;
  const c = classifyError(err);
  const details = { sandbox: id, status: c.status, op };
  if (c.status === 401 || c.status === 403) {
    return new SandboxError('auth', `${op}: Daytona refused the request: ${c.reason}`, {
      cause: err,
      details,
    });
  }
  return new SandboxError(code, `${op} failed: ${c.reason}`, {
    cause: err,
    details,
    retryable: c.kind === 'transient' || c.kind === 'rate-limit',
  });
}

function toFileType(info: DaytonaFileInfoLike): FileType {
  const first = info.mode.charAt(0);
  if (first === 'L') return 'symlink';
  if (info.isDir || first === 'd') return 'dir';
  if (first === '-') return 'file';
  return 'other';
}

function toFileInfo(info: DaytonaFileInfoLike, absPath: string): FileInfo {
  const mode = parseInt(info.permissions, 8);
  const mtime = Date.parse(info.modTime);
  return {
    path: absPath,
    name: info.name || path.posix.basename(absPath),
    type: toFileType(info),
    size: info.size,
    mode: Number.isNaN(mode) ? 0 : mode,
    mtimeMs: Number.isNaN(mtime) ? 0 : mtime,
  };
}

interface Timer {
  promise: Promise<'deadline'>;
  clear: () => void;
}

function deadline(ms: number): Timer {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), ms);
    timer.unref();
  });
  return { promise, clear: () => clearTimeout(timer) };
}

function abortPromise(signal: AbortSignal | undefined): { promise: Promise<'aborted'>; clear: () => void } {
  if (!signal) return { promise: new Promise<'aborted'>(() => undefined), clear: () => undefined };
  let onAbort: (() => void) | undefined;
  const promise = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
    if (signal.aborted) resolve('aborted');
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, clear: () => onAbort && signal.removeEventListener('abort', onAbort) };
}

/**
 * Settles with `op`, or rejects with the signal's reason as soon as `signal`
 * aborts. The SDK's toolbox calls cannot be cancelled (and a hung toolbox
 * never answers), so an abort stops the *wait*: the request itself lives on,
 * harmlessly, until `releaseConnections()` cancels it; its late outcome is
 * ignored. This is what keeps a job's timeout in charge of every phase.
 */
function raceAbort<T>(op: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return op;
  op.catch(() => undefined);
  const aborted = abortPromise(signal);
  return Promise.race([
    op,
    aborted.promise.then((): never => {
      throw signal.reason;
    }),
  ]).finally(aborted.clear);
}

/** A started Daytona sandbox. Create it with {@link DaytonaSandbox.open}. */
export class DaytonaSandbox implements Sandbox {
  readonly backend = 'daytona' as const;
  readonly id: string;
  readonly name: string;
  readonly workingDir: string;
  readonly #sdk: DaytonaSandboxLike;
  readonly #s: DaytonaSandboxSettings;
  #tools: ReadonlySet<string> = new Set();
  #disposing: Promise<void> | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  #keepAliveWarned = false;
  #requests = 0;
  /** Scratch files to remove with the next helper script (or with the sandbox). */
  #discarded: string[] = [];
  readonly #onDisposed: Array<() => void> = [];
  readonly #release: () => void;

  private constructor(sdk: DaytonaSandboxLike, settings: DaytonaSandboxSettings) {
    this.#sdk = sdk;
    this.#s = settings;
    this.#release = toolboxReleaser(sdk);
    this.id = sdk.id;
    this.name = sdk.name;
    this.workingDir = settings.workingDir;
  }

  /**
   * Wraps a started SDK sandbox: creates the working dir, detects `tar` and
   * `gzip` (one request) and starts the keep-alive. On failure the sandbox is
   * removed before the error is thrown.
   */
  static async open(
    sdk: DaytonaSandboxLike,
    settings: DaytonaSandboxSettings,
    signal?: AbortSignal,
  ): Promise<DaytonaSandbox> {
    const sandbox = new DaytonaSandbox(sdk, settings);
    try {
      // `command -v` also reports non-executable files, hence the -f/-x checks.
      const probe = [
        `mkdir -p ${SCRATCH_DIR} || exit 1`,
        // Images whose user is not root (Daytona's default user has passwordless sudo) may
        // not be allowed to create e.g. /work: fall back to sudo and hand the dir over.
        `wd=${shq(settings.workingDir)}`,
        `mkdir -p -- "$wd" 2>&1 || sudo -n sh -c 'mkdir -p -- "$1" && chown "$2" -- "$1"' sh "$wd" "$(id -u):$(id -g)" 2>/dev/null || exit 1`,
        `for t in tar gzip; do p=$(command -v "$t") && [ -f "$p" ] && [ -x "$p" ] && printf '%s\\n' "$t"; done; exit 0`,
      ].join('\n');
      // A toolbox can answer 502 for a moment right after start; the probe is idempotent.
      const r = await withBackoff(() => sandbox.#script(probe, signal, settings.requestTimeoutSec), {
        config: settings.backoff,
        ...(signal ? { signal } : {}),
      });
      if (r.exitCode !== 0) {
        throw new SandboxError(
          'create-failed',
          `could not create ${settings.workingDir} in sandbox ${sdk.id}: ${r.output.trim()}`,
          {
            details: { sandbox: sdk.id },
          },
        );
      }
      sandbox.#tools = new Set(r.output.split('\n').filter((t) => t === 'tar' || t === 'gzip'));
    } catch (err) {
      await sandbox.dispose().catch((e: unknown) => settings.warn(errorMessage(e)));
      if (signal?.aborted) throw signal.reason;
      if (err instanceof SandboxError) throw err;
      throw apiError(`preparing sandbox ${sdk.id}`, err, 'exec-failed', sdk.id);
    }
    sandbox.#startKeepAlive();
    return sandbox;
  }

  /** Tools found in the image (`tar`, `gzip`). */
  get tools(): ReadonlySet<string> {
    return this.#tools;
  }

  /** Toolbox/API requests this sandbox has made so far. */
  get requestCount(): number {
    return this.#requests;
  }

  /** Registers a callback run once the sandbox is disposed. @internal */
  onDisposed(fn: () => void): void {
    this.#onDisposed.push(fn);
  }

  #startKeepAlive(): void {
    if (this.#s.keepAliveMs <= 0) return;
    // Daytona's auto-stop clock counts only SDK interactions, so a long model
    // turn without tool calls would otherwise let the sandbox stop under us.
    this.#keepAlive = setInterval(() => {
      this.#requests++;
      this.#sdk.refreshActivity().catch((err: unknown) => {
        if (this.#keepAliveWarned) return;
        this.#keepAliveWarned = true;
        this.#s.warn(`keep-alive of Daytona sandbox ${this.id} failed: ${errorMessage(err)}`);
      });
    }, this.#s.keepAliveMs);
    this.#keepAlive.unref();
  }

  /** Stops the keep-alive timer (the backend calls it in `close()`). */
  stopKeepAlive(): void {
    if (this.#keepAlive) clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }

  /**
   * Cancels toolbox requests still in flight (an exec abandoned after a hung
   * toolbox or an abort) and refuses new ones, so nothing of this sandbox
   * keeps the process alive. `dispose()` does it once the sandbox is deleted;
   * the backend's `close()` does it for sandboxes it keeps.
   */
  releaseConnections(): void {
    this.#release();
  }

  #resolve(p: string): string {
    return path.posix.resolve(this.workingDir, p);
  }

  #checkUsable(): void {
    if (this.#disposing) throw new SandboxError('gone', `Daytona sandbox ${this.id} has been disposed`);
  }

  /** Runs a helper script (combined output), uploading it first when it is too long to pass inline. */
  async #script(
    script: string,
    signal?: AbortSignal,
    timeoutS = this.#s.transferTimeoutSec,
  ): Promise<ScriptResult> {
    signal?.throwIfAborted();
    if (this.#discarded.length > 0) {
      // Scratch files left by earlier transfers go with the next helper script, at no extra request.
      script = `rm -f -- ${this.#discarded.map(shq).join(' ')} 2>/dev/null\n${script}`;
      this.#discarded = [];
    }
    let command = encodeCommand(script);
    if (command.length > MAX_INLINE_SCRIPT) {
      const file = `${SCRATCH_DIR}/script-${nonce()}.sh`;
      this.#requests++;
      await raceAbort(
        this.#sdk.fs.uploadFiles([
          { source: Buffer.from(`${script}\nrm -f -- ${shq(file)}\n`), destination: file },
        ]),
        signal,
      );
      command = `bash ${file}`;
    }
    this.#requests++;
    const r = await raceAbort(
      this.#sdk.process.executeCommand(command, undefined, undefined, timeoutS),
      signal,
    );
    return { exitCode: r.exitCode, output: r.result };
  }

  #host(): TransferHost {
    return {
      sdk: this.#sdk,
      tools: this.#tools,
      transferTimeoutSec: this.#s.transferTimeoutSec,
      resolve: (p) => this.#resolve(p),
      runScript: (script, signal) => this.#script(script, signal),
      discard: (remotePath) => {
        this.#discarded.push(remotePath);
      },
      ...(this.#s.archives ? { archives: this.#s.archives } : {}),
    };
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.#checkUsable();
    const { signal } = options;
    signal?.throwIfAborted();
    const started = Date.now();
    const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const cwd = options.cwd === undefined ? this.workingDir : this.#resolve(options.cwd);
    const wrapper = execScript(command, { ...options, cwd, maxOutputBytes: max });
    const { id, scratch } = wrapper;
    const timeoutMs = options.timeoutMs;
    const call = this.#script(wrapper.script, undefined, wrapper.daemonTimeoutS);
    // The request cannot be cancelled; never let its late failure go unhandled.
    call.catch(() => undefined);
    const aborted = abortPromise(signal);
    const grace = timeoutMs === undefined ? undefined : deadline(timeoutMs + this.#s.execGraceMs);
    let outcome: ScriptResult | 'aborted' | 'deadline' | { error: unknown };
    try {
      outcome = await Promise.race([
        call.then(
          (r) => r,
          (error: unknown) => ({ error }),
        ),
        aborted.promise,
        ...(grace ? [grace.promise] : []),
      ]);
    } finally {
      aborted.clear();
      grace?.clear();
    }
    const durationMs = Date.now() - started;

    if (outcome === 'aborted') {
      await this.#kill(scratch);
      throw signal?.reason;
    }
    if (outcome === 'deadline') {
      await this.#kill(scratch);
      return {
        exitCode: TIMEOUT_EXIT,
        stdout: '',
        stderr: `[rho-flow: the Daytona toolbox did not answer within ${this.#s.execGraceMs} ms after the ${timeoutMs} ms timeout]`,
        timedOut: true,
        durationMs,
      };
    }
    if ('error' in outcome) {
      if (isTimeout(outcome.error)) {
        return { exitCode: TIMEOUT_EXIT, stdout: '', stderr: '', timedOut: true, durationMs };
      }
      if (isNotFound(outcome.error)) {
        throw new SandboxError('gone', `Daytona sandbox ${this.id} is gone: ${errorMessage(outcome.error)}`, {
          cause: outcome.error,
          retryable: true,
          details: { sandbox: this.id },
        });
      }
      throw apiError(`exec in sandbox ${this.id}`, outcome.error, 'exec-failed', this.id);
    }
    const result = parseExecOutput(outcome, id, max, durationMs);
    if (options.onOutput) {
      if (result.stdout) options.onOutput(result.stdout, 'stdout');
      if (result.stderr) options.onOutput(result.stderr, 'stderr');
    }
    return result;
  }

  /** Best-effort kill of an exec's process group, bounded by `killWaitMs`. */
  async #kill(scratch: string): Promise<void> {
    const script = killScript(scratch);
    const kill = this.#script(script, undefined, 30).catch(() => undefined);
    const timer = deadline(this.#s.killWaitMs);
    try {
      await Promise.race([kill, timer.promise]);
    } finally {
      timer.clear();
    }
  }

  /** Retries an idempotent file API call on transient errors; an abort stops it at once. */
  #retrying<T>(op: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withBackoff(
      () => {
        this.#requests++;
        return raceAbort(op(), signal);
      },
      { config: this.#s.backoff, ...(signal ? { signal } : {}) },
    );
  }

  async readFile(p: string, options: { signal?: AbortSignal; maxBytes?: number } = {}): Promise<Buffer> {
    this.#checkUsable();
    const abs = this.#resolve(p);
    try {
      const data = await this.#retrying(
        () => this.#sdk.fs.downloadFile(abs, this.#s.transferTimeoutSec),
        options.signal,
      );
      return options.maxBytes !== undefined && data.length > options.maxBytes
        ? data.subarray(0, options.maxBytes)
        : data;
    } catch (err) {
      throw this.#fileError(`reading ${abs}`, abs, err, options.signal);
    }
  }

  #fileError(op: string, abs: string, err: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return signal.reason;
    if (isNotFound(err)) {
      return new SandboxError('not-found', `${abs}: no such file or directory`, {
        cause: err,
        details: { path: abs },
      });
    }
    return apiError(op, err, 'transfer-failed', this.id);
  }

  async writeFile(
    p: string,
    data: string | Buffer,
    options: { signal?: AbortSignal; mode?: number; createOnly?: boolean } = {},
  ): Promise<void> {
    this.#checkUsable();
    const abs = this.#resolve(p);
    if (options.createOnly && (await this.stat(abs, options))) {
      throw new SandboxError('exec-failed', `${abs} already exists`, {
        details: { path: abs, reason: 'exists' },
      });
    }
    try {
      this.#requests++;
      await raceAbort(
        this.#sdk.fs.uploadFiles(
          [{ source: typeof data === 'string' ? Buffer.from(data) : data, destination: abs }],
          this.#s.transferTimeoutSec,
        ),
        options.signal,
      );
      if (options.mode !== undefined) {
        const r = await this.#script(
          `chmod ${(options.mode & 0o7777).toString(8)} -- ${shq(abs)}`,
          options.signal,
          this.#s.requestTimeoutSec,
        );
        if (r.exitCode !== 0) throw new Error(r.output.trim());
      }
    } catch (err) {
      throw this.#fileError(`writing ${abs}`, abs, err, options.signal);
    }
  }

  async stat(p: string, options: { signal?: AbortSignal } = {}): Promise<FileInfo | undefined> {
    this.#checkUsable();
    const abs = this.#resolve(p);
    try {
      return toFileInfo(await this.#retrying(() => this.#sdk.fs.getFileDetails(abs), options.signal), abs);
    } catch (err) {
      if (isNotFound(err) && !options.signal?.aborted) return undefined;
      throw this.#fileError(`stat of ${abs}`, abs, err, options.signal);
    }
  }

  async list(p: string, options: ListOptions = {}): Promise<FileInfo[]> {
    this.#checkUsable();
    const abs = this.#resolve(p);
    const depth = options.recursive ? Math.max(1, options.maxDepth ?? 64) : 1;
    let infos: DaytonaFileInfoLike[];
    try {
      infos = await this.#retrying(() => this.#sdk.fs.listFiles(abs, { depth }), options.signal);
    } catch (err) {
      const status = (err as { statusCode?: unknown }).statusCode;
      if (status === 400 && !options.signal?.aborted) {
        throw new SandboxError('not-found', `${abs}: not a directory`, {
          cause: err,
          details: { path: abs },
        });
      }
      throw this.#fileError(`listing ${abs}`, abs, err, options.signal);
    }
    let entries = infos.map((i) =>
      toFileInfo(i, i.path ? this.#resolve(i.path) : path.posix.join(abs, i.name)),
    );
    if (!options.showHidden) {
      entries = entries.filter(
        (e) =>
          !path.posix
            .relative(abs, e.path)
            .split('/')
            .some((seg) => seg.startsWith('.')),
      );
    }
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return options.limit !== undefined ? entries.slice(0, options.limit) : entries;
  }

  async glob(
    pattern: string,
    options: { cwd?: string; limit?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    this.#checkUsable();
    let base = options.cwd === undefined ? this.workingDir : this.#resolve(options.cwd);
    let pat = pattern;
    if (pattern.startsWith('/')) {
      const split = hasGlobMagic(pattern)
        ? splitGlob(pattern)
        : { base: path.posix.dirname(pattern), pattern: path.posix.basename(pattern) };
      base = split.base;
      pat = split.pattern;
    }
    let files: string[];
    try {
      files = (await this.#retrying(() => this.#sdk.fs.searchFiles(base, pat), options.signal)).files;
    } catch (err) {
      if (isNotFound(err) && !options.signal?.aborted) return [];
      throw this.#fileError(`glob ${pattern}`, base, err, options.signal);
    }
    const sorted = [
      ...new Set(files.map((f) => this.#resolve(path.posix.isAbsolute(f) ? f : path.posix.join(base, f)))),
    ].sort();
    return options.limit !== undefined ? sorted.slice(0, options.limit) : sorted;
  }

  async remove(p: string, options: { recursive?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    this.#checkUsable();
    const abs = this.#resolve(p);
    try {
      this.#requests++;
      await raceAbort(this.#sdk.fs.deleteFile(abs, options.recursive ?? false), options.signal);
    } catch (err) {
      throw this.#fileError(`removing ${abs}`, abs, err, options.signal);
    }
  }

  async upload(
    localPath: string,
    remotePath: string,
    options: { exclude?: readonly string[]; signal?: AbortSignal } = {},
  ): Promise<TransferStats> {
    this.#checkUsable();
    // The transfer checks the signal between its requests; the race also ends a request that hangs.
    return raceAbort(uploadPath(this.#host(), localPath, remotePath, options), options.signal);
  }

  async download(
    remotePath: string,
    localDir: string,
    options: DownloadOptions = {},
  ): Promise<DownloadResult> {
    this.#checkUsable();
    return raceAbort(downloadPath(this.#host(), remotePath, localDir, options), options.signal);
  }

  /**
   * Deletes the sandbox: retries, 404 = deleted; if Daytona refuses or keeps
   * failing, stops it instead and warns. Memoized: concurrent and repeated
   * calls share one promise. Rejects with `SandboxError('delete-failed')` only
   * when the sandbox could be neither deleted nor stopped.
   */
  dispose(): Promise<void> {
    this.#disposing ??= this.#doDispose();
    return this.#disposing;
  }

  async #doDispose(): Promise<void> {
    this.stopKeepAlive();
    try {
      const r = await removeSandbox(this.#sdk, {
        backoff: this.#s.backoff,
        retries: this.#s.deleteRetries,
        stopFallback: true,
      });
      if (r.outcome === 'stopped') {
        this.#s.warn(
          `Daytona did not delete sandbox ${this.id} (${errorMessage(r.deleteError)}); stopped it instead. ` +
            `Its auto-delete interval (${this.#s.autoDeleteMinutes} min) or \`rho-flow cleanup --backend daytona\` will remove it.`,
        );
      }
    } finally {
      this.#release();
      for (const fn of this.#onDisposed.splice(0)) fn();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
