/**
 * Uploads into and downloads out of a local workspace, host side, with the
 * same symlink discipline as `safe-fs.ts`: both trees are walked through
 * directory fds and every entry is opened with `O_NOFOLLOW`, so neither a
 * symlink in the source nor one planted in the destination is ever
 * dereferenced.
 *
 * The copy itself uses synchronous fs calls in time slices (yielding to the
 * event loop every few milliseconds): thousands of small files cost one
 * syscall each per step instead of a thread-pool round trip and a promise,
 * which keeps a tree upload close to `tar c | tar x` while the loop stays
 * responsive.
 */
import fsSync, { constants as C, type Stats } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { SandboxError } from '../errors.js';
import type { DownloadResult, TransferStats } from './sandbox.js';
import { byName, errno, fsError, SafeRoot, splitSandboxPath } from './safe-fs.js';

const O_DIR = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
const O_READ = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
/** `O_NONBLOCK`: a FIFO without a reader fails (ENXIO) instead of blocking; `O_NOFOLLOW`: a symlink fails (ELOOP). */
const O_CREATE = C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW | C.O_NONBLOCK;
/** Longest stretch of synchronous fs work before yielding to the event loop. */
const SLICE_MS = 8;
const CHUNK = 1 << 20;

/** `/proc/self/fd/<fd>/<name>`: `name` resolved by the kernel relative to the directory fd. */
const at = (dirFd: number, name?: string): string =>
  name === undefined ? `/proc/self/fd/${dirFd}` : `/proc/self/fd/${dirFd}/${name}`;

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

/** Yields to the event loop once the current slice of synchronous work has used its budget. */
class Slicer {
  #start = performance.now();
  readonly #signal: AbortSignal | undefined;
  /** Shared copy buffer: one transfer copies one chunk at a time. */
  readonly buf = Buffer.allocUnsafe(CHUNK);
  /** The umask new files are created under, read once per transfer. */
  readonly umask = currentUmask();

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
}

function closeQuietly(fd: number): void {
  try {
    fsSync.closeSync(fd);
  } catch {
    // already closed
  }
}

function unlinkIfPresent(p: string): void {
  try {
    fsSync.unlinkSync(p);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return fsSync.lstatSync(p);
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Creates or truncates the regular file `name` in `dirFd` for writing; a
 * symlink (or reader-less FIFO) in the way is removed, never followed.
 */
function createFileAt(dirFd: number, name: string, mode: number, what: string): number {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return fsSync.openSync(at(dirFd, name), O_CREATE, mode);
    } catch (e) {
      const c = errno(e);
      if (c === 'ELOOP' || c === 'ENXIO') unlinkIfPresent(at(dirFd, name));
      else if (c === 'EISDIR')
        throw new SandboxError('transfer-failed', `${what}: a directory is in the way of a file`);
      else throw e;
    }
  }
  throw new SandboxError('transfer-failed', `${what}: the destination kept changing`, { retryable: true });
}

/** Opens (creating if needed) the directory `name` in `dirFd`; a symlink in the way is replaced, never followed. */
function ensureDirAt(dirFd: number, name: string, what: string): number {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return fsSync.openSync(at(dirFd, name), O_DIR);
    } catch (e) {
      const c = errno(e);
      if (c === 'ENOENT') {
        try {
          fsSync.mkdirSync(at(dirFd, name), 0o755);
        } catch (me) {
          if (errno(me) !== 'EEXIST') throw me;
        }
      } else if (c === 'ENOTDIR' || c === 'ELOOP') {
        const st = lstatOrUndefined(at(dirFd, name));
        if (st?.isSymbolicLink() === true) unlinkIfPresent(at(dirFd, name));
        else if (st !== undefined && !st.isDirectory()) {
          throw new SandboxError('transfer-failed', `${what}: a file is in the way of a directory`);
        }
      } else throw e;
    }
  }
  throw new SandboxError('transfer-failed', `${what}: the destination kept changing`, { retryable: true });
}

/** `O_EXCL` too: a fresh file needs no truncation, and a name already taken (even by a symlink) fails with EEXIST. */
const O_CREATE_NEW = O_CREATE | C.O_EXCL;

/** The process's umask, from `/proc/self/status`; all bits set when unknown (then a chmod is never skipped). */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fsSync.readFileSync('/proc/self/status', 'utf8'));
    return m?.[1] !== undefined ? parseInt(m[1], 8) : 0o7777;
  } catch {
    return 0o7777;
  }
}

/**
 * Copies the open regular file `srcFd` to `name` in `dstDirFd`, preserving
 * permission bits and mtime. Returns the bytes copied.
 *
 * Per file (2,000-file uploads, issue 7 target 5): a name not taken yet is
 * created exclusively, and then needs no `fchmod` when its mode came out
 * right (owner-writable, no special bits, nothing masked by the umask);
 * reading stops at the size `fstat` gave instead of reading once more for
 * the end (a file that grows meanwhile is copied as it was when opened, as
 * tar does).
 */
async function copyOpenFile(
  srcFd: number,
  st: Stats,
  dstDirFd: number,
  name: string,
  what: string,
  slicer: Slicer,
): Promise<number> {
  const mode = st.mode & 0o7777;
  let dst: number;
  let fresh = true;
  try {
    dst = fsSync.openSync(at(dstDirFd, name), O_CREATE_NEW, mode | 0o200);
  } catch (e) {
    if (errno(e) !== 'EEXIST') throw e;
    fresh = false;
    dst = createFileAt(dstDirFd, name, mode | 0o200, what);
  }
  try {
    const buf = slicer.buf;
    let copied = 0;
    while (copied < st.size) {
      const n = fsSync.readSync(srcFd, buf, 0, Math.min(buf.length, st.size - copied), copied);
      if (n === 0) break;
      for (let off = 0; off < n;) off += fsSync.writeSync(dst, buf, off, n - off, copied + off);
      copied += n;
      if (n === buf.length) await slicer.tick();
    }
    if (!fresh || (mode & 0o7200) !== 0o200 || (mode & slicer.umask) !== 0) fsSync.fchmodSync(dst, mode);
    fsSync.futimesSync(dst, st.atime, st.mtime);
    return copied;
  } finally {
    closeQuietly(dst);
  }
}

/** Copies `name` from `srcDirFd` to `dstDirFd` if it is (still) a regular file; returns bytes, or a skip reason. */
async function copyFileAt(
  srcDirFd: number,
  dstDirFd: number,
  name: string,
  what: string,
  slicer: Slicer,
): Promise<number | string> {
  let src: number;
  try {
    src = fsSync.openSync(at(srcDirFd, name), O_READ);
  } catch (e) {
    if (errno(e) === 'ELOOP') return 'symlink';
    if (errno(e) === 'ENOENT') return 'vanished during the copy';
    throw e;
  }
  try {
    const st = fsSync.fstatSync(src);
    if (!st.isFile())
      return st.isDirectory() ? 'replaced by a directory during the copy' : 'not a regular file';
    return await copyOpenFile(src, st, dstDirFd, name, what, slicer);
  } finally {
    closeQuietly(src);
  }
}

/** Recreates the symlink `name` of `srcDirFd` in `dstDirFd` (replacing a non-directory there). Never followed on either side. */
function copySymlinkAt(srcDirFd: number, dstDirFd: number, name: string, what: string): void {
  const target = fsSync.readlinkSync(at(srcDirFd, name));
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      fsSync.symlinkSync(target, at(dstDirFd, name));
      return;
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e;
      try {
        unlinkIfPresent(at(dstDirFd, name));
      } catch (ue) {
        if (errno(ue) === 'EISDIR')
          throw new SandboxError('transfer-failed', `${what}: a directory is in the way of a symlink`);
        throw ue;
      }
    }
  }
  throw new SandboxError('transfer-failed', `${what}: the destination kept changing`, { retryable: true });
}

/**
 * Copies the tree below the open directory `srcFd` into the open directory
 * `dstFd`, depth first. Directory modes are applied once their contents
 * exist. The caller keeps ownership of both fds.
 */
async function copyTree(srcFd: number, dstFd: number, options: CopyTreeOptions): Promise<void> {
  const slicer = new Slicer(options.signal);
  const visit = async (srcDir: number, dstDir: number, base: string): Promise<void> => {
    const entries = fsSync
      .readdirSync(at(srcDir), { withFileTypes: true })
      .sort((a, b) => byName(a.name, b.name));
    const subdirs: string[] = [];
    for (const d of entries) {
      await slicer.tick();
      const rel = base === '' ? d.name : `${base}/${d.name}`;
      if (options.exclude?.(rel) === true) continue;
      if (d.isDirectory()) subdirs.push(d.name);
      else if (d.isFile()) {
        const got = await copyFileAt(srcDir, dstDir, d.name, rel, slicer);
        if (typeof got === 'string') options.onSkip(rel, got);
        else {
          options.tally.files++;
          options.tally.bytes += got;
          options.onFile?.(rel);
        }
      } else if (d.isSymbolicLink()) {
        if (options.symlinks === 'skip') options.onSkip(rel, 'symlink');
        else {
          copySymlinkAt(srcDir, dstDir, d.name, rel);
          options.tally.files++;
        }
      } else options.onSkip(rel, 'not a regular file');
    }
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
      try {
        const mode = fsSync.fstatSync(childSrc).mode & 0o7777;
        const childDst = ensureDirAt(dstDir, name, rel);
        try {
          // Writable while filling (a read-only source dir would refuse our own writes when not root).
          fsSync.fchmodSync(childDst, mode | 0o700);
          await visit(childSrc, childDst, rel);
          fsSync.fchmodSync(childDst, mode);
        } finally {
          closeQuietly(childDst);
        }
      } finally {
        closeQuietly(childSrc);
      }
    }
  };
  await visit(srcFd, dstFd, '');
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
          tally.bytes += await copyOpenFile(
            src,
            fsSync.fstatSync(src),
            dir.fd,
            name,
            root.display(target),
            slicer,
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
      const got = await copyFileAt(srcDir.fd, dstDir.fd, name, localRel.join('/'), new Slicer(signal));
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
