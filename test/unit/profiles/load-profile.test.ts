import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_PROFILES,
  BUILTIN_PROFILE_NAMES,
  DEFAULT_PROFILE,
  isBuiltinProfileName,
} from '../../../src/profiles/builtin.js';
import {
  DEFAULT_DANGEROUS_PATTERNS,
  DEFAULT_REQUIRED_TOOLS,
  loadProfileFile,
  parseProfile,
} from '../../../src/profiles/load-profile.js';
import { formatDiagnostic } from '../../../src/workflow/diagnostic.js';

const parse = (text: string, abs = '/p/ci-review.yaml') => parseProfile(text, 'ci-review.yaml', abs);
const lines = (text: string): string[] => parse(text).diagnostics.map(formatDiagnostic);

describe('built-in profiles', () => {
  it('are the four usable, approval-free profiles decided for unattended runs', () => {
    expect(BUILTIN_PROFILE_NAMES).toEqual(['readonly', 'developer', 'developer-bash-only', 'unrestricted']);
    const shape = Object.fromEntries(
      Object.entries(BUILTIN_PROFILES).map(([k, p]) => [
        k,
        [p.name, p.shell, p.fileWrite, p.bashOnly, p.approval.mode, p.shellTimeoutS, p.source],
      ]),
    );
    expect(shape).toEqual({
      readonly: ['readonly', 'restricted', 'off', false, 'none', 120, 'builtin'],
      developer: ['developer', 'unrestricted', 'full', false, 'none', 120, 'builtin'],
      'developer-bash-only': ['developer-bash-only', 'unrestricted', 'off', true, 'none', 120, 'builtin'],
      unrestricted: ['unrestricted', 'unrestricted', 'full', false, 'none', 300, 'builtin'],
    });
    for (const p of Object.values(BUILTIN_PROFILES)) {
      expect(p.approval.requiredTools).toEqual([]);
      expect(p.approval.dangerousPatterns).toEqual([]);
      expect(Object.isFrozen(p)).toBe(true);
    }
    expect(DEFAULT_PROFILE).toBe('readonly');
    expect(isBuiltinProfileName('developer')).toBe(true);
    expect(isBuiltinProfileName('toString')).toBe(false);
  });
});

describe('parseProfile', () => {
  it('reads every rho-agent key', () => {
    const r = parse(
      [
        'profile: ci-reviewer',
        'description: "Review only"',
        'shell:',
        '  mode: unrestricted',
        'file_write:',
        '  mode: create-only',
        'database:',
        '  mode: mutations',
        'approval:',
        '  mode: granular',
        '  required_tools: [write, edit]',
        '  dangerous_patterns: ["rm -rf", "DROP TABLE"]',
        'shell_timeout: 300',
        'shell_working_dir: /work/repo',
        'bash_only: true',
        '',
      ].join('\n'),
    );
    expect(r.profile).toEqual({
      name: 'ci-reviewer',
      description: 'Review only',
      shell: 'unrestricted',
      fileWrite: 'create-only',
      approval: {
        mode: 'granular',
        requiredTools: ['write', 'edit'],
        dangerousPatterns: ['rm -rf', 'DROP TABLE'],
      },
      shellTimeoutS: 300,
      shellWorkingDir: '/work/repo',
      bashOnly: true,
      source: '/p/ci-review.yaml',
    });
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "ci-review.yaml:10:9: warning: approval.mode: approval mode 'granular': rho-flow runs unattended, so calls of write, edit will be refused; set approval.mode to 'none' to let the agent act within its shell and file-write limits",
    ]);
  });

  it("fills rho-agent's defaults and says what approval will refuse", () => {
    const r = parse('description: minimal\n');
    expect(r.profile).toEqual({
      name: 'ci-review',
      description: 'minimal',
      shell: 'restricted',
      fileWrite: 'off',
      approval: {
        mode: 'dangerous',
        requiredTools: [...DEFAULT_REQUIRED_TOOLS],
        dangerousPatterns: [...DEFAULT_DANGEROUS_PATTERNS],
      },
      shellTimeoutS: 120,
      bashOnly: false,
      source: '/p/ci-review.yaml',
    });
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "ci-review.yaml:1:1: warning: approval mode 'dangerous' (rho-agent's default): rho-flow runs unattended, so calls of bash, write, edit and run_code will be refused; set approval.mode to 'none' to let the agent act within its shell and file-write limits",
    ]);
  });

  it('needs no warning when nothing requires approval', () => {
    expect(lines('approval: { mode: none }\nfile_write: { mode: off }\n')).toEqual([]);
    expect(lines('approval:\n  mode: all\n')).toEqual([
      "ci-review.yaml:2:9: warning: approval.mode: approval mode 'all': rho-flow runs unattended, so every tool call will be refused; set approval.mode to 'none' to let the agent act within its shell and file-write limits",
    ]);
  });

  it('warns about required_tools that are not rho-flow tools', () => {
    expect(lines('approval:\n  mode: none\n  required_tools: [bsh, oracle]\n')).toEqual([
      "ci-review.yaml:3:20: warning: approval.required_tools[0]: 'bsh' is not a rho-flow tool (did you mean 'bash'?) (tools: bash, read, write, edit, glob, grep, list, run_code)",
      "ci-review.yaml:3:25: warning: approval.required_tools[1]: 'oracle' is not a rho-flow tool (tools: bash, read, write, edit, glob, grep, list, run_code)",
    ]);
  });

  it('reports every problem inside the profile file, positioned', () => {
    const r = parse(
      'profile: x\nshel:\n  mode: restricted\nfile_write:\n  mode: partial\nshell_timeout: "60"\nbash_only: 1\n',
    );
    expect(r.profile).toBeUndefined();
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "ci-review.yaml:2:1: error: shel: unknown key 'shel' (did you mean 'shell'?)",
      "ci-review.yaml:5:9: error: file_write.mode: 'partial' is not one of: off, create-only, full",
      'ci-review.yaml:6:16: error: shell_timeout: must be an integer',
      'ci-review.yaml:7:12: error: bash_only: must be true or false',
    ]);
  });

  it('reports YAML problems and non-mapping files', () => {
    expect(lines('shell:\n  mode: restricted\nshell:\n  mode: unrestricted\n')).toEqual([
      "ci-review.yaml:3:1: error: shell: duplicate key 'shell' (first defined at line 1)",
    ]);
    expect(lines('')).toEqual([
      'ci-review.yaml:1:1: error: the file is empty: a profile file must be a YAML mapping',
    ]);
    expect(lines('- readonly\n')).toEqual([
      'ci-review.yaml:1:1: error: a profile file must be a YAML mapping',
    ]);
  });

  it('accepts YAML 1.1 style `off` written as a boolean', () => {
    expect(parse('file_write: { mode: false }\napproval: { mode: none }\n').profile?.fileWrite).toBe('off');
  });
});

describe('loadProfileFile', () => {
  it('reads a file, keeps its bytes, and reports a missing one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
    try {
      const file = join(dir, 'p.yaml');
      await writeFile(file, 'approval: { mode: none }\n');
      const r = await loadProfileFile(file, 'p.yaml');
      expect(r.profile?.name).toBe('p');
      expect(r.bytes?.toString()).toBe('approval: { mode: none }\n');
      expect((await loadProfileFile(join(dir, 'nope.yaml'), 'nope.yaml')).notFound).toBe(true);
      expect((await loadProfileFile(dir, 'dir')).diagnostics[0]?.message).toMatch(
        /^cannot read the profile file: /,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
