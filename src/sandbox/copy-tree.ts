/**
 * The tree copy of local transfers (uploads into a workspace, downloads out
 * of it): a depth-first walk through directory fds with the symlink
 * discipline of `local-copy.ts`, in time slices on the calling thread, with
 * the regular files of large directories shared with the copy thread
 * (`copy-thread.ts`).
 */
import fsSync from 'node:fs';
import { CopyThread, fromWire, type FileBatch, type Offer } from './copy-thread.js';
import {
  at,
  closeQuietly,
  copyContext,
  copyFileSteps,
  copySymlinkAt,
  ensureDirAt,
  O_DIR,
  type CopyContext,
} from './local-copy.js';
import { byName, errno } from './safe-fs.js';

/** Longest stretch of synchronous fs work before yielding to the event loop. */
const SLICE_MS = 8;
/** Files per batch a directory's files are split into when the copy thread helps. */
const BATCH_FILES = 8;
/** Directories with fewer files are copied by the calling thread alone. */
const SHARE_MIN_FILES = 12;
/** Directories whose last steps (waiting for the copy thread, final mode, closing) may wait at once. */
const MAX_UNFINISHED_DIRS = 16;

/** Counters shared by one transfer. */
export interface Tally {
  files: number;
  bytes: number;
}

export interface CopyTreeOptions {
  /** Matched against paths relative to the tree root (posix). */
  exclude?: (rel: string) => boolean;
  /** `copy`: recreate symlinks as symlinks (upload); `skip`: report them (download). */
  symlinks: 'copy' | 'skip';
  signal?: AbortSignal;
  tally: Tally;
  onSkip: (rel: string, reason: string) => void;
  onFile?: (rel: string) => void;
}

/** Yields to the event loop once the current slice of synchronous work has used its budget. */
export class Slicer {
  #start = performance.now();
  readonly #signal: AbortSignal | undefined;
  /** This transfer's copy buffer (one chunk at a time) and umask. */
  readonly ctx: CopyContext = copyContext();

  constructor(signal: AbortSignal | undefined) {
    this.#signal = signal;
    signal?.throwIfAborted();
  }

  async tick(): Promise<void> {
    if (performance.now() - this.#start < SLICE_MS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#signal?.throwIfAborted();
    this.#start = performance.now();
  }

  /** Runs copy steps, with a turn of the event loop between them when the slice is used up. */
  async run<T>(steps: Generator<void, T, void>): Promise<T> {
    try {
      for (;;) {
        const r = steps.next();
        if (r.done === true) return r.value;
        await this.tick();
      }
    } finally {
      steps.return(undefined as T); // an abort between chunks closes the files
    }
  }
}

/**
 * Copies the tree below the open directory `srcFd` into the open directory
 * `dstFd`, depth first. Directory modes are applied once their contents
 * exist. The caller keeps ownership of both fds.
 *
 * The regular files of a large directory are shared with the copy thread
 * (`copy-thread.ts`). A directory's last steps — settling its offer, its
 * final mode, closing its fds — are queued rather than done at once, so the
 * walk goes on to the next directory while the thread finishes its share;
 * the queue is worked off in order (children before their parent) and is
 * bounded, and on any failure every queued directory is still settled before
 * its fds close.
 */
export async function copyTree(srcFd: number, dstFd: number, options: CopyTreeOptions): Promise<void> {
  const slicer = new Slicer(options.signal);
  const unfinished: Array<(ok: boolean) => Promise<void>> = [];

  const record = (rel: string, got: number | string): void => {
    if (typeof got === 'string') options.onSkip(rel, got);
    else {
      options.tally.files++;
      options.tally.bytes += got;
      options.onFile?.(rel);
    }
  };

  /** Copies the files `names` (with their `rels`) of one directory on this thread. */
  const copyHere = async (
    srcDir: number,
    dstDir: number,
    names: readonly string[],
    rels: readonly string[],
  ): Promise<void> => {
    for (let k = 0; k < names.length; k++) {
      const rel = rels[k] ?? '';
      await slicer.tick();
      record(rel, await slicer.run(copyFileSteps(srcDir, dstDir, names[k] ?? '', rel, slicer.ctx)));
    }
  };

  /** Copies `names` (regular files of one directory); returns the offer to settle, if the thread got one. */
  const copyFiles = async (
    srcDir: number,
    dstDir: number,
    names: string[],
    rels: string[],
  ): Promise<Offer | undefined> => {
    const thread = names.length >= SHARE_MIN_FILES ? CopyThread.get() : undefined;
    if (!thread) {
      await copyHere(srcDir, dstDir, names, rels);
      return undefined;
    }
    const batches: FileBatch[] = [];
    for (let k = 0; k < names.length; k += BATCH_FILES) {
      batches.push({
        srcDirFd: srcDir,
        dstDirFd: dstDir,
        names: names.slice(k, k + BATCH_FILES),
        rels: rels.slice(k, k + BATCH_FILES),
      });
    }
    const offer = thread.offer(batches, slicer.ctx.umask);
    try {
      for (const [i, b] of batches.entries()) {
        if (offer.claim(i)) await copyHere(srcDir, dstDir, b.names, b.rels);
      }
    } catch (e) {
      await offer.settle().catch(() => undefined);
      throw e;
    }
    return offer;
  };

  /** Collects what the thread did with its share of `offer`; throws its first error. */
  const settle = async (offer: Offer | undefined): Promise<void> => {
    if (!offer) return;
    for (const o of await offer.settle()) {
      const b = offer.batches[o.i];
      o.results.forEach((got, k) => record(b?.rels[k] ?? '', got));
      if (o.error) throw fromWire(o.error);
    }
  };

  const finishOldest = async (): Promise<void> => {
    const next = unfinished.shift();
    if (next) await next(true);
  };

  const visit = async (srcDir: number, dstDir: number, base: string): Promise<Offer | undefined> => {
    const entries = fsSync
      .readdirSync(at(srcDir), { withFileTypes: true })
      .sort((a, b) => byName(a.name, b.name));
    const subdirs: string[] = [];
    const names: string[] = [];
    const rels: string[] = [];
    for (const d of entries) {
      await slicer.tick();
      const rel = base === '' ? d.name : `${base}/${d.name}`;
      if (options.exclude?.(rel) === true) continue;
      if (d.isDirectory()) subdirs.push(d.name);
      else if (d.isFile()) {
        names.push(d.name);
        rels.push(rel);
      } else if (d.isSymbolicLink()) {
        if (options.symlinks === 'skip') options.onSkip(rel, 'symlink');
        else {
          copySymlinkAt(srcDir, dstDir, d.name, rel);
          options.tally.files++;
        }
      } else options.onSkip(rel, 'not a regular file');
    }
    const offer = await copyFiles(srcDir, dstDir, names, rels);
    try {
      for (const name of subdirs) {
        await slicer.tick();
        const rel = base === '' ? name : `${base}/${name}`;
        let childSrc: number;
        try {
          childSrc = fsSync.openSync(at(srcDir, name), O_DIR);
        } catch (e) {
          if (errno(e) === 'ENOENT') continue;
          if (errno(e) === 'ENOTDIR' || errno(e) === 'ELOOP') {
            options.onSkip(rel, 'replaced during the copy');
            continue;
          }
          throw e;
        }
        let childDst: number | undefined;
        let dirMode: number;
        try {
          dirMode = fsSync.fstatSync(childSrc).mode & 0o7777;
          childDst = ensureDirAt(dstDir, name, rel);
          // Writable while filling (a read-only source dir would refuse our own writes when not root).
          fsSync.fchmodSync(childDst, dirMode | 0o700);
        } catch (e) {
          closeQuietly(childSrc);
          if (childDst !== undefined) closeQuietly(childDst);
          throw e;
        }
        const dst = childDst;
        const childOffer = await visit(childSrc, dst, rel).catch((e: unknown) => {
          closeQuietly(childSrc);
          closeQuietly(dst);
          throw e;
        });
        unfinished.push(async (ok) => {
          try {
            await settle(childOffer);
            if (ok) fsSync.fchmodSync(dst, dirMode);
          } finally {
            closeQuietly(dst);
            closeQuietly(childSrc);
          }
        });
        if (unfinished.length > MAX_UNFINISHED_DIRS) await finishOldest();
      }
    } catch (e) {
      await offer?.settle().catch(() => undefined);
      throw e;
    }
    return offer;
  };

  try {
    const rootOffer = await visit(srcFd, dstFd, '');
    while (unfinished.length > 0) await finishOldest();
    await settle(rootOffer);
  } finally {
    // After a failure: settle what is left (the thread stops at once) before the fds close.
    for (const next of unfinished.splice(0)) await next(false).catch(() => undefined);
  }
}
