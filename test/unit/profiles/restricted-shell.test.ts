import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOWED_COMMANDS, checkRestrictedCommand } from '../../../src/profiles/restricted-shell.js';
import { parseCommandLine, ShellRefusal } from '../../../src/profiles/shell-lexer.js';

/** [command, substring of the refusal reason] */
const REFUSED: ReadonlyArray<readonly [string, string]> = [
  // output redirection
  ['echo x > f', 'output redirection'],
  ['cat a >> b', 'output redirection'],
  ['>f', 'output redirection'],
  ['ls 2>f', 'output redirection'],
  ['ls &>f', 'output redirection'],
  ['ls &>>f', 'output redirection'],
  ['ls >|f', 'output redirection'],
  ['ls >&f', 'output redirection'],
  ['ls 1> /tmp/x', 'output redirection'],
  ['ls > "/dev/null"x', 'output redirection'],
  ['echo a >/dev/null >f', 'output redirection'],
  ['cat <>f', 'for writing'],
  ['< f', 'redirection without a command'],
  ['ls > *.txt', 'glob as a redirection target'],
  // commands that write
  ['ls | tee f', "'tee' can change files"],
  ['ls ;rm -rf /', "'rm' can change files"],
  [';rm -rf /', 'syntax error'],
  ['ls && rm x', "'rm'"],
  ['ls || rm x', "'rm'"],
  ['true && rm x', "'rm'"],
  ['curl -o f http://x', "'curl'"],
  ['wget http://x', "'wget'"],
  ['cp a b', "'cp'"],
  // command substitution and expansions
  ['$(rm x)', 'command substitution $(...)'],
  ['echo "$(rm x)"', 'command substitution $(...)'],
  ['echo `rm x`', 'backticks'],
  ['echo "`rm x`"', 'backticks'],
  ['echo $((1+1))', 'arithmetic expansion'],
  ['echo ${x:-rm}', 'parameter expansion'],
  ['$SHELL -c x', 'variable expansion'],
  ['cat${IFS}/etc/passwd', 'parameter expansion'],
  ['X=rm; $X file', 'variable expansion'],
  ['X=rm; ls', 'variable assignments'],
  ['ls | LC_ALL=C sort', 'variable assignments'],
  ['a=b cat x', 'variable assignments'],
  ['echo "$HOME"', 'variable expansion ($HOME)'],
  ['echo "exit: $?"', 'variable expansion ($?)'],
  ["ls $'\\x3b' rm", 'ANSI-C quoting'],
  ['ls $"x"', 'locale quoting'],
  ['ls $%', "'$' followed by"],
  // pipes into and wrappers around other commands
  ['cat x | sh', 'interpreter'],
  ['cat x | bash', 'interpreter'],
  ['ls |& sh', 'interpreter'],
  ['grep x f | xargs rm', 'runs other commands'],
  ['env rm x', 'runs other commands'],
  ['timeout 1 rm x', 'runs other commands'],
  ['nice rm x', 'runs other commands'],
  ['nohup rm x', 'runs other commands'],
  ['command rm x', 'runs other commands'],
  ['exec rm x', 'runs other commands'],
  ["eval 'rm x'", 'runs other commands'],
  ['source x.sh', 'runs other commands'],
  ['. x.sh', 'runs other commands'],
  ["sh -c 'rm x'", 'interpreter'],
  ["bash -c 'rm x'", 'interpreter'],
  ["python3 -c 'print(1)'", 'interpreter'],
  ["python3.12 -c 'print(1)'", 'interpreter'],
  ["perl -e 'unlink q(x)'", 'interpreter'],
  ["node -e ''", 'interpreter'],
  ['less f', 'interactive'],
  ['vi f', 'interactive'],
  // quoting tricks
  ["'r''m' x", "'rm'"],
  ['"rm" x', "'rm'"],
  ['r\\m x', "'rm'"],
  ['\\rm x', "'rm'"],
  ['ls; "rm" x', "'rm'"],
  // find
  ['find . -delete', 'find -delete'],
  ['find . -name x -exec rm {} \\;', 'find -exec'],
  ['find . -execdir rm {} +', 'find -execdir'],
  ['find . -ok rm {} \\;', 'find -ok'],
  ['find . -fprint out', 'find -fprint'],
  ['find . -fls out', 'find -fls'],
  ['find * -name x', 'could expand to a file name that find reads as an option'],
  // git
  ["git -c core.pager='rm x' log", 'git -c'],
  ["git -c alias.x='!rm' x", 'git -c'],
  ['git --config-env=core.pager=X log', 'git --config-env'],
  ['git --exec-path=. log', 'git --exec-path'],
  ['git -p log', 'pager'],
  ['git config user.name x', 'git config is not allowed'],
  ['git config --get user.name', 'git config is not allowed'],
  ['git checkout .', 'git checkout is not allowed'],
  ['git push', 'git push is not allowed'],
  ['git clean -fdx', 'git clean is not allowed'],
  ['git commit -am x', 'git commit is not allowed'],
  ['git stash', 'git stash'],
  ['git stash drop', 'git stash'],
  ['git log --output=f', 'git log --output'],
  ['git diff --out=f', 'git diff --output'],
  ['git show --ext-diff HEAD', 'git show --ext-diff'],
  ['git log -p --textconv', 'git log --textconv'],
  ['git cat-file --filters HEAD:x', '--filters'],
  ['git grep -O foo', 'git grep -O'],
  ['git grep -nOvim foo', 'git grep -O'],
  ['git grep --open-files-in-pager=vim foo', 'open-files-in-pager'],
  ['git branch -D main', 'git branch -D'],
  ['git branch -m a b', 'git branch -m'],
  ['git branch newbranch', 'would create'],
  ['git branch --set-upstream-to=x', 'git branch --set-upstream-to'],
  ['git tag v1', 'would create'],
  ['git tag -d v1', 'git tag -d'],
  ['git remote add x y', 'git remote is allowed only'],
  ['git reflog expire --all', 'git reflog expire'],
  ['git worktree add x', 'git worktree is allowed only'],
  ['git help log', 'not on the restricted shell'],
  ['git log --help', 'opens the manual'],
  ['git --help', 'global option --help'],
  ['git', 'needs a subcommand'],
  // sed
  ["sed -i 's/a/b/' f", 'edits files in place'],
  ["sed -ni 's/a/b/p' f", 'edits files in place'],
  ["sed --in-place 's/a/b/' f", 'edits files in place'],
  ["sed --in 's/a/b/' f", 'edits files in place'],
  ["sed 's/a/b/' f -i", 'edits files in place'],
  ['sed -f script.sed f', 'reads the script from a file'],
  ["sed 'w /tmp/x' f", "'w' command writes"],
  ["sed '1!W out' f", "'W' command writes"],
  ["sed -e '1e id' f", "'e' command runs"],
  ["sed 's/a/b/w out' f", "'w' flag"],
  ["sed 's/a/b/ g w out' f", "'w' flag"],
  ["sed 's/a/id/e' f", "'e' flag"],
  ["sed 's/[/]/x/w out' f", "'w' flag"],
  ["sed 's|[[:alpha:]|]|x|w out' f", "'w' flag"],
  ["sed -n '/x/{p;w out\n}' f", "'w' command"],
  ["sed -e 's/a/b/' -e 'w out' f", "'w' command"],
  ["sed ':a;b a;w out' f", "'w' command"],
  ["sed '1r /etc/passwd\nw out' f", "'w' command"],
  ["sed 'y/abc/xyz/;w out' f", "'w' command"],
  ["sed 's/a/b' f", 'unterminated'],
  ["sed 'k' f", "unknown command 'k'"],
  ["sed 's/a/b/x' f", "unknown flag 'x'"],
  ['sed -n p *', 'could expand'],
  ["sed -n p ''*", 'could expand'],
  ['sed -n p ""?x', 'could expand'],
  ["sed -n p '-'*", 'could expand'],
  // awk
  ['awk \'BEGIN{system("id")}\'', 'system() runs a shell command'],
  ['awk \'{print > "f"}\' x', 'redirects output to a file'],
  ['awk \'{print >> "f"}\' x', 'redirects output to a file'],
  ['awk \'{printf "%s", $0 > "f"}\' x', 'redirects output to a file'],
  ['awk \'{printf("%s", $0) > "f"}\' x', 'redirects output to a file'],
  ['awk \'{print $1,\n$2 > "f"}\' x', 'redirects output to a file'],
  ['awk \'{print | "sh"}\' x', 'pipes to or from a shell command'],
  ['awk \'BEGIN{"id" | getline x; print x}\'', 'pipes to or from a shell command'],
  ['awk \'BEGIN{print |& "cat"}\'', 'pipes to or from a shell command'],
  ['awk \'/"/;system("id");/"/\' f', 'system()'],
  ['awk \'1\n/"/;system("id");/"/\' f', 'system()'],
  ['awk \'{close("x")}\' f', 'close()'],
  ['awk \'@include "x"\'', "'@' directives"],
  ['awk \'BEGIN{getline < "/inet/tcp/0/h/80"}\'', '/inet'],
  ["awk '{print /a/}' f", 'ambiguous'],
  ["awk '{ print $1 > $2 }' f", 'redirects output to a file'],
  ['awk \'{ for (i = 0; i < 3; i++) print i > "f" }\'', 'redirects output to a file'],
  ['awk \'{ if (x) print a; else print b > "f" }\'', 'redirects output to a file'],
  ['awk \'{print$1>"f"}\'', 'redirects output to a file'],
  ["awk '/[/]/' f", 'inside [...]'],
  ['awk -f prog.awk x', 'reads the program from a file'],
  ["gawk -l filefuncs 'BEGIN{}'", 'option -l is not allowed'],
  ["awk -e 'BEGIN{}'", 'option -e is not allowed'],
  ['mawk -W exec x', 'option -W is not allowed'],
  ["awk 'BEGIN{`id`}'", 'unexpected character'],
  // sort, uniq, tar, tree, xxd, compressors, date, hostname, file, rg
  ['sort -o f x', 'sort -o is not allowed'],
  ['sort -ro f x', 'sort -o is not allowed'],
  ['sort x -o f', 'sort -o is not allowed'],
  ['sort --output=f x', 'sort --output is not allowed'],
  ['sort --out f x', 'sort --out is not allowed'],
  ['sort --compress-program=sh x', 'runs a program'],
  ['sort -k *', 'as an option value'],
  ['uniq a b', 'second one is an output file'],
  ['uniq -c a b', 'second one is an output file'],
  ['uniq a*', 'glob operand'],
  ['tar xf a.tar', 'may only list'],
  ['tar -xvf a.tar', 'may only list'],
  ['tar -cf x .', 'may only list'],
  ['tar --extract -f a.tar', 'may only list'],
  ['tar -tf a.tar --to-command=sh', 'option --to-command is not allowed'],
  ['tar -tf a.tar -I sh', 'option -I is not allowed'],
  ['tar -tf a.tar --checkpoint-action=exec=sh', 'option --checkpoint-action is not allowed'],
  ['tar -tf host:a.tar', 'remote archive'],
  ['tar -tf a.tar *', 'could expand'],
  ['tree -o f', 'tree -o'],
  ['tree -aoL 2 out', 'tree -aoL'],
  ['tree -R -H x', 'tree -R'],
  ['tree -- -o f', 'tree -o'],
  ['xxd -r dump bin', 'converts a dump back'],
  ['xxd -revert dump bin', 'converts a dump back'],
  ['xxd a b', 'second one is an output file'],
  ['xxd a -c 8', 'second one is an output file'],
  ['xxd -c 8 a b', 'second one is an output file'],
  ['gzip file', 'works in place'],
  ['gunzip file.gz', 'works in place'],
  ['bzip2 -k f', 'works in place'],
  ['xz -T 2 f', 'works in place'],
  ['date -s 2020-01-01', 'sets the system clock'],
  ['date --set=2020-01-01', 'sets the system clock'],
  ['date 010101012020', 'sets the clock'],
  ['date -Is -s 2020-01-01', 'sets the system clock'],
  ['hostname evil', 'sets the host name'],
  ['hostname -F /etc/x', 'sets the host name'],
  ['file -C -m magic', 'compiles a magic file'],
  ['rg --pre ./x foo', 'runs a program'],
  ['rg --pre=./x foo', 'runs a program'],
  ['rg --hostname-bin=./x foo', 'runs a program'],
  // shell structure
  ['cat < /dev/tcp/example.com/80', 'network connection'],
  ['cat </dev/udp/10.0.0.1/53', 'network connection'],
  ['ls >\\\n(rm x)', 'not a plain word'],
  ['echo $\\\n(rm x)', "'$' followed by"],
  ['ls &\\\n& rm x', 'background'],
  ['cat <<EOF > f\nhello\nEOF', 'heredocs'],
  ["cat <<'EOF'\nx\nEOF", 'heredocs'],
  ['cat <(rm x)', 'process substitution'],
  ['diff <(ls) x', 'process substitution'],
  ['ls >(rm x)', 'process substitution'],
  ['(rm x)', 'subshells'],
  ['f() { rm x; }', 'subshells'],
  ['{ rm x; }', 'brace groups'],
  ['ls {a,b}', 'brace'],
  ['function f { rm x; }', 'brace'],
  ['ls &', 'background'],
  ['ls & rm x', 'background'],
  ['ls\nrm x', "'rm'"],
  ['cd /; rm x', "'rm'"],
  ['if true; then rm x; fi', "keyword 'if'"],
  ['for f in a; do rm x; done', "keyword 'for'"],
  ['ls; then', "keyword 'then'"],
  ['[[ -f x ]]', "keyword '[['"],
  ['! rm x', "keyword '!'"],
  ['time ls', "keyword 'time'"],
  ['case x in x) ;; esac', 'subshells'],
  ['/bin/rm x', 'by path'],
  ['./script.sh', 'by path'],
  ['/usr/bin/cat x', 'by path'],
  ['c?t /etc/passwd', 'glob characters in a command name'],
  ['* x', 'glob characters in a command name'],
  ['[ -f x ]', 'glob characters in a command name'],
  ['ls |', "ends with '|'"],
  ['ls &&', "ends with '&&'"],
  ['| ls', 'syntax error'],
  ["ls 'unterminated", 'unterminated single quote'],
  ['ls "unterminated', 'unterminated double quote'],
  ['ls \\', 'lone backslash'],
  ['', 'empty'],
  ['   \n  ', 'empty'],
  ['# only a comment', 'empty'],
  // unicode look-alikes and control characters
  ['ｒｍ x', 'non-ASCII'],
  ['ls\u00a0-la', 'non-ASCII'],
  ['ls ；rm x', 'non-ASCII'],
  ['ls\u0000rm x', 'NUL byte'],
  ['ls\rrm x', 'control character'],
  ['ls\u001b[2J', 'control character'],
  ['x'.repeat(70_000), 'longer than'],
];

const ALLOWED: readonly string[] = [
  'ls -la',
  'cat a b',
  'grep -rn foo .',
  "grep -E 'a|b' f",
  "find . -name '*.py' -type f",
  'find . -type f -newer x -name "*.md" | head',
  'head -n 5 f | wc -l',
  'git log --oneline -5',
  'git diff HEAD~1',
  'git status',
  'git show HEAD:README.md',
  "git log --format='%h %s' -n 3 -- '*.py'",
  'git -C repo log -1',
  'git --no-pager diff --stat',
  'git diff --text a b',
  'git log --output-indicator-new=+ -p',
  'git branch -a',
  "git branch --list 'feat*'",
  'git branch -vv --sort=-committerdate',
  'git tag -l',
  'git tag --contains HEAD',
  'git remote -v',
  'git stash list',
  'git reflog -5',
  "git grep -n -e foo -- '*.ts'",
  'git blame -L 1,10 README.md',
  'git --version',
  "jq '.a' f.json",
  "sed -n '1,5p' f",
  "sed 's/a/b/' f",
  "sed -E 's/([a-z]+)/\\1/g' f",
  "sed -e 's/a/b/' -e 's/c/d/' f",
  "sed -n '/start/,/end/p' f",
  "sed '1a hello; w out' f",
  "sed 's/[/]/x/' f",
  "sed -n '$!{h;d};x;G;p' f",
  "sed '1r /dev/null;w out' f",
  "awk '{print $1}' f",
  "awk -F: '$3 > 100 {print $1}' /etc/passwd",
  "awk '{ if ($1 > 2) print $2 }' f",
  "awk '{print ($1 > 2)}' f",
  "awk '/foo/ {n++} END {print n}' f",
  'awk \'BEGIN{FS=","} {sum += $2} END {print sum / NR}\' f',
  'awk \'$1 ~ /a|b/ || $2 == "x|y"\' f',
  "awk -v n=3 'NR <= n' f",
  "awk '{print}' *.log",
  'sort f | uniq -c',
  'sort -k2,2 -t, -rn f',
  'uniq -c f',
  'tar -tf a.tar',
  'tar tvf a.tar',
  "tar -tzf a.tgz --exclude 'x'",
  'wc -l *.py',
  'echo "a > b"',
  'echo \'$(rm x)\' "\\$HOME"',
  'cat f 2>/dev/null',
  'ls -la 2>&1 | head -20',
  'ls &>/dev/null',
  'ls && pwd',
  'cd src && ls',
  'diff a b',
  'rg -n TODO src',
  'xxd f | head',
  'xxd -l 64 f',
  'gzip -dc a.gz | head',
  'gzip -l a.gz',
  'zcat a.gz',
  'date +%Y-%m-%d',
  'date -u',
  'date -Iseconds',
  'ls 2>\\\n/dev/null',
  'cat <&3 2>&-',
  'tree -L 2 src',
  'stat -c %s f',
  'grep foo$ f',
  "echo 'it''s'",
  'ls\npwd\n',
  'ls;',
  'cat < input.txt',
  "grep -c x <<< 'xyz'",
  "printf '%s\\n' a b",
  'which git',
  'ps aux | grep node',
  'du -sh . 2>/dev/null | sort -h',
  'ls \\\n  -la',
  'ls |\n  wc -l',
  'echo {}',
  'ls -la # a comment with $(rm x) and > f',
  "grep 'café' menu.txt",
  'hostname',
  'test -f x && echo yes',
  "sed -n '1p' -- -i",
  'git log -- --output=x',
  'git grep -e -O foo',
  'tar -t -f a.tar -- --to-command=x',
  'tar tfC a.tar /tmp',
  "awk '{ x = $1 > $2; print x }' f",
  'awk \'BEGIN { while ((getline line < "f") > 0) print line }\'',
  'file -b f',
  'uname -a && id && whoami',
  '"ls" -la',
];

describe('checkRestrictedCommand: refused', () => {
  it.each(REFUSED.map(([c, why]) => [JSON.stringify(c).slice(0, 60), c, why] as const))(
    '%s',
    (_label, command, why) => {
      const d = checkRestrictedCommand(command);
      expect(d.allowed).toBe(false);
      if (!d.allowed) expect(d.reason).toContain(why);
    },
  );

  it('has a large table of bypass attempts', () => {
    expect(REFUSED.length).toBeGreaterThan(150);
  });
});

describe('checkRestrictedCommand: allowed', () => {
  it.each(ALLOWED.map((c) => [JSON.stringify(c), c] as const))('%s', (_label, command) => {
    expect(checkRestrictedCommand(command)).toEqual({ allowed: true });
  });
});

describe('parseCommandLine', () => {
  it('cooks words as bash does and keeps pipes inside quotes', () => {
    const line = parseCommandLine(`grep -E 'a|b' "x y"\\ z f | wc -l && r\\m`);
    expect(line.commands.map((c) => c.words.map((w) => w.text))).toEqual([
      ['grep', '-E', 'a|b', 'x y z', 'f'],
      ['wc', '-l'],
      ['rm'],
    ]);
    expect(line.connectors).toEqual(['|', '&&']);
  });

  it('recognises fd-number redirections only when the digits touch the operator', () => {
    const a = parseCommandLine('cat f 2>/dev/null');
    expect(a.commands[0]?.redirects).toEqual([expect.objectContaining({ fd: 2, op: '>' })]);
    expect(a.commands[0]?.words.map((w) => w.text)).toEqual(['cat', 'f']);
    const b = parseCommandLine('echo a2>f');
    expect(b.commands[0]?.words.map((w) => w.text)).toEqual(['echo', 'a2']);
    expect(b.commands[0]?.redirects[0]?.fd).toBeUndefined();
    const c = parseCommandLine('echo 2 >f');
    expect(c.commands[0]?.words.map((w) => w.text)).toEqual(['echo', '2']);
  });

  it('marks unquoted globs, and only those', () => {
    const [cmd] = parseCommandLine(`ls *.py '*.md' \\*.txt a[0]`).commands;
    expect(cmd?.words.map((w) => [w.text, w.glob, w.globAtStart])).toEqual([
      ['ls', false, false],
      ['*.py', true, true],
      ['*.md', false, false],
      ['*.txt', false, false],
      ['a[0]', true, false],
    ]);
  });

  it('throws ShellRefusal (never anything else) for unsupported syntax', () => {
    expect(() => parseCommandLine('echo $(x)')).toThrow(ShellRefusal);
  });
});

describe('allowlist data', () => {
  it('contains the read-only tools named in the product contract and none of the wrappers', () => {
    for (const name of [
      'cat',
      'ls',
      'grep',
      'find',
      'head',
      'tail',
      'wc',
      'jq',
      'git',
      'sed',
      'awk',
      'tar',
    ]) {
      expect(Object.keys(ALLOWED_COMMANDS)).toContain(name);
    }
    for (const name of ['env', 'xargs', 'sh', 'bash', 'tee', 'rm', 'curl', 'wget', 'less', 'python3']) {
      expect(Object.keys(ALLOWED_COMMANDS)).not.toContain(name);
    }
  });
});

/**
 * Differential checks against the real GNU sed and awk installed here: every
 * script our checker allows must leave the directory untouched, and the
 * tricky refused ones really do write (so the refusal is not vacuous).
 */
describe('agreement with the real sed and awk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const run = async (argv: string[]): Promise<string[]> => {
    await fs.writeFile(path.join(dir, 'in.txt'), 'a/b\nstart\nx|y\nend\n');
    try {
      execFileSync(argv[0]!, [...argv.slice(1), 'in.txt'], { cwd: dir, stdio: 'ignore', timeout: 5000 });
    } catch {
      // a script sed/awk rejects is fine: we only look for files it created
    }
    const files = (await fs.readdir(dir)).filter((f) => f !== 'in.txt');
    for (const f of files) await fs.rm(path.join(dir, f), { force: true });
    return files;
  };

  const ALLOWED_SCRIPTS: ReadonlyArray<readonly string[]> = [
    ['sed', '1a hello; w out'],
    ['sed', '1r /dev/null;w out'],
    ['sed', 's/[/]/x/'],
    ['sed', '-n', '/start/,/end/p'],
    ['sed', ':a;$!{N;ba};s/\\n/ /g'],
    ['sed', '-e', 'a\\', '-e', 'w out'],
    ['sed', 's/a/b/;#w out'],
    ['sed', 'y/abc/xyz/'],
    ['mawk', '$1 ~ /a|b/ || $2 == "x|y"'],
    ['mawk', '{ if ($1 > 2) print $2 }'],
    ['mawk', '{print ($1 > 2)}'],
  ];

  it.each(ALLOWED_SCRIPTS.map((a) => [a.join(' '), a] as const))(
    'allowed and harmless: %s',
    async (_label, argv) => {
      const [name, ...args] = argv;
      const words = [name!, ...args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`)].join(' ');
      expect(checkRestrictedCommand(words)).toEqual({ allowed: true });
      expect(await run([...argv])).toEqual([]);
    },
  );

  const WRITING_SCRIPTS: ReadonlyArray<readonly string[]> = [
    ['sed', 's/[/]/x/w out'],
    ['sed', 's/a/b/ g w out'],
    ['sed', '1r /dev/null\nw out'],
    ['sed', '-e', 'a foo', '-e', 'w out'],
    ['sed', '-n', '/x/I W out'],
    ['mawk', '{print > "out"}'],
    ['mawk', '{print $1,\n$2 > "out"}'],
  ];

  it.each(WRITING_SCRIPTS.map((a) => [a.join(' '), a] as const))(
    'refused and really writing: %s',
    async (_label, argv) => {
      const [name, ...args] = argv;
      const words = [name!, ...args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`)].join(' ');
      expect(checkRestrictedCommand(words).allowed).toBe(false);
      expect(await run([...argv])).toEqual(['out']);
    },
  );
});

/**
 * Differential check of the lexer against bash itself: random lines built
 * from quoting characters are run by bash with a function that prints its
 * argv; whenever our parser accepts a line, it must see exactly those words.
 */
describe('parseCommandLine agrees with bash on word splitting and quote removal', () => {
  // mulberry32: a small seeded PRNG so the cases are the same on every run.
  const rng = (seed: number) => (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const ALPHABET = [
    'a',
    'b',
    '-',
    ' ',
    '\t',
    "'",
    '"',
    '\\',
    '$',
    '#',
    '*',
    '?',
    '[',
    ']',
    '{',
    '}',
    '~',
    '=',
    '\n',
    '\\\n',
    '2',
  ];
  const CONNECTORS = ['; ', ';', '\n', ' ;\n'];

  it('on 3000 random command lines', () => {
    const random = rng(20240601);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const cases: Array<{ line: string; words: string[][] }> = [];
    for (let n = 0; n < 3000; n++) {
      const commands = 1 + Math.floor(random() * 2);
      let line = '';
      for (let c = 0; c < commands; c++) {
        if (c > 0) line += pick(CONNECTORS);
        line += 'p ';
        const len = Math.floor(random() * 14);
        for (let k = 0; k < len; k++) line += pick(ALPHABET);
      }
      try {
        const words = parseCommandLine(line).commands.map((cmd) => cmd.words.map((w) => w.text));
        // A newline inside the random text starts a command that is not `p`; bash would only say "not found".
        if (words.every((w) => w[0] === 'p')) cases.push({ line, words });
      } catch (e) {
        expect(e).toBeInstanceOf(ShellRefusal);
      }
    }
    expect(cases.length).toBeGreaterThan(500);
    // One bash runs every case through `eval` (the same parser as `bash -c`); \x02 separates the cases,
    // \x01 the commands, NUL the words. HOME, OLDPWD and PWD make ~, ~- and ~+ expand to themselves;
    // set -f keeps glob characters (our words keep them too). A syntax error lands in the case's output.
    const quote = (t: string): string => `'${t.replace(/'/g, `'\\''`)}'`;
    const script = [
      `p() { printf '%s\\0' "$FUNCNAME" "$@"; printf '\\001'; }; set -f; HOME='~' OLDPWD='~-' PWD='~+'`,
      ...cases.map((c) => `printf '\\002'; eval ${quote(c.line)} 2>&1`),
    ].join('\n');
    const out = execFileSync('bash', ['-c', script], { encoding: 'utf8', timeout: 20_000 });
    const outputs = out.split('\x02').slice(1);
    expect(outputs).toHaveLength(cases.length);
    cases.forEach((c, i) => {
      const theirs = (outputs[i] ?? '')
        .split('\x01')
        .filter((l) => l !== '')
        .map((l) => l.split('\0').slice(0, -1));
      expect({ line: c.line, words: c.words }).toEqual({ line: c.line, words: theirs });
    });
  });
});
