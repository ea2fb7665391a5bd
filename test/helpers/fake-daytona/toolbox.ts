/**
 * The toolbox half of the fake (daytona-sdk.md §3.6–3.8): `process/execute`
 * (run for real in the sandbox's jail), bulk upload (multipart, parsed with
 * busboy), bulk download (multipart in the daemon's format: one part per
 * requested path, `filename` echoing the path exactly as requested, error
 * parts for missing files), and the `files*` endpoints.
 *
 * Sandbox paths: absolute, or relative to the daemon's working directory
 * `/home/daytona`; `P` lives at `root/P` on the host (see jail.ts).
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import picomatch from 'picomatch';
import { jailExec, type JailExecResult } from './jail.js';
import type { FakeSandbox, SimulatedToolbox } from './types.js';

export const HOME_DIR = '/home/daytona';
const BOUNDARY = 'DAYTONA-FILE-BOUNDARY';

/** A reply the dispatcher sends (or replaces, when a fault says so). */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** JSON-encoded unless a Buffer. */
  body?: unknown;
}

export function json(status: number, body: unknown): Reply {
  return { status, body };
}

/** A daemon-style error reply. */
export function daemonError(status: number, message: string, code?: string): Reply {
  return json(status, {
    statusCode: status,
    message,
    ...(code ? { code, source: 'DAYTONA_DAEMON' } : {}),
    timestamp: new Date().toISOString(),
  });
}

/** Sandbox path → absolute sandbox path. */
export function sandboxPath(p: string): string {
  return path.posix.resolve(HOME_DIR, p);
}

/** Sandbox path → host path under the sandbox root. */
export function hostPath(sb: FakeSandbox, p: string): string {
  return path.join(sb.root, sandboxPath(p));
}

export async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as unknown) : {};
}

interface GoFileInfo {
  name: string;
  path: string;
  isDir: boolean;
  size: number;
  mode: string;
  permissions: string;
  modTime: string;
  modifiedAt: string;
  owner: string;
  group: string;
}

function goMode(st: import('node:fs').Stats): string {
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'L' : st.isFile() ? '-' : 'p';
  const bits = 'rwxrwxrwx'
    .split('')
    .map((ch, i) => ((st.mode >> (8 - i)) & 1 ? ch : '-'))
    .join('');
  return type + bits;
}

/** FileInfo as the daemon builds it (from `os.Stat`: symlinks followed). */
async function fileInfo(sb: FakeSandbox, p: string): Promise<GoFileInfo> {
  const st = await fs.stat(hostPath(sb, p));
  const abs = sandboxPath(p);
  return {
    name: path.posix.basename(abs),
    path: abs,
    isDir: st.isDirectory(),
    size: st.size,
    mode: goMode(st),
    permissions: (st.mode & 0o777).toString(8).padStart(4, '0'),
    modTime: st.mtime.toISOString(),
    modifiedAt: st.mtime.toISOString(),
    owner: String(st.uid),
    group: String(st.gid),
  };
}

function fsError(err: unknown, p: string): Reply {
  const code = (err as { code?: unknown }).code;
  if (code === 'ENOENT') return daemonError(404, `stat ${p}: no such file or directory`, 'FILE_NOT_FOUND');
  if (code === 'ENOTDIR') return daemonError(400, `${p}: not a directory`);
  if (code === 'EISDIR') return daemonError(400, `${p}: is a directory`);
  if (code === 'ENOTEMPTY') return daemonError(400, `${p}: directory not empty`);
  return daemonError(400, `${p}: ${String(err)}`);
}

export async function execute(
  sb: FakeSandbox,
  body: { command?: unknown; cwd?: unknown; envs?: unknown; timeout?: unknown },
  options: {
    hidden: readonly string[];
    argv: boolean;
    track: (kill: () => void, done: Promise<unknown>) => void;
  },
): Promise<Reply> {
  if (typeof body.command !== 'string' || body.command.trim() === '')
    return daemonError(400, 'command is required');
  const envs = (body.envs ?? {}) as Record<string, string>;
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: HOME_DIR,
    USER: 'daytona',
    ...sb.env,
    ...envs,
  };
  const run = jailExec(
    sb.id,
    sb.root,
    {
      command: body.command,
      cwd: typeof body.cwd === 'string' ? sandboxPath(body.cwd) : HOME_DIR,
      env,
      ...(typeof body.timeout === 'number' ? { timeout: body.timeout } : {}),
    },
    { hidden: options.hidden, argv: options.argv, networkOff: sb.createBody.networkBlockAll === true },
  );
  options.track(run.kill, run.result);
  const r: JailExecResult = await run.result;
  if (r.timedOut) {
    return daemonError(
      408,
      `Command execution timed out after ${String(body.timeout)} seconds. The timeout can be increased by adjusting the timeout parameter in the request.`,
      'PROCESS_EXECUTION_TIMEOUT',
    );
  }
  return json(200, { exitCode: r.exitCode, result: r.output });
}

/** `POST /files/bulk-upload`: parts `files[i].path` (destination) then `files[i].file` (bytes). */
export async function bulkUpload(sb: FakeSandbox, req: http.IncomingMessage): Promise<Reply> {
  const destinations = new Map<string, string>();
  const writes: Array<Promise<void>> = [];
  const written: Array<{ path: string; bytes: number }> = [];
  const bb = busboy({ headers: req.headers, preservePath: true });
  bb.on('field', (name, value) => {
    const m = /^files\[(\d+)\]\.path$/.exec(name);
    if (m?.[1] !== undefined) destinations.set(m[1], value);
  });
  bb.on('file', (name, stream) => {
    const m = /^files\[(\d+)\]\.file$/.exec(name);
    const dest = m?.[1] !== undefined ? destinations.get(m[1]) : undefined;
    if (dest === undefined) {
      stream.resume();
      return;
    }
    const target = hostPath(sb, dest);
    writes.push(
      (async () => {
        await fs.mkdir(path.dirname(target), { recursive: true });
        await pipeline(stream, createWriteStream(target));
        written.push({ path: sandboxPath(dest), bytes: (await fs.stat(target)).size });
      })(),
    );
  });
  await pipeline(req, bb);
  const results = await Promise.allSettled(writes);
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length > 0) return json(400, { errors: failed.map((f) => String(f.reason)), files: written });
  return json(200, { files: written });
}

interface PartError {
  message: string;
  statusCode: number;
  code: string;
}
type DownloadPart = { data: Buffer } | { error: PartError };

/** The daemon's multipart answer: one part per requested path, in order, `filename` = the path as asked. */
function multipart(paths: readonly string[], parts: readonly DownloadPart[]): Reply {
  const out: Buffer[] = [];
  paths.forEach((p, i) => {
    const part = parts[i];
    if (part && 'data' in part) {
      out.push(
        Buffer.from(
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${p}"\r\nContent-Type: application/octet-stream\r\nContent-Length: ${part.data.length}\r\n\r\n`,
        ),
        part.data,
        Buffer.from('\r\n'),
      );
    } else {
      const error = { ...(part ? part.error : notFoundPart(p).error), source: 'DAYTONA_DAEMON' };
      out.push(
        Buffer.from(
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="error"; filename="${p}"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(error)}\r\n`,
        ),
      );
    }
  });
  out.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return {
    status: 200,
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    body: Buffer.concat(out),
  };
}

function notFoundPart(p: string): { error: PartError } {
  return { error: { message: `file not found: ${p}`, statusCode: 404, code: 'FILE_NOT_FOUND' } };
}

function requestedPaths(body: unknown): string[] {
  const { paths } = body as { paths?: unknown };
  return Array.isArray(paths) ? paths.filter((p): p is string => typeof p === 'string') : [];
}

/** `POST /files/bulk-download`: multipart, one part per requested path, in order. */
export async function bulkDownload(sb: FakeSandbox, body: { paths?: unknown }): Promise<Reply> {
  const paths = requestedPaths(body);
  const parts: DownloadPart[] = [];
  for (const p of paths) {
    try {
      const target = hostPath(sb, p);
      const st = await fs.stat(target);
      parts.push(
        st.isDirectory()
          ? { error: { message: `${p} is a directory`, statusCode: 400, code: 'INVALID_FILE_PATH' } }
          : { data: await fs.readFile(target) },
      );
    } catch {
      parts.push(notFoundPart(p));
    }
  }
  return multipart(paths, parts);
}

/**
 * A toolbox request answered from memory (`FakeDaytonaOptions.simulate`):
 * exec and downloads from the canned answers, uploads drained, the other
 * file endpoints answered as if nothing were there. No jail, no disk.
 */
export async function simulatedToolbox(
  endpoint: string,
  sim: SimulatedToolbox,
  req: http.IncomingMessage,
  body: unknown,
): Promise<Reply> {
  switch (endpoint) {
    case 'exec': {
      const command = (body as { command?: unknown } | undefined)?.command;
      if (typeof command !== 'string' || command.trim() === '')
        return daemonError(400, 'command is required');
      const r = sim.exec(command);
      return json(200, { exitCode: r.exitCode, result: r.output });
    }
    case 'upload':
      req.resume();
      await new Promise<void>((resolve, reject) => {
        req.on('end', resolve);
        req.on('error', reject);
      });
      return json(200, { files: [] });
    case 'download': {
      const paths = requestedPaths(body ?? {});
      return multipart(
        paths,
        paths.map((p) => {
          const data = sim.file(sandboxPath(p));
          return data ? { data } : notFoundPart(p);
        }),
      );
    }
    case 'file-delete':
      return { status: 204 };
    case 'folder':
      return { status: 201 };
    case 'home-dir':
      return json(200, { dir: HOME_DIR });
    case 'file-list':
    case 'file-search':
    case 'file-info':
      return daemonError(404, 'no such file or directory (simulated toolbox)', 'FILE_NOT_FOUND');
    default:
      return daemonError(404, `no route for ${endpoint} (simulated toolbox)`);
  }
}

export async function getFileInfo(sb: FakeSandbox, p: string | null): Promise<Reply> {
  if (!p) return daemonError(400, 'path is required');
  try {
    return json(200, await fileInfo(sb, p));
  } catch (err) {
    return fsError(err, p);
  }
}

/** `GET /files?path=&depth=`: entries (depth 1 = children), each with its full path. */
export async function listFiles(sb: FakeSandbox, p: string | null, depthText: string | null): Promise<Reply> {
  const dir = p || '.';
  const depth = depthText ? Math.max(1, Number(depthText)) : 1;
  const out: GoFileInfo[] = [];
  const walk = async (rel: string, level: number): Promise<void> => {
    const names = await fs.readdir(hostPath(sb, rel));
    for (const name of names.sort()) {
      const child = path.posix.join(sandboxPath(rel), name);
      let info: GoFileInfo;
      try {
        info = await fileInfo(sb, child);
      } catch {
        continue; // dangling symlink: the daemon skips what os.Stat cannot read
      }
      out.push(info);
      const isLink = (await fs.lstat(hostPath(sb, child))).isSymbolicLink();
      if (info.isDir && !isLink && level < depth) await walk(child, level + 1);
    }
  };
  try {
    await walk(dir, 1);
  } catch (err) {
    return fsError(err, dir);
  }
  return json(200, out);
}

/** `GET /files/search?path=&pattern=`: files (not dirs) whose path relative to `path` matches the glob. */
export async function searchFiles(sb: FakeSandbox, p: string | null, pattern: string | null): Promise<Reply> {
  if (!p || !pattern) return daemonError(400, 'path and pattern are required');
  const base = sandboxPath(p);
  const isMatch = picomatch(pattern, { dot: true });
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(hostPath(sb, path.posix.join(base, rel)), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(childRel);
      else if (isMatch(childRel)) files.push(path.posix.join(base, childRel));
    }
  };
  await walk('');
  return json(200, { files });
}

export async function deleteFile(sb: FakeSandbox, p: string | null, recursive: boolean): Promise<Reply> {
  if (!p) return daemonError(400, 'path is required');
  const target = hostPath(sb, p);
  try {
    const st = await fs.lstat(target);
    if (st.isDirectory() && !recursive) return daemonError(400, `${p}: is a directory (use recursive)`);
    await fs.rm(target, { recursive, force: false });
    return { status: 204 };
  } catch (err) {
    return fsError(err, p);
  }
}

export async function createFolder(sb: FakeSandbox, p: string | null, mode: string | null): Promise<Reply> {
  if (!p) return daemonError(400, 'path is required');
  await fs.mkdir(hostPath(sb, p), { recursive: true, mode: mode ? parseInt(mode, 8) : 0o755 });
  return { status: 201 };
}
