/**
 * What a command may touch of the outside world, passed in explicitly so
 * commands run the same in-process (tests) as in a real process: output
 * streams, environment, working directory, cancellation and colour.
 */
import type { Interrupts } from './signals.js';

/** Anything text can be written to (a `process.stdout`, or a test buffer). */
export interface TextSink {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths are resolved against. */
  cwd: string;
  /** Cancels long-running commands (`run`); set by `main.ts`. */
  signal?: AbortSignal;
  /** SIGINT/SIGTERM/SIGHUP for `run` (two-stage); set by `main.ts`, faked in tests. */
  interrupts?: Interrupts;
  /**
   * Whether each stream gets ANSI colour. Filled in by `runCli` from
   * `--color`/`--no-color`, `FORCE_COLOR`, `NO_COLOR`, `TERM` and the stream
   * being a TTY; absent means no colour.
   */
  color?: { stdout: boolean; stderr: boolean };
}

/** `--color` (`true`), `--no-color` (`false`) or neither. */
export type ColorFlag = boolean | undefined;

/**
 * Colour decision for one stream, in this order: the flag; `FORCE_COLOR`
 * (`0`/`false` off, anything else on — it wins over `NO_COLOR`, as in Node);
 * `NO_COLOR` (non-empty: off); `TERM=dumb` (off); else on for a TTY.
 */
export function wantsColor(flag: ColorFlag, env: CliIo['env'], stream: TextSink): boolean {
  if (flag !== undefined) return flag;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

export interface Styler {
  bold: (s: string) => string;
  dim: (s: string) => string;
  red: (s: string) => string;
  yellow: (s: string) => string;
  green: (s: string) => string;
  cyan: (s: string) => string;
}

const wrap =
  (open: number, close: number) =>
  (s: string): string =>
    `\u001b[${open}m${s}\u001b[${close}m`;

const ANSI: Styler = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  red: wrap(31, 39),
  yellow: wrap(33, 39),
  green: wrap(32, 39),
  cyan: wrap(36, 39),
};

const identity = (s: string): string => s;
const PLAIN: Styler = {
  bold: identity,
  dim: identity,
  red: identity,
  yellow: identity,
  green: identity,
  cyan: identity,
};

/** Styles for text written to `stream` (plain when colour is off for it). */
export function styles(io: CliIo, stream: 'stdout' | 'stderr'): Styler {
  return io.color?.[stream] ? ANSI : PLAIN;
}

/** Writes `text` plus a newline. */
export function println(sink: TextSink, text = ''): void {
  sink.write(`${text}\n`);
}
