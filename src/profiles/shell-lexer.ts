/**
 * A deliberately small, conservative parser for the POSIX/bash command-line
 * subset the restricted shell accepts: simple commands with quoted words,
 * joined by `|`, `|&`, `&&`, `||`, `;` and newlines, with a few redirections.
 *
 * It parses the way bash would (quote removal, backslash escapes, line
 * continuations, comments, fd-number redirections) so that the words it
 * returns are exactly the argv the program would receive, barring globbing.
 * Everything whose effect it cannot predict from the text alone is refused
 * with a `ShellRefusal` naming the construct: any `$` expansion (variables,
 * `$(...)`, `${...}`, `$((...))`, `$'...'`), backticks, process
 * substitution, subshells and `(...)`, brace groups and brace expansion,
 * heredocs, background `&`, `case` terminators, control characters and
 * unquoted non-ASCII characters. Refusing too much is a nuisance; allowing
 * too much is a hole, so every "not sure" is a refusal.
 */

/** Thrown (internally) when the command line is not in the accepted subset; `message` is for the model. */
export class ShellRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShellRefusal';
  }
}

/** One shell word after quote removal. */
export interface Word {
  /** The word as the program receives it (quotes and escapes removed). */
  text: string;
  /** Source text of the word, for messages. */
  raw: string;
  /** Has an unquoted `*`, `?` or `[`: the shell may expand it into other words (file names). */
  glob: boolean;
  /** The first character is an unquoted glob character (the expansion can start with anything, even `-`). */
  globAtStart: boolean;
  /** Some part of the word was quoted or escaped (so it is not a shell keyword or assignment). */
  quoted: boolean;
}

export type RedirectOp = '<' | '>' | '>>' | '>|' | '<>' | '>&' | '<&' | '&>' | '&>>' | '<<<';

export interface Redirect {
  /** Explicit file descriptor number (`2>`), if any. */
  fd?: number;
  op: RedirectOp;
  target: Word;
  raw: string;
}

/** A command name with its arguments and redirections. */
export interface SimpleCommand {
  words: Word[];
  redirects: Redirect[];
}

export type Connector = '|' | '|&' | '&&' | '||' | ';' | '\n';

/** The parsed command line: `commands[i]` is joined to `commands[i + 1]` by `connectors[i]`. */
export interface CommandLine {
  commands: SimpleCommand[];
  connectors: Connector[];
}

/** Longest command line we look at; longer ones are refused rather than parsed. */
export const MAX_COMMAND_LENGTH = 64 * 1024;

const BLANK = new Set([' ', '\t']);
/** Characters that end an unquoted word. */
const METACHARS = new Set([' ', '\t', '\n', '|', '&', ';', '<', '>', '(', ')']);
const GLOB_CHARS = new Set(['*', '?', '[']);

interface WordBuilder {
  text: string;
  start: number;
  glob: boolean;
  globAtStart: boolean;
  quoted: boolean;
  /** Only unquoted decimal digits so far (a candidate fd number for `2>`). */
  digitsOnly: boolean;
}

type Token =
  | { kind: 'word'; word: Word }
  | { kind: 'connector'; op: Connector }
  | { kind: 'redirect'; redirect: Redirect };

/**
 * Parses `src` into simple commands. Throws `ShellRefusal` for anything
 * outside the accepted subset (see the file comment); never returns an empty
 * command list.
 */
export function parseCommandLine(src: string): CommandLine {
  if (src.length > MAX_COMMAND_LENGTH) {
    throw new ShellRefusal(`the command is longer than ${MAX_COMMAND_LENGTH} characters`);
  }
  checkCharacters(src);
  return assemble(tokenize(src));
}

function checkCharacters(src: string): void {
  for (let i = 0; i < src.length; i++) {
    const code = src.charCodeAt(i);
    if (code === 0) throw new ShellRefusal('the command contains a NUL byte');
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a) || code === 0x7f) {
      throw new ShellRefusal(
        `the command contains the control character U+${code.toString(16).padStart(4, '0').toUpperCase()}`,
      );
    }
  }
}

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let word: WordBuilder | undefined;
  let i = 0;

  const startWord = (): WordBuilder => {
    word ??= { text: '', start: i, glob: false, globAtStart: false, quoted: false, digitsOnly: true };
    return word;
  };
  const endWord = (): void => {
    if (word === undefined) return;
    const w = word;
    word = undefined;
    tokens.push({
      kind: 'word',
      word: {
        text: w.text,
        raw: src.slice(w.start, i),
        glob: w.glob,
        globAtStart: w.globAtStart,
        quoted: w.quoted,
      },
    });
  };

  while (i < src.length) {
    const c = src.charAt(i);
    if (BLANK.has(c)) {
      endWord();
      i++;
      continue;
    }
    if (c === '\n') {
      endWord();
      tokens.push({ kind: 'connector', op: '\n' });
      i++;
      continue;
    }
    if (c === '#' && word === undefined) {
      // A comment runs to the end of the line; the newline itself still separates commands.
      while (i < src.length && src.charAt(i) !== '\n') i++;
      continue;
    }
    if (c === '\\') {
      const next = src.charAt(i + 1);
      if (next === '') throw new ShellRefusal('the command ends with a lone backslash');
      if (next === '\n') {
        i += 2; // line continuation: removed entirely, does not end the word
        continue;
      }
      appendQuoted(startWord(), next);
      i += 2;
      continue;
    }
    if (c === "'") {
      const close = src.indexOf("'", i + 1);
      if (close < 0) throw new ShellRefusal('the command has an unterminated single quote');
      appendQuoted(startWord(), src.slice(i + 1, close));
      i = close + 1;
      continue;
    }
    if (c === '"') {
      const w = startWord();
      i = readDoubleQuoted(src, i, w);
      continue;
    }
    if (c === '`') throw new ShellRefusal('command substitution with backticks (`...`) is not allowed');
    if (c === '$') {
      const next = src.charAt(i + 1);
      if (next === '' || BLANK.has(next) || next === '\n' || next === ';' || next === '|' || next === '&') {
        // A `$` that starts no expansion is a literal dollar (e.g. the regex anchor in `grep foo$`).
        const w = startWord();
        w.text += '$';
        w.digitsOnly = false;
        i++;
        continue;
      }
      throw new ShellRefusal(describeDollar(src, i));
    }
    if ((c === '<' || c === '>') && src.charAt(i + 1) === '(') {
      throw new ShellRefusal(`process substitution (${c}(...)) is not allowed`);
    }
    if (c === '(' || c === ')') {
      throw new ShellRefusal('subshells, function definitions and other uses of ( ) are not allowed');
    }
    if (c === '{' || c === '}') {
      // `{}` standing alone is an ordinary word in bash (find's placeholder); anything else may be a
      // brace group or a brace expansion, which can assemble new words.
      const after = src.charAt(i + 2);
      if (
        c === '{' &&
        word === undefined &&
        src.charAt(i + 1) === '}' &&
        (after === '' || METACHARS.has(after))
      ) {
        const w = startWord();
        w.text += '{}';
        w.digitsOnly = false;
        i += 2;
        continue;
      }
      throw new ShellRefusal('brace groups and brace expansion ({ }) are not allowed; quote the braces');
    }
    if (c === '|' || c === '&' || c === ';' || c === '<' || c === '>') {
      const fdWord =
        (c === '<' || c === '>') && word?.digitsOnly === true && word.text !== '' ? word : undefined;
      if (fdWord === undefined) endWord();
      else word = undefined;
      i = readOperator(src, i, tokens, fdWord);
      continue;
    }
    if (c.charCodeAt(0) > 0x7e) {
      throw new ShellRefusal(
        `the command has a non-ASCII character (${JSON.stringify(c)}) outside quotes; put it inside single quotes`,
      );
    }
    const w = startWord();
    if (GLOB_CHARS.has(c)) {
      // Quotes around nothing (`''*`) add nothing: the expansion can still start with anything.
      if (w.text === '') w.globAtStart = true;
      w.glob = true;
    }
    w.text += c;
    if (c < '0' || c > '9') w.digitsOnly = false;
    i++;
  }
  endWord();
  return tokens;
}

function appendQuoted(w: WordBuilder, text: string): void {
  w.text += text;
  w.quoted = true;
  w.digitsOnly = false;
}

/** Reads a `"..."` string starting at `start` into `w`; returns the index after the closing quote. */
function readDoubleQuoted(src: string, start: number, w: WordBuilder): number {
  let text = '';
  let i = start + 1;
  for (;;) {
    if (i >= src.length) throw new ShellRefusal('the command has an unterminated double quote');
    const c = src.charAt(i);
    if (c === '"') break;
    if (c === '\\') {
      const next = src.charAt(i + 1);
      if (next === '\n') {
        i += 2;
        continue;
      }
      if (next === '$' || next === '`' || next === '"' || next === '\\') {
        text += next;
        i += 2;
        continue;
      }
      text += '\\'; // inside double quotes other backslashes are literal
      i++;
      continue;
    }
    if (c === '`')
      throw new ShellRefusal(
        'command substitution with backticks (`...`) is not allowed, even inside quotes',
      );
    if (c === '$') {
      const next = src.charAt(i + 1);
      // Inside double quotes `$"` (end of string) and `$ ` are literal; `$'` is literal too.
      if (next === '"' || next === "'" || BLANK.has(next) || next === '\n') {
        text += '$';
        i++;
        continue;
      }
      throw new ShellRefusal(describeDollar(src, i) + ', even inside double quotes');
    }
    text += c;
    i++;
  }
  appendQuoted(w, text);
  return i + 1;
}

/** Why the `$` at `at` is refused. */
function describeDollar(src: string, at: number): string {
  const next = src.charAt(at + 1);
  const after = src.charAt(at + 2);
  if (next === '(') {
    return after === '('
      ? 'arithmetic expansion $((...)) is not allowed'
      : 'command substitution $(...) is not allowed';
  }
  if (next === '{') return 'parameter expansion ${...} is not allowed';
  if (next === '[') return 'arithmetic expansion $[...] is not allowed';
  if (next === "'") return "ANSI-C quoting $'...' is not supported; use plain single quotes";
  if (next === '"') return 'locale quoting $"..." is not supported; use plain double quotes';
  if (/[A-Za-z_0-9@*#?!$-]/.test(next)) {
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(at + 1))?.[0] ?? next;
    return `variable expansion ($${name}) is not allowed; write the value literally`;
  }
  return `a '$' followed by '${next}' must be quoted (write '$' inside single quotes)`;
}

/** Reads the operator at `start` (a connector or a redirection with its target); returns the next index. */
function readOperator(src: string, start: number, tokens: Token[], fdWord: WordBuilder | undefined): number {
  const c = src.charAt(start);
  const two = src.slice(start, start + 2);
  const three = src.slice(start, start + 3);
  if (c === '|') {
    if (two === '||') return pushConnector(tokens, '||', start + 2);
    if (two === '|&') return pushConnector(tokens, '|&', start + 2);
    return pushConnector(tokens, '|', start + 1);
  }
  if (c === ';') {
    if (two === ';;' || two === ';&') throw new ShellRefusal(`'${two}' (case syntax) is not allowed`);
    return pushConnector(tokens, ';', start + 1);
  }
  if (c === '&') {
    if (two === '&&') return pushConnector(tokens, '&&', start + 2);
    if (three === '&>>') return readRedirect(src, start, start + 3, '&>>', tokens, undefined);
    if (two === '&>') return readRedirect(src, start, start + 2, '&>', tokens, undefined);
    throw new ShellRefusal('running commands in the background (&) is not allowed');
  }
  const fd = fdWord === undefined ? undefined : Number(fdWord.text);
  const from = fdWord === undefined ? start : fdWord.start;
  if (c === '<') {
    if (three === '<<<') return readRedirect(src, from, start + 3, '<<<', tokens, fd);
    if (two === '<<') throw new ShellRefusal('heredocs (<<) are not allowed');
    if (two === '<&') return readRedirect(src, from, start + 2, '<&', tokens, fd);
    if (two === '<>') return readRedirect(src, from, start + 2, '<>', tokens, fd);
    return readRedirect(src, from, start + 1, '<', tokens, fd);
  }
  // c === '>'
  if (two === '>>') return readRedirect(src, from, start + 2, '>>', tokens, fd);
  if (two === '>&') return readRedirect(src, from, start + 2, '>&', tokens, fd);
  if (two === '>|') return readRedirect(src, from, start + 2, '>|', tokens, fd);
  return readRedirect(src, from, start + 1, '>', tokens, fd);
}

function pushConnector(tokens: Token[], op: Connector, next: number): number {
  tokens.push({ kind: 'connector', op });
  return next;
}

/** Reads the target word of a redirection that starts at `from` and whose operator ends at `opEnd`. */
function readRedirect(
  src: string,
  from: number,
  opEnd: number,
  op: RedirectOp,
  tokens: Token[],
  fd: number | undefined,
): number {
  let i = opEnd;
  while (BLANK.has(src.charAt(i))) i++;
  const next = src.charAt(i);
  if (next === '' || next === '\n' || METACHARS.has(next)) {
    if (next === '(' && (op === '<' || op === '>'))
      throw new ShellRefusal(`process substitution is not allowed`);
    throw new ShellRefusal(`the redirection '${src.slice(from, opEnd)}' has no target`);
  }
  // Tokenize just the target word: everything up to the next metacharacter, with quoting.
  const sub = tokenizeOneWord(src, i);
  const redirect: Redirect = { op, target: sub.word, raw: src.slice(from, sub.end) };
  if (fd !== undefined) redirect.fd = fd;
  tokens.push({ kind: 'redirect', redirect });
  return sub.end;
}

function tokenizeOneWord(src: string, start: number): { word: Word; end: number } {
  // Find the end of the word by scanning with quote awareness, then reuse the tokenizer on that slice.
  let i = start;
  while (i < src.length) {
    const c = src.charAt(i);
    if (METACHARS.has(c)) break;
    if (c === '\\') i += 2;
    else if (c === "'") {
      const close = src.indexOf("'", i + 1);
      if (close < 0) throw new ShellRefusal('the command has an unterminated single quote');
      i = close + 1;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src.charAt(j) !== '"') j += src.charAt(j) === '\\' ? 2 : 1;
      if (j >= src.length) throw new ShellRefusal('the command has an unterminated double quote');
      i = j + 1;
    } else i++;
  }
  const end = Math.min(i, src.length);
  const inner = tokenize(src.slice(start, end));
  const first = inner[0];
  if (inner.length !== 1 || first?.kind !== 'word') {
    throw new ShellRefusal(`the redirection target '${src.slice(start, end)}' is not a plain word`);
  }
  return { word: first.word, end };
}

function assemble(tokens: readonly Token[]): CommandLine {
  const commands: SimpleCommand[] = [];
  const connectors: Connector[] = [];
  let current: SimpleCommand = { words: [], redirects: [] };
  let pendingJoin: Connector | undefined; // a connector that needs a command after it
  const isEmpty = (c: SimpleCommand): boolean => c.words.length === 0 && c.redirects.length === 0;

  for (const t of tokens) {
    if (t.kind === 'word') current.words.push(t.word);
    else if (t.kind === 'redirect') current.redirects.push(t.redirect);
    else if (isEmpty(current)) {
      // Blank lines, and newlines after `|`, `&&`, `||`, are fine; any other connector needs a command before it.
      if (t.op !== '\n') {
        throw new ShellRefusal(`syntax error: '${t.op}' without a command before it`);
      }
    } else {
      commands.push(current);
      connectors.push(t.op);
      current = { words: [], redirects: [] };
      pendingJoin = t.op === ';' || t.op === '\n' ? undefined : t.op;
      continue;
    }
    if (t.kind !== 'connector') pendingJoin = undefined;
  }
  if (!isEmpty(current)) commands.push(current);
  else if (pendingJoin !== undefined)
    throw new ShellRefusal(`syntax error: the command ends with '${pendingJoin}'`);
  else if (connectors.length > 0) connectors.pop(); // trailing `;` or newline
  if (commands.length === 0) throw new ShellRefusal('the command is empty');
  return { commands, connectors };
}
