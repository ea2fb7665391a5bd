/**
 * The restricted shell's git check: an allowlist of read-only subcommands,
 * global options without `-c` / `--config-env` / `--exec-path` (which can
 * make git run any program: `core.pager`, `alias.x=!cmd`, ...), and per
 * subcommand the options that write files or run programs (`--output`,
 * `--ext-diff`, `--textconv`, `git grep -O`). `branch`, `tag`, `remote`,
 * `stash`, `reflog` and `worktree` are allowed in their listing forms only.
 *
 * rho-agent allows `git` with any arguments in its restricted shell; this
 * is deliberately much stricter.
 */
import { longMatches, refuseOptionGlob } from './command-options.js';
import { ShellRefusal, type Word } from './shell-lexer.js';

function refuse(message: string): never {
  throw new ShellRefusal(message);
}

/** Long options of the diff/log family that write a file or run a program. */
const DIFF_DENIED: Readonly<Record<string, string>> = {
  output: 'writes to a file',
  'ext-diff': 'runs an external diff program',
  textconv: 'runs textconv filter programs',
  filters: 'runs filter programs',
  help: 'opens the manual in a pager or browser (use -h for a short usage text)',
};

/** Real options that happen to be abbreviations of a denied one (an exact name wins over an abbreviation). */
const EXACT_OK = new Set(['text', 'filter']);

/** Subcommands that change the repository, the working tree or the network state (for a clearer message). */
const WRITING_SUBCOMMANDS = new Set([
  ...[
    'add',
    'am',
    'apply',
    'archive',
    'bisect',
    'bundle',
    'checkout',
    'cherry-pick',
    'clean',
    'clone',
    'commit',
  ],
  ...[
    'config',
    'fetch',
    'format-patch',
    'gc',
    'init',
    'merge',
    'mv',
    'notes',
    'prune',
    'pull',
    'push',
    'rebase',
  ],
  ...['repack', 'replace', 'reset', 'restore', 'revert', 'rm', 'sparse-checkout', 'submodule', 'switch'],
  ...['update-index', 'update-ref', 'symbolic-ref', 'filter-branch', 'maintenance', 'lfs', 'p4', 'svn'],
]);

type SubcommandCheck = (args: readonly Word[], sub: string) => void;

/** Options of a diff/log-like subcommand: refuse `DIFF_DENIED` (abbreviations too) before `--`. */
const diffLike: SubcommandCheck = (args, sub) => {
  for (const w of args) {
    if (w.text === '--') break;
    refuseOptionGlob(`git ${sub}`, w);
    if (!w.text.startsWith('--')) continue;
    const name = w.text.slice(2).split('=')[0] ?? '';
    if (EXACT_OK.has(name)) continue;
    for (const [denied, why] of Object.entries(DIFF_DENIED)) {
      if (longMatches(name, denied)) refuse(`git ${sub} --${denied} is not allowed: it ${why}`);
    }
  }
};

/** `git grep`: also `-O` / `--open-files-in-pager`, which runs a program on the matches. */
const grepCheck: SubcommandCheck = (args, sub) => {
  diffLike(args, sub);
  for (let i = 0; i < args.length; i++) {
    const t = args[i]?.text ?? '';
    if (t === '--') break;
    if (t.startsWith('--')) {
      const name = t.slice(2).split('=')[0] ?? '';
      if (longMatches(name, 'open-files-in-pager'))
        refuse('git grep --open-files-in-pager is not allowed: it runs a program');
      continue;
    }
    if (!t.startsWith('-')) continue;
    for (let j = 1; j < t.length; j++) {
      const letter = t.charAt(j);
      if (letter === 'O') refuse('git grep -O is not allowed: it runs a program on the matching files');
      if ('efABCm'.includes(letter)) {
        if (j === t.length - 1) i++; // the value is the next word
        break;
      }
    }
  }
};

/**
 * Listing-only forms of `branch` and `tag`: only the options in `shortAllowed` /
 * `longAllowed`; name operands only when a list-mode option is present (else they create).
 */
function listOnly(
  shortAllowed: string,
  longAllowed: readonly string[],
  longWithArg: readonly string[],
  listModes: readonly string[],
): SubcommandCheck {
  return (args, sub) => {
    let listMode = false;
    const names: Word[] = [];
    for (let i = 0; i < args.length; i++) {
      const w = args[i];
      if (w === undefined) break;
      const t = w.text;
      refuseOptionGlob(`git ${sub}`, w);
      if (t === '--') {
        names.push(...args.slice(i + 1));
        break;
      }
      if (t.startsWith('--')) {
        const eq = t.indexOf('=');
        const name = eq < 0 ? t.slice(2) : t.slice(2, eq);
        if (!longAllowed.includes(name))
          refuse(`git ${sub} --${name} is not allowed: only listing is (git ${sub} --list)`);
        if (listModes.includes(`--${name}`)) listMode = true;
        if (eq < 0 && longWithArg.includes(name)) i++;
        continue;
      }
      if (t.startsWith('-') && t !== '-') {
        for (const letter of t.slice(1)) {
          if (!shortAllowed.includes(letter) && !/[0-9]/.test(letter)) {
            refuse(`git ${sub} -${letter} is not allowed: only listing is (git ${sub} --list)`);
          }
          if (listModes.includes(`-${letter}`)) listMode = true;
        }
        continue;
      }
      names.push(w);
    }
    if (names.length > 0 && !listMode) {
      refuse(
        `git ${sub} ${names[0]?.text ?? ''} would create or change a ${sub}; only listing is allowed (git ${sub} --list 'pattern')`,
      );
    }
  };
}

const LIST_MODES = ['-l', '--list', '--contains', '--no-contains', '--merged', '--no-merged', '--points-at'];

const branchCheck = listOnly(
  'arlvi',
  [
    ...[
      'all',
      'remotes',
      'list',
      'verbose',
      'show-current',
      'contains',
      'no-contains',
      'merged',
      'no-merged',
    ],
    ...['points-at', 'format', 'sort', 'color', 'no-color', 'column', 'no-column', 'ignore-case', 'abbrev'],
    ...['no-abbrev', 'omit-empty'],
  ],
  ['format', 'sort', 'points-at'],
  LIST_MODES,
);

const tagCheck = listOnly(
  'lni',
  [
    ...['list', 'contains', 'no-contains', 'merged', 'no-merged', 'points-at', 'sort', 'format', 'column'],
    ...['no-column', 'ignore-case', 'color', 'omit-empty'],
  ],
  ['format', 'sort', 'points-at'],
  LIST_MODES,
);

const remoteCheck: SubcommandCheck = (args) => {
  const words = args.map((w) => w.text);
  const first = words[0];
  if (first === undefined || (words.length === 1 && (first === '-v' || first === '--verbose'))) return;
  if (
    first === 'get-url' &&
    words.slice(1).every((t) => !t.startsWith('-') || t === '--push' || t === '--all')
  )
    return;
  refuse('git remote is allowed only as git remote, git remote -v or git remote get-url <name>');
};

const stashCheck: SubcommandCheck = (args, sub) => {
  const action = args[0]?.text;
  if (action === 'list' || action === 'show') return diffLike(args.slice(1), `${sub} ${action}`);
  refuse('git stash changes the working tree; only git stash list and git stash show are allowed');
};

const reflogCheck: SubcommandCheck = (args, sub) => {
  const action = args[0]?.text;
  if (action === 'expire' || action === 'delete' || action === 'drop') {
    refuse(`git reflog ${action} changes the repository; only git reflog [show] is allowed`);
  }
  diffLike(args, sub);
};

const worktreeCheck: SubcommandCheck = (args) => {
  if (args[0]?.text !== 'list') refuse('git worktree is allowed only as git worktree list');
};

/** Read-only subcommands and their argument checks. */
const SUBCOMMANDS: Readonly<Record<string, SubcommandCheck>> = {
  log: diffLike,
  show: diffLike,
  diff: diffLike,
  'diff-tree': diffLike,
  'diff-index': diffLike,
  'diff-files': diffLike,
  'range-diff': diffLike,
  whatchanged: diffLike,
  shortlog: diffLike,
  blame: diffLike,
  annotate: diffLike,
  status: diffLike,
  'rev-parse': diffLike,
  'rev-list': diffLike,
  'ls-files': diffLike,
  'ls-tree': diffLike,
  'cat-file': diffLike,
  describe: diffLike,
  'name-rev': diffLike,
  'merge-base': diffLike,
  'for-each-ref': diffLike,
  'show-ref': diffLike,
  'show-branch': diffLike,
  'count-objects': diffLike,
  cherry: diffLike,
  'check-ignore': diffLike,
  'check-attr': diffLike,
  version: diffLike,
  grep: grepCheck,
  branch: branchCheck,
  tag: tagCheck,
  remote: remoteCheck,
  stash: stashCheck,
  reflog: reflogCheck,
  worktree: worktreeCheck,
};

/** Global options (before the subcommand) that are harmless; `-C`, `--git-dir`, … take a value. */
const GLOBAL_FLAGS = new Set([
  '--no-pager',
  '--no-replace-objects',
  '--literal-pathspecs',
  '--glob-pathspecs',
  '--noglob-pathspecs',
  '--icase-pathspecs',
  '--no-optional-locks',
  '--bare',
  '--version',
]);
const GLOBAL_WITH_VALUE = new Set(['-C', '--git-dir', '--work-tree', '--namespace']);

const GLOBAL_DENIED: Readonly<Record<string, string>> = {
  '-c': 'sets configuration, which can make git run programs (core.pager, alias.*=!cmd, diff.external)',
  '--config-env': 'sets configuration, which can make git run programs',
  '--exec-path': 'changes where git finds (and runs) its programs',
  '-p': 'starts a pager program',
  '--paginate': 'starts a pager program',
};

/** Checks `git <args>`; throws `ShellRefusal` for anything outside the read-only subset. */
export function checkGit(args: readonly Word[]): void {
  let i = 0;
  for (; i < args.length; i++) {
    const w = args[i];
    if (w === undefined) break;
    const t = w.text;
    if (!t.startsWith('-')) break;
    refuseOptionGlob('git', w);
    const name = t.split('=')[0] ?? t;
    const denied =
      GLOBAL_DENIED[name] ??
      (name.startsWith('-c') && !name.startsWith('--') ? GLOBAL_DENIED['-c'] : undefined);
    if (denied !== undefined) refuse(`git ${name} is not allowed: it ${denied}`);
    if (GLOBAL_FLAGS.has(t)) continue;
    if (GLOBAL_WITH_VALUE.has(name)) {
      if (!t.includes('=')) {
        i++;
        if (args[i]?.glob === true) refuse(`git ${name}: a glob as the value is not allowed; quote it`);
      }
      continue;
    }
    refuse(`git global option ${name} is not allowed in the restricted shell`);
  }
  const subWord = args[i];
  if (subWord === undefined) {
    if (args.some((w) => w.text === '--version')) return;
    refuse('git needs a subcommand (for example git log, git diff, git show, git status)');
  }
  if (subWord.glob) refuse('git: the subcommand must not contain glob characters');
  const sub = subWord.text;
  const check = SUBCOMMANDS[sub];
  if (check === undefined) {
    if (WRITING_SUBCOMMANDS.has(sub)) {
      refuse(
        `git ${sub} is not allowed: it changes the repository, the working tree or remote state (read-only shell)`,
      );
    }
    refuse(
      `git ${sub} is not on the restricted shell's list of read-only git subcommands ` +
        '(log, show, diff, status, blame, grep, ls-files, rev-parse, branch/tag --list, …)',
    );
  }
  check(args.slice(i + 1), sub);
}
