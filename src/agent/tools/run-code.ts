/**
 * `run_code {language, code}` — the agno Daytona toolkit's tool: run a
 * snippet of Python, JavaScript or TypeScript in the sandbox and return its
 * output. The code travels base64-encoded inside one command (no stdin, no
 * separate upload, so it works identically on every backend), is written to a
 * fresh temp file under the sandbox's `/tmp` — never into the workspace — and
 * run from the working directory. TypeScript runs on whatever the sandbox
 * has: Node ≥ 22.6 type stripping, `tsx`, `deno` or `bun`; with none of them
 * the result says so. Offered only with an unrestricted shell (it is
 * arbitrary code execution).
 */
import { combine, formatShellResult } from './bash.js';
import { defineTool, fail, refuse, ok, type ToolContext, type ToolOutput } from './tool.js';
import { MAX_OUTPUT_BYTES, truncateOutput } from './truncate.js';

export type CodeLanguage = 'python' | 'javascript' | 'typescript';
export const CODE_LANGUAGES: readonly CodeLanguage[] = ['python', 'javascript', 'typescript'];

/**
 * Largest snippet accepted. The code is embedded (base64, +33%) in the one
 * `bash -c` argument, and Linux caps a single argv string at 128 KiB.
 */
export const MAX_CODE_BYTES = 64 * 1024;

export interface RunCodeArgs {
  language: CodeLanguage;
  code: string;
}

/** The `run_code` tool. */
export const runCodeTool = defineTool<RunCodeArgs>({
  name: 'run_code',
  parameters: {
    type: 'object',
    properties: {
      language: { type: 'string', description: 'Language of the code', enum: CODE_LANGUAGES },
      code: { type: 'string', description: 'The complete program to execute; print what you want to see' },
    },
    required: ['language', 'code'],
  },
  description: () =>
    'Execute a Python, JavaScript or TypeScript program in the sandbox (from the working directory) and return ' +
    'its output and exit code as JSON. Print results explicitly (print / console.log).',
  run: runCode,
});

const PRELUDE = 'd=$(mktemp -d) || exit 1; trap \'rm -rf "$d"\' EXIT';

/** The shell program that decodes `code` into a temp file and runs it (exported for tests). */
export function runCodeCommand(language: CodeLanguage, code: string): string {
  const b64 = Buffer.from(code, 'utf8').toString('base64');
  switch (language) {
    case 'python':
      return [
        PRELUDE,
        `printf %s '${b64}' | base64 -d > "$d/main.py"`,
        'if command -v python3 >/dev/null 2>&1; then python3 "$d/main.py"',
        'elif command -v python >/dev/null 2>&1; then python "$d/main.py"',
        'else echo "run_code: python3 is not installed in this sandbox" >&2; exit 127; fi',
      ].join('\n');
    case 'javascript':
      return [
        PRELUDE,
        `printf %s '${b64}' | base64 -d > "$d/main.js"`,
        'command -v node >/dev/null 2>&1 || { echo "run_code: node is not installed in this sandbox" >&2; exit 127; }',
        // Let `import` statements work in a .js file on Node versions that need the flag for it.
        'f=; node --experimental-detect-module -e 0 >/dev/null 2>&1 && f=--experimental-detect-module',
        'node --no-warnings $f "$d/main.js"',
      ].join('\n');
    case 'typescript':
      return [
        PRELUDE,
        `printf %s '${b64}' | base64 -d > "$d/main.ts"`,
        'if command -v node >/dev/null 2>&1 && node --experimental-strip-types -e 0 >/dev/null 2>&1; then',
        '  node --no-warnings --experimental-strip-types "$d/main.ts"',
        'elif command -v tsx >/dev/null 2>&1; then tsx "$d/main.ts"',
        'elif command -v deno >/dev/null 2>&1; then deno run --quiet "$d/main.ts"',
        'elif command -v bun >/dev/null 2>&1; then bun run "$d/main.ts"',
        'else echo "run_code: no TypeScript runtime in this sandbox (needs Node >= 22.6, tsx, deno or bun); use javascript instead" >&2; exit 127; fi',
      ].join('\n');
  }
}

async function runCode(args: RunCodeArgs, { sandbox, signal, profile }: ToolContext): Promise<ToolOutput> {
  // The policy refuses this too; a restricted shell must never reach arbitrary code execution.
  if (profile.shell !== 'unrestricted') {
    return refuse(`run_code needs an unrestricted shell; the profile '${profile.name}' has a restricted one`);
  }
  if (args.code.trim() === '') return fail('No code provided');
  if (Buffer.byteLength(args.code) > MAX_CODE_BYTES) {
    return fail(
      `Code is too large (${Buffer.byteLength(args.code)} bytes, max ${MAX_CODE_BYTES}); write it to a file and run it with bash`,
    );
  }
  const result = await sandbox.exec(runCodeCommand(args.language, args.code), {
    ...(profile.shellWorkingDir !== undefined ? { cwd: profile.shellWorkingDir } : {}),
    timeoutMs: profile.shellTimeoutS * 1000,
    signal,
    readOnly: profile.fileWrite === 'off',
    maxOutputBytes: 8 * 1024 * 1024,
  });
  let output = truncateOutput(combine(result.stdout, result.stderr), {
    keep: 'head-tail',
    maxBytes: MAX_OUTPUT_BYTES - 512,
  }).text;
  if (result.timedOut) {
    output += `${output === '' ? '' : '\n\n'}[Code timed out after ${profile.shellTimeoutS}s and was killed]`;
  }
  const text = formatShellResult(output, result.exitCode, result.durationMs, result.timedOut);
  return result.exitCode === 0 && !result.timedOut ? ok(text) : fail(text);
}
