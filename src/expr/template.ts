import type { Expr } from './ast.js';
import { evaluate, stringify, type ExprContext, type ExprValue } from './evaluate.js';
import { ExpressionSyntaxError, parseExpression } from './parser.js';
import { UserError } from '../errors.js';
import type { Position } from '../workflow/diagnostic.js';

/** Maps an offset inside a template's text to a file position (for messages). */
export interface TemplateOrigin {
  file: string;
  locate(offset: number): Position;
}

export type TemplatePart =
  | { kind: 'text'; value: string }
  /** `offset` is where the expression text starts inside the template source. */
  | { kind: 'expr'; expr: Expr; offset: number; source: string };

/** A context reference such as `steps.build.outputs.x`, with where it starts in the template. */
export interface Reference {
  path: string[];
  offset: number;
  /** Offsets of each path segment after the first (same length as `path` minus one). */
  segmentOffsets: number[];
}

/** A template or expression error, positioned in its file when the origin is known. */
export class TemplateError extends UserError {
  readonly file: string | undefined;
  readonly position: Position | undefined;
  readonly reason: string;
  constructor(reason: string, origin: TemplateOrigin | undefined, offset: number) {
    const position = origin?.locate(offset);
    const where = origin && position ? `${origin.file}:${position.line}:${position.col}: ` : '';
    super(`${where}${reason}`);
    this.reason = reason;
    this.file = origin?.file;
    this.position = position;
  }
}

/** Finds the `}}` that closes an expression starting at `from`, skipping quoted strings. */
function findClose(src: string, from: number): number {
  let quote: string | undefined;
  for (let i = from; i < src.length; i++) {
    const c = src[i];
    if (quote) {
      if (c === quote) {
        if (src[i + 1] === quote) i++;
        else quote = undefined;
      }
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '}' && src[i + 1] === '}') return i;
  }
  return -1;
}

/**
 * A string that may contain `${{ expr }}` interpolations. Parsed once, evaluated
 * per job (and, for `steps.*`, just before the step runs). `$${{` is a literal `${{`.
 */
export class Template {
  readonly source: string;
  readonly parts: readonly TemplatePart[];
  readonly origin: TemplateOrigin | undefined;

  private constructor(source: string, parts: TemplatePart[], origin: TemplateOrigin | undefined) {
    this.source = source;
    this.parts = parts;
    this.origin = origin;
  }

  /** Parses `source`. Throws `TemplateError` (positioned through `origin`) on a syntax error. */
  static parse(source: string, origin?: TemplateOrigin): Template {
    const parts: TemplatePart[] = [];
    let text = '';
    let i = 0;
    while (i < source.length) {
      if (source.startsWith('$${{', i)) {
        text += '${{';
        i += 4;
        continue;
      }
      if (source.startsWith('${{', i)) {
        const open = i;
        const close = findClose(source, i + 3);
        if (close < 0) throw new TemplateError("'${{' is not closed with '}}'", origin, open);
        const exprSource = source.slice(i + 3, close);
        let expr: Expr;
        try {
          expr = parseExpression(exprSource);
        } catch (e) {
          if (e instanceof ExpressionSyntaxError) {
            throw new TemplateError(`invalid expression: ${e.message}`, origin, i + 3 + e.offset);
          }
          throw e;
        }
        if (text !== '') parts.push({ kind: 'text', value: text });
        text = '';
        parts.push({ kind: 'expr', expr, offset: i + 3, source: exprSource });
        i = close + 2;
        continue;
      }
      text += source[i] ?? '';
      i++;
    }
    if (text !== '') parts.push({ kind: 'text', value: text });
    return new Template(source, parts, origin);
  }

  /** A template holding plain text, with no expressions. */
  static literal(text: string): Template {
    return new Template(text, text === '' ? [] : [{ kind: 'text', value: text }], undefined);
  }

  /** True when there is no `${{ }}` in the template. */
  get isLiteral(): boolean {
    return this.parts.every((p) => p.kind === 'text');
  }

  /** True when the template is exactly one `${{ expr }}` and nothing else. */
  get isSingleExpression(): boolean {
    return this.parts.length === 1 && this.parts[0]?.kind === 'expr';
  }

  /** Every context reference, in source order. */
  references(): Reference[] {
    const refs: Reference[] = [];
    for (const part of this.parts) {
      if (part.kind === 'expr') collectReferences(part.expr, part.offset, refs);
    }
    return refs;
  }

  /** Evaluates to text. Throws `TemplateError` on evaluation errors. */
  evaluate(ctx: ExprContext): string {
    let out = '';
    for (const part of this.parts) {
      out += part.kind === 'text' ? part.value : stringify(this.#evalPart(part, ctx));
    }
    return out;
  }

  /**
   * Evaluates to a value: a single `${{ expr }}` gives the expression's own
   * value (boolean, number, …); anything else gives the text.
   */
  evaluateValue(ctx: ExprContext): ExprValue {
    const only = this.parts[0];
    if (this.parts.length === 1 && only?.kind === 'expr') return this.#evalPart(only, ctx);
    return this.evaluate(ctx);
  }

  #evalPart(part: Extract<TemplatePart, { kind: 'expr' }>, ctx: ExprContext): ExprValue {
    try {
      return evaluate(part.expr, ctx);
    } catch (e) {
      if (e instanceof ExpressionSyntaxError)
        throw new TemplateError(e.message, this.origin, part.offset + e.offset);
      throw e;
    }
  }

  toString(): string {
    return this.source;
  }

  toJSON(): string {
    return this.source;
  }
}

/** Collects `ctx.a.b['c']` chains rooted at an identifier. Offsets are absolute in the template. */
function collectReferences(e: Expr, base: number, out: Reference[]): void {
  const chain = memberChain(e, base);
  if (chain) {
    out.push(chain);
    // Dynamic indexes inside the chain may hold references of their own.
    visitIndexes(e, base, out);
    return;
  }
  switch (e.kind) {
    case 'literal':
    case 'ident':
      return;
    case 'member':
      collectReferences(e.object, base, out);
      return;
    case 'index':
      collectReferences(e.object, base, out);
      collectReferences(e.index, base, out);
      return;
    case 'call':
      for (const a of e.args) collectReferences(a, base, out);
      return;
    case 'unary':
      collectReferences(e.operand, base, out);
      return;
    case 'binary':
      collectReferences(e.left, base, out);
      collectReferences(e.right, base, out);
      return;
  }
}

function visitIndexes(e: Expr, base: number, out: Reference[]): void {
  if (e.kind === 'member') visitIndexes(e.object, base, out);
  else if (e.kind === 'index') {
    visitIndexes(e.object, base, out);
    if (!(e.index.kind === 'literal' && typeof e.index.value === 'string'))
      collectReferences(e.index, base, out);
  }
}

/**
 * The static prefix of a member chain: `steps.x['y'].z` → ['steps','x','y','z'].
 * Stops at the first dynamic index (the rest cannot be checked statically).
 */
function memberChain(e: Expr, base: number): Reference | undefined {
  return chainOf(e, base)?.ref;
}

/** `cut` is true once a dynamic index was met: later segments must not be appended. */
function chainOf(e: Expr, base: number): { ref: Reference; cut: boolean } | undefined {
  if (e.kind === 'ident')
    return { ref: { path: [e.name], offset: base + e.start, segmentOffsets: [] }, cut: false };
  if (e.kind === 'member') {
    const inner = chainOf(e.object, base);
    if (!inner) return undefined;
    if (inner.cut) return inner;
    const { ref } = inner;
    return {
      ref: {
        path: [...ref.path, e.property],
        offset: ref.offset,
        segmentOffsets: [...ref.segmentOffsets, base + e.end - e.property.length],
      },
      cut: false,
    };
  }
  if (e.kind === 'index') {
    const inner = chainOf(e.object, base);
    if (!inner) return undefined;
    if (inner.cut) return inner;
    const { ref } = inner;
    if (e.index.kind === 'literal' && typeof e.index.value === 'string') {
      return {
        ref: {
          path: [...ref.path, e.index.value],
          offset: ref.offset,
          segmentOffsets: [...ref.segmentOffsets, base + e.index.start],
        },
        cut: false,
      };
    }
    // `matrix[vars.k].x`: what follows a dynamic index cannot be checked statically.
    return { ref, cut: true };
  }
  return undefined;
}
