/**
 * The `local` backend (product.md §1): one workspace directory per job under
 * `$TMPDIR/rho-flow/<run-id>/<job-slug>/`, commands jailed with bubblewrap.
 * `image`, `snapshot` and `resources` have no meaning here and are ignored
 * (the engine tells the user once).
 *
 * Without bwrap (or when bwrap cannot create namespaces on this host):
 * `isolation: 'strict'` makes `preflight`/`create` throw a `UserError`;
 * `auto` warns once per backend instance and runs commands unjailed.
 */
import { mkdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SandboxError, UserError } from '../errors.js';
import { findBwrap, probeBwrap, validateWorkingDir } from './bwrap.js';
import { warmSpawner } from './spawner.js';
import { cleanupWorkspaces, removeWorkspace, TMP_DIR, WORK_DIR, workspacesRoot } from './local-cleanup.js';
import { enterRun, holdWorkspace, leaveRun, releaseWorkspace, writeRunMarker } from './local-run-dir.js';
import { LocalSandbox } from './local-sandbox.js';
import { currentOwner, type OwnerMarker } from './owner.js';
import type {
  BackendOptions,
  CleanupOptions,
  CleanupReport,
  SandboxBackend,
  SandboxSpec,
} from './sandbox.js';

/** How commands will run: in bwrap at `bwrap`, or unjailed. */
type Isolation = { bwrap: string } | { bwrap: undefined; why: string };

/** A run id or job slug must be a single, plain path component. */
function isSafeComponent(value: string): boolean {
  return (
    value !== '' &&
    value !== '.' &&
    value !== '..' &&
    value.length <= 200 &&
    !/[/\0]/.test(value) &&
    !value.startsWith('-')
  );
}

/** The bubblewrap-jailed local backend. `create` may be called concurrently. */
export class LocalBackend implements SandboxBackend {
  readonly name = 'local' as const;
  readonly #options: BackendOptions;
  readonly #env: Readonly<Record<string, string | undefined>>;
  #isolation: Promise<Isolation> | undefined;
  /** `$TMPDIR/rho-flow`, checked once per backend (it is ours and stays so: nobody else may replace it). */
  #rootChecked: Promise<void> | undefined;

  constructor(options: BackendOptions) {
    this.#options = options;
    this.#env = options.env ?? process.env;
  }

  /** `$TMPDIR/rho-flow`, where this backend keeps its workspaces. */
  get root(): string {
    return workspacesRoot(this.#env);
  }

  /**
   * Finds and probes bwrap (memoized). Throws `UserError` when it is unusable
   * under `isolation: 'strict'`; otherwise warns once and falls back to
   * unjailed execution.
   */
  async preflight(): Promise<void> {
    await this.#detect();
  }

  #detect(): Promise<Isolation> {
    this.#isolation ??= (async (): Promise<Isolation> => {
      warmSpawner(); // the helper process starts while bwrap is probed
      const bwrap = findBwrap(this.#env);
      const why =
        bwrap === undefined
          ? 'bubblewrap (bwrap) was not found'
          : await probeBwrap(bwrap).then((e) => e && `bubblewrap does not work here (${e})`);
      if (bwrap !== undefined && why === undefined) return { bwrap };
      const reason = why ?? 'bubblewrap is unusable';
      if (this.#options.isolation === 'strict') {
        throw new UserError(
          `${reason}; --isolation strict refuses to run the local backend without it (install it: apt-get install bubblewrap)`,
        );
      }
      this.#options.warn(
        `${reason}: local commands run WITHOUT isolation; install it (apt-get install bubblewrap) or use --isolation strict to refuse`,
      );
      return { bwrap: undefined, why: reason };
    })();
    // A failed strict preflight stays failed: every later create rejects the same way.
    return this.#isolation;
  }

  /**
   * Creates the job's workspace (replacing a stale one of an earlier attempt
   * with the same slug); the run directory gets this process's owner marker
   * with its first workspace (local-run-dir.ts). When `signal` aborts during
   * creation, whatever was created is removed and the abort reason rejects.
   */
  async create(spec: SandboxSpec, options: { signal?: AbortSignal } = {}): Promise<LocalSandbox> {
    options.signal?.throwIfAborted();
    const isolation = await this.#detect();
    for (const [what, value] of [
      ['run id', spec.runId],
      ['job slug', spec.jobSlug],
    ] as const) {
      if (!isSafeComponent(value)) {
        throw new SandboxError(
          'create-failed',
          `the ${what} ${JSON.stringify(value)} cannot name a directory`,
        );
      }
    }
    validateWorkingDir(spec.workingDir);
    const workingDir = spec.workingDir.replace(/\/+$/, '');
    const root = this.root;
    const runDir = path.join(root, spec.runId);
    const slugDir = path.join(runDir, spec.jobSlug);
    const holder = {};
    let entered = false;
    let made = false;
    try {
      this.#rootChecked ??= ensurePrivateDir(root).catch((e: unknown) => {
        this.#rootChecked = undefined;
        throw e;
      });
      await this.#rootChecked;
      const marker = await currentOwner({ runId: spec.runId });
      try {
        enterRun(runDir, marker);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        // The root was removed behind our back: check and make it again.
        await ensurePrivateDir(root);
        enterRun(runDir, marker);
      }
      entered = true;
      await this.#makeSlugDir(runDir, slugDir, marker);
      made = true;
      holdWorkspace(slugDir, holder);
      // Synchronous on purpose: small metadata calls in our own fresh directory cost less than
      // thread-pool round trips, each of which waits its turn on a busy machine (issue 7, target 1).
      mkdirSync(path.join(slugDir, WORK_DIR), { mode: 0o755 });
      if (isolation.bwrap === undefined) mkdirSync(path.join(slugDir, TMP_DIR), { mode: 0o700 });
      options.signal?.throwIfAborted();
    } catch (e) {
      if (made) {
        releaseWorkspace(slugDir, holder);
        await removeWorkspace(slugDir).catch(() => undefined);
      }
      if (entered) leaveRun(runDir);
      if (options.signal?.aborted === true) throw options.signal.reason;
      if (e instanceof SandboxError) throw e;
      throw new SandboxError(
        'create-failed',
        `could not create the workspace ${slugDir}: ${e instanceof Error ? e.message : String(e)}`,
        {
          cause: e,
          retryable: true,
        },
      );
    }
    return new LocalSandbox({ spec: { ...spec, workingDir }, slugDir, bwrap: isolation.bwrap, holder });
  }

  /**
   * Makes `slugDir` fresh: a leftover from an earlier attempt is removed first.
   * The run directory exists (`enterRun` made it) unless it was removed behind
   * our back; then it is made again with the marker. The common case is a
   * single synchronous `mkdir`.
   */
  async #makeSlugDir(runDir: string, slugDir: string, marker: OwnerMarker): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        mkdirSync(slugDir, { mode: 0o700 });
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (attempt >= 5) throw e;
        if (code === 'EEXIST') await removeWorkspace(slugDir);
        else if (code !== 'ENOENT') throw e;
        else {
          try {
            writeRunMarker(runDir, marker);
          } catch (e2) {
            if ((e2 as NodeJS.ErrnoException).code !== 'ENOENT') throw e2;
            await ensurePrivateDir(path.dirname(runDir));
          }
        }
      }
    }
  }

  /** Removes workspaces of dead owners under `$TMPDIR/rho-flow` (see `cleanupWorkspaces`). */
  async cleanup(options: CleanupOptions): Promise<CleanupReport> {
    return cleanupWorkspaces(this.root, options);
  }

  /** Nothing to release: sandboxes are not touched. */
  async close(): Promise<void> {
    // No clients or timers are held.
  }
}

/**
 * Creates `dir` (0o700) if needed and checks it is a real directory owned by
 * us, so another local user cannot pre-plant `$TMPDIR/rho-flow` as a symlink.
 */
async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = await fs.lstat(dir);
  if (!st.isDirectory())
    throw new SandboxError('create-failed', `${dir} is not a directory (a symlink?); refusing to use it`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new SandboxError(
      'create-failed',
      `${dir} belongs to another user (uid ${st.uid}); set TMPDIR to a private directory`,
    );
  }
}
