/**
 * Atomic file writes: content goes to a temporary file next to the target,
 * is flushed to disk, and only then renamed over the target. A crash at any
 * point leaves either the old file or the new one, never a torn mix, and the
 * temporary file never has the target's name.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/**
 * The temporary name used for `target`: a dot file in the same directory
 * (so the rename stays on one filesystem) that can never equal the target.
 */
export function tempPathFor(target: string): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  const tag = `${process.pid}.${counter}.${randomBytes(3).toString('hex')}`;
  return join(dirname(target), `.${basename(target)}.${tag}.tmp`);
}

/** True for names produced by `tempPathFor` (for cleanup and tests). */
export function isTempName(name: string): boolean {
  return /^\..+\.\d+\.\d+\.[0-9a-f]{6}\.tmp$/.test(name);
}

/**
 * A file being written atomically. Nothing is visible at `path` until
 * `commit()` resolves; `abort()` removes the temporary file. Both are safe
 * to call more than once; after either, `write` rejects.
 */
export interface AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  write(chunk: string | Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Options shared by the atomic writers. */
export interface AtomicOptions {
  /** fsync the file before the rename (default true). Turn off only for throwaway output. */
  fsync?: boolean;
  /** File mode of the new file (default 0o644, minus umask). */
  mode?: number;
}

/** Opens `path` for an atomic, streamed write (large reports such as junit.xml). */
export async function openAtomic(path: string, options: AtomicOptions = {}): Promise<AtomicFile> {
  const tempPath = tempPathFor(path);
  const fh: FileHandle = await open(tempPath, 'wx', options.mode ?? 0o644);
  let state: 'open' | 'committed' | 'aborted' = 'open';
  let pending: Promise<void> = Promise.resolve();
  let failure: Error | undefined;

  const file: AtomicFile = {
    path,
    tempPath,
    write(chunk) {
      if (state !== 'open') return Promise.reject(new Error(`atomic write of ${path} is already ${state}`));
      // Serialize writes so chunks land in call order even when callers do not await.
      pending = pending.then(async () => {
        if (failure !== undefined) return;
        try {
          await fh.writeFile(chunk);
        } catch (e) {
          failure = e instanceof Error ? e : new Error(String(e));
        }
      });
      return pending.then(() => {
        if (failure !== undefined) throw failure;
      });
    },
    async commit() {
      if (state === 'committed') return;
      if (state === 'aborted') throw new Error(`atomic write of ${path} was aborted`);
      await pending;
      try {
        if (failure !== undefined) throw failure;
        if (options.fsync !== false) await fh.sync();
        await fh.close();
        await rename(tempPath, path);
        state = 'committed';
      } catch (e) {
        state = 'aborted';
        await fh.close().catch(() => undefined);
        await unlink(tempPath).catch(() => undefined);
        throw e;
      }
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      await pending;
      await fh.close().catch(() => undefined);
      await unlink(tempPath).catch(() => undefined);
    },
  };
  return file;
}

/**
 * Writes `data` to `path` atomically (temp file, fsync, rename). On failure
 * the temporary file is removed and the previous content of `path`, if any,
 * is untouched.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicOptions = {},
): Promise<void> {
  if (options.fsync === false && data.length <= SYNC_MAX_BYTES) {
    writeSmallFileAtomicSync(path, data, options.mode);
    return;
  }
  const file = await openAtomic(path, options);
  try {
    await file.write(data);
    await file.commit();
  } catch (e) {
    await file.abort();
    throw e;
  }
}

/**
 * Without fsync, a file up to this size is written with four synchronous
 * syscalls (open, write, close, rename into place) rather than four
 * thread-pool round trips: each job's `result.json` (issue 7, target 1).
 */
const SYNC_MAX_BYTES = 256 * 1024;

function writeSmallFileAtomicSync(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tempPath = tempPathFor(path);
  const fd = openSync(tempPath, 'wx', mode);
  try {
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
    } finally {
      closeSync(fd);
    }
    renameSync(tempPath, path);
  } catch (e) {
    try {
      unlinkSync(tempPath);
    } catch {
      // already gone
    }
    throw e;
  }
}

/** `writeFileAtomic` of `value` as pretty JSON with a trailing newline. */
export async function writeJsonAtomic(
  path: string,
  value: unknown,
  options: AtomicOptions = {},
): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', options);
}
