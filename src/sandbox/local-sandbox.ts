/**
 * One local sandbox: a workspace directory on this machine whose commands run
 * in bubblewrap jails (or unjailed when bwrap is missing and isolation is
 * `auto`). File operations and transfers run host side through `SafeRoot`,
 * which never follows a symlink out of the workspace.
 *
 * Local semantics worth knowing:
 * - Each `exec` is its own jail: own pid namespace, own empty `/tmp`. Nothing
 *   a command starts outlives it (background jobs die when it exits); files
 *   persist only under the working dir.
 * - File operations (`readFile`, `list`, …) reach only paths under the
 *   working dir; anything else is `SandboxError('path-escape')` (use `exec`
 *   to look at, e.g., `/usr/include`).
 * - Unjailed (no bwrap, `isolation: auto`): file operations map sandbox paths
 *   under the working dir to the workspace directory, but commands see the
 *   host filesystem, so a command using an absolute `/work/...` path does not
 *   reach the workspace; `readOnly` is not enforced.
 */
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  fstatSync,
  openSync,
  readSync,
  unlinkSync,
} from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { SandboxError } from '../errors.js';
import { JAIL_OUTPUT_PATH, bwrapArgs, commandEnv, envArgsData } from './bwrap.js';
import { killWorkspaceProcesses, removeWorkspaceLayout, TMP_DIR, WORK_DIR } from './local-cleanup.js';
import { holdsWorkspace, leaveRun, releaseWorkspace } from './local-run-dir.js';
import { DEFAULT_MAX_OUTPUT, ProcessRun, type ProcessOutcome } from './local-exec.js';
import { downloadTree, uploadTree } from './local-transfer.js';
import { SafeRoot, splitSandboxPath } from './safe-fs.js';
import type {
  DownloadResult,
  ExecOptions,
  ExecResult,
  FileInfo,
  ListOptions,
  Sandbox,
  SandboxSpec,
  TransferStats,
} from './sandbox.js';

/** bash on the host; the same path works in a jail, which mirrors the host userland. */
const HOST_BASH = ['/bin/bash', '/usr/bin/bash', '/usr/local/bin/bash'].find((p) => existsSync(p)) ?? 'bash';

/** Hard bound on the entries one `list`/`glob` call visits, so a huge tree cannot stall a tool call. */
const MAX_VISITED = 200_000;
/** Host file names of run steps' outputs files, in the workspace dir next to `work/` (out of the job's reach). */
export const STEP_OUTPUT_PREFIX = 'step-output.';

/**
 * Creates an empty outputs file for one run step. Synchronous on purpose: it
 * is one `open`+`close` of a new empty file next to the workspace, cheaper
 * than two thread-pool round trips (issue 7, target 1).
 */
function createOutputFile(file: string): void {
  closeSync(openSync(file, 'wx', 0o600));
}

/**
 * Reads back a run step's outputs file (up to `max` bytes; never through a
 * symlink an unjailed command may have put in its place) and removes it.
 * `undefined` when it cannot be read.
 */
function takeOutputFile(file: string, max: number): string | undefined {
  let text: string | undefined;
  try {
    const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const size = Math.min(fstatSync(fd).size, Math.max(0, max));
      const buf = Buffer.alloc(size);
      let got = 0;
      while (got < size) {
        const n = readSync(fd, buf, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      text = buf.toString('utf8', 0, got);
    } finally {
      closeSync(fd);
    }
  } catch {
    text = undefined;
  }
  try {
    unlinkSync(file);
  } catch {
    // already gone (dispose)
  }
  return text;
}

export interface LocalSandboxInit {
  spec: SandboxSpec;
  /** `$TMPDIR/rho-flow/<run-id>/<job-slug>`; already created, with `work/` inside. */
  slugDir: string;
  /** Path of bwrap, or `undefined` to run unjailed. */
  bwrap: string | undefined;
  /** Its claim on `slugDir` (local-run-dir.ts `holdWorkspace`): a later attempt at the same path takes it over. */
  holder: object;
}

/** A local workspace plus jailed command execution. Create through `LocalBackend.create`. */
export class LocalSandbox implements Sandbox {
  readonly backend = 'local' as const;
  /** The workspace directory on the host (`$TMPDIR/rho-flow/<run-id>/<job-slug>`). */
  readonly id: string;
  readonly workingDir: string;
  readonly #spec: SandboxSpec;
  readonly #workDir: string;
  readonly #bwrap: string | undefined;
  readonly #root: SafeRoot;
  readonly #running = new Set<ProcessRun>();
  /**
   * A jailed command was killed (timeout, abort, dispose): bwrap may have been
   * killed while setting up, after it cloned the jail's init but before that
   * init armed its parent-death signal and left the group (`--new-session`);
   * such an init outlives the kill. `dispose` then looks for it by the
   * workspace it binds (a /proc scan, so only in this case).
   */
  #killedJail = false;
  readonly #holder: object;
  #disposing: Promise<void> | undefined;
  /** Run steps' outputs files made so far (names them). */
  #outputFiles = 0;

  constructor(init: LocalSandboxInit) {
    this.#holder = init.holder;
    this.#spec = init.spec;
    this.id = init.slugDir;
    this.workingDir = init.spec.workingDir;
    this.#workDir = path.join(init.slugDir, WORK_DIR);
    this.#bwrap = init.bwrap;
    this.#root = new SafeRoot(this.#workDir, { sandboxRoot: this.workingDir });
  }

  /** True when commands run inside bwrap. */
  get jailed(): boolean {
    return this.#bwrap !== undefined;
  }

  #assertLive(): void {
    if (this.#disposing) throw new SandboxError('gone', `sandbox ${this.id} was disposed`);
  }

  #rel(p: string, relativeTo?: string): string[] {
    return splitSandboxPath(p, this.workingDir, relativeTo);
  }

  #abs(rel: readonly string[]): string {
    return this.#root.display(rel);
  }

  /**
   * Runs `bash -c <command>` (with `runStep`: `bash -eo pipefail -c`, see the
   * interface) in a fresh jail. A missing
   * `cwd` under the working dir is a failed command (exit 1), not an error;
   * a jail that cannot start is `SandboxError('exec-failed')`; a dispose
   * during the command rejects with `SandboxError('gone')`.
   */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.#assertLive();
    options.signal?.throwIfAborted();
    const cwd =
      options.cwd === undefined ? this.workingDir : path.posix.resolve(this.workingDir, options.cwd);
    let cwdRel: string[] | undefined;
    try {
      cwdRel = this.#rel(cwd);
    } catch {
      cwdRel = undefined; // outside the workspace (e.g. /tmp): the jail decides
    }
    // In a jail the working dir is the bind-mounted workspace, which cannot be removed from
    // inside (a mount point) and exists as long as the sandbox does: no check for it.
    if (cwdRel && (cwdRel.length > 0 || !this.jailed)) {
      try {
        const { dir } = await this.#root.openDir(cwdRel);
        await dir.close();
      } catch (e) {
        if (e instanceof SandboxError && e.code === 'not-found') {
          return {
            exitCode: 1,
            stdout: '',
            stderr: `rho-flow: working directory ${cwd} does not exist\n`,
            timedOut: false,
            durationMs: 0,
          };
        }
        if (!(e instanceof SandboxError && e.code === 'path-escape')) throw e;
        cwdRel = undefined; // a symlink the jail resolves itself
      }
    }

    // Re-check after the awaits above: from here to `#running.add` nothing yields, so a
    // concurrent dispose either sees this command or makes it fail here.
    this.#assertLive();
    const jailed = this.#bwrap !== undefined;
    // A run step: `bash -eo pipefail -c` itself, its outputs file bound into the jail from the host.
    const outputFile = options.runStep
      ? path.join(this.id, `${STEP_OUTPUT_PREFIX}${++this.#outputFiles}`)
      : undefined;
    const env = commandEnv(
      jailed
        ? { home: this.workingDir, tmpdir: '/tmp' }
        : { home: this.#workDir, tmpdir: path.join(this.id, TMP_DIR) },
      this.#spec.env,
      options.env,
      outputFile === undefined ? undefined : { RHO_FLOW_OUTPUT: jailed ? JAIL_OUTPUT_PATH : outputFile },
    );
    // `$0` is `bash` (as for `bash` found on PATH), not the absolute path we start it by.
    const shell = outputFile === undefined ? ['-c', command] : ['-eo', 'pipefail', '-c', command, 'bash'];
    if (outputFile !== undefined) {
      try {
        createOutputFile(outputFile);
      } catch (e) {
        throw new SandboxError('exec-failed', `could not create the step's outputs file ${outputFile}`, {
          cause: e,
          retryable: true,
        });
      }
    }
    const run = this.#bwrap
      ? new ProcessRun(
          {
            file: this.#bwrap,
            args: [
              ...bwrapArgs({
                workspace: this.#workDir,
                workingDir: this.workingDir,
                cwd,
                network: this.#spec.network,
                readOnly: options.readOnly === true,
                ...(outputFile !== undefined ? { outputFile } : {}),
              }),
              HOST_BASH, // the jail mirrors the host's /usr, /bin: same path inside
              ...shell,
            ],
            cwd: this.#workDir,
            env: {},
            jailArgs: envArgsData(env),
          },
          options,
        )
      : new ProcessRun(
          {
            // Absolute, so a workflow PATH without bash still starts the command.
            file: HOST_BASH,
            args: shell,
            cwd: cwdRel ? path.join(this.#workDir, ...cwdRel) : cwd,
            env,
          },
          options,
        );
    this.#running.add(run);
    let outcome: ProcessOutcome | undefined;
    let outputs: string | undefined;
    try {
      outcome = await run.done;
    } finally {
      this.#running.delete(run);
      if (this.jailed && (outcome === undefined || outcome.killedBy !== undefined)) this.#killedJail = true;
      if (outputFile !== undefined) {
        outputs = takeOutputFile(outputFile, options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);
      }
    }
    const result = this.#result(outcome, options);
    if (outputs !== undefined && !result.timedOut) result.outputs = outputs;
    return result;
  }

  #result(o: ProcessOutcome, options: ExecOptions): ExecResult {
    if (o.killedBy === 'dispose')
      throw new SandboxError('gone', `sandbox ${this.id} was disposed while the command ran`);
    if (o.killedBy === 'abort')
      throw (options.signal?.reason as Error | undefined) ?? new SandboxError('exec-failed', 'aborted');
    if (o.spawnError) {
      throw new SandboxError('exec-failed', `could not start the command: ${o.spawnError.message}`, {
        cause: o.spawnError,
        retryable: true,
      });
    }
    const timedOut = o.killedBy === 'timeout';
    let exitCode = o.exitCode;
    if (o.jailStatus && !timedOut) {
      if (o.jailStatus.exitCode === undefined) {
        // bwrap never started the command: a jail setup failure, except a bad cwd (a plain step failure).
        if (/^bwrap: Can't chdir/m.test(o.stderr)) {
          return {
            exitCode: 1,
            stdout: o.stdout,
            stderr: o.stderr,
            timedOut: false,
            durationMs: o.durationMs,
          };
        }
        const first = o.stderr.split('\n').find((l) => l.trim() !== '') ?? `exit code ${o.exitCode}`;
        throw new SandboxError('exec-failed', `the bubblewrap jail failed to start: ${first}`, {
          retryable: true,
          details: { stderr: o.stderr },
        });
      }
      exitCode = o.jailStatus.exitCode;
    }
    return { exitCode, stdout: o.stdout, stderr: o.stderr, timedOut, durationMs: o.durationMs };
  }

  async readFile(p: string, options: { signal?: AbortSignal; maxBytes?: number } = {}): Promise<Buffer> {
    this.#assertLive();
    options.signal?.throwIfAborted();
    return this.#root.readFile(
      this.#rel(p),
      options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {},
    );
  }

  async writeFile(
    p: string,
    data: string | Buffer,
    options: { signal?: AbortSignal; mode?: number; createOnly?: boolean } = {},
  ): Promise<void> {
    this.#assertLive();
    options.signal?.throwIfAborted();
    const { signal: _signal, ...rest } = options;
    await this.#root.writeFile(this.#rel(p), data, rest);
  }

  async stat(p: string, options: { signal?: AbortSignal } = {}): Promise<FileInfo | undefined> {
    this.#assertLive();
    options.signal?.throwIfAborted();
    const rel = this.#rel(p);
    const st = await this.#root.lstat(rel);
    return st && this.#root.toInfo(rel, st);
  }

  async list(p: string, options: ListOptions = {}): Promise<FileInfo[]> {
    this.#assertLive();
    options.signal?.throwIfAborted();
    const rel = this.#rel(p);
    const maxDepth = options.recursive === true ? (options.maxDepth ?? Infinity) : 1;
    const limit = options.limit ?? Infinity;
    const out: FileInfo[] = [];
    let visited = 0;
    await this.#root.walkTree(
      rel,
      { maxDepth, ...(options.signal ? { signal: options.signal } : {}) },
      async (e) => {
        if (++visited > MAX_VISITED) return 'stop';
        if (options.showHidden !== true && e.name.startsWith('.')) return 'skip';
        const info = await this.#root.infoAt(e.parent, [...rel, ...e.rel]);
        if (info) out.push(info);
        return out.length >= limit ? 'stop' : undefined;
      },
    );
    // The walk is component-wise ordered (so `limit` keeps a prefix); callers get plain path order.
    return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  }

  /** Non-directory entries (files, symlinks, …) matching `pattern`; `**` does not enter dot-dirs or symlinked dirs. */
  async glob(
    pattern: string,
    options: { cwd?: string; limit?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    this.#assertLive();
    options.signal?.throwIfAborted();
    const cwd =
      options.cwd === undefined ? this.workingDir : path.posix.resolve(this.workingDir, options.cwd);
    const abs = path.posix.isAbsolute(pattern) ? pattern : path.posix.join(cwd, pattern);
    const scan = picomatch.scan(abs);
    if (!scan.isGlob) {
      const rel = this.#rel(abs);
      const st = await this.#root.lstat(rel);
      return st && !st.isDirectory() ? [this.#abs(rel)] : [];
    }
    const baseRel = this.#rel(scan.base || '/');
    const isMatch = picomatch(scan.glob, { dot: false });
    const maxDepth = scan.glob.includes('**') ? Infinity : scan.glob.split('/').length;
    const dotGlob = /(^|\/)\./.test(scan.glob);
    const limit = options.limit ?? Infinity;
    const out: string[] = [];
    let visited = 0;
    try {
      await this.#root.walkTree(
        baseRel,
        { maxDepth, ...(options.signal ? { signal: options.signal } : {}) },
        (e) => {
          if (++visited > MAX_VISITED) return 'stop';
          if (e.type === 'dir') return e.name.startsWith('.') && !dotGlob ? 'skip' : undefined;
          if (isMatch(e.rel.join('/'))) out.push(this.#abs([...baseRel, ...e.rel]));
          return out.length >= limit ? 'stop' : undefined;
        },
      );
    } catch (e) {
      if (e instanceof SandboxError && e.code === 'not-found') return [];
      throw e;
    }
    return out.sort();
  }

  async remove(p: string, options: { recursive?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    this.#assertLive();
    options.signal?.throwIfAborted();
    await this.#root.remove(this.#rel(p), options);
  }

  async upload(
    localPath: string,
    remotePath: string,
    options: { exclude?: readonly string[]; signal?: AbortSignal } = {},
  ): Promise<TransferStats> {
    this.#assertLive();
    return uploadTree(this.#root, this.workingDir, localPath, remotePath, options);
  }

  async download(
    remotePath: string,
    localDir: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<DownloadResult> {
    this.#assertLive();
    return downloadTree(this.#root, this.workingDir, remotePath, localDir, options);
  }

  /**
   * Kills every command still running in this sandbox, then deletes the
   * workspace (and the run directory once empty). Idempotent and memoized:
   * every call returns the same promise. Rejects with
   * `SandboxError('delete-failed')` when the directory cannot be removed.
   */
  dispose(): Promise<void> {
    this.#disposing ??= this.#doDispose();
    return this.#disposing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  async #doDispose(): Promise<void> {
    const running = [...this.#running];
    if (running.length > 0 && this.jailed) this.#killedJail = true;
    for (const run of running) run.kill('dispose');
    await Promise.allSettled(running.map((r) => r.done));
    const runDir = path.dirname(this.id);
    // A later attempt of the same job may have replaced this workspace (same path): leave it alone.
    if (!holdsWorkspace(this.id, this.#holder)) {
      leaveRun(runDir);
      return;
    }
    // Unjailed commands may have escaped their process group (setsid); jailed ones died with their
    // namespace, except a jail killed while bwrap was still setting it up (see #killedJail).
    if (!this.jailed || this.#killedJail) await killWorkspaceProcesses(this.id);
    // The common case (nothing left in work/) takes two syscalls; anything else a recursive removal.
    if (!removeWorkspaceLayout(this.id, !this.jailed)) {
      try {
        await fs.rm(this.id, { recursive: true, force: true, maxRetries: 3 });
      } catch (e) {
        // Still ours, and the run keeps its marker, so `rho-flow cleanup` removes it once we are gone.
        throw new SandboxError('delete-failed', `could not remove the workspace ${this.id}`, { cause: e });
      }
    }
    releaseWorkspace(this.id, this.#holder);
    // The last workspace of the run removes the marker and the run directory.
    leaveRun(runDir);
  }
}
