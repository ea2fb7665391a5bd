export type { Expr, ContextName } from './ast.js';
export { CONTEXTS, FUNCTIONS } from './ast.js';
export { parseExpression, ExpressionSyntaxError } from './parser.js';
export { evaluate, truthy, stringify } from './evaluate.js';
export type { ExprValue, ExprContext, StatusFunctions } from './evaluate.js';
export { Template, TemplateError } from './template.js';
export type { TemplateOrigin, TemplatePart, Reference } from './template.js';
export { checkTemplate, objectShape, ANY } from './check.js';
export type { Shape, TemplateProblem } from './check.js';
