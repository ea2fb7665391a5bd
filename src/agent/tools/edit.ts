/**
 * `edit {path, old_string, new_string}` — search-and-replace that must hit
 * exactly one place. Like rho-agent it tries, in order:
 *   1. an exact match;
 *   2. a line-wise match ignoring trailing whitespace (and CR);
 *   3. a line-wise match ignoring all indentation and runs of blanks, the
 *      replacement then shifted to the indentation actually found.
 * Each stage requires uniqueness: 0 matches falls through to the next stage,
 * more than 1 is an error saying how many (the file is left untouched).
 * `edit` only modifies existing files, so `file_write: create-only` refuses it.
 */
import {
  defineTool,
  fail,
  isAgentFacingSandboxError,
  ok,
  refuse,
  sandboxPath,
  type ToolContext,
  type ToolOutput,
} from './tool.js';

/** Largest file `edit` loads (it rewrites the whole file). */
export const MAX_EDIT_BYTES = 10 * 1024 * 1024;

export interface EditArgs {
  path: string;
  old_string: string;
  new_string: string;
}

/** The `edit` tool. */
export const editTool = defineTool<EditArgs>({
  name: 'edit',
  parameters: {
    type: 'object',
    properties: {
      path: { type: 'string', description: 'Path to the file to edit' },
      old_string: {
        type: 'string',
        description:
          'The exact string to find and replace. Must be unique in the file. Include surrounding lines for context if needed.',
      },
      new_string: { type: 'string', description: 'The string to replace old_string with' },
    },
    required: ['path', 'old_string', 'new_string'],
  },
  description: () =>
    'Make a surgical edit to a file by replacing a specific string with new content. The old_string must uniquely ' +
    'identify the location to edit. Include enough context (surrounding lines) to make the match unique. ' +
    'For multiple edits to the same file, call this tool multiple times.',
  run: runEdit,
});

async function runEdit(args: EditArgs, { sandbox, signal, profile }: ToolContext): Promise<ToolOutput> {
  if (profile.fileWrite !== 'full') {
    return refuse(
      `edit modifies existing files, which the profile '${profile.name}' (file_write: ${profile.fileWrite}) does not allow`,
    );
  }
  if (args.path === '') return fail('No path provided');
  if (args.old_string === '') return fail('old_string must not be empty (use write to create a file)');
  if (args.old_string === args.new_string)
    return fail('old_string and new_string are identical; nothing to change');
  const abs = sandboxPath(sandbox, args.path);
  const info = await sandbox.stat(args.path, { signal });
  if (info === undefined) return fail(`File not found: ${abs}`);
  if (info.type === 'dir') return fail(`Not a file: ${abs} is a directory`);
  if (info.size > MAX_EDIT_BYTES) {
    return fail(
      `File too large to edit (${info.size} bytes, max ${MAX_EDIT_BYTES}); use bash (e.g. sed) instead`,
    );
  }
  let content: string;
  try {
    content = (await sandbox.readFile(args.path, { signal })).toString('utf8');
  } catch (e) {
    if (isAgentFacingSandboxError(e)) return fail(`File not found: ${abs}`);
    throw e;
  }
  const result = applyEdit(content, args.old_string, args.new_string);
  if (!result.ok) return fail(`${result.error} (in ${abs})`);
  try {
    await sandbox.writeFile(args.path, result.content, {
      signal,
      ...(info.type === 'file' ? { mode: info.mode } : {}),
    });
  } catch (e) {
    if (isAgentFacingSandboxError(e)) return fail(`Cannot write ${abs}: ${e.message}`);
    throw e;
  }
  return ok(`Edited ${abs}: ${result.how}`);
}

export type EditResult = { ok: true; content: string; how: string } | { ok: false; error: string };

/**
 * The matching strategy, pure (exported for tests). Never returns a content
 * unless exactly one location matched at the first stage that matched at all.
 */
export function applyEdit(content: string, oldString: string, newString: string): EditResult {
  // Stage 1: exact. Overlapping occurrences count too: they are just as ambiguous.
  const exact = occurrences(content, oldString);
  if (exact.length === 1) {
    const at = exact[0] ?? 0;
    return {
      ok: true,
      content: content.slice(0, at) + newString + content.slice(at + oldString.length),
      how: 'exact match',
    };
  }
  if (exact.length > 1) {
    return {
      ok: false,
      error: `old_string appears ${exact.length} times (must be unique). Add more surrounding context.`,
    };
  }

  const crlf = content.includes('\r\n');
  const lines = content.split('\n');
  // A trailing newline on old_string means "up to the end of the line": match whole lines without it.
  const trailing = oldString.endsWith('\n');
  const oldLines = (trailing ? oldString.slice(0, -1) : oldString).split('\n');
  const newCore = trailing && newString.endsWith('\n') ? newString.slice(0, -1) : newString;

  for (const stage of STAGES) {
    const want = oldLines.map(stage.normalize);
    const found: number[] = [];
    for (let i = 0; i + oldLines.length <= lines.length; i++) {
      let match = true;
      for (let k = 0; k < oldLines.length && match; k++)
        match = stage.normalize(lines[i + k] ?? '') === want[k];
      if (match) found.push(i);
    }
    if (found.length > 1) {
      return {
        ok: false,
        error: `old_string has ${found.length} ${stage.name} matches (must be unique). Add more surrounding context.`,
      };
    }
    const at = found[0];
    if (at === undefined) continue;
    const matched = lines.slice(at, at + oldLines.length);
    let replacement = newCore === '' && trailing ? [] : newCore.split('\n');
    if (stage.reindent) replacement = reindent(replacement, oldLines[0] ?? '', matched[0] ?? '');
    if (crlf) replacement = replacement.map((l) => (l.endsWith('\r') ? l : `${l}\r`));
    // The file's last line has no CR (no newline follows it); keep it that way when it was replaced.
    if (crlf && replacement.length > 0 && !(matched[matched.length - 1] ?? '').endsWith('\r')) {
      replacement[replacement.length - 1] = (replacement[replacement.length - 1] ?? '').replace(/\r$/, '');
    }
    const out = [...lines.slice(0, at), ...replacement, ...lines.slice(at + oldLines.length)];
    return { ok: true, content: out.join('\n'), how: `${stage.name} match at line ${at + 1}` };
  }
  return {
    ok: false,
    error:
      'old_string not found. Check for typos and whitespace, or read the file again to get the current text.',
  };
}

interface Stage {
  name: string;
  normalize: (line: string) => string;
  reindent: boolean;
}

const STAGES: readonly Stage[] = [
  { name: 'whitespace-normalized', normalize: (l) => l.replace(/\s+$/, ''), reindent: false },
  { name: 'whitespace-flexible', normalize: (l) => l.trim().replace(/\s+/g, ' '), reindent: true },
];

function occurrences(haystack: string, needle: string): number[] {
  const at: number[] = [];
  for (let i = haystack.indexOf(needle); i !== -1 && at.length < 1000; i = haystack.indexOf(needle, i + 1))
    at.push(i);
  return at;
}

const indentOf = (line: string): string => /^[ \t]*/.exec(line)?.[0] ?? '';

/**
 * Shifts `lines` from the indentation old_string used to the one the file
 * has, keeping each line's indentation relative to the first line.
 */
function reindent(lines: string[], oldFirst: string, matchedFirst: string): string[] {
  const from = indentOf(oldFirst);
  const to = indentOf(matchedFirst);
  if (from === to) return lines;
  return lines.map((line) => {
    if (line.trim() === '') return line;
    if (line.startsWith(from)) return to + line.slice(from.length);
    // Less indented than old_string's first line: keep the part that is there, relative to nothing.
    return to + line.trimStart();
  });
}
