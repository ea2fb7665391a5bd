import { FUNCTIONS, type Expr } from './ast.js';
import { didYouMeanSuffix } from '../util/did-you-mean.js';

/** Lower-cased function name → canonical name. */
const FUNCTION_NAMES = new Map(Object.keys(FUNCTIONS).map((name) => [name.toLowerCase(), name]));

/** A syntax or evaluation error inside one expression; `offset` is relative to the expression text. */
export class ExpressionSyntaxError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = 'ExpressionSyntaxError';
    this.offset = offset;
  }
}

type Token =
  | { t: 'num'; v: number; s: number; e: number }
  | { t: 'str'; v: string; s: number; e: number }
  | { t: 'id'; v: string; s: number; e: number }
  | { t: 'op'; v: string; s: number; e: number }
  | { t: 'eof'; s: number; e: number };

const OPS = ['==', '!=', '&&', '||', '<=', '>=', '<', '>', '!', '(', ')', '[', ']', '.', ',', '*'];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] ?? '';
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (c === "'" || c === '"') {
      // GitHub-style strings: the quote doubled inside escapes it.
      let v = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new ExpressionSyntaxError('unterminated string', start);
        const ch = src[i] ?? '';
        if (ch === c) {
          if (src[i + 1] === c) {
            v += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += ch;
        i++;
      }
      out.push({ t: 'str', v, s: start, e: i });
      continue;
    }
    const num = /^(?:0x[0-9a-fA-F]+|-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/.exec(src.slice(i));
    if (num && (c !== '-' || /[\d.]/.test(src[i + 1] ?? ''))) {
      out.push({ t: 'num', v: Number(num[0]), s: start, e: i + num[0].length });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i));
    if (id) {
      out.push({ t: 'id', v: id[0], s: start, e: i + id[0].length });
      i += id[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op) {
      out.push({ t: 'op', v: op, s: start, e: i + op.length });
      i += op.length;
      continue;
    }
    if (c === '=') throw new ExpressionSyntaxError("unexpected '=' (use '==' to compare)", start);
    if (c === '&' || c === '|') throw new ExpressionSyntaxError(`unexpected '${c}' (use '${c}${c}')`, start);
    throw new ExpressionSyntaxError(`unexpected character '${c}'`, start);
  }
  out.push({ t: 'eof', s: src.length, e: src.length });
  return out;
}

/**
 * Parses one expression (the text between `${{` and `}}`).
 * Grammar: `||` < `&&` < `== !=` < `< <= > >=` < `!` < member/index/call.
 * Throws `ExpressionSyntaxError` with an offset into `src`.
 */
export function parseExpression(src: string): Expr {
  const toks = tokenize(src);
  let p = 0;
  const peek = (): Token => toks[p] ?? { t: 'eof', s: src.length, e: src.length };
  const isOp = (v: string): boolean => {
    const t = peek();
    return t.t === 'op' && t.v === v;
  };
  const expectOp = (v: string): Token => {
    const t = peek();
    if (t.t !== 'op' || t.v !== v) throw new ExpressionSyntaxError(`expected '${v}' ${describe(t)}`, t.s);
    p++;
    return t;
  };
  const describe = (t: Token): string =>
    t.t === 'eof' ? 'at end of expression' : `before '${src.slice(t.s, t.e)}'`;

  function binary(ops: readonly string[], next: () => Expr): () => Expr {
    return () => {
      let left = next();
      for (;;) {
        const t = peek();
        if (t.t === 'op' && ops.includes(t.v)) {
          p++;
          const right = next();
          left = {
            kind: 'binary',
            op: t.v as '==',
            left,
            right,
            start: left.start,
            end: right.end,
          };
        } else return left;
      }
    };
  }

  function unary(): Expr {
    const t = peek();
    if (t.t === 'op' && t.v === '!') {
      p++;
      const operand = unary();
      return { kind: 'unary', op: '!', operand, start: t.s, end: operand.end };
    }
    return postfix();
  }

  function postfix(): Expr {
    let e = primary();
    for (;;) {
      if (isOp('.')) {
        p++;
        const t = peek();
        if (t.t === 'id') {
          p++;
          e = { kind: 'member', object: e, property: t.v, start: e.start, end: t.e };
        } else if (t.t === 'op' && t.v === '*') {
          throw new ExpressionSyntaxError('object filters (.*) are not supported', t.s);
        } else throw new ExpressionSyntaxError(`expected a property name after '.' ${describe(t)}`, t.s);
      } else if (isOp('[')) {
        p++;
        const index = or();
        const close = expectOp(']');
        e = { kind: 'index', object: e, index, start: e.start, end: close.e };
      } else return e;
    }
  }

  function primary(): Expr {
    const t = peek();
    switch (t.t) {
      case 'num':
        p++;
        return { kind: 'literal', value: t.v, start: t.s, end: t.e };
      case 'str':
        p++;
        return { kind: 'literal', value: t.v, start: t.s, end: t.e };
      case 'id': {
        p++;
        if (t.v === 'true' || t.v === 'false')
          return { kind: 'literal', value: t.v === 'true', start: t.s, end: t.e };
        if (t.v === 'null') return { kind: 'literal', value: null, start: t.s, end: t.e };
        if (isOp('(')) {
          p++;
          // Function names are case-insensitive, as in GitHub Actions (`toJson`, `fromJson`).
          const callee = FUNCTION_NAMES.get(t.v.toLowerCase());
          const arity = callee === undefined ? undefined : FUNCTIONS[callee];
          if (callee === undefined || !arity) {
            throw new ExpressionSyntaxError(
              `unknown function '${t.v}'${didYouMeanSuffix(t.v, Object.keys(FUNCTIONS))} (available: ${Object.keys(FUNCTIONS).join(', ')})`,
              t.s,
            );
          }
          const args: Expr[] = [];
          if (!isOp(')')) {
            args.push(or());
            while (isOp(',')) {
              p++;
              args.push(or());
            }
          }
          const close = expectOp(')');
          const [min, max] = arity;
          if (args.length < min || args.length > max) {
            const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
            throw new ExpressionSyntaxError(
              `${callee}() takes ${want} argument${min === 1 && max === 1 ? '' : 's'}, got ${args.length}`,
              t.s,
            );
          }
          return { kind: 'call', callee, args, start: t.s, end: close.e };
        }
        return { kind: 'ident', name: t.v, start: t.s, end: t.e };
      }
      case 'op':
        if (t.v === '(') {
          p++;
          const inner = or();
          expectOp(')');
          return inner;
        }
        throw new ExpressionSyntaxError(`unexpected '${t.v}'`, t.s);
      case 'eof':
        throw new ExpressionSyntaxError(
          src.trim() === '' ? 'empty expression' : 'unexpected end of expression',
          t.s,
        );
    }
  }

  const comparison = binary(['<', '<=', '>', '>='], unary);
  const equality = binary(['==', '!='], comparison);
  const and = binary(['&&'], equality);
  const or = binary(['||'], and);

  const e = or();
  const rest = peek();
  if (rest.t !== 'eof') throw new ExpressionSyntaxError(`unexpected '${src.slice(rest.s, rest.e)}'`, rest.s);
  return e;
}
