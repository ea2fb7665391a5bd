/**
 * Paths a `file_write: create-only` profile may not create (product.md §3):
 * files whose mere existence changes what other programs do or leaks into
 * credentials: git internals and hooks, SSH / cloud credentials, `.env`
 * files, shell start-up files, CI configuration, system directories.
 *
 * Pure string rules on the path as given (absolute, or relative to the
 * working directory): `.` and `..` segments are resolved first and names are
 * compared case-insensitively, so `a/../.GIT/hooks/x` is caught. The system
 * directory rules only apply to absolute paths.
 */

/** Directories (any path segment) under which nothing may be created. */
const SENSITIVE_DIRS: Readonly<Record<string, string>> = {
  '.git': 'git internals (hooks and config can run code)',
  '.hg': 'Mercurial internals (hooks can run code)',
  '.svn': 'Subversion internals',
  '.husky': 'git hooks',
  '.githooks': 'git hooks',
  '.ssh': 'SSH keys and configuration',
  '.gnupg': 'GnuPG keys',
  '.aws': 'cloud credentials',
  '.azure': 'cloud credentials',
  '.kube': 'Kubernetes credentials',
  '.docker': 'Docker credentials',
  '.circleci': 'CI configuration',
  '.buildkite': 'CI configuration',
  '.teamcity': 'CI configuration',
  '.woodpecker': 'CI configuration',
  '.vscode': 'editor configuration (tasks can run automatically)',
};

/** File names (last segment) that may not be created anywhere. */
const SENSITIVE_FILES: Readonly<Record<string, string>> = {
  '.env': 'an environment file (secrets)',
  '.envrc': 'a direnv file (runs code on cd)',
  '.netrc': 'credentials',
  '.git-credentials': 'credentials',
  '.gitconfig': 'git configuration (can run programs)',
  '.gitmodules': 'git submodule configuration',
  '.gitattributes': 'git attributes (can enable filter programs)',
  '.npmrc': 'package manager credentials',
  '.yarnrc': 'package manager configuration',
  '.yarnrc.yml': 'package manager configuration',
  '.pypirc': 'package index credentials',
  '.pgpass': 'database credentials',
  '.my.cnf': 'database credentials',
  '.boto': 'cloud credentials',
  '.s3cfg': 'cloud credentials',
  authorized_keys: 'SSH authorized keys',
  '.bashrc': 'a shell start-up file',
  '.bash_profile': 'a shell start-up file',
  '.bash_login': 'a shell start-up file',
  '.bash_logout': 'a shell start-up file',
  '.profile': 'a shell start-up file',
  '.zshrc': 'a shell start-up file',
  '.zshenv': 'a shell start-up file',
  '.zprofile': 'a shell start-up file',
  '.zlogin': 'a shell start-up file',
  '.zlogout': 'a shell start-up file',
  '.cshrc': 'a shell start-up file',
  '.tcshrc': 'a shell start-up file',
  '.kshrc': 'a shell start-up file',
  '.mkshrc': 'a shell start-up file',
  '.login': 'a shell start-up file',
  '.logout': 'a shell start-up file',
  '.inputrc': 'a shell start-up file',
  'config.fish': 'a shell start-up file',
  '.gitlab-ci.yml': 'CI configuration',
  '.travis.yml': 'CI configuration',
  jenkinsfile: 'CI configuration',
  'azure-pipelines.yml': 'CI configuration',
  'bitbucket-pipelines.yml': 'CI configuration',
  '.drone.yml': 'CI configuration',
  '.woodpecker.yml': 'CI configuration',
  'appveyor.yml': 'CI configuration',
  '.appveyor.yml': 'CI configuration',
  '.pre-commit-config.yaml': 'git hook configuration (runs code on commit)',
};

/** Top-level directories of an absolute path that are system territory. */
const SYSTEM_DIRS = new Set([
  'etc',
  'usr',
  'bin',
  'sbin',
  'lib',
  'lib32',
  'lib64',
  'libx32',
  'boot',
  'dev',
  'proc',
  'sys',
]);

/**
 * Why `path` (a sandbox path) is sensitive, or `undefined` when it is not.
 * The reason names the category, e.g. "git internals (hooks and config can run code)".
 */
export function sensitivePathReason(path: string): string | undefined {
  if (path.includes('\0')) return 'a path with a NUL byte';
  const absolute = path.startsWith('/');
  const segments: string[] = [];
  for (const raw of path.split('/')) {
    if (raw === '' || raw === '.') continue;
    if (raw === '..') {
      if (segments.length > 0 && segments[segments.length - 1] !== '..') segments.pop();
      else if (!absolute) segments.push('..');
      continue;
    }
    segments.push(raw.toLowerCase());
  }
  const first = segments[0];
  if (absolute && first !== undefined && SYSTEM_DIRS.has(first)) return `a system directory (/${first})`;
  if (absolute && first === 'var' && segments[1] === 'spool') return 'a system directory (/var/spool)';
  for (const [i, seg] of segments.entries()) {
    const dir = SENSITIVE_DIRS[seg];
    if (dir !== undefined) return dir;
    if (seg === '.github' && i < segments.length - 1) return 'CI configuration (.github)';
    if (seg === '.gitlab' && i < segments.length - 1) return 'CI configuration (.gitlab)';
    if (
      seg === '.config' &&
      (segments[i + 1] === 'gcloud' || segments[i + 1] === 'gh' || segments[i + 1] === 'git')
    ) {
      return 'credentials or configuration under .config';
    }
  }
  const last = segments[segments.length - 1];
  if (last === undefined) return undefined;
  const file = SENSITIVE_FILES[last];
  if (file !== undefined) return file;
  if (last.startsWith('.env.')) return 'an environment file (secrets)';
  return undefined;
}

/** True when `path` (a sandbox path) is sensitive: `create-only` profiles may not create it. */
export function isSensitivePath(path: string): boolean {
  return sensitivePathReason(path) !== undefined;
}
