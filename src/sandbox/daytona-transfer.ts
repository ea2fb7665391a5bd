/**
 * File transfer between this machine and a Daytona sandbox, plus the shell
 * helpers every toolbox command uses.
 *
 * Uploads of a directory are ONE tar archive (the `tar` package: modes and
 * symlinks preserved, `exclude` globs applied, symlinks never followed) sent
 * in one request and unpacked by one command — a constant number of requests
 * whatever the tree size (Harbor's lesson: file-by-file uploads drop exec
 * bits, symlinks and empty dirs, and fail partially). When the image has no
 * `tar`, files go up in bulk batches and one fix-up script restores dirs,
 * symlinks and modes. Downloads tar inside the sandbox, fetch one archive and
 * unpack it locally, skipping (and reporting) anything that could write
 * outside the destination.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import picomatch from 'picomatch';
import * as tar from 'tar';
import { SandboxError, errorMessage } from '../errors.js';
import type { DownloadOptions, DownloadResult, TransferStats } from './sandbox.js';
import type { DaytonaSandboxLike } from './daytona-client.js';
import { classifyError } from './backoff.js';
import { packTree, worthCompressing } from './tree-archive.js';
import type { PackedTree, UploadArchives } from './upload-archives.js';

/** Where rho-flow keeps its scratch files inside a sandbox. */
export const SCRATCH_DIR = '/tmp/.rho-flow';

/** Single-quotes `s` for bash. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A random token for scratch file names and output markers. */
export function nonce(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Largest script passed inline. Linux caps one argv string at 128 KiB; a
 * longer script is uploaded to the scratch dir first.
 */
export const MAX_INLINE_SCRIPT = 96 * 1024;

/**
 * The command line sent to `process/execute` for a bash `script`. It only
 * contains `[A-Za-z0-9+/=]` inside single quotes, so it means the same to
 * every daemon version: old ones split the line into argv themselves (no
 * shell), new ones feed it to a shell.
 */
export function encodeCommand(script: string): string {
  return `bash -c 'eval "$(echo ${Buffer.from(script).toString('base64')} | base64 -d)"'`;
}

/** The result of a helper script (combined output). */
export interface ScriptResult {
  exitCode: number;
  output: string;
}

/** What the transfer functions need from a sandbox. */
export interface TransferHost {
  readonly sdk: DaytonaSandboxLike;
  /** Tools found in the image at create time (`tar`, `gzip`). */
  readonly tools: ReadonlySet<string>;
  /** Deadline of one upload/download request, seconds. */
  readonly transferTimeoutSec: number;
  /** Absolute sandbox path for `p` (relative = under the working dir). */
  resolve(p: string): string;
  /** Runs a helper script; counts as one request. */
  runScript(script: string, signal?: AbortSignal): Promise<ScriptResult>;
  /** The run's packed upload archives, shared across its sandboxes (without it: packed per upload). */
  readonly archives?: UploadArchives;
  /**
   * Removes a scratch file later: with the sandbox's next helper script, or
   * with the sandbox itself (without it: deleted at once, one request more).
   */
  discard?(remotePath: string): void;
}

const GLOB_MAGIC = /[*?[\]{}]/;

/** True when `p` contains glob syntax. */
export function hasGlobMagic(p: string): boolean {
  return GLOB_MAGIC.test(p);
}

/** Splits an absolute glob into its static base directory and the pattern below it. */
export function splitGlob(absPattern: string): { base: string; pattern: string } {
  const parts = absPattern.split('/');
  const i = parts.findIndex((seg) => GLOB_MAGIC.test(seg));
  if (i < 0) return { base: path.posix.dirname(absPattern), pattern: path.posix.basename(absPattern) };
  return { base: parts.slice(0, i).join('/') || '/', pattern: parts.slice(i).join('/') };
}

/** A glob pattern as an unquoted bash word: every shell-special character but the glob ones escaped. */
function bashGlobWord(pattern: string): string {
  return pattern.replace(/[^A-Za-z0-9_./*?[\]{},@%+=:^-]/g, (ch) => `\\${ch}`);
}

function transferError(op: string, err: unknown, details: Record<string, unknown> = {}): SandboxError {
  if (err instanceof SandboxError) return err;
  const c = classifyError(err);
  return new SandboxError('transfer-failed', `${op} failed: ${errorMessage(err)}`, {
    cause: err,
    retryable: c.kind === 'transient' || c.kind === 'rate-limit',
    details: { ...details, status: c.status },
  });
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-transfer-'));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

interface LocalEntry {
  rel: string;
  abs: string;
  kind: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  target?: string;
}

/** Walks a local tree without following symlinks, applying `exclude`. */
async function walkLocal(root: string, isExcluded: (rel: string) => boolean): Promise<LocalEntry[]> {
  const out: LocalEntry[] = [];
  const visit = async (dirAbs: string, dirRel: string): Promise<void> => {
    const names = (await fs.readdir(dirAbs)).sort();
    for (const name of names) {
      const rel = dirRel ? `${dirRel}/${name}` : name;
      if (isExcluded(rel)) continue;
      const abs = path.join(dirAbs, name);
      const st = await fs.lstat(abs);
      const mode = st.mode & 0o7777;
      if (st.isSymbolicLink()) {
        out.push({ rel, abs, kind: 'symlink', mode, size: 0, target: await fs.readlink(abs) });
      } else if (st.isDirectory()) {
        out.push({ rel, abs, kind: 'dir', mode, size: 0 });
        await visit(abs, rel);
      } else if (st.isFile()) {
        out.push({ rel, abs, kind: 'file', mode, size: st.size });
      }
    }
  };
  await visit(root, '');
  return out;
}

/** Files per bulk-upload request in the no-tar fallback. */
const UPLOAD_BATCH = 200;
/** Files per bulk-download request in the no-tar fallback. */
const DOWNLOAD_BATCH = 100;

/**
 * Copies a local file or directory to `remotePath` (a directory lands *at*
 * `remotePath`). Throws `SandboxError('transfer-failed')` on any failure.
 */
export async function uploadPath(
  host: TransferHost,
  localPath: string,
  remotePath: string,
  options: { exclude?: readonly string[]; signal?: AbortSignal } = {},
): Promise<TransferStats> {
  const started = Date.now();
  const dest = host.resolve(remotePath);
  let st;
  try {
    st = await fs.stat(localPath);
  } catch (err) {
    throw new SandboxError(
      'transfer-failed',
      `upload source ${localPath} is not readable: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  const stats = (files: number, bytes: number, requests: number): TransferStats => ({
    files,
    bytes,
    requests,
    durationMs: Date.now() - started,
  });
  try {
    if (!st.isDirectory()) {
      await host.sdk.fs.uploadFiles([{ source: localPath, destination: dest }], host.transferTimeoutSec);
      const mode = st.mode & 0o7777;
      if (mode === 0o644) return stats(1, st.size, 1);
      await checkScript(
        host,
        `chmod ${mode.toString(8)} -- ${shq(dest)}`,
        'setting the mode of an upload',
        options.signal,
      );
      return stats(1, st.size, 2);
    }
    const excluded = picomatch(options.exclude ? [...options.exclude] : [], { dot: true });
    const isExcluded = (rel: string): boolean => (options.exclude?.length ?? 0) > 0 && excluded(rel);
    if (host.tools.has('tar'))
      return await uploadTar(host, localPath, dest, options.exclude ?? [], isExcluded, options.signal, stats);
    return await uploadBulk(host, localPath, dest, isExcluded, options.signal, stats);
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw transferError(`upload of ${localPath} to ${dest}`, err, { localPath, remotePath: dest });
  }
}

async function uploadTar(
  host: TransferHost,
  localDir: string,
  dest: string,
  exclude: readonly string[],
  isExcluded: (rel: string) => boolean,
  signal: AbortSignal | undefined,
  stats: (files: number, bytes: number, requests: number) => TransferStats,
): Promise<TransferStats> {
  const sample = (): Promise<boolean> => worthCompressing(localDir, isExcluded);
  const gzip =
    host.tools.has('gzip') &&
    (await (host.archives ? host.archives.compress(localDir, exclude, sample) : sample()));
  const pack = (archive: string): Promise<PackedTree> => packTree(localDir, archive, gzip, isExcluded);
  if (host.archives) {
    // Packed once per run, shared by every job that uploads the same source.
    const packed = await host.archives.get({ source: localDir, exclude, gzip }, pack);
    signal?.throwIfAborted();
    await sendArchive(host, packed.path, gzip, dest, signal);
    return stats(packed.files, packed.bytes, 2);
  }
  return withTempDir(async (tmp) => {
    const archive = path.join(tmp, gzip ? 'upload.tar.gz' : 'upload.tar');
    const packed = await pack(archive);
    signal?.throwIfAborted();
    await sendArchive(host, archive, gzip, dest, signal);
    return stats(packed.files, packed.bytes, 2);
  });
}

/** Uploads `archive` to the scratch dir and unpacks it at `dest` (two requests). */
async function sendArchive(
  host: TransferHost,
  archive: string,
  gzip: boolean,
  dest: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const remote = `${SCRATCH_DIR}/up-${nonce()}.tar${gzip ? '.gz' : ''}`;
  await host.sdk.fs.uploadFileStream(archive, remote, {
    ...(signal ? { signal } : {}),
    timeout: host.transferTimeoutSec,
  });
  await checkScript(
    host,
    `mkdir -p -- ${shq(dest)} && tar -x${gzip ? 'z' : ''}pf ${shq(remote)} --no-same-owner -C ${shq(dest)}; rc=$?; rm -f -- ${shq(remote)}; exit $rc`,
    `unpacking the upload into ${dest}`,
    signal,
  );
}

async function uploadBulk(
  host: TransferHost,
  localDir: string,
  dest: string,
  isExcluded: (rel: string) => boolean,
  signal: AbortSignal | undefined,
  stats: (files: number, bytes: number, requests: number) => TransferStats,
): Promise<TransferStats> {
  const entries = await walkLocal(localDir, isExcluded);
  const files = entries.filter((e) => e.kind === 'file');
  let requests = 0;
  for (let i = 0; i < files.length; i += UPLOAD_BATCH) {
    signal?.throwIfAborted();
    const batch = files.slice(i, i + UPLOAD_BATCH);
    await host.sdk.fs.uploadFiles(
      batch.map((f) => ({ source: f.abs, destination: path.posix.join(dest, f.rel) })),
      host.transferTimeoutSec,
    );
    requests++;
  }
  // One script restores what bulk upload cannot carry: empty dirs, symlinks, modes.
  const lines = [`set -e`, `mkdir -p -- ${shq(dest)}`];
  for (const e of entries) {
    const target = shq(path.posix.join(dest, e.rel));
    if (e.kind === 'dir') lines.push(`mkdir -p -- ${target}`);
    if (e.kind === 'symlink' && e.target !== undefined) lines.push(`ln -sfn -- ${shq(e.target)} ${target}`);
  }
  for (const e of entries) {
    if (e.kind === 'file' && e.mode !== 0o644)
      lines.push(`chmod ${e.mode.toString(8)} -- ${shq(path.posix.join(dest, e.rel))}`);
  }
  for (const e of [...entries].reverse()) {
    if (e.kind === 'dir' && e.mode !== 0o755)
      lines.push(`chmod ${e.mode.toString(8)} -- ${shq(path.posix.join(dest, e.rel))}`);
  }
  await checkScript(
    host,
    lines.join('\n'),
    `restoring directories, symlinks and modes under ${dest}`,
    signal,
  );
  requests++;
  return stats(
    files.length,
    files.reduce((n, f) => n + f.size, 0),
    requests,
  );
}

async function checkScript(
  host: TransferHost,
  script: string,
  what: string,
  signal?: AbortSignal,
): Promise<string> {
  const r = await host.runScript(script, signal);
  if (r.exitCode !== 0) {
    throw new SandboxError(
      'transfer-failed',
      `${what} failed (exit ${r.exitCode}): ${r.output.trim().slice(-2000)}`,
      {
        details: { exitCode: r.exitCode },
      },
    );
  }
  return r.output;
}

/** Exit code the download scripts use for "nothing there". */
const NOTHING_MATCHED = 3;

/**
 * Copies a file, a directory or glob matches from the sandbox into
 * `localDir` (see `Sandbox.download`). Throws `not-found` when nothing
 * matches, `transfer-failed` on any other failure.
 */
export async function downloadPath(
  host: TransferHost,
  remotePath: string,
  localDir: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const started = Date.now();
  const abs = host.resolve(remotePath);
  await fs.mkdir(localDir, { recursive: true });
  try {
    const r = host.tools.has('tar')
      ? await downloadTar(host, abs, localDir, options)
      : await downloadBulk(host, abs, localDir, options.signal);
    return { ...r, durationMs: Date.now() - started };
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw transferError(`download of ${abs}`, err, { remotePath: abs });
  }
}

function notFound(abs: string): SandboxError {
  return new SandboxError('not-found', `nothing in the sandbox matches ${abs}`, { details: { path: abs } });
}

/** Bash lines that put `./`-prefixed names of what `abs` matches into the array `m` (or exit 3). */
function selectScript(abs: string): string {
  if (hasGlobMagic(abs)) {
    const { base, pattern } = splitGlob(abs);
    return [
      `shopt -s globstar nullglob`,
      `cd -- ${shq(base)} 2>/dev/null || exit ${NOTHING_MATCHED}`,
      `m=(); for f in ${bashGlobWord(pattern)}; do if [ -e "$f" ] || [ -L "$f" ]; then m+=("./$f"); fi; done`,
      `[ \${#m[@]} -gt 0 ] || exit ${NOTHING_MATCHED}`,
    ].join('\n');
  }
  const dir = path.posix.dirname(abs);
  const base = path.posix.basename(abs);
  return [
    `cd -- ${shq(dir)} 2>/dev/null || exit ${NOTHING_MATCHED}`,
    `[ -e ${shq(base)} ] || [ -L ${shq(base)} ] || exit ${NOTHING_MATCHED}`,
    `m=(${shq(`./${base}`)})`,
  ].join('\n');
}

/**
 * Archives up to this size are fetched into memory and unpacked from there
 * (no temporary file to write, read back and remove); larger ones go through
 * a temporary file, so a big artifact never has to fit in memory.
 */
export const IN_MEMORY_ARCHIVE_BYTES = 8 * 1024 * 1024;

/** The line the pack script ends its output with: the archive's size in bytes. */
const SIZE_MARK = 'rho-flow-archive-bytes:';
const SIZE_LINE = new RegExp(`(?:^|\\n)${SIZE_MARK} *(\\d*)\\s*$`);

async function downloadTar(
  host: TransferHost,
  abs: string,
  localDir: string,
  options: DownloadOptions,
): Promise<Omit<DownloadResult, 'durationMs'>> {
  const { signal } = options;
  const gzip = host.tools.has('gzip');
  const remote = `${SCRATCH_DIR}/down-${nonce()}.tar${gzip ? '.gz' : ''}`;
  const r = await host.runScript(
    `${selectScript(abs)}\nmkdir -p ${SCRATCH_DIR} && tar -c${gzip ? 'z' : ''}f ${shq(remote)} "\${m[@]}"\n` +
      `rc=$?; printf '\\n${SIZE_MARK}%s\\n' "$(wc -c < ${shq(remote)} 2>/dev/null)"; exit $rc`,
    signal,
  );
  if (r.exitCode === NOTHING_MATCHED) throw notFound(abs);
  const sized = SIZE_LINE.exec(r.output);
  const output = sized ? r.output.slice(0, sized.index) : r.output;
  // GNU tar exits 1 when a file changed while being read; the archive is still complete.
  if (r.exitCode !== 0 && r.exitCode !== 1) {
    throw new SandboxError(
      'transfer-failed',
      `packing ${abs} failed (exit ${r.exitCode}): ${output.trim().slice(-2000)}`,
    );
  }
  const requests = host.discard ? 2 : 3;
  // The size is unknown when the line is missing (an older daemon's output cut short): use a file.
  const size = sized?.[1] ? Number(sized[1]) : Infinity;
  try {
    if (size <= IN_MEMORY_ARCHIVE_BYTES) {
      const [res] = await host.sdk.fs.downloadFiles([{ source: remote }], host.transferTimeoutSec);
      if (!res || res.error !== undefined || !Buffer.isBuffer(res.result))
        throw new Error(`downloading ${remote}: ${res?.error ?? 'no response'}`);
      signal?.throwIfAborted();
      options.onFetched?.();
      return { ...(await extractSafely(res.result, localDir)), requests };
    }
    return await withTempDir(async (tmp) => {
      const archive = path.join(tmp, 'download.tar');
      const [res] = await host.sdk.fs.downloadFiles(
        [{ source: remote, destination: archive }],
        host.transferTimeoutSec,
      );
      if (!res || res.error !== undefined)
        throw new Error(`downloading ${remote}: ${res?.error ?? 'no response'}`);
      signal?.throwIfAborted();
      options.onFetched?.();
      return { ...(await extractSafely(archive, localDir)), requests };
    });
  } finally {
    // Artifacts are collected at the end of a job, right before the sandbox is deleted: the
    // archive goes with it (or with the next helper script) instead of costing a request now.
    if (host.discard) host.discard(remote);
    else await host.sdk.fs.deleteFile(remote).catch(() => undefined);
  }
}

/**
 * Unpacks `archive` into `localDir`, writing only regular files and
 * directories at relative paths inside it; symlinks, hard links, special
 * files and `..`/absolute names are skipped and reported.
 */
export async function extractSafely(
  archive: string | Buffer,
  localDir: string,
): Promise<{
  files: number;
  bytes: number;
  written: string[];
  skipped: Array<{ path: string; reason: string }>;
}> {
  const written: string[] = [];
  const skipped: Array<{ path: string; reason: string }> = [];
  let bytes = 0;
  const options: tar.TarOptionsWithAliasesAsyncNoFile = {
    cwd: localDir,
    preservePaths: false,
    preserveOwner: false,
    filter: (p, entry) => {
      const rel = safeRel(p);
      if (rel === undefined) {
        skipped.push({ path: p, reason: 'path outside the destination' });
        return false;
      }
      if (rel === '') return false;
      const e = entry as tar.ReadEntry;
      switch (e.type) {
        case 'Directory':
          return true;
        case 'File':
        case 'OldFile':
        case 'ContiguousFile':
          written.push(rel);
          bytes += e.size;
          return true;
        case 'SymbolicLink':
          skipped.push({ path: rel, reason: `symlink to ${e.linkpath ?? '?'}` });
          return false;
        case 'Link':
          skipped.push({ path: rel, reason: `hard link to ${e.linkpath ?? '?'}` });
          return false;
        default:
          skipped.push({ path: rel, reason: `special file (${e.type})` });
          return false;
      }
    },
  };
  if (typeof archive === 'string') {
    await tar.x({ ...options, file: archive });
  } else {
    await new Promise<void>((resolve, reject) => {
      const unpack = tar.x(options);
      unpack.on('error', reject);
      unpack.on('close', () => resolve());
      unpack.end(archive);
    });
  }
  written.sort();
  return { files: written.length, bytes, written, skipped };
}

/** `p` as a clean relative path, `''` for the root, `undefined` when it escapes. */
function safeRel(p: string): string | undefined {
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return undefined;
  const norm = path.posix.normalize(p.replace(/\\/g, '/'));
  if (norm === '.' || norm === './') return '';
  if (norm === '..' || norm.startsWith('../')) return undefined;
  return norm.replace(/^\.\//, '').replace(/\/$/, '');
}

/** No-tar fallback: list in the sandbox, fetch files in bulk batches. */
async function downloadBulk(
  host: TransferHost,
  abs: string,
  localDir: string,
  signal: AbortSignal | undefined,
): Promise<Omit<DownloadResult, 'durationMs'>> {
  const r = await host.runScript(
    [
      selectScript(abs),
      `shopt -s globstar dotglob nullglob`,
      `for s in "\${m[@]}"; do for f in "$s" "$s"/**; do`,
      `  if [ -L "$f" ]; then printf 'l %s\\0' "$f"; elif [ -d "$f" ]; then printf 'd %s\\0' "$f";`,
      `  elif [ -f "$f" ]; then printf 'f %s %s\\0' "$(stat -c %a -- "$f" 2>/dev/null || echo 644)" "$f";`,
      `  else printf 'o %s\\0' "$f"; fi`,
      `done; done; printf 'cwd %s\\0' "$PWD"`,
    ].join('\n'),
    signal,
  );
  if (r.exitCode === NOTHING_MATCHED) throw notFound(abs);
  if (r.exitCode !== 0)
    throw new SandboxError('transfer-failed', `listing ${abs} failed: ${r.output.trim().slice(-2000)}`);
  const records = r.output.split('\0').filter((x) => x.length > 0);
  const cwd = records.pop()?.replace(/^cwd /, '') ?? '/';
  const written: string[] = [];
  const skipped: Array<{ path: string; reason: string }> = [];
  const files: Array<{ rel: string; remote: string; mode: number }> = [];
  const seen = new Set<string>();
  for (const rec of records) {
    const kind = rec.slice(0, 1);
    let rest = rec.slice(2);
    let mode = 0o644;
    if (kind === 'f') {
      const sp = rest.indexOf(' ');
      mode = parseInt(rest.slice(0, sp), 8) & 0o777;
      rest = rest.slice(sp + 1);
    }
    const rel = safeRel(rest);
    if (rel === undefined || rel === '' || seen.has(rel)) continue;
    seen.add(rel);
    if (kind === 'd') await fs.mkdir(path.join(localDir, rel), { recursive: true });
    else if (kind === 'f')
      files.push({ rel, remote: path.posix.join(cwd, rel), mode: Number.isNaN(mode) ? 0o644 : mode });
    else skipped.push({ path: rel, reason: kind === 'l' ? 'symlink' : 'special file' });
  }
  let bytes = 0;
  let requests = 1;
  for (let i = 0; i < files.length; i += DOWNLOAD_BATCH) {
    signal?.throwIfAborted();
    const batch = files.slice(i, i + DOWNLOAD_BATCH);
    for (const f of batch) await fs.mkdir(path.dirname(path.join(localDir, f.rel)), { recursive: true });
    const res = await host.sdk.fs.downloadFiles(
      batch.map((f) => ({ source: f.remote, destination: path.join(localDir, f.rel) })),
      host.transferTimeoutSec,
    );
    requests++;
    for (const [j, f] of batch.entries()) {
      const one = res[j];
      if (!one || one.error !== undefined)
        throw new Error(`downloading ${f.remote}: ${one?.error ?? 'no response'}`);
      written.push(f.rel);
      await fs.chmod(path.join(localDir, f.rel), f.mode);
      bytes += (await fs.stat(path.join(localDir, f.rel))).size;
    }
  }
  written.sort();
  return { files: written.length, bytes, written, skipped, requests };
}
