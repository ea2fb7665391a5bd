/** AST of a `${{ }}` expression. Offsets are relative to the expression text. */
export type Expr =
  | { kind: 'literal'; value: string | number | boolean | null; start: number; end: number }
  | { kind: 'ident'; name: string; start: number; end: number }
  | { kind: 'member'; object: Expr; property: string; start: number; end: number }
  | { kind: 'index'; object: Expr; index: Expr; start: number; end: number }
  | { kind: 'call'; callee: string; args: Expr[]; start: number; end: number }
  | { kind: 'unary'; op: '!'; operand: Expr; start: number; end: number }
  | {
      kind: 'binary';
      op: '==' | '!=' | '&&' | '||' | '<' | '<=' | '>' | '>=';
      left: Expr;
      right: Expr;
      start: number;
      end: number;
    };

/** Functions the grammar knows, with their arity range. */
export const FUNCTIONS: Readonly<Record<string, readonly [min: number, max: number]>> = {
  contains: [2, 2],
  startsWith: [2, 2],
  endsWith: [2, 2],
  format: [1, Infinity],
  toJSON: [1, 1],
  fromJSON: [1, 1],
  join: [1, 2],
  success: [0, 0],
  failure: [0, 0],
  always: [0, 0],
  cancelled: [0, 0],
};

/** Contexts an expression may start from. */
export const CONTEXTS = [
  'vars',
  'matrix',
  'item',
  'repeat',
  'env',
  'secrets',
  'steps',
  'job',
  'run',
] as const;
export type ContextName = (typeof CONTEXTS)[number];
