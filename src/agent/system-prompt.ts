/**
 * The built-in system prompt, used when neither the step, its prompt file nor
 * the workflow gives one. It tells the model where it is (the sandbox working
 * directory), what it may use (the tools actually offered, and what the
 * profile forbids), and that nobody is watching: it must not ask questions,
 * and its last message without tool calls is the step's result.
 */
import type { Profile, ToolName } from '../workflow/types.js';

export interface SystemPromptContext {
  workingDir: string;
  tools: readonly ToolName[];
  profile: Profile;
}

const TOOL_HINTS: Readonly<Record<ToolName, string>> = {
  bash: 'bash — run shell commands',
  read: 'read — read a file with line numbers',
  write: 'write — create or overwrite a file',
  edit: 'edit — replace one unique snippet in a file',
  glob: 'glob — find files by name pattern',
  grep: 'grep — search file contents by regular expression',
  list: 'list — list a directory',
  run_code: 'run_code — run a Python, JavaScript or TypeScript program',
};

/** The default system prompt for a prompt step. Deterministic for a given context (cassettes depend on it). */
export function defaultSystemPrompt({ workingDir, tools, profile }: SystemPromptContext): string {
  const lines = [
    'You are an autonomous software agent working inside an isolated sandbox.',
    `Your working directory is ${workingDir}; relative paths are resolved against it.`,
    '',
    'You run unattended, as one step of an automated workflow: nobody will answer questions or approve actions.',
    'Do not ask for confirmation or clarification. Make reasonable assumptions, do the work, and check it.',
    '',
  ];
  if (tools.length > 0) {
    lines.push('Tools available to you:');
    for (const t of tools) lines.push(`- ${TOOL_HINTS[t]}`);
  } else {
    lines.push('No tools are available in this step: answer from the prompt alone.');
  }
  const limits: string[] = [];
  if (profile.shell === 'restricted' && tools.includes('bash')) {
    limits.push(
      'The shell is restricted to read-only commands; redirects and command substitution are refused.',
    );
  }
  if (profile.fileWrite === 'off') limits.push('You may not modify files.');
  if (profile.fileWrite === 'create-only')
    limits.push('You may create new files but not modify existing ones.');
  if (limits.length > 0) lines.push('', `Limits (profile '${profile.name}'): ${limits.join(' ')}`);
  lines.push(
    '',
    'A refused or failed tool call is reported back to you; adjust and continue.',
    'When you are done, reply with your final answer and no tool calls: that message is the result of this step.',
  );
  return lines.join('\n');
}
