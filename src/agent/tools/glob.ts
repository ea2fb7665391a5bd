/**
 * `glob {pattern, path?, max_results?}` — finds files by name or path
 * pattern through `Sandbox.glob`. As in rho-agent, a pattern without a `/`
 * matches file names at any depth (`*.py` finds every Python file), and the
 * usual noise directories (.git, node_modules, __pycache__, .venv, venv) are
 * skipped unless the pattern names them.
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

export const DEFAULT_GLOB_RESULTS = 100;
export const MAX_GLOB_RESULTS = 1000;
/** Directories skipped by `glob` and `grep` unless asked for explicitly. */
export const NOISE_DIRS: readonly string[] = ['.git', 'node_modules', '__pycache__', '.venv', 'venv'];

export interface GlobArgs {
  pattern: string;
  path?: string;
  max_results?: number;
}

/** The `glob` tool. */
export const globTool = defineTool<GlobArgs>({
  name: 'glob',
  parameters: {
    type: 'object',
    properties: {
      pattern: {
        type: 'string',
        description:
          "Glob pattern to match (e.g. '*.py', 'config.*', 'src/**/*.ts'). A pattern without '/' matches file names at any depth.",
      },
      path: { type: 'string', description: 'Directory to search in (default: the working directory)' },
      max_results: {
        type: 'integer',
        description: `Maximum paths to return. Defaults to ${DEFAULT_GLOB_RESULTS}.`,
        minimum: 1,
        maximum: MAX_GLOB_RESULTS,
      },
    },
    required: ['pattern'],
  },
  description: () =>
    'Find files by name or path pattern. Returns matching paths (relative to the working directory when inside it).',
  run: runGlob,
});

async function runGlob(args: GlobArgs, { sandbox, signal }: ToolContext): Promise<ToolOutput> {
  if (args.pattern.trim() === '') return fail('No pattern provided');
  const max = args.max_results ?? DEFAULT_GLOB_RESULTS;
  let base = sandboxPath(sandbox, args.path ?? '.');
  let pattern = args.pattern;
  if (pattern.startsWith('/')) {
    // An absolute pattern: its static prefix becomes the base directory.
    const split = splitStatic(pattern);
    base = split.base;
    pattern = split.rest;
  }
  if (!pattern.includes('/') && !pattern.startsWith('**')) pattern = `**/${pattern}`;
  const info = await sandbox.stat(base, { signal });
  if (info?.type !== 'dir') return fail(`Directory not found: ${base}`);
  const wanted = NOISE_DIRS.filter((d) => !args.pattern.includes(d));
  let found: string[];
  try {
    // Ask for more than needed: noise-directory hits are dropped below.
    found = await sandbox.glob(pattern, { cwd: base, limit: Math.min(max * 4 + 100, 20_000), signal });
  } catch (e) {
    if (isAgentFacingSandboxError(e)) return fail(`Directory not found: ${base}`);
    throw e;
  }
  const kept = found.filter(
    (p) =>
      !path.posix
        .relative(base, p)
        .split('/')
        .some((seg) => wanted.includes(seg)),
  );
  if (kept.length === 0) return ok('No files found matching pattern');
  const shown = kept.slice(0, max).map((p) => display(sandbox.workingDir, p));
  const more = kept.length > max || found.length >= Math.min(max * 4 + 100, 20_000);
  const footer = more
    ? `[Showing ${shown.length} of ${kept.length}${found.length >= max ? '+' : ''} paths; narrow the pattern or raise max_results]`
    : `[${shown.length} ${shown.length === 1 ? 'path' : 'paths'} found]`;
  return ok(`${shown.join('\n')}\n\n${footer}`);
}

/** Path relative to the working dir when inside it, else absolute. */
export function display(workingDir: string, p: string): string {
  const rel = path.posix.relative(workingDir, p);
  return rel === '' ? '.' : rel.startsWith('..') ? p : rel;
}

/** `/work/src/**\/*.ts` → base `/work/src`, rest `**\/*.ts`. */
function splitStatic(pattern: string): { base: string; rest: string } {
  const segs = pattern.split('/');
  let i = 0;
  while (i < segs.length - 1 && !/[*?[\]{}]/.test(segs[i] ?? '')) i++;
  return { base: segs.slice(0, i).join('/') || '/', rest: segs.slice(i).join('/') };
}
