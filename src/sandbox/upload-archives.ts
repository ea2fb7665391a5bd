/**
 * The upload archives of one run, packed once and shared by its jobs.
 *
 * Why: a batch of 1,000 jobs that all upload `./repo` would otherwise tar
 * and gzip the same tree 1,000 times on rho-flow's one main thread (tens of
 * milliseconds to seconds each), which bounds the whole batch. The first job
 * that uploads a source packs it into a run-scoped temp dir; the others
 * (including those waiting while it packs) upload that same file.
 *
 * What a job gets is therefore the source as it was when the run first
 * packed it: every job of a run sees the same inputs even if the tree is
 * edited meanwhile. A failed pack is not kept (the next attempt packs
 * again). `close()` removes the files; a process that exits without it
 * removes them in its `exit` handler.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** What `pack` reports about the archive it wrote. */
export interface PackedTree {
  files: number;
  bytes: number;
}

/** A packed archive: its local path and what it holds. */
export interface UploadArchive extends PackedTree {
  path: string;
}

/** Identifies one packing of a source: the same tree, excludes and compression give the same archive. */
export interface ArchiveKey {
  /** The source directory, resolved to its real path. */
  source: string;
  exclude: readonly string[];
  gzip: boolean;
}

export class UploadArchives {
  readonly #entries = new Map<string, Promise<UploadArchive>>();
  /** Source as given → its real path, resolved once per run (as its archive is packed once). */
  readonly #real = new Map<string, Promise<string>>();
  /** Whether to gzip a source (real path, excludes), decided once per run. */
  readonly #gzip = new Map<string, Promise<boolean>>();
  #dir: string | undefined;
  #count = 0;
  #packs = 0;
  #closed = false;
  readonly #onExit = (): void => {
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
  };

  /** How many archives were packed (a test and benchmark figure). */
  get packs(): number {
    return this.#packs;
  }

  /**
   * The archive for `key`: packed now by `pack(archivePath)`, or the one
   * packed (or being packed) for an earlier upload of the same key.
   */
  async get(key: ArchiveKey, pack: (archivePath: string) => Promise<PackedTree>): Promise<UploadArchive> {
    const source = await this.#realpath(key.source);
    const id = JSON.stringify([source, [...key.exclude].sort(), key.gzip]);
    let entry = this.#entries.get(id);
    if (entry === undefined) {
      entry = this.#pack(key.gzip, pack);
      this.#entries.set(id, entry);
      // A failed pack is forgotten, so that a retry packs again.
      entry.catch(() => {
        if (this.#entries.get(id) === entry) this.#entries.delete(id);
      });
    }
    return entry;
  }

  /**
   * Whether the archive of `source` (with `exclude`) is gzipped: `decide()`
   * (which samples the tree) runs for the first job that uploads it and its
   * answer holds for the run, like the archive itself — not once per job.
   */
  async compress(
    source: string,
    exclude: readonly string[],
    decide: () => Promise<boolean>,
  ): Promise<boolean> {
    const id = JSON.stringify([await this.#realpath(source), [...exclude].sort()]);
    let entry = this.#gzip.get(id);
    if (entry === undefined) {
      entry = decide();
      this.#gzip.set(id, entry);
      entry.catch(() => {
        if (this.#gzip.get(id) === entry) this.#gzip.delete(id);
      });
    }
    return entry;
  }

  #realpath(source: string): Promise<string> {
    let real = this.#real.get(source);
    if (real === undefined) {
      real = fs.realpath(source);
      this.#real.set(source, real);
      real.catch(() => {
        if (this.#real.get(source) === real) this.#real.delete(source);
      });
    }
    return real;
  }

  async #pack(gzip: boolean, pack: (archivePath: string) => Promise<PackedTree>): Promise<UploadArchive> {
    if (this.#closed) throw new Error('the upload archives have been closed');
    if (this.#dir === undefined) {
      this.#dir = mkdtempSync(path.join(os.tmpdir(), 'rho-flow-uploads-'));
      process.once('exit', this.#onExit);
    }
    const file = path.join(this.#dir, `${++this.#count}.tar${gzip ? '.gz' : ''}`);
    try {
      const packed = await pack(file);
      this.#packs++;
      return { ...packed, path: file };
    } catch (err) {
      await fs.rm(file, { force: true });
      throw err;
    }
  }

  /** Removes every archive (once the uploads that use them are over). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled(this.#entries.values());
    this.#entries.clear();
    this.#gzip.clear();
    this.#real.clear();
    if (this.#dir !== undefined) {
      await fs.rm(this.#dir, { recursive: true, force: true });
      process.removeListener('exit', this.#onExit);
      this.#dir = undefined;
    }
  }
}
