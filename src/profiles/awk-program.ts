/**
 * Read-only check of an awk program (POSIX awk, gawk, mawk). A small lexer
 * that knows strings, regex literals, comments and parentheses refuses what
 * lets awk write or run things:
 *
 * - `system(...)` (and `close(...)`, which only matters for pipes and files
 *   we already refuse);
 * - any `|` that is not `||`: `print | "cmd"`, `"cmd" | getline`, gawk's
 *   `|&` coprocesses;
 * - `>` / `>>` inside a `print` / `printf` statement outside parentheses,
 *   which is output redirection (`$3 > 100` as a pattern is a comparison and
 *   stays allowed; write `print (a > b)` to compare inside print);
 * - gawk's `@include` / `@load` / `@namespace` and indirect calls `@f()`;
 * - `/inet/...` special files (network sockets).
 *
 * Where awks disagree or the lexer cannot tell (a `/` right after a keyword
 * such as `print` may start a regex or be a division; a `/` inside a bracket
 * expression of a regex), the program is refused rather than guessed.
 */
import { ShellRefusal } from './shell-lexer.js';

function refuse(why: string): never {
  throw new ShellRefusal(`awk program refused: ${why}`);
}

/** Identifiers that make awk run commands or touch files and pipes. */
const DENIED_IDENTIFIERS: Readonly<Record<string, string>> = {
  system: 'system() runs a shell command',
  close: 'close() is only needed for pipes and output files, which are not allowed',
};

/**
 * Reserved words and built-in functions: after these a `/` may start a regex
 * in some awk and be a division in another, so the lexer does not guess.
 * (After a user variable, a number, `)` or `]`, every awk reads a division.)
 */
const KEYWORDS = new Set([
  ...[
    'BEGIN',
    'END',
    'BEGINFILE',
    'ENDFILE',
    'function',
    'func',
    'if',
    'else',
    'while',
    'for',
    'do',
    'break',
  ],
  ...[
    'continue',
    'next',
    'nextfile',
    'exit',
    'return',
    'delete',
    'getline',
    'print',
    'printf',
    'in',
    'switch',
  ],
  ...[
    'case',
    'default',
    'length',
    'substr',
    'index',
    'split',
    'sub',
    'gsub',
    'match',
    'sprintf',
    'sin',
    'cos',
  ],
  ...['atan2', 'exp', 'log', 'sqrt', 'int', 'rand', 'srand', 'tolower', 'toupper', 'fflush', 'gensub'],
  ...['strftime', 'systime', 'mktime', 'asort', 'asorti', 'patsplit', 'and', 'or', 'xor', 'lshift', 'rshift'],
  ...['compl', 'strtonum', 'isarray', 'typeof', 'mkbool'],
]);

/** What the previous token allows a `/` to be: `regex` after an operator, `division` after an operand. */
type SlashMeaning = 'regex' | 'division' | 'ambiguous';

/** Throws `ShellRefusal` unless `program` only reads input and prints to stdout. */
export function checkAwkProgram(program: string): void {
  if (program.includes('/inet')) refuse('/inet special files open network connections');
  const s = program;
  let i = 0;
  let slash: SlashMeaning = 'regex';
  let parens = 0;
  /** Paren depth at which the current print/printf statement started; undefined outside one. */
  let printAt: number | undefined;

  while (i < s.length) {
    const c = s.charAt(i);
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '\\' && s.charAt(i + 1) === '\n') {
      i += 2;
      continue;
    }
    if (c === '\n') {
      // A newline ends a statement unless the line ends in an operator or comma (then the statement
      // continues). Either way what follows may start with a regex (a new pattern, or an operand).
      if (slash !== 'regex') printAt = undefined;
      slash = 'regex';
      i++;
      continue;
    }
    if (c === '#') {
      while (i < s.length && s.charAt(i) !== '\n') i++;
      continue;
    }
    if (c === '"') {
      i = skipString(s, i);
      slash = 'division';
      continue;
    }
    if (c === '/') {
      if (slash === 'ambiguous')
        refuse("a '/' right after a keyword is ambiguous (regex or division); add parentheses");
      if (slash === 'regex') {
        i = skipRegex(s, i);
        slash = 'division';
      } else {
        i++;
        if (s.charAt(i) === '=') i++;
        slash = 'regex';
      }
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < s.length && /[A-Za-z0-9_]/.test(s.charAt(j))) j++;
      const word = s.slice(i, j);
      const denied = DENIED_IDENTIFIERS[word];
      if (denied !== undefined) refuse(denied);
      if (word === 'print' || word === 'printf') printAt = parens;
      slash = KEYWORDS.has(word) ? 'ambiguous' : 'division';
      i = j;
      continue;
    }
    if (/[0-9.]/.test(c)) {
      let j = i + 1;
      while (j < s.length && /[0-9A-Za-z.]/.test(s.charAt(j))) j++;
      if ((s.charAt(j - 1) === 'e' || s.charAt(j - 1) === 'E') && /[+-]/.test(s.charAt(j))) {
        j++;
        while (j < s.length && /[0-9]/.test(s.charAt(j))) j++;
      }
      i = j;
      slash = 'division';
      continue;
    }
    const two = s.slice(i, i + 2);
    switch (c) {
      case '|':
        if (two !== '||') refuse("'|' pipes to or from a shell command; use '||' for a logical or");
        i += 2;
        slash = 'regex';
        continue;
      case '>':
        if (printAt !== undefined && parens <= printAt) {
          refuse("'>' in a print statement redirects output to a file; write print (a > b) to compare");
        }
        i += two === '>=' ? 2 : 1;
        slash = 'regex';
        continue;
      case '@':
        refuse("gawk '@' directives and indirect calls are not allowed");
        break;
      case '(':
        parens++;
        slash = 'regex';
        break;
      case ')':
        parens--;
        slash = 'division';
        break;
      case '[':
        slash = 'regex';
        break;
      case ']':
        slash = 'division';
        break;
      case '{':
      case '}':
      case ';':
        printAt = undefined;
        slash = 'regex';
        break;
      case '$':
        slash = 'ambiguous';
        break;
      case '+':
      case '-':
        if (two === '++' || two === '--') {
          i += 2;
          slash = 'ambiguous'; // x++ / 2 (division) vs ++ /re/ (nonsense): do not guess
          continue;
        }
        slash = 'regex';
        break;
      case ',':
      case '!':
      case '~':
      case '=':
      case '*':
      case '%':
      case '^':
      case '?':
      case ':':
      case '<':
      case '&':
        slash = 'regex';
        break;
      default:
        refuse(`unexpected character ${JSON.stringify(c)}`);
    }
    i++;
  }
}

/** Index after the string literal starting at `start`. */
function skipString(s: string, start: number): number {
  let i = start + 1;
  while (i < s.length) {
    const c = s.charAt(i);
    if (c === '"') return i + 1;
    if (c === '\n') break;
    i += c === '\\' ? 2 : 1;
  }
  return refuse('unterminated string');
}

/** Index after the regex literal starting at `start`. */
function skipRegex(s: string, start: number): number {
  let i = start + 1;
  while (i < s.length) {
    const c = s.charAt(i);
    if (c === '/') return i + 1;
    if (c === '\n') break;
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '[') {
      i = skipBracket(s, i);
      continue;
    }
    i++;
  }
  return refuse('unterminated regular expression');
}

/** Index after a bracket expression in a regex; refuses a `/` or newline inside it (awks disagree there). */
function skipBracket(s: string, start: number): number {
  let i = start + 1;
  if (s.charAt(i) === '^') i++;
  if (s.charAt(i) === ']') i++;
  while (i < s.length) {
    const c = s.charAt(i);
    if (c === ']') return i + 1;
    if (c === '/' || c === '\n')
      refuse(
        "a '/' or newline inside [...] in a regex is read differently by different awks; escape it as \\/",
      );
    if (c === '[' && /[:.=]/.test(s.charAt(i + 1))) {
      const close = s.indexOf(s.charAt(i + 1) + ']', i + 2);
      if (close < 0) break;
      i = close + 2;
      continue;
    }
    if (c === '\\') {
      i += 2;
      continue;
    }
    i++;
  }
  return refuse('unterminated bracket expression');
}
