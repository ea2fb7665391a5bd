import { describe, expect, it } from 'vitest';
import { BUILTIN_PROFILES } from '../../../src/profiles/builtin.js';
import {
  checkToolCall,
  isSensitivePath,
  matchDangerousPattern,
  offeredTools,
  requiresApproval,
  sensitivePathReason,
} from '../../../src/profiles/policy.js';
import type { Profile } from '../../../src/workflow/types.js';

const { readonly, developer, unrestricted } = BUILTIN_PROFILES;
const bashOnly = BUILTIN_PROFILES['developer-bash-only'];

function custom(
  over: Partial<Omit<Profile, 'approval'>> & { approval?: Partial<Profile['approval']> } = {},
): Profile {
  const { approval, ...rest } = over;
  return {
    name: 'custom',
    shell: 'unrestricted',
    fileWrite: 'full',
    shellTimeoutS: 120,
    bashOnly: false,
    source: '/tmp/custom.yaml',
    ...rest,
    approval: { mode: 'none', requiredTools: [], dangerousPatterns: [], ...approval },
  };
}

const reasonOf = (d: ReturnType<typeof checkToolCall>): string => (d.allowed ? '(allowed)' : d.reason);

describe('offeredTools', () => {
  it('follows each built-in profile', () => {
    expect(offeredTools(readonly)).toEqual(['bash', 'read', 'glob', 'grep', 'list']);
    expect(offeredTools(developer)).toEqual([
      'bash',
      'read',
      'write',
      'edit',
      'glob',
      'grep',
      'list',
      'run_code',
    ]);
    expect(offeredTools(bashOnly)).toEqual(['bash']);
    expect(offeredTools(unrestricted)).toEqual([
      'bash',
      'read',
      'write',
      'edit',
      'glob',
      'grep',
      'list',
      'run_code',
    ]);
  });

  it('drops edit under create-only and run_code under a restricted shell', () => {
    expect(offeredTools(custom({ fileWrite: 'create-only' }))).toEqual([
      'bash',
      'read',
      'write',
      'glob',
      'grep',
      'list',
      'run_code',
    ]);
    expect(offeredTools(custom({ shell: 'restricted' }))).toEqual([
      'bash',
      'read',
      'write',
      'edit',
      'glob',
      'grep',
      'list',
    ]);
  });

  it('narrows to a step tools list in canonical order and never adds a tool', () => {
    expect(offeredTools(developer, ['list', 'bash', 'read'])).toEqual(['bash', 'read', 'list']);
    expect(offeredTools(readonly, ['write', 'read', 'run_code'])).toEqual(['read']);
    expect(offeredTools(bashOnly, ['read'])).toEqual([]);
    expect(offeredTools(developer, [])).toEqual([]);
  });

  it('keeps tools that need approval on offer (calls to them are refused with an explanation)', () => {
    expect(offeredTools(custom({ approval: { mode: 'all' } }))).toContain('bash');
  });
});

describe('checkToolCall under the built-in profiles', () => {
  it('readonly: write and edit are refused; read-only tools and read-only commands are allowed', () => {
    expect(reasonOf(checkToolCall(readonly, 'write', { path: 'x', content: '' }))).toContain(
      'file_write: off',
    );
    expect(
      reasonOf(checkToolCall(readonly, 'edit', { path: 'x', old_string: 'a', new_string: 'b' })),
    ).toContain('file_write: off');
    expect(reasonOf(checkToolCall(readonly, 'run_code', { language: 'python', code: '1' }))).toContain(
      'needs an unrestricted shell',
    );
    for (const tool of ['read', 'glob', 'grep', 'list'])
      expect(checkToolCall(readonly, tool, { path: '.' })).toEqual({ allowed: true });
    expect(checkToolCall(readonly, 'bash', { command: 'ls -la && git log -3' })).toEqual({ allowed: true });
  });

  it('readonly: the bash tool goes through the restricted shell', () => {
    const d = checkToolCall(readonly, 'bash', { command: 'echo x > f' });
    expect(reasonOf(d)).toContain("restricted shell of profile 'readonly'");
    expect(reasonOf(d)).toContain('output redirection');
    expect(reasonOf(checkToolCall(readonly, 'bash', { command: 'rm -rf /' }))).toContain("'rm'");
    expect(reasonOf(checkToolCall(readonly, 'bash', {}))).toContain("string 'command'");
  });

  it('developer and unrestricted: anything goes, including commands a restricted shell refuses', () => {
    for (const p of [developer, unrestricted]) {
      expect(checkToolCall(p, 'bash', { command: 'rm -rf build && make > log 2>&1' })).toEqual({
        allowed: true,
      });
      expect(checkToolCall(p, 'write', { path: '.git/hooks/pre-commit', content: '' })).toEqual({
        allowed: true,
      });
      expect(checkToolCall(p, 'edit', { path: 'a', old_string: 'x', new_string: 'y' })).toEqual({
        allowed: true,
      });
      expect(checkToolCall(p, 'run_code', { language: 'python', code: 'import os' })).toEqual({
        allowed: true,
      });
    }
  });

  it('developer-bash-only: only bash, unrestricted', () => {
    expect(checkToolCall(bashOnly, 'bash', { command: 'echo x > f' })).toEqual({ allowed: true });
    for (const tool of ['read', 'write', 'edit', 'glob', 'grep', 'list', 'run_code']) {
      expect(reasonOf(checkToolCall(bashOnly, tool, { path: 'x' }))).toContain(
        'only the bash tool (bash_only)',
      );
    }
  });

  it('never throws, even for a malformed profile', () => {
    const broken = {
      ...developer,
      approval: { ...developer.approval, mode: 'sometimes' },
    } as unknown as Profile;
    expect(reasonOf(checkToolCall(broken, 'bash', { command: 'ls' }))).toContain('could not check');
  });

  it('refuses unknown tools and tools the step did not enable', () => {
    expect(reasonOf(checkToolCall(developer, 'python', {}))).toContain("'python' is not a tool");
    expect(
      reasonOf(checkToolCall(developer, 'write', { path: 'x', content: '' }, ['bash', 'read'])),
    ).toContain('not enabled for this step (tools: bash, read)');
    expect(checkToolCall(developer, 'read', { path: 'x' }, ['bash', 'read'])).toEqual({ allowed: true });
  });
});

describe('approval (unattended: refused, never executed)', () => {
  const UNATTENDED = 'requires approval; not available in an unattended run';

  it('mode all refuses every tool call', () => {
    const p = custom({ approval: { mode: 'all' } });
    for (const tool of ['bash', 'read', 'write', 'edit', 'glob', 'grep', 'list', 'run_code']) {
      expect(requiresApproval(p, tool)).toBe(true);
      expect(reasonOf(checkToolCall(p, tool, { command: 'ls', path: 'x', code: '1' }))).toContain(UNATTENDED);
    }
  });

  it('mode dangerous refuses bash, write, edit and run_code and allows the read-only tools', () => {
    const p = custom({ approval: { mode: 'dangerous' } });
    for (const tool of ['bash', 'write', 'edit', 'run_code']) {
      expect(reasonOf(checkToolCall(p, tool, { command: 'ls', path: 'x', code: '1' }))).toContain(UNATTENDED);
    }
    for (const tool of ['read', 'glob', 'grep', 'list'])
      expect(checkToolCall(p, tool, { path: 'x' })).toEqual({ allowed: true });
  });

  it('mode granular refuses exactly the required tools', () => {
    const p = custom({ approval: { mode: 'granular', requiredTools: ['write', 'oracle'] } });
    expect(reasonOf(checkToolCall(p, 'write', { path: 'x', content: '' }))).toContain(UNATTENDED);
    expect(reasonOf(checkToolCall(p, 'write', { path: 'x', content: '' }))).toContain('approval: granular');
    expect(checkToolCall(p, 'bash', { command: 'make' })).toEqual({ allowed: true });
    expect(checkToolCall(p, 'edit', { path: 'x', old_string: 'a', new_string: 'b' })).toEqual({
      allowed: true,
    });
  });

  it('mode none refuses nothing', () => {
    const p = custom({ approval: { mode: 'none', requiredTools: ['bash'], dangerousPatterns: ['rm -rf'] } });
    expect(requiresApproval(p, 'bash')).toBe(false);
    expect(checkToolCall(p, 'bash', { command: 'rm -rf build' })).toEqual({ allowed: true });
  });

  it('dangerous_patterns are case-insensitive substrings of the command or code, refused unless mode is none', () => {
    const p = custom({
      approval: { mode: 'granular', requiredTools: [], dangerousPatterns: ['rm -rf', 'DROP TABLE', ''] },
    });
    expect(matchDangerousPattern(p, 'sudo RM -RF /')).toBe('rm -rf');
    expect(matchDangerousPattern(p, 'echo hi')).toBeUndefined();
    expect(reasonOf(checkToolCall(p, 'bash', { command: 'cd /tmp && rm -rf x' }))).toContain(
      "the command contains the dangerous pattern 'rm -rf', which requires approval; not available in an unattended run",
    );
    expect(
      reasonOf(checkToolCall(p, 'run_code', { language: 'python', code: 'db.execute("drop table t")' })),
    ).toContain("the code contains the dangerous pattern 'DROP TABLE'");
    expect(checkToolCall(p, 'bash', { command: 'ls -la' })).toEqual({ allowed: true });
    // Patterns are about what runs, not about file contents.
    expect(checkToolCall(p, 'write', { path: 'notes.md', content: 'never rm -rf /' })).toEqual({
      allowed: true,
    });
  });

  it('a restricted shell and patterns both apply', () => {
    const p = custom({ shell: 'restricted', approval: { mode: 'granular', dangerousPatterns: ['secret'] } });
    expect(reasonOf(checkToolCall(p, 'bash', { command: 'cat secret.txt' }))).toContain('dangerous pattern');
    expect(reasonOf(checkToolCall(p, 'bash', { command: 'rm x' }))).toContain('restricted shell');
    expect(checkToolCall(p, 'bash', { command: 'cat notes.txt' })).toEqual({ allowed: true });
  });
});

describe('create-only', () => {
  const p = custom({ fileWrite: 'create-only' });

  it('allows creating ordinary files and refuses sensitive paths with the reason', () => {
    expect(checkToolCall(p, 'write', { path: 'out/report.md', content: 'x' })).toEqual({ allowed: true });
    expect(checkToolCall(p, 'write', { path: '/work/src/new.ts', content: 'x' })).toEqual({ allowed: true });
    const d = checkToolCall(p, 'write', { path: '.git/hooks/pre-commit', content: '#!/bin/sh' });
    expect(reasonOf(d)).toContain('not allowed under file_write: create-only');
    expect(reasonOf(d)).toContain('git internals');
    expect(reasonOf(checkToolCall(p, 'write', { path: '/home/u/.bashrc', content: '' }))).toContain(
      'shell start-up file',
    );
    expect(reasonOf(checkToolCall(p, 'write', { content: '' }))).toContain("string 'path'");
  });

  it('does not offer edit (it changes existing files)', () => {
    expect(reasonOf(checkToolCall(p, 'edit', { path: 'a', old_string: 'x', new_string: 'y' }))).toContain(
      'file_write: create-only',
    );
  });

  it('sensitive paths only matter under create-only', () => {
    expect(checkToolCall(custom({ fileWrite: 'full' }), 'write', { path: '.env', content: '' })).toEqual({
      allowed: true,
    });
  });
});

describe('isSensitivePath', () => {
  const SENSITIVE = [
    '.git/config',
    '.git/hooks/post-checkout',
    'repo/.git/HEAD',
    '/work/repo/.git',
    'a/../.GIT/hooks/x',
    './.git/info/attributes',
    '.ssh/authorized_keys',
    '/root/.ssh/id_ed25519',
    'deploy/authorized_keys',
    '.env',
    'app/.env.local',
    '.envrc',
    '/home/me/.bashrc',
    '.zshrc',
    '.profile',
    '~/.config/fish/config.fish',
    '/etc/passwd',
    '/etc/cron.d/job',
    '/usr/local/bin/tool',
    '/var/spool/cron/crontabs/root',
    '.github/workflows/ci.yml',
    '.gitlab-ci.yml',
    '.circleci/config.yml',
    'Jenkinsfile',
    '.gitmodules',
    '.gitattributes',
    '.npmrc',
    '.netrc',
    '.aws/credentials',
    '.kube/config',
    '.docker/config.json',
    '.husky/pre-commit',
    '.pre-commit-config.yaml',
    '.vscode/tasks.json',
    '/work/../etc/shadow',
  ];
  const ORDINARY = [
    'README.md',
    'src/index.ts',
    '/work/out/report.md',
    '/tmp/scratch.txt',
    'environment.md',
    '.envelope',
    'docs/.github-notes.md',
    '.github',
    'git/config',
    'etc/passwd',
    '/work/etc/notes',
    'profile.txt',
    '.gitignore',
  ];

  it.each(SENSITIVE)('%s is sensitive', (p) => {
    expect(isSensitivePath(p)).toBe(true);
    expect(sensitivePathReason(p)).toEqual(expect.any(String));
  });

  it.each(ORDINARY)('%s is not', (p) => {
    expect(isSensitivePath(p)).toBe(false);
  });
});
