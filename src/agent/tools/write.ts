/**
 * `write {path, content}` — creates or overwrites a file (parent directories
 * are created). Under `file_write: create-only` an existing file is never
 * touched: the call is refused after a `stat`, and the write itself asks the
 * sandbox for create-only semantics so a file appearing in between is not
 * clobbered either. Sensitive paths and approval are the policy's job
 * (checked before this runs).
 */
import { SandboxError } from '../../errors.js';
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

export interface WriteArgs {
  path: string;
  content: string;
}

/** The `write` tool. */
export const writeTool = defineTool<WriteArgs>({
  name: 'write',
  parameters: {
    type: 'object',
    properties: {
      path: {
        type: 'string',
        description: 'Path where the file should be written (absolute, or relative to the working directory)',
      },
      content: { type: 'string', description: 'Content to write to the file' },
    },
    required: ['path', 'content'],
  },
  description({ profile }) {
    return profile.fileWrite === 'create-only'
      ? 'Write content to a new file. Use this to produce an output file such as a summary, report, script, or ' +
          'document. Cannot overwrite existing files. Creates parent directories as needed.'
      : "Write content to a file. Creates the file if it doesn't exist, or overwrites it if it does. " +
          'Creates parent directories as needed.';
  },
  run: runWrite,
});

async function runWrite(args: WriteArgs, { sandbox, signal, profile }: ToolContext): Promise<ToolOutput> {
  if (args.path === '') return fail('No path provided');
  const abs = sandboxPath(sandbox, args.path);
  const createOnly = profile.fileWrite === 'create-only';
  const existing = await sandbox.stat(args.path, { signal });
  if (existing?.type === 'dir') return fail(`Cannot write ${abs}: it is a directory`);
  if (createOnly && existing !== undefined) {
    return refuse(
      `File already exists: ${abs}. The profile '${profile.name}' only allows creating new files; ` +
        'use a different path.',
    );
  }
  try {
    await sandbox.writeFile(args.path, args.content, {
      signal,
      ...(createOnly ? { createOnly: true } : {}),
      // Keep an overwritten file's permissions (an executable script stays executable).
      ...(existing !== undefined && existing.type === 'file' ? { mode: existing.mode } : {}),
    });
  } catch (e) {
    if (isAgentFacingSandboxError(e)) return fail(`Cannot write ${abs}: ${e.message}`);
    // A create-only write that lost a race with another writer: the file exists now
    // (backends report it as `exec-failed` with `details.reason: 'exists'`).
    if (createOnly && e instanceof SandboxError && e.details.reason === 'exists') {
      return refuse(
        `File already exists: ${abs}. The profile '${profile.name}' only allows creating new files.`,
      );
    }
    throw e;
  }
  const size = Buffer.byteLength(args.content);
  const lines =
    args.content === '' ? 0 : args.content.split('\n').length - (args.content.endsWith('\n') ? 1 : 0);
  return ok(`${existing === undefined ? 'Created' : 'Overwrote'} ${abs} (${size} bytes, ${lines} lines)`);
}
