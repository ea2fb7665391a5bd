/**
 * Dataset files for `strategy.dataset`: JSONL, one JSON object per line (blank
 * lines skipped). Every bad line is reported at its line and column in the
 * dataset file.
 */
import { readFile } from 'node:fs/promises';
import type { ExprValue } from '../expr/evaluate.js';
import type { Diagnostic } from './diagnostic.js';

/** At most this many bad lines are reported one by one. */
const MAX_LINE_ERRORS = 20;

export interface DatasetLoad {
  items: Array<Record<string, ExprValue>>;
  /** 1-based line of each item. */
  lines: number[];
  /** Union of the items' keys, in first-seen order. */
  keys: string[];
  diagnostics: Diagnostic[];
  bytes?: Buffer;
  notFound?: boolean;
}

/** Column (0-based) of a JSON.parse error in `line`, from V8's message or a best guess. */
function errorColumn(message: string, line: string): number {
  const m = /at position (\d+)/.exec(message);
  if (m) return Number(m[1]);
  const token = /^Unexpected token '(.)'/.exec(message)?.[1];
  if (token !== undefined) {
    let inString = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === token) return i;
    }
  }
  if (/end of JSON input/.test(message)) return line.trimEnd().length;
  return line.length - line.trimStart().length;
}

function cleanMessage(message: string): string {
  const text = message
    .replace(/ in JSON at position \d+(?: \(line \d+ column \d+\))?/, '')
    .replace(/, ".*" is not valid JSON$/s, '');
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** Parses JSONL text. `file` is the display path for diagnostics. */
export function parseDataset(text: string, file: string): Omit<DatasetLoad, 'bytes' | 'notFound'> {
  const items: Array<Record<string, ExprValue>> = [];
  const lines: number[] = [];
  const keys = new Set<string>();
  const diagnostics: Diagnostic[] = [];
  let bad = 0;
  const report = (line: number, col: number, message: string): void => {
    bad++;
    if (bad > MAX_LINE_ERRORS) return;
    diagnostics.push({
      severity: 'error',
      path: '',
      message,
      location: { file, start: { line, col: col + 1 } },
    });
  };
  const rows = text.split('\n');
  rows.forEach((raw, i) => {
    const row = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (row.trim() === '') return;
    const lineNo = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(row);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      report(lineNo, errorColumn(message, row), `invalid JSON: ${cleanMessage(message)}`);
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      report(
        lineNo,
        row.length - row.trimStart().length,
        `each line must be a JSON object, got ${describe(value)}`,
      );
      return;
    }
    const item = value as Record<string, ExprValue>;
    for (const k of Object.keys(item)) keys.add(k);
    items.push(item);
    lines.push(lineNo);
  });
  if (bad > MAX_LINE_ERRORS) {
    const first = diagnostics[diagnostics.length - 1];
    diagnostics.push({
      severity: 'error',
      path: '',
      message: `${bad - MAX_LINE_ERRORS} more invalid lines not shown`,
      location: { file, start: first?.location.start ?? { line: 1, col: 1 } },
    });
  }
  return { items, lines, keys: [...keys], diagnostics };
}

/** Reads and parses a dataset file. Never throws; a missing file sets `notFound`. */
export async function loadDataset(absPath: string, file: string): Promise<DatasetLoad> {
  let bytes: Buffer;
  try {
    bytes = await readFile(absPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return { items: [], lines: [], keys: [], diagnostics: [], notFound: true };
    return {
      items: [],
      lines: [],
      keys: [],
      diagnostics: [
        {
          severity: 'error',
          path: '',
          message: `cannot read the dataset: ${(e as Error).message}`,
          location: { file, start: { line: 1, col: 1 } },
        },
      ],
    };
  }
  return { ...parseDataset(bytes.toString('utf8'), file), bytes };
}
