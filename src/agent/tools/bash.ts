/**
 * `bash {command, working_dir?, timeout?}` — rho-agent's shell tool, run
 * inside the sandbox. The result has rho-agent's (Codex-style) JSON shape:
 * `{"output": "<stdout then stderr>", "metadata": {"exit_code", "duration_seconds"}}`.
 * Restricted-shell parsing and approval happen before this runs (the policy);
 * here a profile with `file_write: off` additionally runs the command with the
 * workspace read-only (defence in depth, product.md §3).
 */
import { defineTool, fail, ok, sandboxPath, type ToolContext, type ToolOutput } from './tool.js';
import { MAX_OUTPUT_BYTES, truncateOutput } from './truncate.js';

/** Upper bound on the `timeout` argument (seconds), unless the profile's own default is higher. */
export const MAX_BASH_TIMEOUT_S = 600;
/** Output kept from the sandbox before our own truncation (per stream): enough that the tail of a long log survives. */
const EXEC_OUTPUT_CAP = 8 * 1024 * 1024;

export interface BashArgs {
  command: string;
  working_dir?: string;
  timeout?: number;
}

/** The `bash` tool. */
export const bashTool = defineTool<BashArgs>({
  name: 'bash',
  parameters: {
    type: 'object',
    properties: {
      command: { type: 'string', description: 'The shell command to execute' },
      working_dir: {
        type: 'string',
        description: 'Working directory for the command (default: the sandbox working directory)',
      },
      timeout: {
        type: 'integer',
        description: 'Timeout in seconds (default: the profile shell timeout)',
        minimum: 1,
      },
    },
    required: ['command'],
  },
  description({ profile }) {
    return profile.shell === 'restricted'
      ? 'Execute a shell command to inspect files, logs, or system state. Use this for text-based inspection with ' +
          'tools like grep, cat, head, tail, find, jq, etc. Commands are read-only: redirects, command substitution ' +
          'and commands outside the read-only allowlist are refused.'
      : 'Execute a bash command. Use for running programs, installing packages, building code, file operations, ' +
          'and any other shell tasks. Returns JSON with the combined output, the exit code and the duration.';
  },
  run: runBash,
});

async function runBash(args: BashArgs, { sandbox, signal, profile }: ToolContext): Promise<ToolOutput> {
  if (args.command.trim() === '') return fail('No command provided');
  const cwd = args.working_dir ?? profile.shellWorkingDir;
  if (cwd !== undefined) {
    const info = await sandbox.stat(cwd, { signal });
    if (info?.type !== 'dir') return fail(`Working directory not found: ${sandboxPath(sandbox, cwd)}`);
  }
  const cap = Math.max(MAX_BASH_TIMEOUT_S, profile.shellTimeoutS);
  const timeoutS = Math.min(args.timeout ?? profile.shellTimeoutS, cap);
  const result = await sandbox.exec(args.command, {
    ...(cwd !== undefined ? { cwd } : {}),
    timeoutMs: timeoutS * 1000,
    signal,
    readOnly: profile.fileWrite === 'off',
    maxOutputBytes: EXEC_OUTPUT_CAP,
  });
  let output = combine(result.stdout, result.stderr);
  output = truncateOutput(output, { keep: 'head-tail', maxBytes: MAX_OUTPUT_BYTES - 512 }).text;
  if (result.timedOut)
    output += `${output === '' ? '' : '\n\n'}[Command timed out after ${timeoutS}s and was killed]`;
  const text = formatShellResult(output, result.exitCode, result.durationMs, result.timedOut);
  return result.exitCode === 0 && !result.timedOut ? ok(text) : fail(text);
}

/** stdout then stderr, like rho-agent (a blank line between them when both are present). */
export function combine(stdout: string, stderr: string): string {
  if (stdout !== '' && stderr !== '') return `${stdout}${stdout.endsWith('\n') ? '' : '\n'}${stderr}`;
  return stdout !== '' ? stdout : stderr;
}

/** rho-agent's shell result shape, shared with `run_code`. */
export function formatShellResult(
  output: string,
  exitCode: number,
  durationMs: number,
  timedOut: boolean,
): string {
  return JSON.stringify(
    {
      output,
      metadata: {
        exit_code: exitCode,
        duration_seconds: Math.round(durationMs / 100) / 10,
        ...(timedOut ? { timed_out: true } : {}),
      },
    },
    null,
    2,
  );
}
