/**
 * JSON Schema validation of parsed YAML, with ajv errors turned into
 * positioned, de-duplicated, human diagnostics: an unknown key points at the
 * key and suggests the closest allowed one; a `oneOf` reports only the branch
 * the value was evidently meant for; numbers where strings are meant say
 * "quote it" with the text as written.
 *
 * A valid document is recognised by the validators precompiled from the
 * schemas at development time (`schema-validators.generated.ts`, written by
 * `scripts/gen-schema-validators.js`): no ajv import, no schema compile, which
 * is most of `rho-flow validate`'s startup. Only an invalid document loads
 * ajv (draft-07, `allErrors`, strict mode; each schema compiled once per
 * process, lazily) to find and explain every problem.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { isScalar } from 'yaml';
import { didYouMean, didYouMeanSuffix } from '../util/did-you-mean.js';
import { sortDiagnostics, type Diagnostic } from './diagnostic.js';
import type { ParsedYaml } from './parse.js';
import { formatPath, nodeAt, offsetAt, positionOf, type DocPath } from './yaml-locate.js';
import * as precompiled from './schema-validators.generated.js';

export type SchemaName = 'workflow' | 'profile';

/** Absolute path of a shipped schema file (`schemas/<name>.schema.json`). */
export function schemaFile(name: SchemaName): string {
  // Both src/workflow/ (tests) and dist/workflow/ (build) are two levels below the package root.
  return fileURLToPath(new URL(`../../schemas/${name}.schema.json`, import.meta.url));
}

type JsonSchema = Record<string, unknown>;

interface Compiled {
  schema: JsonSchema;
  id: string;
  validate: ValidateFunction;
  /** Every schema object of the document → its JSON pointer, to re-validate one `oneOf` branch. */
  pointers: Map<object, string>;
}

let ajvInstance: Ajv | undefined;
const compiled = new Map<SchemaName, Compiled>();

function getAjv(): Ajv {
  // Loaded on the first invalid document only (ajv is CommonJS: `require` keeps this synchronous).
  ajvInstance ??= new (createRequire(import.meta.url)('ajv') as typeof import('ajv')).Ajv({
    allErrors: true,
    strict: true,
    // `type: [string, number]` is deliberate (env values, `if`, network).
    allowUnionTypes: true,
    // parentSchema/data on errors: allowed keys for did-you-mean, values for "quote it".
    verbose: true,
  });
  return ajvInstance;
}

function indexPointers(node: unknown, pointer: string, out: Map<object, string>): void {
  if (node === null || typeof node !== 'object') return;
  out.set(node, pointer);
  for (const [k, v] of Object.entries(node)) {
    indexPointers(v, `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, out);
  }
}

/** A precompiled validity check: `true` when the document is valid. */
type Check = (data: unknown) => boolean;
const checks = new Map<SchemaName, Check | null>();

/**
 * The precompiled validator of `name`, if it was generated from the schema
 * file as it is now (a stale build falls back to ajv instead of trusting it).
 */
function precompiledCheck(name: SchemaName): Check | undefined {
  let check = checks.get(name);
  if (check === undefined) {
    const text = readFileSync(schemaFile(name), 'utf8');
    const fresh = createHash('sha256').update(text).digest('hex') === precompiled.SCHEMA_SHA256[name];
    check = fresh ? (precompiled[name] as Check) : null;
    checks.set(name, check);
  }
  return check ?? undefined;
}

/** The parsed schema document (cached). */
export function loadSchema(name: SchemaName): JsonSchema {
  return getCompiled(name).schema;
}

function getCompiled(name: SchemaName): Compiled {
  let c = compiled.get(name);
  if (!c) {
    const schema = JSON.parse(readFileSync(schemaFile(name), 'utf8')) as JsonSchema;
    const id = typeof schema.$id === 'string' ? schema.$id : `rho-flow:${name}`;
    const pointers = new Map<object, string>();
    indexPointers(schema, '', pointers);
    c = { schema, id, validate: getAjv().compile(schema), pointers };
    compiled.set(name, c);
  }
  return c;
}

// ---------------------------------------------------------------------------
// Error normalization

/** A schema error after de-duplication; `message` set means "use as is". */
interface Issue {
  path: DocPath;
  /** Point at the key of the last segment instead of its value. */
  atKey: boolean;
  error: ErrorObject;
  message?: string;
}

function decodePointer(pointer: string, data: unknown): DocPath {
  const out: Array<string | number> = [];
  let cur: unknown = data;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur) && /^\d+$/.test(seg)) {
      out.push(Number(seg));
      cur = cur[Number(seg)];
    } else {
      out.push(seg);
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function accepts(types: readonly string[] | undefined, t: string): boolean {
  if (!types) return true;
  return types.includes(t) || (t === 'integer' && types.includes('number'));
}

function typesOf(c: Compiled, branch: unknown): string[] | undefined {
  if (branch === null || typeof branch !== 'object') return undefined;
  const b = branch as JsonSchema;
  if (typeof b.$ref === 'string' && b.$ref.startsWith('#/')) {
    const target = b.$ref
      .slice(2)
      .split('/')
      .reduce<unknown>(
        (o, k) => (o !== null && typeof o === 'object' ? (o as JsonSchema)[k] : undefined),
        c.schema,
      );
    return typesOf(c, target);
  }
  if (typeof b.type === 'string') return [b.type];
  if (Array.isArray(b.type)) return b.type.filter((t): t is string => typeof t === 'string');
  return undefined;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  null: 'empty',
};

function typeWords(types: readonly string[]): string {
  const words = [...new Set(types.map((t) => TYPE_WORDS[t] ?? t))];
  if (words.length <= 1) return words[0] ?? 'valid';
  return `${words.slice(0, -1).join(', ')} or ${words[words.length - 1] ?? ''}`;
}

function isRequiredOnly(branch: unknown): branch is { required: string[] } {
  if (branch === null || typeof branch !== 'object') return false;
  const keys = Object.keys(branch).filter((k) => k !== 'properties');
  return keys.length === 1 && keys[0] === 'required';
}

function quoteList(names: readonly string[]): string {
  const q = names.map((n) => `'${n}'`);
  return q.length <= 1 ? (q[0] ?? '') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1] ?? ''}`;
}

/**
 * Replaces each `oneOf`/`anyOf` failure and its per-branch noise by what the
 * user needs: for branches that differ by type, the errors of the branch whose
 * type the value has (re-validated alone), else one "must be X or Y"; for
 * branches that only require different keys, "must have 'run' or 'prompt'".
 */
function normalize(c: Compiled, errors: readonly ErrorObject[]): ErrorObject[] {
  let list = [...errors];
  for (let guard = 0; guard < 1000; guard++) {
    const comp = list.find((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
    if (!comp) return list;
    const branches = Array.isArray(comp.schema) ? (comp.schema as unknown[]) : [];
    const at = comp.instancePath;
    if (branches.length > 0 && branches.every(isRequiredOnly)) {
      const names = branches.flatMap((b) => b.required);
      const prefix = `${comp.schemaPath}/`;
      list = list.filter((e) => e !== comp && !(e.instancePath === at && e.schemaPath.startsWith(prefix)));
      const several = Array.isArray((comp.params as { passingSchemas?: unknown }).passingSchemas);
      const message = several ? `must have only one of ${quoteList(names)}` : `must have ${quoteList(names)}`;
      list.push({ ...comp, keyword: 'x-message', message });
      continue;
    }
    // The composite is the only validator of this value: every error below it comes from its branches.
    const rest = list.filter((e) => !under(e.instancePath, at));
    const t = jsonType(comp.data);
    const matching = branches.map((b, i) => ({ b, i })).filter(({ b }) => accepts(typesOf(c, b), t));
    const owner = c.pointers.get(comp.schema as object);
    const first = matching[0];
    if (matching.length === 1 && first && owner !== undefined) {
      const sub = getAjv().getSchema(`${c.id}#${owner}/${first.i}`);
      if (sub && !sub(comp.data) && sub.errors) {
        const prefixed = sub.errors.map((e) => ({ ...e, instancePath: at + e.instancePath }));
        list = [...rest, ...normalize(c, prefixed)];
      } else list = rest;
      continue;
    }
    if (matching.length === 0) {
      const all = branches.flatMap((b) => typesOf(c, b) ?? []);
      list = [
        ...rest,
        { ...comp, keyword: 'type', params: { type: all }, message: `must be ${typeWords(all)}` },
      ];
      continue;
    }
    // Several branches accept this type: keep ajv's own summary.
    list = [...rest, { ...comp, keyword: 'x-message', message: 'does not match any of the allowed forms' }];
  }
  return list;
}

// ---------------------------------------------------------------------------
// Messages

/** Friendly words for the patterns in the schemas. */
const PATTERN_MESSAGES: ReadonlyArray<[RegExp, (value: string) => string]> = [
  [
    /\(\?:ms\|s\|m\|h\)/,
    (v) => `'${v}' is not a duration: use a number with a unit (ms, s, m, h), e.g. "90s" or "1h30m"`,
  ],
  [/^\^\[A-Za-z0-9\._-\]\+\$$/, () => "may contain only letters, digits, '.', '_' and '-'"],
  [
    /^\^\[A-Za-z_\]\[A-Za-z0-9_\]\*\$$/,
    () => "must start with a letter or '_' and contain only letters, digits and '_'",
  ],
  [
    /^\^\[A-Za-z_\]\[A-Za-z0-9_-\]\*\$$/,
    () => "must start with a letter or '_' and contain only letters, digits, '_' and '-'",
  ],
  [/^\^\/$/, () => "must be an absolute path (starting with '/')"],
  [/^\^https\?:\/\/$/, () => 'must start with http:// or https://'],
  [/^:\/$/, () => 'an upload is "FROM:/absolute/TO" or { from: FROM, to: TO }'],
];

function sourceText(parsed: ParsedYaml, path: DocPath): string | undefined {
  const { node } = nodeAt(parsed.doc, path);
  if (!isScalar(node)) return undefined;
  if (typeof node.source === 'string' && node.source !== '') return node.source;
  return node.range ? parsed.text.slice(node.range[0], node.range[1]) : undefined;
}

function messageFor(parsed: ParsedYaml, issue: Issue): string {
  const e = issue.error;
  if (issue.message !== undefined) return issue.message;
  const data: unknown = e.data;
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'x-message':
      return e.message ?? 'is invalid';
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const allowed = Object.keys((e.parentSchema?.properties as object | undefined) ?? {});
      const suggestion = didYouMean(key, allowed);
      if (suggestion !== undefined) return `unknown key '${key}' (did you mean '${suggestion}'?)`;
      return allowed.length > 0 && allowed.length <= 12
        ? `unknown key '${key}' (allowed: ${allowed.join(', ')})`
        : `unknown key '${key}'`;
    }
    case 'required':
      return `missing required key '${String(params.missingProperty)}'`;
    case 'type': {
      const types = Array.isArray(params.type) ? (params.type as string[]) : [String(params.type)];
      if (e.schemaPath.includes('/definitions/secretSource/') && typeof data === 'string') {
        const name = issue.path[issue.path.length - 1];
        return `secrets are read from the environment: use { from-env: ${typeof name === 'string' ? name : 'VAR'} }`;
      }
      if (e.schemaPath.includes('/definitions/duration/') && typeof data === 'number') {
        const n = sourceText(parsed, issue.path) ?? String(data);
        return `a duration needs a unit: add one, e.g. "${n}s" or "${n}m"`;
      }
      if (data === null) return `must be ${typeWords(types)} (the value is empty)`;
      if (types.includes('string') && (typeof data === 'number' || typeof data === 'boolean')) {
        const src = sourceText(parsed, issue.path) ?? String(data);
        return `must be ${typeWords(types)}; YAML read ${src} as a ${typeof data}: quote it: "${src}"`;
      }
      return `must be ${typeWords(types)}`;
    }
    case 'pattern': {
      const pattern = String(params.pattern);
      const value = e.propertyName ?? (typeof data === 'string' ? data : '');
      const known = PATTERN_MESSAGES.find(([re]) => re.test(pattern));
      const text = known ? known[1](value) : `must match ${pattern}`;
      return e.propertyName !== undefined ? `invalid name '${e.propertyName}': ${text}` : text;
    }
    case 'enum': {
      const allowed = (Array.isArray(params.allowedValues) ? params.allowedValues : []) as unknown[];
      const words = allowed.filter((a): a is string => typeof a === 'string');
      const suffix = typeof data === 'string' ? didYouMeanSuffix(data, words) : '';
      const shown = typeof data === 'string' ? `'${data}'` : JSON.stringify(data);
      return `${shown} is not one of: ${words.join(', ')}${suffix}`;
    }
    case 'minimum':
      return `must be at least ${String(params.limit)}`;
    case 'exclusiveMinimum':
      return `must be greater than ${String(params.limit)}`;
    case 'maximum':
      return `must be at most ${String(params.limit)}`;
    case 'minItems':
      return params.limit === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} items`;
    case 'minLength':
      return params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters`;
    case 'uniqueItems': {
      const arr = Array.isArray(data) ? (data as unknown[]) : [];
      const i = Math.max(Number(params.i), Number(params.j));
      const v = arr[i];
      return `${typeof v === 'string' ? `'${v}'` : JSON.stringify(v)} is listed twice`;
    }
    default:
      return e.message ?? `is invalid (${e.keyword})`;
  }
}

function toIssue(e: ErrorObject, data: unknown): Issue {
  let path = decodePointer(e.instancePath, data);
  let atKey = false;
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') {
    path = [...path, String(params.additionalProperty)];
    atKey = true;
  } else if (e.propertyName !== undefined) {
    path = [...path, e.propertyName];
    atKey = true;
  } else if (e.keyword === 'uniqueItems') {
    // ajv names both copies; point at the later one.
    path = [...path, Math.max(Number(params.i), Number(params.j))];
  }
  return { path, atKey, error: e };
}

/**
 * Validates `parsed.data` against a shipped schema. Returns one diagnostic per
 * real problem (ajv's branch dumps and summaries removed), positioned at the
 * offending key or value.
 */
export function validateWithSchema(name: SchemaName, parsed: ParsedYaml): Diagnostic[] {
  if (precompiledCheck(name)?.(parsed.data) === true) return [];
  const c = getCompiled(name);
  // Through a boolean: ajv's type predicate would narrow `parsed.data` to `never` below.
  const valid: boolean = c.validate(parsed.data);
  if (valid) return [];
  const raw = (c.validate.errors ?? []).filter((e) => e.keyword !== 'propertyNames');
  const issues = normalize(c, raw).map((e) => toIssue(e, parsed.data));
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const issue of issues) {
    let message = messageFor(parsed, issue);
    if (issue.path.length === 0 && issue.error.keyword === 'type') {
      const what =
        name === 'workflow'
          ? "a workflow file must be a YAML mapping with at least 'name' and 'steps'"
          : 'a profile file must be a YAML mapping';
      message = parsed.data == null ? `the file is empty: ${what}` : what;
    }
    const offset = offsetAt(parsed.doc, issue.path, issue.atKey ? 'key' : 'value');
    const d: Diagnostic = {
      severity: 'error',
      path: formatPath(issue.path),
      message,
      location: { file: parsed.file, start: positionOf(parsed.lineCounter, offset) },
    };
    const key = `${d.location.start.line}:${d.location.start.col}:${d.path}:${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return sortDiagnostics(out);
}
