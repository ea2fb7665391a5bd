import { describe, expect, it } from 'vitest';
import { validateArgs, toolErrorToText, shellQuote } from '../../../../src/agent/tools/tool.js';
import { TOOLS } from '../../../../src/agent/tools/index.js';
import { SandboxError } from '../../../../src/errors.js';
import { AbortReason } from '../../../../src/util/abort.js';
import { execFileSync } from 'node:child_process';

describe('validateArgs', () => {
  const grep = TOOLS.grep.parameters;

  it('accepts valid arguments and ignores unknown ones', () => {
    expect(validateArgs(grep, { pattern: 'x', max_matches: 5, extra: 1 })).toEqual({
      ok: true,
      value: { pattern: 'x', max_matches: 5 },
    });
  });

  it('treats null as absent and coerces numeric strings and boolean strings', () => {
    expect(validateArgs(grep, { pattern: 'x', path: null, max_matches: '7', ignore_case: 'true' })).toEqual({
      ok: true,
      value: { pattern: 'x', max_matches: 7, ignore_case: true },
    });
  });

  it('reports every problem at once', () => {
    const r = validateArgs(grep, { max_matches: 1.5, ignore_case: 'yes', context_lines: 99 });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toContain("'pattern' is required");
      expect(r.error).toContain("'max_matches' must be an integer");
      expect(r.error).toContain("'ignore_case' must be a boolean");
      expect(r.error).toContain("'context_lines' must be ≤ 10");
    }
  });

  it('checks enums and rejects non-objects', () => {
    const r = validateArgs(TOOLS.run_code.parameters, { language: 'ruby', code: 'p 1' });
    expect(r).toEqual({ ok: false, error: "'language' must be one of 'python', 'javascript', 'typescript'" });
    expect(validateArgs(grep, ['x'])).toEqual({
      ok: false,
      error: 'arguments must be a JSON object, got an array',
    });
  });
});

describe('toolErrorToText', () => {
  it('returns agent-facing sandbox errors as text and propagates infrastructure faults and aborts', () => {
    expect(toolErrorToText(new SandboxError('not-found', 'no such file: x'))).toMatch(/not found/);
    expect(toolErrorToText(new SandboxError('path-escape', '../../etc'))).toMatch(/outside the sandbox/);
    expect(toolErrorToText(new SandboxError('gone', 'sandbox deleted'))).toBeUndefined();
    expect(toolErrorToText(new SandboxError('exec-failed', 'toolbox 502'))).toBeUndefined();
    expect(toolErrorToText(new AbortReason('step-timeout'))).toBeUndefined();
    expect(toolErrorToText(new TypeError('boom'))).toBe('Error: boom');
  });
});

describe('shellQuote', () => {
  it('survives every awkward character through a real shell', () => {
    const nasty = `it's "$(touch /tmp/pwned)" \`id\` $HOME \\ ; | & > < * ? ~ !\n\ttab`;
    const out = execFileSync('bash', ['-c', `printf %s ${shellQuote(nasty)}`], { encoding: 'utf8' });
    expect(out).toBe(nasty);
  });
});

describe('tool definitions', () => {
  it('use the rho-agent names and parameters', () => {
    const params = Object.fromEntries(
      Object.values(TOOLS).map((t) => [t.name, Object.keys(t.parameters.properties)]),
    );
    expect(params).toEqual({
      bash: ['command', 'working_dir', 'timeout'],
      read: ['path', 'start_line', 'end_line'],
      write: ['path', 'content'],
      edit: ['path', 'old_string', 'new_string'],
      glob: ['pattern', 'path', 'max_results'],
      grep: ['pattern', 'path', 'glob', 'ignore_case', 'context_lines', 'max_matches'],
      list: ['path', 'show_hidden', 'recursive', 'max_depth'],
      run_code: ['language', 'code'],
    });
  });
});
