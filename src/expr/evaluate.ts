import type { Expr } from './ast.js';
import { ExpressionSyntaxError } from './parser.js';
import { unreachable } from '../util/unreachable.js';

/** A value an expression can produce. */
export type ExprValue = string | number | boolean | null | ExprValue[] | { [k: string]: ExprValue };

/** Job status functions (`success()`, …) for `if:` conditions. */
export interface StatusFunctions {
  success(): boolean;
  failure(): boolean;
  cancelled(): boolean;
}

/** What an expression is evaluated against. Unknown context names evaluate to `null`. */
export interface ExprContext {
  contexts: Readonly<Record<string, ExprValue | undefined>>;
  status?: StatusFunctions;
}

/** Truthiness as in GitHub Actions: false, 0, -0, '', null and NaN are false. */
export function truthy(v: ExprValue): boolean {
  if (v === null || v === false || v === '' || v === 0) return false;
  if (typeof v === 'number' && Number.isNaN(v)) return false;
  return true;
}

/** How a value is spliced into text: null → '', objects and arrays → JSON. */
export function stringify(v: ExprValue): string {
  if (v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function toNumber(v: ExprValue): number {
  if (v === null) return 0;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return v.trim() === '' ? 0 : Number(v);
  return NaN;
}

/**
 * Loose equality as in GitHub Actions (its `AbstractEqual`): strings compare
 * case-insensitively; a boolean or null on either side is coerced to a number
 * first (so `null == 0`, `null == ''` and `false == 0` hold); a number and a
 * string compare as numbers; arrays and objects only equal themselves.
 */
export function looseEquals(a: ExprValue, b: ExprValue): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a.toUpperCase() === b.toUpperCase();
  if (a === null && b === null) return true;
  if (typeof a === 'boolean' && typeof b === 'boolean') return a === b;
  const aObj = a !== null && typeof a === 'object';
  const bObj = b !== null && typeof b === 'object';
  if (aObj || bObj) return a === b;
  // Primitives of different kinds (or two numbers): compare as numbers; NaN equals nothing.
  return toNumber(a) === toNumber(b);
}

function compare(op: '<' | '<=' | '>' | '>=', a: ExprValue, b: ExprValue): boolean {
  let x: number | string, y: number | string;
  if (typeof a === 'string' && typeof b === 'string') {
    // GitHub compares strings with OrdinalIgnoreCase, i.e. on the upper-cased text.
    x = a.toUpperCase();
    y = b.toUpperCase();
  } else {
    x = toNumber(a);
    y = toNumber(b);
  }
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
    default:
      throw new Error(`Unknown operator: ${unreachable(op)}`);
  }
}

function getProperty(obj: ExprValue, key: ExprValue): ExprValue {
  if (obj === null || typeof obj !== 'object') return null;
  if (Array.isArray(obj)) {
    const i = toNumber(key);
    return Number.isInteger(i) ? (obj[i] ?? null) : null;
  }
  const k = stringify(key);
  return Object.prototype.hasOwnProperty.call(obj, k) ? (obj[k] ?? null) : null;
}

function callFunction(name: string, args: ExprValue[], ctx: ExprContext, at: number): ExprValue {
  const arg = (i: number): ExprValue => args[i] ?? null;
  switch (name) {
    case 'contains': {
      const hay = arg(0);
      const needle = arg(1);
      if (Array.isArray(hay)) return hay.some((x) => looseEquals(x, needle));
      return stringify(hay).toLowerCase().includes(stringify(needle).toLowerCase());
    }
    case 'startsWith':
      return stringify(arg(0))
        .toLowerCase()
        .startsWith(stringify(arg(1)).toLowerCase());
    case 'endsWith':
      return stringify(arg(0))
        .toLowerCase()
        .endsWith(stringify(arg(1)).toLowerCase());
    case 'format': {
      const fmt = stringify(arg(0));
      return fmt.replace(/\{\{|\}\}|\{(\d+)\}/g, (m, n: string | undefined) => {
        if (m === '{{') return '{';
        if (m === '}}') return '}';
        const i = Number(n) + 1;
        if (i >= args.length) throw new ExpressionSyntaxError(`format(): no argument for {${n}}`, at);
        return stringify(arg(i));
      });
    }
    case 'toJSON':
      return JSON.stringify(arg(0), null, 2);
    case 'fromJSON': {
      const text = stringify(arg(0));
      try {
        return JSON.parse(text) as ExprValue;
      } catch {
        throw new ExpressionSyntaxError(`fromJSON(): not valid JSON: ${text.slice(0, 40)}`, at);
      }
    }
    case 'join': {
      const v = arg(0);
      const sep = args.length > 1 ? stringify(arg(1)) : ',';
      return Array.isArray(v) ? v.map(stringify).join(sep) : stringify(v);
    }
    case 'success':
      return ctx.status ? ctx.status.success() : true;
    case 'failure':
      return ctx.status ? ctx.status.failure() : false;
    case 'cancelled':
      return ctx.status ? ctx.status.cancelled() : false;
    case 'always':
      return true;
    default:
      throw new ExpressionSyntaxError(`unknown function '${name}'`, at);
  }
}

/** Evaluates a parsed expression. Throws `ExpressionSyntaxError` (with an offset) on evaluation errors. */
export function evaluate(e: Expr, ctx: ExprContext): ExprValue {
  switch (e.kind) {
    case 'literal':
      return e.value;
    case 'ident':
      return ctx.contexts[e.name] ?? null;
    case 'member':
      return getProperty(evaluate(e.object, ctx), e.property);
    case 'index':
      return getProperty(evaluate(e.object, ctx), evaluate(e.index, ctx));
    case 'call':
      return callFunction(
        e.callee,
        e.args.map((a) => evaluate(a, ctx)),
        ctx,
        e.start,
      );
    case 'unary':
      return !truthy(evaluate(e.operand, ctx));
    case 'binary': {
      const op = e.op;
      switch (op) {
        case '&&': {
          const l = evaluate(e.left, ctx);
          return truthy(l) ? evaluate(e.right, ctx) : l;
        }
        case '||': {
          const l = evaluate(e.left, ctx);
          return truthy(l) ? l : evaluate(e.right, ctx);
        }
        case '==':
          return looseEquals(evaluate(e.left, ctx), evaluate(e.right, ctx));
        case '!=':
          return !looseEquals(evaluate(e.left, ctx), evaluate(e.right, ctx));
        case '<':
        case '<=':
        case '>':
        case '>=':
          return compare(op, evaluate(e.left, ctx), evaluate(e.right, ctx));
        default:
          throw new Error(`Unknown operator: ${unreachable(op)}`);
      }
    }
    default:
      throw new Error(`Unknown expression: ${unreachable(e)}`);
  }
}
