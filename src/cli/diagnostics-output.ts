/**
 * Printing diagnostics for people (text with a source excerpt), for GitHub
 * Actions (annotations) and for machines (JSON). The first line of every
 * text diagnostic is the one parseable format of product.md §4:
 * `file:LINE:COL: error: path: message`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  formatDiagnostic,
  formatGithubDiagnostic,
  sortDiagnostics,
  type Diagnostic,
  type Severity,
} from '../workflow/diagnostic.js';
import { println, styles, type CliIo } from './io.js';

/** GitHub shows at most 10 annotations per type per step; the rest are dropped silently. */
export const MAX_GITHUB_ANNOTATIONS = 10;

/** Reads source lines for excerpts, once per file; `undefined` when unreadable (e.g. `<command line>`). */
class SourceCache {
  readonly #cwd: string;
  readonly #files = new Map<string, string[] | undefined>();

  constructor(cwd: string) {
    this.#cwd = cwd;
  }

  line(file: string, line: number): string | undefined {
    if (!this.#files.has(file)) {
      let lines: string[] | undefined;
      try {
        lines = readFileSync(path.resolve(this.#cwd, file), 'utf8').split(/\r?\n/);
      } catch {
        lines = undefined;
      }
      this.#files.set(file, lines);
    }
    return this.#files.get(file)?.[line - 1];
  }
}

/** Two lines: the source line and a caret (or `^~~~` over the range) under the column. */
function excerpt(d: Diagnostic, sources: SourceCache, mark: (s: string) => string): string[] {
  const { line, col } = d.location.start;
  const text = sources.line(d.location.file, line);
  if (text === undefined || text.length > 300) return [];
  const gutter = String(line).length + 2;
  const end = d.location.end;
  const width = end && end.line === line && end.col > col ? end.col - col : 1;
  // Keep tabs so the caret lines up with the source as the terminal shows it.
  const pad = text.slice(0, Math.max(0, col - 1)).replace(/[^\t]/g, ' ');
  const underline =
    width > 1 ? '^' + '~'.repeat(Math.min(width, Math.max(1, text.length - col + 1)) - 1) : '^';
  return [
    `${' '.repeat(gutter - String(line).length - 1)}${line} | ${text}`,
    `${' '.repeat(gutter)}| ${pad}${mark(underline)}`,
  ];
}

/** Counts by severity. */
export function countDiagnostics(ds: readonly Diagnostic[]): Record<Severity, number> {
  const counts: Record<Severity, number> = { error: 0, warning: 0 };
  for (const d of ds) counts[d.severity]++;
  return counts;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `2 errors and 1 warning`, `1 warning`, `no problems`. */
export function describeCounts(ds: readonly Diagnostic[]): string {
  const c = countDiagnostics(ds);
  const parts = [
    c.error > 0 ? plural(c.error, 'error') : '',
    c.warning > 0 ? plural(c.warning, 'warning') : '',
  ];
  return parts.filter((p) => p !== '').join(' and ') || 'no problems';
}

/**
 * Every diagnostic, sorted, as `file:LINE:COL: severity: path: message`,
 * each followed (when `excerpts`) by the source line with a caret.
 */
export function printDiagnosticsText(
  ds: readonly Diagnostic[],
  io: CliIo,
  stream: 'stdout' | 'stderr',
  options: { excerpts?: boolean } = {},
): void {
  const s = styles(io, stream);
  const sink = io[stream];
  const sources = new SourceCache(io.cwd);
  for (const d of sortDiagnostics(ds)) {
    const line = formatDiagnostic(d);
    const tag = `: ${d.severity}: `;
    const colored = d.severity === 'error' ? s.red(`${d.severity}:`) : s.yellow(`${d.severity}:`);
    const i = line.indexOf(tag);
    println(sink, i < 0 ? line : `${s.bold(line.slice(0, i + 1))} ${colored} ${line.slice(i + tag.length)}`);
    if (options.excerpts) {
      for (const l of excerpt(d, sources, d.severity === 'error' ? s.red : s.yellow)) println(sink, s.dim(l));
    }
  }
}

/**
 * The plain lines (no excerpts) followed by GitHub annotations: at most
 * {@link MAX_GITHUB_ANNOTATIONS} per severity, then one `::notice::` saying
 * how many were left out (GitHub would drop them silently).
 */
export function printDiagnosticsGithub(ds: readonly Diagnostic[], io: CliIo): void {
  const sorted = sortDiagnostics(ds);
  for (const d of sorted) println(io.stdout, formatDiagnostic(d));
  const shown: Record<Severity, number> = { error: 0, warning: 0 };
  const left: Record<Severity, number> = { error: 0, warning: 0 };
  for (const d of sorted) {
    if (shown[d.severity] < MAX_GITHUB_ANNOTATIONS) {
      shown[d.severity]++;
      println(io.stdout, formatGithubDiagnostic(d));
    } else left[d.severity]++;
  }
  const notes = [
    left.error > 0 ? plural(left.error, 'error') : '',
    left.warning > 0 ? plural(left.warning, 'warning') : '',
  ]
    .filter((p) => p !== '')
    .join(' and ');
  if (notes !== '')
    println(
      io.stdout,
      `::notice::${notes} not annotated (GitHub shows at most ${MAX_GITHUB_ANNOTATIONS} per type); see the log above`,
    );
}
