/**
 * Uploads into and downloads out of a local workspace, host side, with the
 * same symlink discipline as `safe-fs.ts`: both trees are walked through
 * directory fds and every entry is opened with `O_NOFOLLOW`, so neither a
 * symlink in the source nor one planted in the destination is ever
 * dereferenced.
 *
 * Copies run several files at once (the fs work happens on libuv's thread
 * pool) while the directory walk stays depth-first; a small window bounds
 * how many directories are held open at a time.
 */
import { constants as C } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import picomatch from 'picomatch';
import { SandboxError } from '../errors.js';
import type { DownloadResult, TransferStats } from './sandbox.js';
import {
  byName,
  createChildFile,
  errno,
  fdPath,
  fsError,
  openChildDir,
  SafeRoot,
  splitSandboxPath,
} from './safe-fs.js';

const O_DIR = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
const O_READ = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
/** Files copied at once. libuv has 4 threads; a few more keep them busy across small files. */
const FILE_CONCURRENCY = 16;
/** Queued file copies beyond which the walk waits (bounds open directory fds). */
const MAX_QUEUED = 256;
const CHUNK = 1 << 20;

/** Counters shared by one transfer. */
interface Tally {
  files: number;
  bytes: number;
}

interface CopyTreeOptions {
  /** Matched against paths relative to the tree root (posix). */
  exclude?: (rel: string) => boolean;
  /** `copy`: recreate symlinks as symlinks (upload); `skip`: report them (download). */
  symlinks: 'copy' | 'skip';
  signal?: AbortSignal;
  tally: Tally;
  onSkip: (rel: string, reason: string) => void;
  onFile?: (rel: string) => void;
}

/**
 * Copies the regular file held by `src` into `name` inside `dstDir` (never
 * following a symlink there), preserving permission bits and mtime. Returns
 * the bytes copied.
 */
async function copyOpenFile(
  src: FileHandle,
  dstDir: FileHandle,
  name: string,
  what: string,
): Promise<number> {
  const st = await src.stat();
  const dst = await createChildFile(dstDir, name, { mode: (st.mode & 0o7777) | 0o200, what });
  try {
    let copied = 0;
    if (st.size <= 4 * CHUNK) {
      const data = await src.readFile();
      await dst.write(data, 0, data.length, 0);
      copied = data.length;
    } else {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, CHUNK, copied);
        if (bytesRead === 0) break;
        let off = 0;
        while (off < bytesRead)
          off += (await dst.write(buf, off, bytesRead - off, copied + off)).bytesWritten;
        copied += bytesRead;
      }
    }
    await dst.chmod(st.mode & 0o7777);
    await dst.utimes(st.atime, st.mtime);
    return copied;
  } finally {
    await dst.close();
  }
}

/** Copies `name` from `srcDir` to `dstDir` if it is (still) a regular file; returns bytes, or a skip reason. */
async function copyFileAt(
  srcDir: FileHandle,
  dstDir: FileHandle,
  name: string,
  what: string,
): Promise<number | string> {
  let src: FileHandle;
  try {
    src = await fs.open(fdPath(srcDir, name), O_READ);
  } catch (e) {
    if (errno(e) === 'ELOOP') return 'symlink';
    if (errno(e) === 'ENOENT') return 'vanished during the copy';
    throw e;
  }
  try {
    const st = await src.stat();
    if (!st.isFile())
      return st.isDirectory() ? 'replaced by a directory during the copy' : 'not a regular file';
    return await copyOpenFile(src, dstDir, name, what);
  } finally {
    await src.close();
  }
}

/**
 * Recreates the symlink `name` of `srcDir` in `dstDir` (replacing whatever
 * non-directory is there). The link is never followed on either side.
 */
async function copySymlinkAt(srcDir: FileHandle, dstDir: FileHandle, name: string): Promise<void> {
  const target = await fs.readlink(fdPath(srcDir, name));
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      await fs.symlink(target, fdPath(dstDir, name));
      return;
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e;
      try {
        await fs.unlink(fdPath(dstDir, name));
      } catch (ue) {
        if (errno(ue) === 'EISDIR')
          throw new SandboxError('transfer-failed', `${name}: a directory is in the way of a symlink`);
        if (errno(ue) !== 'ENOENT') throw ue;
      }
    }
  }
  throw new SandboxError('transfer-failed', `${name}: could not create the symlink`);
}

/** Opens (creating if needed) the directory `name` in `dstDir`; a symlink in the way is replaced, never followed. */
async function ensureChildDir(dstDir: FileHandle, name: string, what: string): Promise<FileHandle> {
  for (let attempt = 0; attempt < 4; attempt++) {
    const child = await openChildDir(dstDir, name, { create: true, mode: 0o755, what });
    if ('dir' in child) return child.dir;
    try {
      await fs.unlink(fdPath(dstDir, name));
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
  }
  throw new SandboxError('transfer-failed', `${what}: could not create the directory`);
}

/**
 * Copies the tree below `src` into `dst` (both open directories). Directory
 * modes are preserved (applied once the directory's own entries exist).
 * Resolves when everything is copied; on the first failure, stops and rejects
 * after every open handle is closed.
 */
async function copyTree(src: FileHandle, dst: FileHandle, options: CopyTreeOptions): Promise<void> {
  const limit = pLimit(FILE_CONCURRENCY);
  const finishing = new Set<Promise<void>>();
  let failure: unknown;
  const fail = (e: unknown): void => {
    failure ??= e;
  };
  const relOf = (base: string, name: string): string => (base === '' ? name : `${base}/${name}`);

  // Owns srcDir/dstDir: they are closed once this directory's files are copied.
  const visit = async (
    srcDir: FileHandle,
    dstDir: FileHandle,
    base: string,
    mode: number | undefined,
  ): Promise<void> => {
    const files: Array<Promise<void>> = [];
    try {
      options.signal?.throwIfAborted();
      const entries = await fs.readdir(fdPath(srcDir), { withFileTypes: true });
      entries.sort((a, b) => byName(a.name, b.name));
      const subdirs: string[] = [];
      for (const d of entries) {
        const rel = relOf(base, d.name);
        if (options.exclude?.(rel) === true) continue;
        if (d.isDirectory()) subdirs.push(d.name);
        else if (d.isSymbolicLink()) {
          if (options.symlinks === 'skip') options.onSkip(rel, 'symlink');
          else {
            await copySymlinkAt(srcDir, dstDir, d.name);
            options.tally.files++;
          }
        } else if (d.isFile()) {
          files.push(
            limit(async () => {
              if (failure !== undefined) return;
              const got = await copyFileAt(srcDir, dstDir, d.name, rel);
              if (typeof got === 'string') options.onSkip(rel, got);
              else {
                options.tally.files++;
                options.tally.bytes += got;
                options.onFile?.(rel);
              }
            }).catch(fail),
          );
        } else options.onSkip(rel, 'not a regular file');
      }
      for (const name of subdirs) {
        if (failure !== undefined) break;
        // Back-pressure: let queued copies drain before opening more directories.
        while (limit.pendingCount > MAX_QUEUED && finishing.size > 0) await Promise.race(finishing);
        const rel = relOf(base, name);
        let childSrc: FileHandle;
        try {
          childSrc = await fs.open(fdPath(srcDir, name), O_DIR);
        } catch (e) {
          if (errno(e) === 'ENOENT') continue;
          if (errno(e) === 'ENOTDIR' || errno(e) === 'ELOOP') {
            options.onSkip(rel, 'replaced during the copy');
            continue;
          }
          throw e;
        }
        let childDst: FileHandle;
        let childMode: number;
        try {
          childMode = (await childSrc.stat()).mode & 0o7777;
          childDst = await ensureChildDir(dstDir, name, rel);
        } catch (e) {
          await childSrc.close();
          throw e;
        }
        await visit(childSrc, childDst, rel, childMode);
      }
    } catch (e) {
      fail(e);
    } finally {
      const done = Promise.allSettled(files).then(async () => {
        try {
          if (mode !== undefined && failure === undefined) await dstDir.chmod(mode);
        } catch (e) {
          fail(e);
        }
        await Promise.allSettled([srcDir.close(), dstDir.close()]);
      });
      finishing.add(done);
      void done.finally(() => finishing.delete(done));
    }
  };

  await visit(src, dst, '', undefined);
  while (finishing.size > 0) await Promise.allSettled([...finishing]);
  if (failure !== undefined) throw failure as Error;
}

/** Exclude matcher for upload: picomatch globs relative to the source root, dot-files included. */
function excludeMatcher(patterns: readonly string[] | undefined): ((rel: string) => boolean) | undefined {
  if (patterns === undefined || patterns.length === 0) return undefined;
  const m = picomatch([...patterns], { dot: true });
  return (rel) => m(rel);
}

/**
 * Copies a local file or directory tree to `remotePath` inside `root`. A
 * directory lands *at* `remotePath`; a file lands at `remotePath`, or inside
 * it when it is an existing directory or ends with `/`. The top-level
 * `localPath` may be a symlink (it is the user's choice); symlinks below it
 * are copied as links, never followed.
 */
export async function uploadTree(
  root: SafeRoot,
  workingDir: string,
  localPath: string,
  remotePath: string,
  options: { exclude?: readonly string[]; signal?: AbortSignal } = {},
): Promise<TransferStats> {
  const started = performance.now();
  options.signal?.throwIfAborted();
  let st;
  try {
    st = await fs.stat(localPath);
  } catch (e) {
    throw new SandboxError('transfer-failed', `upload source ${localPath} not found`, { cause: e });
  }
  const rel = splitSandboxPath(remotePath, workingDir);
  const tally: Tally = { files: 0, bytes: 0 };
  const what = `upload ${localPath} -> ${root.display(rel)}`;
  try {
    if (st.isDirectory()) {
      const exclude = excludeMatcher(options.exclude);
      const src = await fs.open(localPath, C.O_RDONLY | C.O_DIRECTORY);
      let dst: FileHandle;
      try {
        dst = (await root.openDir(rel, { create: true })).dir;
      } catch (e) {
        await src.close();
        throw e;
      }
      if (rel.length > 0) {
        try {
          await dst.chmod(st.mode & 0o7777);
        } catch (e) {
          await Promise.allSettled([src.close(), dst.close()]);
          throw e;
        }
      }
      await copyTree(src, dst, {
        ...(exclude ? { exclude } : {}),
        symlinks: 'copy',
        ...(options.signal ? { signal: options.signal } : {}),
        tally,
        onSkip: () => undefined,
      });
    } else if (st.isFile()) {
      const existing = await root.lstat(rel);
      const target =
        existing?.isDirectory() === true || remotePath.endsWith('/')
          ? [...rel, path.basename(localPath)]
          : rel;
      const name = target[target.length - 1];
      if (name === undefined)
        throw new SandboxError('transfer-failed', `${what}: the target is the working directory itself`);
      const { dir } = await root.openDir(target.slice(0, -1), { create: true });
      try {
        const src = await fs.open(localPath, C.O_RDONLY);
        try {
          tally.bytes += await copyOpenFile(src, dir, name, root.display(target));
          tally.files++;
        } finally {
          await src.close();
        }
      } finally {
        await dir.close();
      }
    } else {
      throw new SandboxError('transfer-failed', `upload source ${localPath} is not a file or directory`);
    }
  } catch (e) {
    if (options.signal?.aborted === true) throw options.signal.reason;
    if (e instanceof SandboxError) throw e;
    throw fsError(e, what, 'transfer-failed');
  }
  return {
    files: tally.files,
    bytes: tally.bytes,
    durationMs: Math.round(performance.now() - started),
    requests: 0,
  };
}

/**
 * Copies a file, a directory tree, or the matches of a glob out of `root`
 * into `localDir` (see `Sandbox.download`). Symlinks and special files in the
 * sandbox are skipped and reported; nothing is written outside `localDir`.
 */
export async function downloadTree(
  root: SafeRoot,
  workingDir: string,
  remotePath: string,
  localDir: string,
  options: { signal?: AbortSignal } = {},
): Promise<DownloadResult> {
  const started = performance.now();
  options.signal?.throwIfAborted();
  const written: string[] = [];
  const skipped: Array<{ path: string; reason: string }> = [];
  const tally: Tally = { files: 0, bytes: 0 };
  const absRemote = path.posix.isAbsolute(remotePath)
    ? path.posix.normalize(remotePath)
    : path.posix.join(workingDir, remotePath);
  const scan = picomatch.scan(absRemote);
  const baseRel = splitSandboxPath(scan.isGlob ? scan.base || '/' : absRemote, workingDir);
  const local = new SafeRoot(path.resolve(localDir), { followSymlinks: false });
  const sandboxPathOf = (relToBase: string): string =>
    root.display(relToBase === '' ? baseRel : [...baseRel, ...relToBase.split('/')]);

  try {
    await fs.mkdir(local.hostRoot, { recursive: true });
    if (!scan.isGlob) {
      const st = await root.lstat(baseRel);
      if (st === undefined)
        throw new SandboxError('not-found', `${root.display(baseRel)}: no such file or directory`);
      const name =
        baseRel.length === 0 ? path.posix.basename(workingDir) : (baseRel[baseRel.length - 1] as string);
      if (st.isSymbolicLink()) skipped.push({ path: root.display(baseRel), reason: 'symlink' });
      else if (st.isDirectory())
        await copyDirOut(root, baseRel, local, [name], options.signal, tally, written, skipped);
      else if (st.isFile()) await copyFileOut(root, baseRel, local, [name], tally, written, skipped);
      else skipped.push({ path: root.display(baseRel), reason: 'not a regular file' });
    } else {
      const isMatch = picomatch(scan.glob, { dot: false });
      const globstar = scan.glob.includes('**');
      const maxDepth = globstar ? undefined : scan.glob.split('/').length;
      const dotGlob = /(^|\/)\./.test(scan.glob);
      const matches: Array<{ rel: string; type: string }> = [];
      await root.walkTree(
        baseRel,
        {
          ...(maxDepth !== undefined ? { maxDepth } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        },
        (e) => {
          const rel = e.rel.join('/');
          if (isMatch(rel)) {
            matches.push({ rel, type: e.type });
            return 'skip'; // a matched directory is copied whole
          }
          if (e.type === 'dir' && e.name.startsWith('.') && !dotGlob) return 'skip';
          return undefined;
        },
      );
      if (matches.length === 0) throw new SandboxError('not-found', `${absRemote}: no files matched`);
      for (const m of matches) {
        options.signal?.throwIfAborted();
        const parts = m.rel.split('/');
        const remote = [...baseRel, ...parts];
        if (m.type === 'dir')
          await copyDirOut(root, remote, local, parts, options.signal, tally, written, skipped);
        else if (m.type === 'file') await copyFileOut(root, remote, local, parts, tally, written, skipped);
        else
          skipped.push({
            path: sandboxPathOf(m.rel),
            reason: m.type === 'symlink' ? 'symlink' : 'not a regular file',
          });
      }
    }
  } catch (e) {
    if (options.signal?.aborted === true) throw options.signal.reason;
    if (e instanceof SandboxError) throw e;
    throw fsError(e, `download ${absRemote}`, 'transfer-failed');
  }
  written.sort();
  return {
    files: tally.files,
    bytes: tally.bytes,
    durationMs: Math.round(performance.now() - started),
    requests: 0,
    written,
    skipped,
  };
}

/** Copies one sandbox file (by components, final symlink not followed) to `localRel` under `local`. */
async function copyFileOut(
  root: SafeRoot,
  remote: readonly string[],
  local: SafeRoot,
  localRel: readonly string[],
  tally: Tally,
  written: string[],
  skipped: Array<{ path: string; reason: string }>,
): Promise<void> {
  // The local name is always the remote basename (callers keep relative paths).
  const name = remote[remote.length - 1] as string;
  const { dir: srcDir } = await root.openDir(remote.slice(0, -1));
  try {
    const { dir: dstDir } = await local.openDir(localRel.slice(0, -1), { create: true });
    try {
      const got = await copyFileAt(srcDir, dstDir, name, localRel.join('/'));
      if (typeof got === 'string') skipped.push({ path: root.display(remote), reason: got });
      else {
        tally.files++;
        tally.bytes += got;
        written.push(localRel.join('/'));
      }
    } finally {
      await dstDir.close();
    }
  } finally {
    await srcDir.close();
  }
}

/** Copies the sandbox directory `remote` to `localRel` under `local`, skipping and reporting symlinks. */
async function copyDirOut(
  root: SafeRoot,
  remote: readonly string[],
  local: SafeRoot,
  localRel: readonly string[],
  signal: AbortSignal | undefined,
  tally: Tally,
  written: string[],
  skipped: Array<{ path: string; reason: string }>,
): Promise<void> {
  const { dir: src } = await root.openDir(remote);
  let dst: FileHandle;
  try {
    dst = (await local.openDir(localRel, { create: true })).dir;
  } catch (e) {
    await src.close();
    throw e;
  }
  const localBase = localRel.join('/');
  await copyTree(src, dst, {
    symlinks: 'skip',
    ...(signal ? { signal } : {}),
    tally,
    onSkip: (rel, reason) => skipped.push({ path: root.display([...remote, ...rel.split('/')]), reason }),
    onFile: (rel) => written.push(localBase === '' ? rel : `${localBase}/${rel}`),
  });
}
