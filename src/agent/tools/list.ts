/**
 * `list {path?, show_hidden?, recursive?, max_depth?}` — rho-agent's
 * directory listing through `Sandbox.list`: a flat `ls -l`-like view
 * (permissions, size, mtime, name; directories first), or with `recursive` a
 * tree. At most 200 entries.
 */
import path from 'node:path';
import type { FileInfo } from '../../sandbox/sandbox.js';
import {
  defineTool,
  fail,
  isAgentFacingSandboxError,
  ok,
  sandboxPath,
  type ToolContext,
  type ToolOutput,
} from './tool.js';

export const MAX_LIST_ENTRIES = 200;
const DEFAULT_MAX_DEPTH = 3;

export interface ListArgs {
  path?: string;
  show_hidden?: boolean;
  recursive?: boolean;
  max_depth?: number;
}

/** The `list` tool. */
export const listTool = defineTool<ListArgs>({
  name: 'list',
  parameters: {
    type: 'object',
    properties: {
      path: { type: 'string', description: 'Directory to list (default: the working directory)' },
      show_hidden: {
        type: 'boolean',
        description: "Include hidden files (starting with '.'). Defaults to false.",
      },
      recursive: { type: 'boolean', description: 'List recursively (tree view). Defaults to false.' },
      max_depth: {
        type: 'integer',
        description: `Max depth for recursive listing. Defaults to ${DEFAULT_MAX_DEPTH}.`,
        minimum: 1,
        maximum: 20,
      },
    },
    required: [],
  },
  description: () =>
    'List the contents of a directory. Shows permissions, sizes, modification times and names; ' +
    'with recursive: true, a tree.',
  run: runList,
});

async function runList(args: ListArgs, { sandbox, signal }: ToolContext): Promise<ToolOutput> {
  const target = args.path ?? '.';
  const abs = sandboxPath(sandbox, target);
  const info = await sandbox.stat(target, { signal });
  if (info === undefined) return fail(`Directory not found: ${abs}`);
  if (info.type !== 'dir' && info.type !== 'symlink') return fail(`Not a directory: ${abs}`);
  const recursive = args.recursive === true;
  let entries: FileInfo[];
  try {
    entries = await sandbox.list(target, {
      recursive,
      ...(recursive ? { maxDepth: args.max_depth ?? DEFAULT_MAX_DEPTH } : {}),
      showHidden: args.show_hidden === true,
      limit: MAX_LIST_ENTRIES + 1,
      signal,
    });
  } catch (e) {
    if (isAgentFacingSandboxError(e)) return fail(`Not a directory: ${abs}`);
    throw e;
  }
  if (entries.length === 0) return ok(`(empty directory: ${abs})`);
  const truncated = entries.length > MAX_LIST_ENTRIES;
  const shown = entries.slice(0, MAX_LIST_ENTRIES);
  const body = recursive ? tree(abs, shown) : flat(shown);
  return ok(truncated ? `${body}\n\n[Truncated at ${MAX_LIST_ENTRIES} entries]` : body);
}

const byDirsFirst = (a: FileInfo, b: FileInfo): number =>
  Number(a.type !== 'dir') - Number(b.type !== 'dir') ||
  a.name.toLowerCase().localeCompare(b.name.toLowerCase());

function flat(entries: FileInfo[]): string {
  return [...entries]
    .sort(byDirsFirst)
    .map((e) => {
      const size = e.type === 'file' ? formatSize(e.size) : '-';
      return `${modeString(e)}  ${size.padStart(8)}  ${formatTime(e.mtimeMs)}  ${displayName(e)}`;
    })
    .join('\n');
}

function tree(root: string, entries: FileInfo[]): string {
  const children = new Map<string, FileInfo[]>();
  for (const e of entries) {
    const parent = path.posix.dirname(e.path);
    const list = children.get(parent) ?? [];
    list.push(e);
    children.set(parent, list);
  }
  const out: string[] = [`${root}/`];
  const walk = (dir: string, prefix: string): void => {
    const kids = [...(children.get(dir) ?? [])].sort(byDirsFirst);
    kids.forEach((e, i) => {
      const last = i === kids.length - 1;
      const label = e.type === 'file' ? `${e.name} (${formatSize(e.size)})` : displayName(e);
      out.push(`${prefix}${last ? '└── ' : '├── '}${label}`);
      if (e.type === 'dir') walk(e.path, prefix + (last ? '    ' : '│   '));
    });
  };
  walk(root, '');
  return out.join('\n');
}

function displayName(e: FileInfo): string {
  switch (e.type) {
    case 'dir':
      return `${e.name}/`;
    case 'symlink':
      return `${e.name}@`;
    default:
      return e.name;
  }
}

/** `drwxr-xr-x`-style permissions. */
export function modeString(e: Pick<FileInfo, 'type' | 'mode'>): string {
  const kind = e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : e.type === 'other' ? '?' : '-';
  let bits = '';
  for (let shift = 6; shift >= 0; shift -= 3) {
    const b = (e.mode >> shift) & 7;
    bits += (b & 4 ? 'r' : '-') + (b & 2 ? 'w' : '-') + (b & 1 ? 'x' : '-');
  }
  return kind + bits;
}

/** Human-readable size, as rho-agent prints it (`512B`, `1.5KB`). */
export function formatSize(size: number): string {
  let n = size;
  for (const unit of ['B', 'KB', 'MB', 'GB']) {
    if (n < 1024) return unit === 'B' ? `${n}B` : `${n.toFixed(1)}${unit}`;
    n /= 1024;
  }
  return `${n.toFixed(1)}TB`;
}

function formatTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}
