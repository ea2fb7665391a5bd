/**
 * `<run dir>/.lock`: one rho-flow process at a time per run directory.
 *
 * Why: two processes writing one run dir (a CI job re-run while the first is
 * still going, two shells resuming the same run, two runs given the same
 * `--run-id`) would run the same jobs twice, interleave results.jsonl and
 * race on summary.json. The lock is an owner marker (pid, its start time,
 * host, boot id) created with `O_EXCL`; a lock whose owner is provably gone
 * (crash, SIGKILL, reboot) is taken over, one whose owner may be alive is a
 * `UserError` naming it. It is removed when the run finishes, or at the
 * latest when the process exits. (Two processes taking over the same stale
 * lock in the same instant could both succeed; that needs a crash and a race
 * together, and is not guarded against.)
 */
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { currentOwner, isOwnerAlive, parseOwnerMarker } from '../sandbox/owner.js';
import { errno } from '../sandbox/safe-fs.js';

/** A lock file that cannot be parsed is a lock being written for this long; older, it is debris. */
const UNREADABLE_GRACE_MS = 10_000;

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
}

export class RunLock {
  readonly path: string;
  readonly #nonce: string;
  #released = false;
  readonly #onExit = (): void => {
    this.release();
  };

  private constructor(path: string, nonce: string) {
    this.path = path;
    this.#nonce = nonce;
    process.once('exit', this.#onExit);
  }

  /** Takes `<runDir>/.lock` (the directory must exist), or throws `UserError` when another live rho-flow holds it. */
  static async acquire(runDir: string, runId: string): Promise<RunLock> {
    const path = join(runDir, '.lock');
    const nonce = randomUUID();
    const text = `${JSON.stringify(await currentOwner({ runId, jobId: 'run', nonce }))}\n`;
    for (let attempt = 0; attempt < 3; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, 'wx', 0o644);
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
        await RunLock.#judge(path, runDir);
        continue; // it was stale and is gone: try again
      }
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      return new RunLock(path, nonce);
    }
    throw new UserError(`could not lock the run directory ${runDir}: ${path} keeps reappearing`);
  }

  /** Removes a stale lock at `path`; throws `UserError` when its owner may be alive. */
  static async #judge(path: string, runDir: string): Promise<void> {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if (errno(e) === 'ENOENT') return;
      throw e;
    }
    const marker = parseOwnerMarker(text);
    if (marker === undefined) {
      let age: number;
      try {
        age = Date.now() - statSync(path).mtimeMs;
      } catch (e) {
        if (errno(e) === 'ENOENT') return;
        throw e;
      }
      if (age < UNREADABLE_GRACE_MS) {
        throw new UserError(`the run directory ${runDir} is being opened by another rho-flow right now`);
      }
      unlinkQuietly(path);
      return;
    }
    const verdict = await isOwnerAlive(marker);
    if (verdict.alive) {
      throw new UserError(
        `the run directory ${runDir} is in use by rho-flow pid ${marker.pid} on ${marker.host} ` +
          `(since ${marker.createdAt}; ${verdict.reason}). Wait for it to finish, or, if it is not running, ` +
          `remove ${path}`,
      );
    }
    unlinkQuietly(path);
  }

  /** Removes the lock if it is still this process's. Idempotent, synchronous (also runs at exit). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    process.removeListener('exit', this.#onExit);
    try {
      const marker = parseOwnerMarker(readFileSync(this.path, 'utf8'));
      if (marker?.nonce === this.#nonce) unlinkSync(this.path);
    } catch {
      // already gone, or unreadable: not ours to remove
    }
  }
}
