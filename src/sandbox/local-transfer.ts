/**
 * Uploads into and downloads out of a local workspace, host side, with the
 * same symlink discipline as `safe-fs.ts`: both trees are walked through
 * directory fds and every entry is opened with `O_NOFOLLOW`, so neither a
 * symlink in the source nor one planted in the destination is ever
 * dereferenced.
 *
 * The copy itself (`copy-tree.ts`, `local-copy.ts`) uses synchronous fs
 * calls in time slices (yielding to the event loop every few milliseconds):
 * thousands of small files cost one syscall each per step instead of a
 * thread-pool round trip and a promise, and large directories are shared
 * with a copy thread, which keeps a tree upload close to `tar c | tar x`
 * while the loop stays responsive.
 */
import fsSync, { constants as C } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { SandboxError } from '../errors.js';
import { copyTree, Slicer, type Tally } from './copy-tree.js';
import { closeQuietly, copyFileSteps, copyOpenFileSteps } from './local-copy.js';
import type { DownloadResult, TransferStats } from './sandbox.js';
import { fsError, SafeRoot, splitSandboxPath } from './safe-fs.js';

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
      const { dir: dst } = await root.openDir(rel, { create: true });
      try {
        const src = fsSync.openSync(localPath, C.O_RDONLY | C.O_DIRECTORY);
        try {
          // The working dir itself keeps its mode; an upload target gets the source's.
          if (rel.length > 0) fsSync.fchmodSync(dst.fd, (st.mode & 0o7777) | 0o700);
          await copyTree(src, dst.fd, {
            ...(exclude ? { exclude } : {}),
            symlinks: 'copy',
            ...(options.signal ? { signal: options.signal } : {}),
            tally,
            onSkip: () => undefined,
          });
          if (rel.length > 0) fsSync.fchmodSync(dst.fd, st.mode & 0o7777);
        } finally {
          closeQuietly(src);
        }
      } finally {
        await dst.close();
      }
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
        const src = fsSync.openSync(localPath, C.O_RDONLY);
        try {
          const slicer = new Slicer(options.signal);
          tally.bytes += await slicer.run(
            copyOpenFileSteps(src, fsSync.fstatSync(src), dir.fd, name, root.display(target), slicer.ctx),
          );
          tally.files++;
        } finally {
          closeQuietly(src);
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
      else if (st.isFile())
        await copyFileOut(root, baseRel, local, [name], options.signal, tally, written, skipped);
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
        else if (m.type === 'file')
          await copyFileOut(root, remote, local, parts, options.signal, tally, written, skipped);
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
  signal: AbortSignal | undefined,
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
      const slicer = new Slicer(signal);
      const got = await slicer.run(copyFileSteps(srcDir.fd, dstDir.fd, name, localRel.join('/'), slicer.ctx));
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
  try {
    await copyTree(src.fd, dst.fd, {
      symlinks: 'skip',
      ...(signal ? { signal } : {}),
      tally,
      onSkip: (rel, reason) => skipped.push({ path: root.display([...remote, ...rel.split('/')]), reason }),
      onFile: (rel) => written.push(localBase === '' ? rel : `${localBase}/${rel}`),
    });
  } finally {
    await Promise.allSettled([src.close(), dst.close()]);
  }
}
