/**
 * Option scanning for the restricted shell's per-command checks, modelled on
 * GNU `getopt_long`: short options bundle (`-nE`), a short option that takes
 * an argument swallows the rest of its bundle or the next word, long options
 * take `--name=value` or `--name value`, `--` ends options, and options may
 * follow operands (GNU permutes argv: `sort f -o out` writes `out`).
 *
 * Safety note: listing an option as argument-taking when it is not would
 * make the scanner skip the next word, which could hide a dangerous option;
 * listing too few only causes false refusals. The `withArg` sets below are
 * therefore exact or smaller than the real tools'.
 */
import { ShellRefusal, type Word } from './shell-lexer.js';

export interface OptionSpec {
  /** Short option letters that take an argument. */
  shortWithArg?: string;
  /** Short option letters with an optional argument: it is the rest of the bundle (`-I[FMT]`), never the next word. */
  shortOptionalArg?: string;
  /** Long option names (without `--`) that take a required argument. Matched exactly. */
  longWithArg?: readonly string[];
  /** Options end at the first operand (POSIX `getopt`, no permutation). */
  stopAtOperand?: boolean;
}

export type ParsedArg =
  | { kind: 'short'; letter: string; value?: string; word: Word }
  | { kind: 'long'; name: string; value?: string; word: Word }
  | { kind: 'operand'; word: Word; afterDashDash: boolean };

/**
 * Splits `args` into options and operands. Refuses a glob that could expand
 * into an option (one starting with a glob character or `-`, before `--`):
 * a file named `--output=x` would otherwise turn `sort *` into a write.
 */
export function scanOptions(command: string, args: readonly Word[], spec: OptionSpec = {}): ParsedArg[] {
  const out: ParsedArg[] = [];
  const shortWithArg = spec.shortWithArg ?? '';
  const longWithArg = new Set(spec.longWithArg ?? []);
  let optionsDone = false;
  let afterDashDash = false;
  for (let i = 0; i < args.length; i++) {
    const word = args[i];
    if (word === undefined) break;
    // After `--`, or after the first operand of a non-permuting parser, no word is read as an option.
    if (!afterDashDash && !optionsDone) refuseOptionGlob(command, word);
    const t = word.text;
    if (optionsDone || t === '-' || !t.startsWith('-')) {
      out.push({ kind: 'operand', word, afterDashDash });
      if (spec.stopAtOperand === true) optionsDone = true;
      continue;
    }
    if (t === '--') {
      optionsDone = true;
      afterDashDash = true;
      continue;
    }
    if (t.startsWith('--')) {
      const eq = t.indexOf('=');
      const name = eq < 0 ? t.slice(2) : t.slice(2, eq);
      if (eq >= 0) out.push({ kind: 'long', name, value: t.slice(eq + 1), word });
      else if (longWithArg.has(name)) {
        const value = args[i + 1];
        i++;
        if (value !== undefined) refuseValueGlob(command, value);
        out.push(
          value === undefined
            ? { kind: 'long', name, word }
            : { kind: 'long', name, value: value.text, word },
        );
      } else out.push({ kind: 'long', name, word });
      continue;
    }
    for (let j = 1; j < t.length; j++) {
      const letter = t.charAt(j);
      if (spec.shortOptionalArg?.includes(letter) === true) {
        const rest = t.slice(j + 1);
        out.push(
          rest === '' ? { kind: 'short', letter, word } : { kind: 'short', letter, value: rest, word },
        );
        break;
      }
      if (shortWithArg.includes(letter)) {
        const rest = t.slice(j + 1);
        if (rest !== '') out.push({ kind: 'short', letter, value: rest, word });
        else {
          const value = args[i + 1];
          i++;
          if (value !== undefined) refuseValueGlob(command, value);
          out.push(
            value === undefined
              ? { kind: 'short', letter, word }
              : { kind: 'short', letter, value: value.text, word },
          );
        }
        break;
      }
      out.push({ kind: 'short', letter, word });
    }
  }
  return out;
}

/** Refuses a glob word that could expand to something starting with `-`. */
export function refuseOptionGlob(command: string, word: Word): void {
  if (word.glob && (word.globAtStart || word.text.startsWith('-'))) {
    throw new ShellRefusal(
      `the glob '${word.raw}' could expand to a file name that ${command} reads as an option; ` +
        `quote it if ${command} should see the pattern itself, or start it with './' ` +
        `(e.g. './${word.text.replace(/^-+/, '')}') or put it after '--'`,
    );
  }
}

/** A glob as an option's value may expand to several words and shift every word after it. */
function refuseValueGlob(command: string, word: Word): void {
  if (word.glob) {
    throw new ShellRefusal(
      `the glob '${word.raw}' as an option value of ${command} is not allowed; quote it`,
    );
  }
}

/** True when `given` (as typed after `--`) names `full` or abbreviates it, as getopt_long accepts. */
export function longMatches(given: string, full: string): boolean {
  return given.length > 0 && full.startsWith(given);
}

/** The operands of a scan. */
export function operands(parsed: readonly ParsedArg[]): Word[] {
  return parsed.flatMap((p) => (p.kind === 'operand' ? [p.word] : []));
}

/** Display form of a parsed option, for messages. */
export function optionName(p: ParsedArg): string {
  if (p.kind === 'short') return `-${p.letter}`;
  if (p.kind === 'long') return `--${p.name}`;
  return p.word.text;
}
