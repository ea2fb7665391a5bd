/**
 * The synchronous file-copy steps of local transfers, shared by the calling
 * thread (`local-transfer.ts`) and the copy thread (`local-copier.ts`). Both
 * trees are reached through directory fds and every entry is opened with
 * `O_NOFOLLOW`, so neither a symlink in the source nor one planted in the
 * destination is ever dereferenced. Directory fds are process-wide, so the
 * copy thread can work in directories the calling thread opened
 * (`/proc/self/fd/<fd>/<name>`), as long as they stay open.
 */
import fsSync, { constants as C, type Stats } from 'node:fs';
import { SandboxError } from '../errors.js';
import { errno } from './safe-fs.js';

export const O_DIR = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
const O_READ = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
/** `O_NONBLOCK`: a FIFO without a reader fails (ENXIO) instead of blocking; `O_NOFOLLOW`: a symlink fails (ELOOP). */
const O_CREATE = C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW | C.O_NONBLOCK;
/** `O_EXCL` too: a fresh file needs no truncation, and a name already taken (even by a symlink) fails with EEXIST. */
const O_CREATE_NEW = O_CREATE | C.O_EXCL;
/** Copy chunk; a step of `copyFileSteps` ends after each full one. */
export const CHUNK = 1 << 20;

/** `/proc/self/fd/<fd>/<name>`: `name` resolved by the kernel relative to the directory fd. */
export const at = (dirFd: number, name?: string): string =>
  name === undefined ? `/proc/self/fd/${dirFd}` : `/proc/self/fd/${dirFd}/${name}`;

/** What one thread needs to copy files: its buffer, and the umask new files get. */
export interface CopyContext {
  readonly buf: Buffer;
  readonly umask: number;
}

export function copyContext(umask = currentUmask()): CopyContext {
  return { buf: Buffer.allocUnsafe(CHUNK), umask };
}

/** The process's umask, from `/proc/self/status`; all bits set when unknown (then a chmod is never skipped). */
export function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fsSync.readFileSync('/proc/self/status', 'utf8'));
    return m?.[1] !== undefined ? parseInt(m[1], 8) : 0o7777;
  } catch {
    return 0o7777;
  }
}

export function closeQuietly(fd: number): void {
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
export function ensureDirAt(dirFd: number, name: string, what: string): number {
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

/**
 * Copies the open regular file `srcFd` to `name` in `dstDirFd`, preserving
 * permission bits and mtime; yields after each full chunk (so a caller can
 * give its event loop a turn) and returns the bytes copied.
 *
 * Per file (2,000-file uploads, issue 7 target 5): a name not taken yet is
 * created exclusively, and then needs no `fchmod` when its mode came out
 * right (owner-writable, no special bits, nothing masked by the umask);
 * reading stops at the size `fstat` gave instead of reading once more for
 * the end (a file that grows meanwhile is copied as it was when opened, as
 * tar does).
 */
export function* copyOpenFileSteps(
  srcFd: number,
  st: Stats,
  dstDirFd: number,
  name: string,
  what: string,
  ctx: CopyContext,
): Generator<void, number, void> {
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
    const buf = ctx.buf;
    let copied = 0;
    while (copied < st.size) {
      const n = fsSync.readSync(srcFd, buf, 0, Math.min(buf.length, st.size - copied), copied);
      if (n === 0) break;
      for (let off = 0; off < n;) off += fsSync.writeSync(dst, buf, off, n - off, copied + off);
      copied += n;
      if (n === buf.length) yield;
    }
    if (!fresh || (mode & 0o7200) !== 0o200 || (mode & ctx.umask) !== 0) fsSync.fchmodSync(dst, mode);
    fsSync.futimesSync(dst, st.atime, st.mtime);
    return copied;
  } finally {
    closeQuietly(dst);
  }
}

/**
 * Copies `name` from `srcDirFd` to `dstDirFd` if it is (still) a regular
 * file; returns the bytes, or the reason it was skipped. Yields as
 * `copyOpenFileSteps`.
 */
export function* copyFileSteps(
  srcDirFd: number,
  dstDirFd: number,
  name: string,
  what: string,
  ctx: CopyContext,
): Generator<void, number | string, void> {
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
    return yield* copyOpenFileSteps(src, st, dstDirFd, name, what, ctx);
  } finally {
    closeQuietly(src);
  }
}

/** Runs copy steps to the end without yielding (the copy thread). */
export function runStepsSync<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

/** Recreates the symlink `name` of `srcDirFd` in `dstDirFd` (replacing a non-directory there). Never followed on either side. */
export function copySymlinkAt(srcDirFd: number, dstDirFd: number, name: string, what: string): void {
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
