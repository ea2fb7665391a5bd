/**
 * Read-only check of a GNU sed script. It walks the script the way GNU sed's
 * compiler does (compile.c: addresses, `match_slash` with bracket
 * expressions, `mark_subst_opts`, `read_label`, `read_text`, filenames to end
 * of line) so that it sees the same command boundaries sed will, then
 * refuses the commands that write files or run programs: `w`, `W`, `e`, and
 * the `s` flags `w` and `e`. Anything it cannot follow (an unknown command,
 * an unterminated regex, junk after a command) is refused too: sed would
 * reject most of those anyway, and a parse that disagreed with sed's could
 * hide a `w`.
 */
import { ShellRefusal } from './shell-lexer.js';

const isBlank = (c: string): boolean => c === ' ' || c === '\t';
const isSpace = (c: string): boolean =>
  c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
const isDigit = (c: string): boolean => c >= '0' && c <= '9';

/** Commands that take no argument (`read_end_of_cmd` follows). */
const PLAIN_COMMANDS = new Set(['=', 'd', 'D', 'F', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P', 'z', 'x']);

class SedRefusal extends ShellRefusal {}

function refuse(why: string): never {
  throw new SedRefusal(`sed script refused: ${why}`);
}

/** Throws `ShellRefusal` unless `script` only reads its input and prints. */
export function checkSedScript(script: string): void {
  new SedParser(script).program();
}

class SedParser {
  readonly #s: string;
  #i = 0;
  constructor(s: string) {
    this.#s = s;
  }

  #peek(): string {
    return this.#s.charAt(this.#i);
  }
  #next(): string {
    const c = this.#s.charAt(this.#i);
    if (this.#i < this.#s.length) this.#i++;
    return c;
  }
  #skipBlanks(): void {
    while (isBlank(this.#peek())) this.#i++;
  }
  #nonBlank(): string {
    this.#skipBlanks();
    return this.#next();
  }
  #integer(): void {
    while (isDigit(this.#peek())) this.#i++;
  }

  program(): void {
    for (let guard = 0; guard <= this.#s.length; guard++) {
      while (this.#peek() === ';' || isSpace(this.#peek())) this.#i++;
      if (this.#i >= this.#s.length) return;
      let c = this.#next();
      if (c === '#') {
        this.#toEndOfLine();
        continue;
      }
      if (this.#address(c)) {
        c = this.#nonBlank();
        if (c === ',') {
          if (!this.#address(this.#nonBlank())) refuse('a ",", but no second address');
          c = this.#nonBlank();
        }
      }
      if (c === '!') c = this.#nonBlank();
      this.#command(c);
    }
    refuse('the script could not be followed');
  }

  /** Reads an address starting with `c` (already consumed); false when `c` starts none. */
  #address(c: string): boolean {
    if (c === '/' || c === '\\') {
      const delim = c === '\\' ? this.#next() : c;
      this.#matchSlash(delim, true, 'an address regex');
      for (;;) {
        this.#skipBlanks();
        const f = this.#peek();
        if (f !== 'I' && f !== 'M') break;
        this.#i++;
      }
      return true;
    }
    if (isDigit(c)) {
      this.#integer();
      this.#skipBlanks();
      if (this.#peek() === '~') {
        this.#i++;
        this.#skipBlanks();
        this.#integer();
      }
      return true;
    }
    if (c === '+' || c === '~') {
      this.#skipBlanks();
      this.#integer();
      return true;
    }
    return c === '$'; // otherwise `c` is the command character
  }

  #command(c: string): void {
    if (c === '') refuse('an address without a command');
    if (PLAIN_COMMANDS.has(c)) return this.#endOfCommand(c);
    switch (c) {
      case '{':
        return;
      case '}':
        return this.#endOfCommand(c);
      case 'w':
      case 'W':
        return refuse(`the '${c}' command writes to a file; print with 'p' instead`);
      case 'e':
        return refuse("the 'e' command runs a shell command");
      case 'a':
      case 'i':
      case 'c':
        return this.#text(c);
      case ':':
        if (this.#label() === '') refuse("':' without a label");
        return;
      case 'b':
      case 't':
      case 'T':
      case 'v':
        this.#label();
        return;
      case 'q':
      case 'Q':
      case 'l':
      case 'L':
        this.#skipBlanks();
        this.#integer();
        return this.#endOfCommand(c);
      case 'r':
      case 'R':
        // The file name runs to the end of the line (`;` included), exactly as sed reads it.
        this.#toEndOfLine();
        return;
      case 's':
        return this.#substitute();
      case 'y': {
        const delim = this.#next();
        this.#matchSlash(delim, false, "the 'y' command");
        this.#matchSlash(delim, false, "the 'y' command");
        return this.#endOfCommand(c);
      }
      default:
        return refuse(`unknown command '${c}'`);
    }
  }

  #substitute(): void {
    const delim = this.#next();
    this.#matchSlash(delim, true, "the 's' command");
    this.#matchSlash(delim, false, "the 's' command");
    for (;;) {
      const f = this.#nonBlank();
      if (f === 'w') refuse("the 's' command's 'w' flag writes to a file");
      if (f === 'e') refuse("the 's' command's 'e' flag runs the pattern space as a shell command");
      if ('iImMpg'.includes(f) && f !== '') continue;
      if (isDigit(f)) {
        this.#integer();
        continue;
      }
      if (f === '}' || f === '#') {
        this.#i--;
        return;
      }
      if (f === '' || f === '\n' || f === ';') return;
      refuse(`unknown flag '${f}' of the 's' command`);
    }
  }

  /** `a`, `i`, `c`: text to the end of the line; a backslash escapes the next character, newline included. */
  #text(c: string): void {
    this.#skipBlanks();
    if (this.#i >= this.#s.length) refuse(`'${c}' expects text`);
    if (this.#peek() === '\\') {
      this.#i++;
      this.#next(); // the lead-in character (often the newline of `a\`)
    }
    while (this.#i < this.#s.length && this.#peek() !== '\n') {
      if (this.#peek() === '\\') this.#i++;
      this.#i++;
    }
  }

  /** A label: up to a blank, `;`, `}`, `#` or newline (sed's `read_label`). */
  #label(): string {
    this.#skipBlanks();
    const start = this.#i;
    while (this.#i < this.#s.length && !';}#\n \t'.includes(this.#peek())) this.#i++;
    return this.#s.slice(start, this.#i);
  }

  #toEndOfLine(): void {
    while (this.#i < this.#s.length && this.#peek() !== '\n') this.#i++;
  }

  /** After a command: only blanks, then `;`, newline, end, or a `}` / `#` that starts the next command. */
  #endOfCommand(c: string): void {
    const n = this.#nonBlank();
    if (n === '}' || n === '#') {
      this.#i--;
      return;
    }
    if (n !== '' && n !== '\n' && n !== ';') refuse(`unexpected '${n}' after the '${c}' command`);
  }

  /** Reads up to and including the closing `delim` (sed's `match_slash`). */
  #matchSlash(delim: string, regex: boolean, what: string): void {
    if (delim === '' || delim === '\n') refuse(`${what} has no delimiter`);
    for (;;) {
      const c = this.#next();
      if (c === '' || c === '\n') refuse(`${what} is unterminated`);
      if (c === delim) return;
      if (c === '\\') {
        if (this.#next() === '') refuse(`${what} is unterminated`);
      } else if (c === '[' && regex) {
        if (this.#charClass() !== ']') refuse(`${what} has an unterminated bracket expression`);
      }
    }
  }

  /** Skips a bracket expression after its `[` (sed's `snarf_char_class`); returns the character it stopped at. */
  #charClass(): string {
    let c = this.#next();
    if (c === '^') c = this.#next();
    if (c === ']') c = this.#next();
    // 0: plain; 1: just after '['; 2: inside [: :] / [. .] / [= =]; 3: after its closing ':' / '.' / '='
    let state = 0;
    let delim = '';
    for (; ; c = this.#next()) {
      if (c === '' || c === '\n') return c;
      if (c === '.' || c === ':' || c === '=') {
        if (state === 1) {
          delim = c;
          state = 2;
          continue;
        }
        if (state === 2 && c === delim) {
          state = 3;
          continue;
        }
      } else if (c === '[') {
        if (state === 0) state = 1;
        continue;
      } else if (c === ']') {
        if (state === 0 || state === 1) return c;
        if (state === 3) state = 0;
      }
      state &= ~1;
    }
  }
}
