/**
 * Per-command argument checks for allowlisted tools that have write-capable
 * or program-running options (product.md §3). Each check throws
 * `ShellRefusal` with a sentence the model can act on. The option models are
 * GNU's (coreutils, findutils, sed, tar, gzip) as found in Debian/Ubuntu
 * images; where a tool's parser is unknown or differs, the check refuses.
 * git has its own file (`git-check.ts`).
 */
import { checkAwkProgram } from './awk-program.js';
import {
  longMatches,
  operands,
  optionName,
  refuseOptionGlob,
  scanOptions,
  type ParsedArg,
} from './command-options.js';
import { checkSedScript } from './sed-script.js';
import { ShellRefusal, type Word } from './shell-lexer.js';

/** A per-command check: throws `ShellRefusal` when the arguments may write or run something. */
export type ArgsCheck = (args: readonly Word[], name: string) => void;

function refuse(message: string): never {
  throw new ShellRefusal(message);
}

function deniedLong(p: ParsedArg, names: Readonly<Record<string, string>>): string | undefined {
  if (p.kind !== 'long') return undefined;
  for (const [full, why] of Object.entries(names)) if (longMatches(p.name, full)) return why;
  return undefined;
}

/** Refuses options from `shortDenied` / `longDenied` (long names match abbreviations too). */
function denyOptions(
  name: string,
  parsed: readonly ParsedArg[],
  shortDenied: Readonly<Record<string, string>>,
  longDenied: Readonly<Record<string, string>>,
): void {
  for (const p of parsed) {
    const why = p.kind === 'short' ? shortDenied[p.letter] : deniedLong(p, longDenied);
    if (why !== undefined) refuse(`${name} ${optionName(p)} is not allowed: it ${why}`);
  }
}

/** Refuses any option not in the allowlists (for tools whose other options are risky or unknown). */
function allowOnly(
  name: string,
  parsed: readonly ParsedArg[],
  shortAllowed: string,
  longAllowed: readonly string[],
): void {
  for (const p of parsed) {
    if (p.kind === 'operand') continue;
    const ok = p.kind === 'short' ? shortAllowed.includes(p.letter) : longAllowed.includes(p.name);
    if (!ok) refuse(`${name} option ${optionName(p)} is not allowed in the restricted shell`);
  }
}

/** sed: no in-place editing (-i), no script files (-f); the script (from -e or the first operand) must pass `checkSedScript`. */
export const checkSed: ArgsCheck = (args, name) => {
  const parsed = scanOptions(name, args, {
    shortWithArg: 'efl',
    longWithArg: ['expression', 'file', 'line-length'],
  });
  denyOptions(
    name,
    parsed,
    {
      i: 'edits files in place',
      f: 'reads the script from a file, which cannot be checked; pass it with -e',
    },
    { 'in-place': 'edits files in place', file: 'reads the script from a file, which cannot be checked' },
  );
  allowOnly(name, parsed, 'nesEruzl', [
    'quiet',
    'silent',
    'expression',
    'regexp-extended',
    'separate',
    'unbuffered',
    'null-data',
    'line-length',
    'posix',
    'debug',
    'sandbox',
  ]);
  const scripts = parsed.flatMap((p) =>
    (p.kind === 'short' && p.letter === 'e') || (p.kind === 'long' && p.name === 'expression')
      ? [p.value ?? '']
      : [],
  );
  if (scripts.length === 0) {
    const first = operands(parsed)[0];
    if (first === undefined) return refuse(`${name} needs a script`);
    if (first.glob) refuse(`${name}: the script must be quoted (it contains glob characters)`);
    scripts.push(first.text);
  }
  // sed joins several -e scripts with newlines (an `a\` in one continues into the next).
  checkSedScript(scripts.join('\n'));
};

/** awk (and gawk, mawk, nawk): only -F and -v; no program files; the program must pass `checkAwkProgram`. */
export const checkAwk: ArgsCheck = (args, name) => {
  // POSIX awk stops at the program text; mawk and gawk too (later words are files or var=value).
  const parsed = scanOptions(name, args, {
    shortWithArg: 'Fvf',
    longWithArg: ['field-separator', 'assign', 'file'],
    stopAtOperand: true,
  });
  denyOptions(name, parsed, { f: 'reads the program from a file, which cannot be checked' }, {});
  allowOnly(name, parsed, 'Fv', ['field-separator', 'assign']);
  const program = operands(parsed)[0];
  if (program === undefined) return refuse(`${name} needs a program`);
  if (program.glob) refuse(`${name}: the program must be quoted (it contains glob characters)`);
  checkAwkProgram(program.text);
};

const FIND_DENIED: Readonly<Record<string, string>> = {
  '-exec': 'runs a command',
  '-execdir': 'runs a command',
  '-ok': 'runs a command',
  '-okdir': 'runs a command',
  '-delete': 'deletes files',
  '-fprint': 'writes to a file',
  '-fprint0': 'writes to a file',
  '-fprintf': 'writes to a file',
  '-fls': 'writes to a file',
};

/** find: no -exec/-execdir/-ok/-okdir/-delete/-fprint/-fprint0/-fprintf/-fls, and no glob that could expand to a primary. */
export const checkFind: ArgsCheck = (args, name) => {
  for (const w of args) {
    // Any argument of find can be an expression primary, so every glob that could start with `-` is refused.
    refuseOptionGlob(name, w);
    const why = FIND_DENIED[w.text];
    if (why !== undefined)
      refuse(`find ${w.text} is not allowed: it ${why}; print the paths and inspect them instead`);
  }
};

/** sort: no -o/--output (writes a file) and no --compress-program (runs a program). */
export const checkSort: ArgsCheck = (args, name) => {
  const parsed = scanOptions(name, args, {
    shortWithArg: 'kotST',
    longWithArg: [
      'key',
      'output',
      'field-separator',
      'buffer-size',
      'temporary-directory',
      'parallel',
      'batch-size',
      'compress-program',
      'files0-from',
      'random-source',
      'sort',
    ],
  });
  denyOptions(
    name,
    parsed,
    { o: 'writes the result to a file' },
    { output: 'writes the result to a file', 'compress-program': 'runs a program' },
  );
};

/** uniq: at most one file operand (`uniq IN OUT` writes OUT). */
export const checkUniq: ArgsCheck = (args, name) => {
  const parsed = scanOptions(name, args, {
    shortWithArg: 'fsw',
    longWithArg: ['skip-fields', 'skip-chars', 'check-chars'],
  });
  const ops = operands(parsed);
  if (ops.some((w) => w.glob))
    refuse(`${name} with a glob operand is not allowed: a second file name is its output`);
  if (ops.length > 1)
    refuse(`${name} with two file operands is not allowed: the second one is an output file it writes`);
};

/** xxd: no -r (reverse: writes binary) and at most one file operand (`xxd IN OUT` writes OUT). */
export const checkXxd: ArgsCheck = (args, name) => {
  // xxd has its own parser: single-dash words matched by prefix (`-r`, `-revert`), options end at the
  // first operand (no permutation), and `xxd IN OUT` writes OUT. `-c 8` style values are skipped; the
  // long spellings (`-cols 8`) are not, which can only over-count operands (a false refusal).
  const ops: Word[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const w = args[i];
    if (w === undefined) break;
    const t = w.text;
    if (t === '--') {
      i++;
      break;
    }
    if (t === '-' || !t.startsWith('-')) break;
    refuseOptionGlob(name, w);
    if (t.startsWith('-r')) refuse(`${name} ${t} is not allowed: it converts a dump back into a binary file`);
    if (/^-[cgosln]$/.test(t)) {
      const value = args[i + 1];
      if (value?.glob === true) refuse(`${name}: the glob '${value.raw}' as an option value is not allowed`);
      i++;
    }
  }
  for (const w of args.slice(i)) {
    if (w.glob) refuse(`${name} with a glob operand is not allowed: a second file name is its output`);
    ops.push(w);
  }
  if (ops.length > 1)
    refuse(`${name} with two file operands is not allowed: the second one is an output file it writes`);
};

/** tree: no -o (writes the listing to a file) and no -R (writes HTML files with -H). */
export const checkTree: ArgsCheck = (args, name) => {
  // Not every tree version ends options at `--`, so every word is looked at.
  for (const w of args) {
    refuseOptionGlob(name, w);
    if (/^-[^-]/.test(w.text) && /[oR]/.test(w.text.slice(1))) {
      refuse(`${name} ${w.text} is not allowed: -o writes the listing to a file and -R writes HTML files`);
    }
  }
};

/** date: no -s/--set and no operand other than +FORMAT (both set the clock). */
export const checkDate: ArgsCheck = (args, name) => {
  const parsed = scanOptions(name, args, {
    shortWithArg: 'dfrs',
    shortOptionalArg: 'I',
    longWithArg: ['date', 'file', 'reference', 'set'],
  });
  denyOptions(name, parsed, { s: 'sets the system clock' }, { set: 'sets the system clock' });
  for (const w of operands(parsed)) {
    if (!w.text.startsWith('+'))
      refuse(`${name} ${w.text} is not allowed: an operand other than +FORMAT sets the clock`);
  }
};

/** hostname: printing only (no operand, no -F/-b). */
export const checkHostname: ArgsCheck = (args, name) => {
  const parsed = scanOptions(name, args, { shortWithArg: 'F', longWithArg: ['file'] });
  denyOptions(
    name,
    parsed,
    { F: 'sets the host name', b: 'sets the host name' },
    { file: 'sets the host name', boot: 'sets the host name' },
  );
  if (operands(parsed).length > 0) refuse(`${name} with an operand is not allowed: it sets the host name`);
};

/** file: no -C/--compile (writes a compiled magic file). */
export const checkFile: ArgsCheck = (args, name) => {
  const parsed = scanOptions(name, args, {
    shortWithArg: 'efFmP',
    longWithArg: ['exclude', 'exclude-quiet', 'files-from', 'separator', 'magic-file', 'parameter'],
  });
  denyOptions(
    name,
    parsed,
    { C: 'compiles a magic file and writes it' },
    { compile: 'compiles a magic file and writes it' },
  );
};

/** rg: no --pre or --hostname-bin (both run a program). */
export const checkRg: ArgsCheck = (args, name) => {
  // ripgrep matches long options exactly; every word before `--` is looked at, values included (harmless false refusals).
  for (const w of args) {
    if (w.text === '--') break;
    refuseOptionGlob(name, w);
    const t = w.text;
    if (
      t === '--pre' ||
      t.startsWith('--pre=') ||
      t === '--hostname-bin' ||
      t.startsWith('--hostname-bin=')
    ) {
      refuse(`${name} ${t.split('=')[0] ?? t} is not allowed: it runs a program`);
    }
  }
};

/** gzip, gunzip, bzip2, bunzip2, xz, unxz: only to stdout (-c), listing (-l) or testing (-t); never in place. */
export function compressorCheck(shortWithArg: string, longWithArg: readonly string[]): ArgsCheck {
  return (args, name) => {
    const parsed = scanOptions(name, args, { shortWithArg, longWithArg });
    const safe = parsed.some(
      (p) =>
        (p.kind === 'short' && 'clt'.includes(p.letter)) ||
        (p.kind === 'long' && ['stdout', 'to-stdout', 'list', 'test'].includes(p.name)),
    );
    if (!safe && operands(parsed).length > 0) {
      refuse(`${name} on files works in place (it replaces the file); use ${name} -c, -l or -t, or zcat`);
    }
  };
}

const TAR_SHORT_WITH_ARG = 'fCTXb';
const TAR_SHORT_ALLOWED = 'tvfzjJaiCTXbR';
const TAR_LONG_WITH_ARG = [
  ...['file', 'directory', 'files-from', 'exclude-from', 'blocking-factor', 'record-size', 'exclude'],
  ...['transform', 'xform', 'strip-components', 'quoting-style', 'warning'],
];
const TAR_LONG_ALLOWED = new Set([
  ...['list', 'file', 'verbose', 'gzip', 'gunzip', 'ungzip', 'bzip2', 'xz', 'lzma', 'lzip', 'lzop', 'zstd'],
  ...['auto-compress', 'wildcards', 'no-wildcards', 'wildcards-match-slash', 'no-wildcards-match-slash'],
  ...['anchored', 'no-anchored', 'ignore-case', 'no-ignore-case', 'exclude', 'exclude-from', 'files-from'],
  ...[
    'directory',
    'numeric-owner',
    'full-time',
    'utc',
    'block-number',
    'quoting-style',
    'show-transformed-names',
  ],
  ...['show-stored-names', 'null', 'no-null', 'totals', 'ignore-zeros', 'no-recursion', 'recursion'],
  ...['blocking-factor', 'record-size', 'strip-components', 'transform', 'xform', 'occurrence'],
  ...['verbatim-files-from', 'no-verbatim-files-from', 'warning'],
]);

/** tar: listing only (`-t` / `--list`), with a small allowlist of options; never a remote (`host:file`) archive. */
export const checkTar: ArgsCheck = (args, name) => {
  let rest = args;
  const parsed: ParsedArg[] = [];
  const first = args[0];
  if (first !== undefined && !first.text.startsWith('-') && first.text !== '') {
    // Old-style bundle (`tar tvf a.tar`): every letter is an option; letters that take a value
    // take the following words, in order.
    if (first.glob) refuse(`${name}: glob characters in the option bundle '${first.raw}' are not allowed`);
    let next = 1;
    for (const letter of first.text) {
      if (TAR_SHORT_WITH_ARG.includes(letter)) {
        const value = args[next];
        next++;
        if (value?.glob === true)
          refuse(`${name}: the glob '${value.raw}' as an option value is not allowed`);
        parsed.push(
          value === undefined
            ? { kind: 'short', letter, word: first }
            : { kind: 'short', letter, value: value.text, word: first },
        );
      } else parsed.push({ kind: 'short', letter, word: first });
    }
    rest = args.slice(next);
  }
  parsed.push(
    ...scanOptions(name, rest, { shortWithArg: TAR_SHORT_WITH_ARG, longWithArg: TAR_LONG_WITH_ARG }),
  );
  const listing = parsed.some(
    (p) => (p.kind === 'short' && p.letter === 't') || (p.kind === 'long' && p.name === 'list'),
  );
  for (const p of parsed) {
    if (p.kind === 'operand') continue;
    const ok = p.kind === 'short' ? TAR_SHORT_ALLOWED.includes(p.letter) : TAR_LONG_ALLOWED.has(p.name);
    if (!ok) {
      return refuse(
        listing
          ? `${name} option ${optionName(p)} is not allowed in the restricted shell`
          : `${name} may only list archives (tar -tf archive); ${optionName(p)} is not allowed`,
      );
    }
    const isFile = (p.kind === 'short' && p.letter === 'f') || (p.kind === 'long' && p.name === 'file');
    if (isFile && p.value?.includes(':') === true)
      refuse(`${name} -f with a ':' names a remote archive (run over ssh/rsh); not allowed`);
  }
  if (!listing) refuse(`${name} may only list archives: use tar -tf archive (or tar --list)`);
};
