/**
 * Positions inside YAML source: which node sits at a JSON path, and where a
 * character of a scalar's *value* came from in the file. The second part lets
 * a `${{ }}` error point at the exact column of the offending identifier even
 * when the value was quoted, escaped, folded or written as a block scalar.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Document,
  type LineCounter,
  type Node,
  type Scalar,
} from 'yaml';
import type { TemplateOrigin } from '../expr/template.js';
import type { Position } from './diagnostic.js';

/** A JSON path into a document: map keys and sequence indexes. */
export type DocPath = ReadonlyArray<string | number>;

/** `steps[2].timeout`, `sandbox.image`, `env["A.B"]`; `''` for the root. */
export function formatPath(path: DocPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** The node reached by a path, or the deepest node on the way when the path does not exist in the source. */
export interface FoundNode {
  /** The value node at the end of the path (or the deepest existing ancestor when `exact` is false). */
  node: Node | undefined;
  /** The key node of the last path segment, when the value sits in a map pair. */
  key: Node | undefined;
  /** True when every segment was found. */
  exact: boolean;
}

function deref(doc: Document, node: unknown): Node | undefined {
  if (isAlias(node)) {
    const target = node.resolve(doc);
    return target ?? undefined;
  }
  return (node as Node | null | undefined) ?? undefined;
}

/** Looks a key up in a map node, following `<<` merge keys (the merged value's own node is returned). */
function lookupKey(
  doc: Document,
  map: Node,
  key: string,
  depth = 0,
): { node: Node | undefined; key: Node } | undefined {
  if (!isMap(map) || depth > 20) return undefined;
  for (const pair of map.items) {
    const k = pair.key;
    if (isScalar(k) && typeof k.value !== 'symbol' && String(k.value) === key)
      return { node: deref(doc, pair.value), key: k };
  }
  for (const pair of map.items) {
    const k = pair.key;
    if (!(isScalar(k) && (typeof k.value === 'symbol' || k.value === '<<'))) continue;
    const v = deref(doc, pair.value);
    const sources = isSeq(v) ? v.items.map((i) => deref(doc, i)) : [v];
    for (const src of sources) {
      if (!src) continue;
      const hit = lookupKey(doc, src, key, depth + 1);
      if (hit) return hit;
    }
  }
  return undefined;
}

/** Finds the node at `path`; follows aliases and merge keys. */
export function nodeAt(doc: Document, path: DocPath): FoundNode {
  let node = deref(doc, doc.contents);
  let key: Node | undefined;
  for (const seg of path) {
    if (!node) return { node, key, exact: false };
    if (isSeq(node) && typeof seg === 'number') {
      const next = deref(doc, node.items[seg]);
      if (!next) return { node, key, exact: false };
      node = next;
      key = undefined;
      continue;
    }
    if (isMap(node)) {
      const hit = lookupKey(doc, node, String(seg));
      if (!hit) return { node, key, exact: false };
      key = hit.key;
      if (!hit.node) return { node: undefined, key, exact: true };
      node = hit.node;
      continue;
    }
    return { node, key, exact: false };
  }
  return { node, key, exact: true };
}

/** The start offset of the node at `path` (its key with `at: 'key'`), walking up to the nearest node that exists. */
export function offsetAt(doc: Document, path: DocPath, at: 'key' | 'value' = 'value'): number {
  for (let d = path.length; d >= 0; d--) {
    const found = nodeAt(doc, path.slice(0, d));
    if (!found.exact) continue;
    if (at === 'key' && d === path.length && found.key?.range) return found.key.range[0];
    // A block mapping or sequence under a key starts on the next line: point at its key.
    if ((isMap(found.node) || isSeq(found.node)) && !found.node.flow && found.key?.range)
      return found.key.range[0];
    // A key with an empty value (`image:`): point at the key.
    const empty = isScalar(found.node) && found.node.value === null && found.node.source === '';
    if (found.node?.range && !(empty && found.key?.range)) return found.node.range[0];
    if (found.key?.range) return found.key.range[0];
  }
  const root = doc.contents;
  return root?.range ? root.range[0] : 0;
}

/** 1-based position of an offset; offsets before the first line break are on line 1. */
export function positionOf(lc: LineCounter, offset: number): Position {
  const p = lc.linePos(offset);
  return { line: Math.max(1, p.line), col: Math.max(1, p.col) };
}

// ---------------------------------------------------------------------------
// Scalar value offset maps

const isBreak = (c: string | undefined): boolean => c === '\n' || c === '\r';
const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t';

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  t: '\t',
  '\t': '\t',
  n: '\n',
  v: '\v',
  f: '\f',
  r: '\r',
  e: '\x1b',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
  N: '\u0085',
  _: '\u00a0',
  L: '\u2028',
  P: '\u2029',
};
const HEX_ESCAPES: Readonly<Record<string, number>> = { x: 2, u: 4, U: 8 };

interface Decoded {
  text: string;
  /** offsets[i] = source offset of text[i]; one extra entry for the end. */
  offsets: number[];
}

/** Decodes the inside of a plain or quoted (flow) scalar, applying YAML line folding. */
function decodeFlow(src: string, from: number, to: number, kind: 'plain' | 'single' | 'double'): Decoded {
  let text = '';
  const offsets: number[] = [];
  const push = (s: string, at: number): void => {
    text += s;
    for (let k = 0; k < s.length; k++) offsets.push(at);
  };
  // Length of `text` after its last character that line folding must keep
  // (trailing spaces of a line are dropped; escaped ones are not).
  let keep = 0;
  let i = from;
  while (i < to) {
    const c = src[i];
    if (isBreak(c)) {
      text = text.slice(0, keep);
      offsets.length = keep;
      const at = i;
      let breaks = 0;
      let j = i;
      for (;;) {
        if (src[j] === '\r' && src[j + 1] === '\n') j += 2;
        else if (isBreak(src[j])) j++;
        else break;
        breaks++;
        while (j < to && isBlank(src[j])) j++;
      }
      push(breaks === 1 ? ' ' : '\n'.repeat(breaks - 1), at);
      keep = text.length;
      i = j;
      continue;
    }
    if (kind === 'single' && c === "'" && src[i + 1] === "'") {
      push("'", i);
      keep = text.length;
      i += 2;
      continue;
    }
    if (kind === 'double' && c === '\\') {
      const e = src[i + 1] ?? '';
      if (isBreak(e)) {
        // Escaped line break: joins the lines without a space.
        keep = text.length;
        let j = i + 1;
        j += src[j] === '\r' && src[j + 1] === '\n' ? 2 : 1;
        while (j < to && isBlank(src[j])) j++;
        i = j;
        continue;
      }
      const simple = SIMPLE_ESCAPES[e];
      const hexLen = HEX_ESCAPES[e];
      if (simple !== undefined) {
        push(simple, i);
        i += 2;
      } else if (hexLen !== undefined) {
        const code = parseInt(src.slice(i + 2, i + 2 + hexLen), 16);
        push(Number.isNaN(code) ? '' : String.fromCodePoint(code), i);
        i += 2 + hexLen;
      } else {
        push(e, i);
        i += 2;
      }
      keep = text.length;
      continue;
    }
    push(c ?? '', i);
    if (!isBlank(c)) keep = text.length;
    i++;
  }
  offsets.push(to);
  return { text, offsets };
}

interface Line {
  start: number;
  /** Offset of the line break (or end of input). */
  end: number;
}

function splitLines(src: string, from: number, to: number): Line[] {
  const lines: Line[] = [];
  let s = from;
  for (let i = from; i < to; i++) {
    if (src[i] === '\n') {
      lines.push({ start: s, end: i > s && src[i - 1] === '\r' ? i - 1 : i });
      s = i + 1;
    }
  }
  if (s < to) lines.push({ start: s, end: to });
  return lines;
}

/** Decodes a block scalar (`|` or `>`) assuming content indentation `indent`. */
function decodeBlock(
  src: string,
  lines: readonly Line[],
  indent: number,
  folded: boolean,
  chomp: '' | '-' | '+',
): Decoded {
  let text = '';
  const offsets: number[] = [];
  const push = (s: string, at: number): void => {
    text += s;
    for (let k = 0; k < s.length; k++) offsets.push(at);
  };
  let pending = 0; // line breaks seen since the last content line (counting its own)
  let prevEnd = -1; // offset of the previous content line's break
  let prevMore = false;
  const emptyBreaks: number[] = [];
  let any = false;
  for (const line of lines) {
    const len = line.end - line.start;
    const content = len > indent ? line.start + indent : line.end;
    const blankLine = content >= line.end || src.slice(line.start, line.end).trim() === '';
    if (blankLine && !(len > indent && !folded)) {
      pending++;
      emptyBreaks.push(line.end);
      continue;
    }
    const first = src[content];
    const more = first === ' ' || first === '\t';
    if (any) {
      if (folded && !prevMore && !more && pending === 1) push(' ', prevEnd);
      else if (folded && !prevMore && !more)
        for (let k = 1; k < pending; k++) push('\n', emptyBreaks[k - 1] ?? prevEnd);
      else {
        push('\n', prevEnd);
        for (let k = 1; k < pending; k++) push('\n', emptyBreaks[k - 1] ?? prevEnd);
      }
    } else {
      for (let k = 0; k < pending; k++) push('\n', emptyBreaks[k] ?? line.start);
    }
    for (let o = content; o < line.end; o++) push(src[o] ?? '', o);
    any = true;
    prevMore = more;
    prevEnd = line.end;
    pending = 1;
    emptyBreaks.length = 0;
  }
  // Chomping: the final line break and trailing empty lines.
  if (chomp === '+') {
    if (any) push('\n', prevEnd);
    for (const b of emptyBreaks) push('\n', b);
  } else if (chomp === '' && any) push('\n', prevEnd);
  offsets.push(lines.length > 0 ? (lines[lines.length - 1]?.end ?? 0) : 0);
  return { text, offsets };
}

function decodeBlockScalar(src: string, node: Scalar, expected: string): Decoded | undefined {
  const [start, , end] = node.range ?? [0, 0, 0];
  const header = /^[|>]([+-]?)(\d?)([+-]?)[^\n]*\n?/.exec(src.slice(start, end));
  if (!header) return undefined;
  const folded = src[start] === '>';
  const chomp = (header[1] || header[3] || '') as '' | '-' | '+';
  const lines = splitLines(src, start + header[0].length, end);
  const firstContent = lines.find((l) => src.slice(l.start, l.end).trim() !== '');
  const detected = firstContent
    ? (/^ */.exec(src.slice(firstContent.start, firstContent.end))?.[0].length ?? 0)
    : 0;
  const candidates = [detected, ...Array.from({ length: 40 }, (_, k) => k).filter((k) => k !== detected)];
  for (const indent of candidates) {
    const d = decodeBlock(src, lines, indent, folded, chomp);
    if (d.text === expected) return d;
  }
  return undefined;
}

/**
 * Fallback when decoding did not reproduce the value: anchor each `${{` of the
 * value to the same-numbered `${{` of the raw source and count from there.
 */
function anchorMap(src: string, node: Scalar, value: string): Decoded {
  const [start, valueEnd] = node.range ?? [0, 0];
  const raw = src.slice(start, valueEnd);
  const anchorsV: number[] = [];
  const anchorsR: number[] = [];
  for (let i = value.indexOf('${{'); i >= 0; i = value.indexOf('${{', i + 3)) anchorsV.push(i);
  for (let i = raw.indexOf('${{'); i >= 0; i = raw.indexOf('${{', i + 3)) anchorsR.push(start + i);
  const offsets: number[] = [];
  for (let o = 0; o <= value.length; o++) {
    let k = -1;
    for (let a = 0; a < anchorsV.length && a < anchorsR.length && (anchorsV[a] ?? Infinity) <= o; a++) k = a;
    offsets.push(k < 0 ? start : (anchorsR[k] ?? start) + (o - (anchorsV[k] ?? 0)));
  }
  return { text: value, offsets };
}

/**
 * The exact source offset of every character of a scalar's value (plus one
 * entry for the end), or `undefined` when decoding the source does not
 * reproduce the parsed value. @internal (exported for tests)
 */
export function exactScalarOffsets(src: string, node: Scalar): number[] | undefined {
  const value = typeof node.value === 'string' ? node.value : String(node.value);
  const [start, valueEnd] = node.range ?? [0, 0];
  let d: Decoded | undefined;
  switch (node.type) {
    case 'PLAIN':
      d = decodeFlow(src, start, valueEnd, 'plain');
      break;
    case 'QUOTE_SINGLE':
      d = decodeFlow(src, start + 1, valueEnd - 1, 'single');
      break;
    case 'QUOTE_DOUBLE':
      d = decodeFlow(src, start + 1, valueEnd - 1, 'double');
      break;
    case 'BLOCK_LITERAL':
    case 'BLOCK_FOLDED':
      d = decodeBlockScalar(src, node, value);
      break;
    default:
      d = undefined;
  }
  return d?.text === value ? d.offsets : undefined;
}

/**
 * For a scalar node: the source offset of every character of its value (plus
 * one entry for the end). Exact for plain, single- and double-quoted, literal
 * and folded scalars; falls back to anchoring on `${{` if the source is
 * something the decoder does not reproduce.
 */
export function scalarOffsets(src: string, node: Scalar): number[] {
  const value = typeof node.value === 'string' ? node.value : String(node.value);
  return exactScalarOffsets(src, node) ?? anchorMap(src, node, value).offsets;
}

/** A `TemplateOrigin` for a scalar: maps offsets in its value to file positions. */
export function scalarOrigin(file: string, src: string, lc: LineCounter, node: Scalar): TemplateOrigin {
  let offsets: number[] | undefined;
  return {
    file,
    locate(offset: number): Position {
      offsets ??= scalarOffsets(src, node);
      const o = offsets[Math.max(0, Math.min(offset, offsets.length - 1))] ?? node.range?.[0] ?? 0;
      return positionOf(lc, o);
    },
  };
}
