/**
 * Diagnostics: problems found in input files, each with a position. The
 * validator collects all of them in one pass; the CLI prints them.
 */

/** A 1-based line/column position in a file. */
export interface Position {
  line: number;
  col: number;
}

/** Where a diagnostic points. `end` is exclusive and optional. */
export interface Location {
  file: string;
  start: Position;
  end?: Position;
}

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  /** JSON-path-like location inside the document, e.g. `steps[2].timeout`; `''` for the root. */
  path: string;
  message: string;
  location: Location;
}

/** `file:LINE:COL: error: path: message` — the one line format of product.md §4. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.location.file}:${d.location.start.line}:${d.location.start.col}`;
  const path = d.path === '' ? '' : `${d.path}: `;
  return `${where}: ${d.severity}: ${path}${d.message}`;
}

/** Escape a value for a GitHub workflow command message. */
export function escapeGithubData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Escape a value for a GitHub workflow command property. */
export function escapeGithubProperty(s: string): string {
  return escapeGithubData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** `::error file=…,line=…,col=…::message` for GitHub Actions annotations. */
export function formatGithubDiagnostic(d: Diagnostic): string {
  const props = [
    `file=${escapeGithubProperty(d.location.file)}`,
    `line=${d.location.start.line}`,
    `col=${d.location.start.col}`,
  ];
  if (d.location.end) props.push(`endLine=${d.location.end.line}`, `endColumn=${d.location.end.col}`);
  const path = d.path === '' ? '' : `${d.path}: `;
  return `::${d.severity} ${props.join(',')}::${escapeGithubData(path + d.message)}`;
}

/** Sort diagnostics by file, then line, then column (stable). */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return [...ds].sort(
    (a, b) =>
      a.location.file.localeCompare(b.location.file) ||
      a.location.start.line - b.location.start.line ||
      a.location.start.col - b.location.start.col,
  );
}
