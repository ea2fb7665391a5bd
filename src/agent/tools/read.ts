/**
 * `read {path, start_line?, end_line?}` — rho-agent's file reader: numbered
 * lines (`%6d  text`), 500 lines per call by default, long lines cut, binary
 * files refused with a hint.
 */
import path from 'node:path';
import {
  defineTool,
  fail,
  isAgentFacingSandboxError,
  ok,
  sandboxPath,
  type ToolContext,
  type ToolOutput,
} from './tool.js';
import { MAX_OUTPUT_BYTES, cutBytes } from './truncate.js';

/** Lines returned when `end_line` is not given. */
export const DEFAULT_READ_LINES = 500;
/** Characters kept per line. */
export const MAX_READ_LINE_CHARS = 500;
/** Bytes read from the sandbox at most; larger files are read partially (with a note). */
const MAX_READ_BYTES = 10 * 1024 * 1024;

const BINARY_EXTENSIONS = new Set(
  (
    '.png .jpg .jpeg .gif .bmp .ico .webp .tiff .tif .mp3 .mp4 .wav .avi .mov .mkv .flac .ogg .webm ' +
    '.zip .tar .gz .bz2 .xz .7z .rar .exe .dll .so .dylib .o .a .pyc .pyo .class .wasm ' +
    '.pdf .doc .docx .xls .xlsx .ppt .pptx .ttf .otf .woff .woff2 .eot .bin .dat .db .sqlite .sqlite3'
  ).split(' '),
);

export interface ReadArgs {
  path: string;
  start_line?: number;
  end_line?: number;
}

/** The `read` tool. */
export const readTool = defineTool<ReadArgs>({
  name: 'read',
  parameters: {
    type: 'object',
    properties: {
      path: {
        type: 'string',
        description: 'Path to the file to read (absolute, or relative to the working directory)',
      },
      start_line: {
        type: 'integer',
        description: 'First line to read (1-indexed, inclusive). Defaults to 1.',
      },
      end_line: {
        type: 'integer',
        description: `Last line to read (1-indexed, inclusive). Defaults to start_line + ${DEFAULT_READ_LINES - 1}.`,
      },
    },
    required: ['path'],
  },
  description: () =>
    'Read the contents of a file. Use this to inspect source code, logs, config files, etc. ' +
    'Returns numbered lines; supports reading specific line ranges for large files.',
  run: runRead,
});

async function runRead(args: ReadArgs, { sandbox, signal }: ToolContext): Promise<ToolOutput> {
  if (args.path === '') return fail('No path provided');
  const abs = sandboxPath(sandbox, args.path);
  const info = await sandbox.stat(args.path, { signal });
  if (info === undefined) return fail(`File not found: ${abs}`);
  if (info.type === 'dir') return fail(`Not a file: ${abs} is a directory (use list to see its contents)`);
  const ext = path.posix.extname(abs).toLowerCase();
  if (BINARY_EXTENSIONS.has(ext)) return fail(binaryMessage(abs, `${ext} files are not text-readable`));
  let data: Buffer;
  try {
    data = await sandbox.readFile(args.path, { signal, maxBytes: MAX_READ_BYTES });
  } catch (e) {
    if (isAgentFacingSandboxError(e)) return fail(`File not found: ${abs}`);
    throw e;
  }
  if (data.subarray(0, 8192).includes(0)) return fail(binaryMessage(abs, 'it contains NUL bytes'));
  const partial = info.size > data.length;
  const text = data.toString('utf8');
  const lines = text.split('\n');
  // A trailing newline ends the last line; it does not start another one.
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  const total = lines.length;
  const start = Math.max(1, args.start_line ?? 1);
  const end = Math.max(start, args.end_line ?? start + DEFAULT_READ_LINES - 1);
  if (text === '') return ok(`(empty file: ${abs})`);
  if (start > total) return fail(`Start line ${start} exceeds file length (${total} lines)`);
  const out: string[] = [];
  let bytes = 0;
  let last = start - 1;
  for (let n = start; n <= Math.min(end, total); n++) {
    let line = (lines[n - 1] ?? '').replace(/\r$/, '');
    if (line.length > MAX_READ_LINE_CHARS) line = `${line.slice(0, MAX_READ_LINE_CHARS)}...`;
    const formatted = `${String(n).padStart(6)}  ${line}`;
    bytes += Buffer.byteLength(formatted) + 1;
    if (bytes > MAX_OUTPUT_BYTES && out.length > 0) break;
    out.push(bytes > MAX_OUTPUT_BYTES ? cutBytes(formatted, MAX_OUTPUT_BYTES) : formatted);
    last = n;
  }
  let content = out.join('\n');
  if (last < total || partial) {
    const of = partial
      ? `the first ${total} lines (file is ${info.size} bytes; read stopped at ${data.length})`
      : `${total}`;
    content += `\n\n[Showing lines ${start}-${last} of ${of}]`;
    if (last < Math.min(end, total))
      content += `\n[Output limit reached; continue with start_line=${last + 1}]`;
  }
  return ok(content);
}

function binaryMessage(abs: string, why: string): string {
  return `Cannot read binary file: ${abs} (${why}). Use shell commands like 'file', 'xxd' or 'strings' to inspect it.`;
}
