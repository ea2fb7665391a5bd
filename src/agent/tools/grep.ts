/**
 * `grep {pattern, path?, glob?, ignore_case?, context_lines?, max_matches?}` —
 * content search. It runs GNU-compatible `grep -rnE` *inside* the sandbox
 * through `Sandbox.exec` (one round trip on every backend, fast on big trees)
 * with every argument shell-quoted, and stops reading once `max_matches` is
 * exceeded (`head` closes the pipe, grep dies of SIGPIPE).
 */
import { defineTool, fail, ok, sandboxPath, shellQuote, type ToolContext, type ToolOutput } from './tool.js';
import { NOISE_DIRS } from './glob.js';
import { truncateLine } from './truncate.js';

export const DEFAULT_GREP_MATCHES = 100;
export const MAX_GREP_MATCHES = 1000;
const MAX_CONTEXT_LINES = 10;
const MAX_LINE_CHARS = 500;
const GREP_TIMEOUT_MS = 60_000;

export interface GrepArgs {
  pattern: string;
  path?: string;
  glob?: string;
  ignore_case?: boolean;
  context_lines?: number;
  max_matches?: number;
}

/** The `grep` tool. */
export const grepTool = defineTool<GrepArgs>({
  name: 'grep',
  parameters: {
    type: 'object',
    properties: {
      pattern: {
        type: 'string',
        description: 'Regular expression to search for in file contents (extended regex, grep -E syntax)',
      },
      path: {
        type: 'string',
        description: 'File or directory to search in (default: the working directory)',
      },
      glob: {
        type: 'string',
        description: "Glob pattern to filter which files to search by name (e.g. '*.py', '*.log')",
      },
      ignore_case: { type: 'boolean', description: 'Case-insensitive search. Defaults to false.' },
      context_lines: {
        type: 'integer',
        description: 'Lines of context before and after each match. Defaults to 0.',
        minimum: 0,
        maximum: MAX_CONTEXT_LINES,
      },
      max_matches: {
        type: 'integer',
        description: `Maximum total matches to return. Defaults to ${DEFAULT_GREP_MATCHES}.`,
        minimum: 1,
        maximum: MAX_GREP_MATCHES,
      },
    },
    required: ['pattern'],
  },
  description: () =>
    'Search for a pattern in file contents. Returns matching lines as path:line:text (context lines as path-line-text). ' +
    'Skips binary files and .git, node_modules, __pycache__, .venv, venv.',
  run: runGrep,
});

/** The shell command for a search (exported for tests of the quoting). */
export function grepCommand(args: GrepArgs, lineLimit: number): string {
  const parts = ['grep', '-rnHIZE', '--color=never'];
  if (args.ignore_case === true) parts.push('-i');
  const context = args.context_lines ?? 0;
  if (context > 0) parts.push(`-C${context}`);
  if (args.glob !== undefined && args.glob !== '') parts.push(shellQuote(`--include=${args.glob}`));
  for (const dir of NOISE_DIRS) parts.push(shellQuote(`--exclude-dir=${dir}`));
  parts.push('-e', shellQuote(args.pattern), '--', shellQuote(args.path ?? '.'));
  // grep's own status, not head's: 0 = matches, 1 = none, 2 = error, 141 = cut short by head.
  const inner = `${parts.join(' ')} | head -n ${lineLimit}; exit "\${PIPESTATUS[0]}"`;
  return `bash -c ${shellQuote(inner)}`;
}

async function runGrep(args: GrepArgs, { sandbox, signal }: ToolContext): Promise<ToolOutput> {
  if (args.pattern === '') return fail('No pattern provided');
  const target = args.path ?? '.';
  if ((await sandbox.stat(target, { signal })) === undefined)
    return fail(`Path not found: ${sandboxPath(sandbox, target)}`);
  const max = args.max_matches ?? DEFAULT_GREP_MATCHES;
  const context = args.context_lines ?? 0;
  // Enough lines to see max+1 matches even when each brings full context and a separator.
  const lineLimit = (max + 1) * (2 * context + 2);
  const result = await sandbox.exec(grepCommand(args, lineLimit), {
    signal,
    timeoutMs: GREP_TIMEOUT_MS,
    readOnly: true,
    maxOutputBytes: 4 * 1024 * 1024,
  });
  const status = result.exitCode;
  if (result.timedOut)
    return fail(`Search timed out after ${GREP_TIMEOUT_MS / 1000}s; narrow the path or the pattern`);
  if (status !== 0 && status !== 1 && status !== 141 && result.stdout === '') {
    const why = result.stderr.trim() || result.stdout.trim() || `grep exited with ${status}`;
    return fail(`Search failed: ${why}`);
  }
  const { lines, matches, truncated } = collect(result.stdout, max);
  if (matches === 0) return ok('No matches found');
  let text = lines.join('\n');
  text += truncated
    ? `\n\n[Showing ${max} matches; more exist — narrow the search or raise max_matches]`
    : `\n\n[${matches} ${matches === 1 ? 'match' : 'matches'}]`;
  const warnings = result.stderr
    .trim()
    .split('\n')
    .filter((l) => l !== '');
  if (status === 2 && warnings.length > 0) text += `\n[grep warnings: ${warnings.slice(0, 5).join('; ')}]`;
  return ok(text);
}

/**
 * Turns `grep -Z` output (`file\0NN:text`, `file\0NN-text`, `--`) into
 * `file:NN:text` lines, keeping at most `max` matches and the context that
 * belongs to them.
 */
function collect(stdout: string, max: number): { lines: string[]; matches: number; truncated: boolean } {
  const lines: string[] = [];
  let matches = 0;
  let truncated = false;
  for (const raw of stdout.split('\n')) {
    if (raw === '') continue;
    const nul = raw.indexOf('\0');
    const file = nul === -1 ? '' : raw.slice(0, nul).replace(/^\.\//, '');
    const rest = nul === -1 ? raw : raw.slice(nul + 1);
    const m = /^(\d+)([:-])/.exec(rest);
    // Without the NUL (a backend that drops it) fall back to "anything with :NN:" being a match.
    const isMatch = m ? m[2] === ':' : /:\d+:/.test(raw);
    if (isMatch) {
      if (matches === max) {
        truncated = true;
        break;
      }
      matches++;
    }
    const line = nul === -1 ? raw : m ? `${file}${m[2]}${rest}` : `${file}:${rest}`;
    lines.push(truncateLine(line, MAX_LINE_CHARS));
  }
  // Context that trailed the last kept match up to a cut is fine; a dangling separator is not.
  while (lines.length > 0 && lines[lines.length - 1] === '--') lines.pop();
  return { lines, matches, truncated };
}
