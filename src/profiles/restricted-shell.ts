/**
 * The restricted shell (product.md §3, profile `shell: restricted`): a
 * command line may run only when it parses into simple commands
 * (`shell-lexer.ts`) whose every command is on the allowlist below and
 * passes that command's argument check, with no redirection other than
 * input from a file or output to /dev/null.
 *
 * The allowlist is data: `ALLOWED_COMMANDS` maps a command name to the check
 * of its arguments (`undefined` = no option of that tool writes files or
 * runs programs, so any arguments are fine). Compared with rho-agent's
 * restricted shell (rho_agent/tools/handlers/bash.py `is_command_allowed`:
 * the first word of the line must be allowlisted, and the line may not
 * contain `>` or a standalone word such as rm, mv, chmod, sudo), this one
 * parses the whole line and is stricter:
 *
 * - every command of a pipeline or list is checked, not just the first, and
 *   `$(...)`, backticks and variable expansion are refused (rho-agent runs
 *   `cat x | sh` and `grep a $(cmd)`);
 * - of rho-agent's allowlist we drop `env` (runs commands), `less`, `more`,
 *   `zless`, `top` (interactive, shell escapes), `curl`, `wget`, `ping`,
 *   `dig`, `nslookup`, `host`, `netstat`, `ss` (network), `ag`, `ack`
 *   (`--pager`), `unzip`, `yq`, `xmllint`, `zgrep`, `zipinfo`, `locate`,
 *   `whereis`, `md5`, `shasum` (write options or not worth modelling);
 * - `git`, `sed`, `awk`, `find`, `tar`, `sort`, `uniq`, `xxd`, `tree`,
 *   `gzip`/`gunzip`, `date`, `hostname`, `file` and `rg` have their
 *   write-capable / program-running options refused; rho-agent lets
 *   `sed -i`, `find -delete`, `git push`, `tar xf`, `awk 'BEGIN{system(..)}'`
 *   and `sort -o` through.
 *
 * Deliberate choices: `cd` is allowed (it only changes the directory of the
 * one shell that runs the command); output redirection is allowed to
 * `/dev/null` only (`2>/dev/null`, `&>/dev/null`), fd duplication (`2>&1`)
 * and input from files (`< f`, `<<< word`) are allowed; heredocs are not.
 * Backstop: on the `local` backend a profile with `file_write: off` also runs
 * commands with the workspace mounted read-only, so a miss here still cannot
 * write the workspace.
 */
import { checkGit } from './git-check.js';
import {
  checkAwk,
  checkDate,
  checkFile,
  checkFind,
  checkHostname,
  checkRg,
  checkSed,
  checkSort,
  checkTar,
  checkTree,
  checkUniq,
  checkXxd,
  compressorCheck,
  type ArgsCheck,
} from './command-checks.js';
import { unreachable } from '../util/unreachable.js';
import { parseCommandLine, ShellRefusal, type Redirect, type SimpleCommand } from './shell-lexer.js';

/** A decision of the permission policy. `reason` is a sentence addressed to the model. */
export type Decision = { allowed: true } | { allowed: false; reason: string };

/**
 * Allowlisted commands → argument check (`undefined`: no option of the tool
 * writes files or runs programs). Frozen; exported for audits and docs.
 */
export const ALLOWED_COMMANDS: Readonly<Record<string, ArgsCheck | undefined>> = Object.freeze({
  // Reading files
  cat: undefined,
  tac: undefined,
  nl: undefined,
  head: undefined,
  tail: undefined,
  wc: undefined,
  od: undefined,
  hexdump: undefined,
  strings: undefined,
  xxd: checkXxd,
  base64: undefined,
  zcat: undefined,
  bzcat: undefined,
  xzcat: undefined,
  gzip: compressorCheck('S', ['suffix']),
  gunzip: compressorCheck('S', ['suffix']),
  bzip2: compressorCheck('', []),
  bunzip2: compressorCheck('', []),
  xz: compressorCheck('CFMST', ['check', 'format', 'memlimit', 'suffix', 'threads']),
  unxz: compressorCheck('CFMST', ['check', 'format', 'memlimit', 'suffix', 'threads']),
  tar: checkTar,
  // Searching and listing
  grep: undefined,
  egrep: undefined,
  fgrep: undefined,
  rg: checkRg,
  find: checkFind,
  ls: undefined,
  tree: checkTree,
  du: undefined,
  df: undefined,
  stat: undefined,
  file: checkFile,
  which: undefined,
  type: undefined,
  realpath: undefined,
  readlink: undefined,
  basename: undefined,
  dirname: undefined,
  pwd: undefined,
  cd: undefined,
  // Text processing to stdout
  sed: checkSed,
  awk: checkAwk,
  gawk: checkAwk,
  mawk: checkAwk,
  nawk: checkAwk,
  cut: undefined,
  tr: undefined,
  sort: checkSort,
  uniq: checkUniq,
  comm: undefined,
  join: undefined,
  paste: undefined,
  fold: undefined,
  fmt: undefined,
  column: undefined,
  expand: undefined,
  unexpand: undefined,
  pr: undefined,
  rev: undefined,
  seq: undefined,
  jq: undefined,
  diff: undefined,
  cmp: undefined,
  md5sum: undefined,
  sha1sum: undefined,
  sha224sum: undefined,
  sha256sum: undefined,
  sha384sum: undefined,
  sha512sum: undefined,
  b2sum: undefined,
  cksum: undefined,
  echo: undefined,
  printf: undefined,
  true: undefined,
  false: undefined,
  test: undefined,
  // Version control
  git: (args) => checkGit(args),
  // System information
  date: checkDate,
  uname: undefined,
  id: undefined,
  whoami: undefined,
  groups: undefined,
  hostname: checkHostname,
  nproc: undefined,
  free: undefined,
  uptime: undefined,
  ps: undefined,
  printenv: undefined,
});

/** Commands that run other commands: nothing after them could be checked. */
const WRAPPERS = new Set([
  ...[
    'env',
    'xargs',
    'timeout',
    'nice',
    'nohup',
    'stdbuf',
    'sudo',
    'su',
    'doas',
    'watch',
    'parallel',
    'flock',
  ],
  ...['setsid', 'chroot', 'busybox', 'command', 'builtin', 'exec', 'eval', 'source', '.', 'time', 'ionice'],
  ...['taskset', 'unshare', 'nsenter', 'runuser', 'chrt', 'script', 'strace', 'ltrace', 'gdb', 'fakeroot'],
  ...[
    'proot',
    'firejail',
    'bwrap',
    'systemd-run',
    'sg',
    'newgrp',
    'entr',
    'trap',
    'coproc',
    'expect',
    'make',
  ],
]);

/** Interpreters and shells: they run arbitrary code. */
const INTERPRETERS = new Set([
  ...[
    'sh',
    'bash',
    'dash',
    'zsh',
    'ksh',
    'mksh',
    'csh',
    'tcsh',
    'fish',
    'ash',
    'python',
    'python2',
    'python3',
  ],
  ...[
    'perl',
    'ruby',
    'node',
    'nodejs',
    'deno',
    'bun',
    'php',
    'lua',
    'luajit',
    'tclsh',
    'wish',
    'Rscript',
    'R',
  ],
  ...[
    'pwsh',
    'java',
    'jshell',
    'groovy',
    'scala',
    'julia',
    'irb',
    'ipython',
    'osascript',
    'npx',
    'npm',
    'pip',
  ],
]);

/** Pagers and editors: interactive, and they have shell escapes. */
const PAGERS_EDITORS = new Set([
  'less',
  'more',
  'most',
  'pg',
  'vi',
  'vim',
  'nvim',
  'view',
  'nano',
  'emacs',
  'ed',
  'ex',
  'pico',
  'man',
]);

/** Commands that change files or the system (for a clearer message than "not allowlisted"). */
const MODIFYING = new Set([
  ...['rm', 'rmdir', 'mv', 'cp', 'ln', 'tee', 'touch', 'mkdir', 'chmod', 'chown', 'chgrp', 'dd', 'truncate'],
  ...['shred', 'install', 'patch', 'split', 'csplit', 'shuf', 'sponge', 'mkfifo', 'mknod', 'mkfs', 'mount'],
  ...['umount', 'kill', 'pkill', 'killall', 'reboot', 'shutdown', 'systemctl', 'service', 'apt', 'apt-get'],
  ...['dpkg', 'yum', 'dnf', 'apk', 'brew', 'cargo', 'yarn', 'pnpm', 'curl', 'wget', 'scp', 'rsync', 'ssh'],
  ...['unzip', 'zip', 'crontab', 'useradd', 'passwd', 'sdiff', 'export', 'unset', 'set', 'alias', 'read'],
]);

const RESERVED_WORDS = new Set([
  ...['if', 'then', 'else', 'elif', 'fi', 'case', 'esac', 'for', 'select', 'while', 'until', 'do', 'done'],
  ...['function', 'in', '!', '[[', ']]', '{', '}', 'time', 'coproc'],
]);

const ALLOWED_HINT =
  'allowed read-only commands include cat, head, tail, ls, find, grep, rg, wc, sort, uniq, cut, jq, sed, awk, ' +
  'diff, tree, stat, file, tar -t, and git log/diff/show/status/blame/grep';

/**
 * Decides whether `command` may run under a restricted shell. Pure; never
 * throws. A refusal's `reason` says what was refused and why, as a sentence
 * the model can act on.
 */
export function checkRestrictedCommand(command: string): Decision {
  try {
    const line = parseCommandLine(command);
    for (const cmd of line.commands) checkSimpleCommand(cmd);
    return { allowed: true };
  } catch (e) {
    if (e instanceof ShellRefusal) return { allowed: false, reason: e.message };
    // A bug in a checker must never turn into "allowed".
    return { allowed: false, reason: `the restricted shell could not check this command (${String(e)})` };
  }
}

function checkSimpleCommand(cmd: SimpleCommand): void {
  for (const r of cmd.redirects) checkRedirect(r);
  const [nameWord, ...args] = cmd.words;
  if (nameWord === undefined) throw new ShellRefusal('a redirection without a command is not allowed');
  const name = nameWord.text;
  if (!nameWord.quoted && RESERVED_WORDS.has(name)) {
    throw new ShellRefusal(
      `the shell keyword '${name}' is not allowed; run simple commands joined by |, &&, || or ;`,
    );
  }
  if (!nameWord.quoted && /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/.test(nameWord.raw)) {
    throw new ShellRefusal(`variable assignments (${nameWord.raw}) are not allowed in the restricted shell`);
  }
  if (nameWord.glob)
    throw new ShellRefusal(`glob characters in a command name (${nameWord.raw}) are not allowed`);
  if (name.includes('/')) {
    throw new ShellRefusal(
      `running a command by path (${name}) is not allowed; use the bare name of an allowed command`,
    );
  }
  if (!Object.prototype.hasOwnProperty.call(ALLOWED_COMMANDS, name))
    throw new ShellRefusal(notAllowedReason(name));
  const check = ALLOWED_COMMANDS[name];
  check?.(args, name);
}

function notAllowedReason(name: string): string {
  const shown = name === '' ? "''" : `'${name}'`;
  if (WRAPPERS.has(name)) {
    return `${shown} runs other commands, which the restricted shell cannot check; run the inner command directly if it is allowed`;
  }
  if (INTERPRETERS.has(name) || /^(python|perl|ruby|node|php)[0-9.]*$/.test(name)) {
    return `${shown} is an interpreter that can run any code; it is not allowed in the restricted shell (${ALLOWED_HINT})`;
  }
  if (PAGERS_EDITORS.has(name)) {
    return `${shown} is interactive and can start other programs; use cat, head or tail to read files`;
  }
  if (MODIFYING.has(name)) {
    return `${shown} can change files or the system; this profile's restricted shell allows read-only commands only (${ALLOWED_HINT})`;
  }
  return `${shown} is not on the restricted shell's allowlist of read-only commands (${ALLOWED_HINT})`;
}

function checkRedirect(r: Redirect): void {
  const target = r.target.text;
  if (r.target.glob) throw new ShellRefusal(`a glob as a redirection target (${r.raw}) is not allowed`);
  switch (r.op) {
    case '<':
      // bash itself opens /dev/tcp/host/port and /dev/udp/... as network connections.
      if (/^\/dev\/(tcp|udp)\//.test(target)) {
        throw new ShellRefusal(`redirection from ${target} opens a network connection; not allowed`);
      }
      return; // input from a file is fine
    case '<<<':
      return; // a literal word as input
    case '>&':
    case '<&':
      // fd duplication / closing (2>&1, >&2, 3<&-); `>&file` is an output redirection to a file.
      if (/^([0-9]+|-)$/.test(target) || (r.op === '>&' && target === '/dev/null')) return;
      throw new ShellRefusal(
        `output redirection to a file (${r.raw}) is not allowed in the restricted shell`,
      );
    case '>':
    case '>>':
    case '>|':
    case '&>':
    case '&>>':
      if (target === '/dev/null') return;
      throw new ShellRefusal(
        `output redirection to a file (${r.raw}) is not allowed in the restricted shell (only to /dev/null); ` +
          'print the output instead',
      );
    case '<>':
      throw new ShellRefusal(`opening a file for writing (${r.raw}) is not allowed in the restricted shell`);
    default:
      throw new Error(`Unknown redirection: ${unreachable(r.op)}`);
  }
}
