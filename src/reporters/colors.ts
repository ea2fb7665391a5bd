/**
 * Colour decisions and ANSI styling for terminal output (ci-conventions.md
 * §4.2). Order of precedence: `--color` / `--no-color`, then `FORCE_COLOR`
 * (Node semantics: `1`, `2`, `3`, `true` or empty force colour; any other
 * value disables it, and a forcing value wins over `NO_COLOR`), then
 * `NO_COLOR` (present and non-empty disables), then: colour only on a TTY
 * whose `TERM` is not `dumb`.
 */
import type { JobStatus } from '../results/types.js';
import { unreachable } from '../util/unreachable.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Whether to colour output written to `stream`. `flag` is `--color` (true) / `--no-color` (false). */
export function shouldUseColor(options: { flag?: boolean; env: Env; stream: { isTTY?: boolean } }): boolean {
  if (options.flag !== undefined) return options.flag;
  const force = options.env.FORCE_COLOR;
  if (force !== undefined) return ['', '1', '2', '3', 'true'].includes(force);
  const no = options.env.NO_COLOR;
  if (no !== undefined && no !== '') return false;
  if (options.env.TERM === 'dumb') return false;
  return options.stream.isTTY === true;
}

export type Style = (text: string) => string;

/** The styles reporters use; identity functions when colour is off. */
export interface Palette {
  readonly enabled: boolean;
  red: Style;
  green: Style;
  yellow: Style;
  blue: Style;
  magenta: Style;
  cyan: Style;
  gray: Style;
  bold: Style;
  dim: Style;
}

function sgr(open: number, close: number): Style {
  return (text) => (text === '' ? '' : `\x1b[${open}m${text}\x1b[${close}m`);
}

const plain: Style = (text) => text;

/** A palette with ANSI SGR codes, or one that leaves text untouched. */
export function palette(enabled: boolean): Palette {
  if (!enabled) {
    return {
      enabled,
      red: plain,
      green: plain,
      yellow: plain,
      blue: plain,
      magenta: plain,
      cyan: plain,
      gray: plain,
      bold: plain,
      dim: plain,
    };
  }
  return {
    enabled,
    red: sgr(31, 39),
    green: sgr(32, 39),
    yellow: sgr(33, 39),
    blue: sgr(34, 39),
    magenta: sgr(35, 39),
    cyan: sgr(36, 39),
    gray: sgr(90, 39),
    bold: sgr(1, 22),
    dim: sgr(2, 22),
  };
}

/** The colour of a job / step status. */
export function statusStyle(p: Palette, status: JobStatus): Style {
  switch (status) {
    case 'passed':
      return p.green;
    case 'failed':
    case 'error':
      return p.red;
    case 'timed-out':
      return p.magenta;
    case 'cancelled':
    case 'skipped':
      return p.yellow;
    default:
      throw new Error(`Unknown status: ${unreachable(status)}`);
  }
}

/** A one-character mark per status (`ascii` for terminals without Unicode). */
export function statusSymbol(status: JobStatus, ascii = false): string {
  switch (status) {
    case 'passed':
      return ascii ? '+' : '✔';
    case 'failed':
      return ascii ? 'x' : '✖';
    case 'timed-out':
      return ascii ? 'T' : '⏱';
    case 'error':
      return ascii ? '!' : '⊗';
    case 'cancelled':
      return ascii ? '-' : '⊘';
    case 'skipped':
      return ascii ? '>' : '↷';
    default:
      throw new Error(`Unknown status: ${unreachable(status)}`);
  }
}

// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

/** Text without ANSI escape sequences. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_RE, '');
}
