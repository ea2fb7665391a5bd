/**
 * Symlink-safe file operations on a directory tree that an untrusted process
 * may modify concurrently (a job's workspace, seen from the host).
 *
 * Technique: every operation walks its path one component at a time from a
 * file descriptor of the root. Each step opens `/proc/self/fd/<dirfd>/<name>`
 * with `O_NOFOLLOW` (plus `O_DIRECTORY` for intermediate components), so the
 * kernel resolves exactly one name relative to a directory that was already
 * verified, and refuses to traverse a symlink. Swapping a directory for a
 * symlink between two steps therefore cannot redirect us: the step either
 * sees the directory (and holds it open from then on) or sees the symlink.
 *
 * A symlink met on the way is resolved by reading its text and re-walking
 * from the root (at most `MAX_HOPS` times): targets inside the root are
 * followed, anything else is `SandboxError('path-escape')`. Absolute link
 * texts are interpreted as sandbox paths (relative to `sandboxRoot`), which is
 * how the job itself sees them inside its jail.
 *
 * Names handed to this module are already-normalized components (no `''`,
 * `.`, `..` or `/`); `splitSandboxPath` produces them.
 */
import { constants as C, type Dirent, type Stats } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError, type SandboxErrorCode } from '../errors.js';
import type { FileInfo, FileType } from './sandbox.js';

const O_DIR = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
/** `O_NONBLOCK` so that opening a FIFO the job planted never blocks a thread. */
const O_READ = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
const O_WRITE = C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW | C.O_NONBLOCK;
/** Same bound as the kernel's MAXSYMLINKS. */
export const MAX_HOPS = 40;
/** Retries of one step when the entry changes type under us (a concurrent swap). */
const MAX_RACE_RETRIES = 8;

/** Path of `name` inside the directory held open by `dir`, resolved by the kernel relative to that fd. */
export function fdPath(dir: FileHandle, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dir.fd}` : `/proc/self/fd/${dir.fd}/${name}`;
}

/** Error code of a Node fs error, if any. */
export function errno(e: unknown): string | undefined {
  return e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
}

/** Wraps a foreign fs error in a `SandboxError` (not-found for ENOENT/ENOTDIR). */
export function fsError(e: unknown, what: string, code: SandboxErrorCode = 'exec-failed'): SandboxError {
  if (e instanceof SandboxError) return e;
  const c = errno(e);
  if (c === 'ENOENT' || c === 'ENOTDIR')
    return new SandboxError('not-found', `${what}: no such file or directory`, { cause: e });
  const message = e instanceof Error ? e.message.replace(/^[A-Z]+: /, '') : String(e);
  return new SandboxError(code, `${what}: ${message}`, { cause: e, details: c ? { errno: c } : {} });
}

/**
 * Splits a sandbox path into components relative to `sandboxRoot` (an
 * absolute, normalized directory). Relative paths are relative to
 * `relativeTo` (default `sandboxRoot`). `..` is resolved lexically and may
 * not climb above `sandboxRoot`: such paths, and absolute paths elsewhere,
 * throw `SandboxError('path-escape')`.
 */
export function splitSandboxPath(p: string, sandboxRoot: string, relativeTo = sandboxRoot): string[] {
  if (p.includes('\0'))
    throw new SandboxError('path-escape', `invalid path (NUL byte): ${JSON.stringify(p)}`);
  const abs = path.posix.normalize(path.posix.isAbsolute(p) ? p : path.posix.join(relativeTo, p));
  const rel = path.posix.relative(sandboxRoot, abs);
  if (rel === '') return [];
  if (rel === '..' || rel.startsWith('../') || path.posix.isAbsolute(rel)) {
    throw new SandboxError(
      'path-escape',
      `${p}: outside the working directory ${sandboxRoot} (file operations on this backend are limited to it)`,
      { details: { path: p } },
    );
  }
  return rel.split('/').filter((s) => s !== '' && s !== '.');
}

/** Maps `lstat`/`Dirent` results to the interface's `FileType`. */
export function fileType(s: Stats | Dirent): FileType {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** Orders names by UTF-16 code units, so a pre-order walk yields paths sorted component-wise. */
export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Result of opening one child of a directory: the opened directory, or the text of the symlink found there. */
type ChildDir = { dir: FileHandle } | { link: string };

/**
 * Opens the directory `name` inside `dir` without following a symlink.
 * `create` makes it (mode 0o755) when missing. Returns the link text when
 * `name` is a symlink; throws `not-found` when it is missing or not a directory.
 */
export async function openChildDir(
  dir: FileHandle,
  name: string,
  options: { create?: boolean; mode?: number; what: string },
): Promise<ChildDir> {
  for (let attempt = 0; attempt < MAX_RACE_RETRIES; attempt++) {
    try {
      return { dir: await fs.open(fdPath(dir, name), O_DIR) };
    } catch (e) {
      const c = errno(e);
      if (c === 'ENOENT') {
        if (options.create !== true)
          throw new SandboxError('not-found', `${options.what}: no such file or directory`);
        try {
          await fs.mkdir(fdPath(dir, name), options.mode ?? 0o755);
        } catch (me) {
          if (errno(me) !== 'EEXIST') throw fsError(me, options.what);
        }
        continue;
      }
      if (c === 'ENOTDIR' || c === 'ELOOP') {
        // Either a symlink or a non-directory; lstat tells which. A concurrent
        // swap just makes us go round again.
        const st = await lstatOrUndefined(fdPath(dir, name));
        if (st === undefined) continue;
        if (st.isDirectory()) continue;
        if (!st.isSymbolicLink()) throw new SandboxError('not-found', `${options.what}: not a directory`);
        try {
          return { link: await fs.readlink(fdPath(dir, name)) };
        } catch (le) {
          if (errno(le) === 'EINVAL' || errno(le) === 'ENOENT') continue;
          throw fsError(le, options.what);
        }
      }
      throw fsError(e, options.what);
    }
  }
  throw new SandboxError(
    'exec-failed',
    `${options.what}: the path kept changing while it was being resolved`,
    { retryable: true },
  );
}

/** `lstat` that returns `undefined` for a missing entry. */
export async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
    throw e;
  }
}

async function unlinkIfPresent(p: string): Promise<void> {
  try {
    await fs.unlink(p);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
}

/** Where a walk ended: the open parent directory (caller closes), its resolved components, and the final name. */
interface Walked {
  dir: FileHandle;
  dirRel: string[];
  /** `undefined` when the path is the root itself. */
  name: string | undefined;
}

/** Options of `SafeRoot`. */
export interface SafeRootOptions {
  /**
   * The sandbox path the root is seen at (e.g. `/work`). Absolute symlink
   * texts under it are followed; without it every absolute link escapes.
   */
  sandboxRoot?: string;
  /** `false`: refuse every symlink on the way (local destination trees). Default true. */
  followSymlinks?: boolean;
}

/** Entry reported by `SafeRoot.walkTree`. */
export interface TreeEntry {
  /** Components relative to the walked directory. */
  rel: string[];
  name: string;
  type: FileType;
  /** The directory holding the entry, open while the callback runs. */
  parent: FileHandle;
}

/**
 * File operations confined to one host directory. All methods take
 * components from `splitSandboxPath` and throw `SandboxError`: `not-found`
 * for missing entries, `path-escape` for anything that would leave the root.
 */
export class SafeRoot {
  readonly hostRoot: string;
  readonly sandboxRoot: string | undefined;
  readonly #follow: boolean;

  constructor(hostRoot: string, options: SafeRootOptions = {}) {
    this.hostRoot = hostRoot;
    this.sandboxRoot = options.sandboxRoot;
    this.#follow = options.followSymlinks ?? true;
  }

  /** How a path is shown in messages (the sandbox path when known). */
  display(rel: readonly string[]): string {
    const joined = rel.join('/');
    if (this.sandboxRoot !== undefined)
      return joined === '' ? this.sandboxRoot : path.posix.join(this.sandboxRoot, joined);
    return joined === '' ? '.' : joined;
  }

  /** Opens the root directory itself. */
  async openRoot(): Promise<FileHandle> {
    try {
      return await fs.open(this.hostRoot, C.O_RDONLY | C.O_DIRECTORY);
    } catch (e) {
      if (errno(e) === 'ENOENT')
        throw new SandboxError('gone', `the workspace ${this.hostRoot} no longer exists`, { cause: e });
      throw fsError(e, this.hostRoot);
    }
  }

  /** Components of a symlink's target, given the components of the directory holding it. */
  #linkTarget(dirRel: readonly string[], text: string, original: readonly string[]): string[] {
    const escape = (): SandboxError =>
      new SandboxError(
        'path-escape',
        `${this.display(original)}: a symlink on the way points outside the working directory (${text})`,
        {
          details: { path: this.display(original), link: text },
        },
      );
    if (!this.#follow) {
      throw new SandboxError(
        'path-escape',
        `${this.display(original)}: refusing to follow a symlink (${text})`,
        {
          details: { path: this.display(original), link: text },
        },
      );
    }
    if (text.includes('\0') || text === '') throw escape();
    if (path.posix.isAbsolute(text)) {
      if (this.sandboxRoot === undefined) throw escape();
      const rel = path.posix.relative(this.sandboxRoot, path.posix.normalize(text));
      if (rel === '..' || rel.startsWith('../') || path.posix.isAbsolute(rel)) throw escape();
      return rel.split('/').filter((s) => s !== '' && s !== '.');
    }
    const joined = path.posix.normalize([...dirRel, text].join('/'));
    if (joined === '..' || joined.startsWith('../')) throw escape();
    return joined.split('/').filter((s) => s !== '' && s !== '.');
  }

  #tooManyLinks(rel: readonly string[]): SandboxError {
    return new SandboxError('path-escape', `${this.display(rel)}: too many levels of symbolic links`);
  }

  /**
   * Walks to the parent of the last component, following in-root symlinks on
   * the way. `create` makes missing directories. The caller closes `dir`.
   */
  async #walk(rel: readonly string[], hops: { n: number }, create: boolean): Promise<Walked> {
    let todo = [...rel];
    for (;;) {
      let dir = await this.openRoot();
      const dirRel: string[] = [];
      let restarted = false;
      try {
        while (todo.length > 1) {
          const name = todo[0] as string;
          const child = await openChildDir(dir, name, { create, what: this.display([...dirRel, name]) });
          if ('link' in child) {
            if (++hops.n > MAX_HOPS) throw this.#tooManyLinks(rel);
            todo = [...this.#linkTarget(dirRel, child.link, rel), ...todo.slice(1)];
            restarted = true;
            break;
          }
          await dir.close();
          dir = child.dir;
          dirRel.push(name);
          todo.shift();
        }
      } catch (e) {
        await dir.close().catch(() => undefined);
        throw e;
      }
      if (restarted) {
        await dir.close();
        continue;
      }
      return { dir, dirRel, name: todo[0] };
    }
  }

  /**
   * Opens the directory at `rel` (following in-root symlinks, including a
   * final one). `create` makes it and its parents. Returns the handle (caller
   * closes) and the resolved components.
   */
  async openDir(
    rel: readonly string[],
    options: { create?: boolean } = {},
  ): Promise<{ dir: FileHandle; rel: string[] }> {
    const hops = { n: 0 };
    let target = [...rel];
    for (;;) {
      const w = await this.#walk(target, hops, options.create === true);
      if (w.name === undefined) return { dir: w.dir, rel: w.dirRel };
      try {
        const child = await openChildDir(w.dir, w.name, {
          create: options.create === true,
          what: this.display(rel),
        });
        if ('dir' in child) return { dir: child.dir, rel: [...w.dirRel, w.name] };
        if (++hops.n > MAX_HOPS) throw this.#tooManyLinks(rel);
        target = this.#linkTarget(w.dirRel, child.link, rel);
      } finally {
        await w.dir.close();
      }
    }
  }

  /** Reads a regular file (following in-root symlinks), at most `maxBytes`. */
  async readFile(rel: readonly string[], options: { maxBytes?: number } = {}): Promise<Buffer> {
    const handle = await this.#openFinal(rel, 'read');
    try {
      const st = await handle.stat();
      if (st.isDirectory())
        throw new SandboxError('exec-failed', `${this.display(rel)}: is a directory`, {
          details: { reason: 'is-directory' },
        });
      if (!st.isFile()) throw new SandboxError('exec-failed', `${this.display(rel)}: not a regular file`);
      if (options.maxBytes === undefined) return await handle.readFile();
      const buf = Buffer.alloc(Math.max(0, Math.min(options.maxBytes, st.size)));
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buf.subarray(0, filled);
    } catch (e) {
      throw fsError(e, this.display(rel));
    } finally {
      await handle.close();
    }
  }

  /**
   * Opens the final component for reading, following in-root symlinks.
   * Never blocks on a FIFO.
   */
  async #openFinal(rel: readonly string[], what: string): Promise<FileHandle> {
    const hops = { n: 0 };
    let target = [...rel];
    for (let attempt = 0; attempt < MAX_HOPS + MAX_RACE_RETRIES; attempt++) {
      const w = await this.#walk(target, hops, false);
      try {
        if (w.name === undefined) return await fs.open(fdPath(w.dir), C.O_RDONLY | C.O_DIRECTORY);
        try {
          return await fs.open(fdPath(w.dir, w.name), O_READ);
        } catch (e) {
          if (errno(e) === 'ENOENT')
            throw new SandboxError('not-found', `${this.display(rel)}: no such file or directory`);
          if (errno(e) !== 'ELOOP') throw fsError(e, `${what} ${this.display(rel)}`);
          const text = await readlinkOrUndefined(fdPath(w.dir, w.name));
          if (text === undefined) continue;
          if (++hops.n > MAX_HOPS) throw this.#tooManyLinks(rel);
          target = this.#linkTarget(w.dirRel, text, rel);
        }
      } finally {
        await w.dir.close();
      }
    }
    throw new SandboxError(
      'exec-failed',
      `${this.display(rel)}: the path kept changing while it was being read`,
      { retryable: true },
    );
  }

  /**
   * Writes a regular file, creating parent directories. Follows an in-root
   * final symlink (like a shell redirect) unless `createOnly`, which refuses
   * any existing entry with `SandboxError('exec-failed')` (`details.reason: 'exists'`).
   * `mode` is applied exactly when given; new files default to 0o644.
   */
  async writeFile(
    rel: readonly string[],
    data: string | Buffer,
    options: { mode?: number; createOnly?: boolean } = {},
  ): Promise<void> {
    if (rel.length === 0) throw new SandboxError('exec-failed', `${this.display(rel)}: is a directory`);
    const hops = { n: 0 };
    let target = [...rel];
    for (;;) {
      const w = await this.#walk(target, hops, true);
      const name = w.name as string;
      let handle: FileHandle | undefined;
      try {
        const flags = O_WRITE | (options.createOnly === true ? C.O_EXCL : 0);
        try {
          handle = await fs.open(fdPath(w.dir, name), flags, options.mode ?? 0o644);
        } catch (e) {
          const c = errno(e);
          if (c === 'EEXIST') throw exists(this.display(rel));
          if (c === 'EISDIR') throw new SandboxError('exec-failed', `${this.display(rel)}: is a directory`);
          if (c === 'ENXIO')
            throw new SandboxError('exec-failed', `${this.display(rel)}: not a regular file`);
          if (c !== 'ELOOP') throw fsError(e, this.display(rel));
          const text = await readlinkOrUndefined(fdPath(w.dir, name));
          if (text === undefined) continue;
          if (++hops.n > MAX_HOPS) throw this.#tooManyLinks(rel);
          target = this.#linkTarget(w.dirRel, text, rel);
          continue;
        }
        const st = await handle.stat();
        if (!st.isFile()) throw new SandboxError('exec-failed', `${this.display(rel)}: not a regular file`);
        await handle.truncate(0);
        await handle.writeFile(data);
        if (options.mode !== undefined) await handle.chmod(options.mode);
        return;
      } catch (e) {
        throw fsError(e, this.display(rel));
      } finally {
        await handle?.close();
        await w.dir.close();
      }
    }
  }

  /** `lstat` of the final component (not followed); `undefined` when nothing is there. */
  async lstat(rel: readonly string[]): Promise<Stats | undefined> {
    let w: Walked;
    try {
      w = await this.#walk(rel, { n: 0 }, false);
    } catch (e) {
      if (e instanceof SandboxError && e.code === 'not-found') return undefined;
      throw e;
    }
    try {
      if (w.name === undefined) return await w.dir.stat();
      return await lstatOrUndefined(fdPath(w.dir, w.name));
    } catch (e) {
      throw fsError(e, this.display(rel));
    } finally {
      await w.dir.close();
    }
  }

  /**
   * Pre-order walk below the directory `rel` (in-root symlinks to it are
   * followed; symlinks below it never are), children in name order.
   * `onEntry` returns `'stop'` to end the walk, `'skip'` not to descend into a
   * directory. `maxDepth` 1 = direct children only.
   */
  async walkTree(
    rel: readonly string[],
    options: { maxDepth?: number; signal?: AbortSignal },
    onEntry: (entry: TreeEntry) => Promise<'stop' | 'skip' | undefined> | 'stop' | 'skip' | undefined,
  ): Promise<void> {
    const { dir } = await this.openDir(rel);
    const maxDepth = options.maxDepth ?? Infinity;
    const visit = async (handle: FileHandle, here: string[], depth: number): Promise<boolean> => {
      options.signal?.throwIfAborted();
      const entries = await fs.readdir(fdPath(handle), { withFileTypes: true });
      entries.sort((a, b) => byName(a.name, b.name));
      for (const d of entries) {
        const entryRel = [...here, d.name];
        const verdict = await onEntry({ rel: entryRel, name: d.name, type: fileType(d), parent: handle });
        if (verdict === 'stop') return false;
        if (verdict === 'skip' || !d.isDirectory() || depth >= maxDepth) continue;
        let child: FileHandle;
        try {
          child = await fs.open(fdPath(handle, d.name), O_DIR);
        } catch {
          continue; // gone or swapped for a symlink since readdir: never descend
        }
        try {
          if (!(await visit(child, entryRel, depth + 1))) return false;
        } finally {
          await child.close();
        }
      }
      return true;
    };
    try {
      await visit(dir, [], 1);
    } catch (e) {
      throw fsError(e, this.display(rel));
    } finally {
      await dir.close();
    }
  }

  /** `FileInfo` of `name` inside an open directory (not followed). */
  async infoAt(parent: FileHandle, rel: readonly string[]): Promise<FileInfo | undefined> {
    const name = rel[rel.length - 1];
    if (name === undefined) return undefined;
    const st = await lstatOrUndefined(fdPath(parent, name));
    return st && this.toInfo(rel, st);
  }

  /** Builds a `FileInfo` for components `rel`. */
  toInfo(rel: readonly string[], st: Stats): FileInfo {
    const p = this.display(rel);
    return {
      path: p,
      name: rel.length === 0 ? path.posix.basename(p) : (rel[rel.length - 1] as string),
      type: fileType(st),
      size: st.size,
      mode: st.mode & 0o7777,
      mtimeMs: st.mtimeMs,
    };
  }

  /**
   * Removes the entry at `rel`: a symlink itself (never its target), a file,
   * or a directory (`recursive` for a non-empty one). The root cannot be removed.
   */
  async remove(
    rel: readonly string[],
    options: { recursive?: boolean; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (rel.length === 0)
      throw new SandboxError('exec-failed', `refusing to remove the working directory ${this.display(rel)}`);
    const w = await this.#walk(rel, { n: 0 }, false);
    const name = w.name as string;
    try {
      const st = await lstatOrUndefined(fdPath(w.dir, name));
      if (st === undefined)
        throw new SandboxError('not-found', `${this.display(rel)}: no such file or directory`);
      if (!st.isDirectory()) {
        await fs.unlink(fdPath(w.dir, name));
        return;
      }
      if (options.recursive === true) await removeTreeAt(w.dir, name, options.signal);
      else await fs.rmdir(fdPath(w.dir, name));
    } catch (e) {
      if (errno(e) === 'ENOTEMPTY')
        throw new SandboxError('exec-failed', `${this.display(rel)}: directory not empty`, { cause: e });
      throw fsError(e, this.display(rel));
    } finally {
      await w.dir.close();
    }
  }
}

/** Removes `name` inside `dir` recursively, descending only through real directories (never symlinks). */
export async function removeTreeAt(
  dir: FileHandle,
  name: string,
  signal?: AbortSignal,
  depth = 0,
): Promise<void> {
  signal?.throwIfAborted();
  if (depth > 4096) throw new SandboxError('exec-failed', 'directory tree too deep to remove');
  let child: FileHandle;
  try {
    child = await fs.open(fdPath(dir, name), O_DIR);
  } catch (e) {
    const c = errno(e);
    if (c === 'ENOENT') return;
    if (c === 'ENOTDIR' || c === 'ELOOP') {
      await unlinkIfPresent(fdPath(dir, name));
      return;
    }
    throw e;
  }
  try {
    for (const d of await fs.readdir(fdPath(child), { withFileTypes: true })) {
      if (d.isDirectory()) {
        await removeTreeAt(child, d.name, signal, depth + 1);
        continue;
      }
      try {
        await fs.unlink(fdPath(child, d.name));
      } catch (e) {
        // EISDIR: swapped for a directory since readdir.
        if (errno(e) === 'EISDIR') await removeTreeAt(child, d.name, signal, depth + 1);
        else if (errno(e) !== 'ENOENT') throw e;
      }
    }
  } finally {
    await child.close();
  }
  try {
    await fs.rmdir(fdPath(dir, name));
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
}

async function readlinkOrUndefined(p: string): Promise<string | undefined> {
  try {
    return await fs.readlink(p);
  } catch (e) {
    if (errno(e) === 'EINVAL' || errno(e) === 'ENOENT') return undefined;
    throw e;
  }
}

function exists(display: string): SandboxError {
  return new SandboxError('exec-failed', `${display}: file exists`, { details: { reason: 'exists' } });
}
