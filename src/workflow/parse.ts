/**
 * YAML text → `yaml` Document + plain data, with every YAML-level problem as a
 * positioned diagnostic: syntax errors, duplicate keys, several documents in
 * one file, tabs, and values that became a mapping because they began with
 * `{{`. YAML 1.2 core schema (so `off`/`no` stay strings), merge keys on.
 */
import {
  LineCounter,
  Scalar,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  type Document,
  type Node,
  type YAMLError,
} from 'yaml';
import type { Diagnostic, Severity } from './diagnostic.js';
import { formatPath, positionOf, type DocPath } from './yaml-locate.js';

/** A parsed YAML file, kept together with what is needed to point into it. */
export interface ParsedYaml {
  /** Display path used in diagnostics. */
  file: string;
  text: string;
  doc: Document;
  lineCounter: LineCounter;
  /** The plain data (`doc.toJS()`); `undefined` when the YAML itself has errors. */
  data: unknown;
  /** YAML-level problems (errors and warnings). */
  diagnostics: Diagnostic[];
}

export interface ParseYamlOptions {
  /** What the file is, for messages: "a workflow file" (default), "a profile file", … */
  what?: string;
}

/** Options every rho-flow YAML parse uses. */
const PARSE_OPTIONS = { uniqueKeys: true, merge: true, prettyErrors: false, version: '1.2' } as const;

/** Guards against alias bombs; the `yaml` default. */
const MAX_ALIAS_COUNT = 100;

type Walker = (node: Node, path: DocPath, parent: Node | undefined) => void;

/** Visits every node with its JSON path (map keys as strings, sequence indexes as numbers). */
function walk(node: unknown, path: DocPath, parent: Node | undefined, cb: Walker): void {
  if (!node || typeof node !== 'object') return;
  const n = node as Node;
  cb(n, path, parent);
  if (isMap(n)) {
    for (const pair of n.items) {
      const k = pair.key;
      const key = isScalar(k) ? String(k.value) : '?';
      walk(pair.value, [...path, key], n, cb);
    }
  } else if (isSeq(n)) {
    n.items.forEach((item, i) => walk(item, [...path, i], n, cb));
  }
}

function diag(
  parsed: { file: string; lineCounter: LineCounter },
  severity: Severity,
  offset: number,
  path: DocPath,
  message: string,
): Diagnostic {
  return {
    severity,
    path: formatPath(path),
    message,
    location: { file: parsed.file, start: positionOf(parsed.lineCounter, offset) },
  };
}

/** Finds the duplicated key at `offset`: its path and where it was first defined. */
function duplicateKey(
  doc: Document,
  offset: number,
): { path: DocPath; key: string; first: number } | undefined {
  let found: { path: DocPath; key: string; first: number } | undefined;
  walk(doc.contents, [], undefined, (node, path) => {
    if (found || !isMap(node)) return;
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      const k = pair.key;
      if (!isScalar(k) || !k.range) continue;
      const key = String(k.value);
      const first = seen.get(key);
      if (first !== undefined && k.range[0] === offset) {
        found = { path: [...path, key], key, first };
        return;
      }
      if (first === undefined) seen.set(key, k.range[0]);
    }
  });
  return found;
}

function lineAt(text: string, offset: number): string {
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  const end = text.indexOf('\n', offset);
  return text.slice(start, end < 0 ? text.length : end);
}

function yamlErrorMessage(e: YAMLError, text: string, what: string): string {
  const raw = e.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '');
  const base = `${raw.charAt(0).toLowerCase()}${raw.slice(1)}`;
  switch (e.code) {
    case 'MULTIPLE_DOCS':
      return `${what} holds exactly one YAML document, but another one starts here; remove the '---' line or move the rest to its own file`;
    case 'TAB_AS_INDENT':
      return 'tabs are not allowed for indentation in YAML; indent with spaces';
    case 'BLOCK_AS_IMPLICIT_KEY':
      return `${base}; if a value contains ': ', quote it`;
    default: {
      const line = lineAt(text, e.pos[0]);
      const brace = /(?:^|[:-]\s)\s*(\{\{.*?\}\})/.exec(line);
      const hint = brace ? `; a value that starts with '{{' must be quoted: "${brace[1] ?? ''}"` : '';
      return `${base}${hint}`;
    }
  }
}

/**
 * Parses one YAML file. Never throws: problems come back as diagnostics, and
 * `data` is undefined when the YAML itself is broken (later checks need a
 * sound document). A value that YAML read as a mapping because it began with
 * `{{` is reported once and replaced by its source text, so the schema does
 * not report the same mistake again.
 */
export function parseYaml(text: string, file: string, options: ParseYamlOptions = {}): ParsedYaml {
  const what = options.what ?? 'a workflow file';
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { ...PARSE_OPTIONS, lineCounter });
  const parsed: ParsedYaml = { file, text, doc, lineCounter, data: undefined, diagnostics: [] };
  const out = parsed.diagnostics;

  for (const e of doc.errors) {
    if (e.code === 'DUPLICATE_KEY') {
      const dup = duplicateKey(doc, e.pos[0]);
      if (dup) {
        const first = positionOf(lineCounter, dup.first);
        out.push(
          diag(
            parsed,
            'error',
            e.pos[0],
            dup.path,
            `duplicate key '${dup.key}' (first defined at line ${first.line})`,
          ),
        );
        continue;
      }
    }
    out.push(diag(parsed, 'error', e.pos[0], [], yamlErrorMessage(e, text, what)));
  }
  for (const w of doc.warnings)
    out.push(diag(parsed, 'warning', w.pos[0], [], yamlErrorMessage(w, text, what)));
  if (doc.errors.length > 0) return parsed;

  // `key: {{ x }}` is a flow mapping whose only key is another mapping.
  const replacements: Array<{ parent: Node | undefined; node: Node; path: DocPath }> = [];
  const complex = { keys: false };
  walk(doc.contents, [], undefined, (node, path, parent) => {
    if (!isMap(node) || !node.range) return;
    if (text.startsWith('{{', node.range[0])) replacements.push({ parent, node, path });
    else if (node.items.some((p) => p.key !== null && typeof p.key === 'object' && !isScalar(p.key))) {
      complex.keys = true;
      out.push(diag(parsed, 'error', node.range[0], path, 'mapping keys must be plain strings'));
    }
  });
  for (const r of replacements) {
    const [start, end] = r.node.range ?? [0, 0];
    const source = text.slice(start, end);
    out.push(
      diag(
        parsed,
        'error',
        start,
        r.path,
        `a value that starts with '{{' is read as a YAML mapping; quote it: "${source}"`,
      ),
    );
    const scalar = new Scalar(source);
    scalar.range = [start, end, end];
    scalar.type = 'PLAIN';
    const last = r.path[r.path.length - 1];
    if (r.parent === undefined) (doc as Document).contents = scalar;
    else if (isSeq(r.parent) && typeof last === 'number') r.parent.items[last] = scalar;
    else if (isMap(r.parent)) {
      const pair = r.parent.items.find((p) => p.value === r.node);
      if (pair) pair.value = scalar;
    }
  }

  // toJS() would stringify collection keys with a process warning; stop here instead.
  if (complex.keys) return parsed;
  try {
    parsed.data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    out.push(
      diag(parsed, 'error', 0, [], `cannot read the YAML: ${e instanceof Error ? e.message : String(e)}`),
    );
  }
  return parsed;
}
