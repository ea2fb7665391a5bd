/**
 * The shipped JSON Schemas: valid draft-07 (against the meta-schema), strict
 * enough for ajv's strict mode, and documented enough for editor hover help.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { loadSchema, schemaFile } from '../../../src/workflow/validate.js';

type S = Record<string, unknown>;
const root = fileURLToPath(new URL('../../../', import.meta.url));
const names = ['workflow', 'profile'] as const;

function read(name: (typeof names)[number]): S {
  return JSON.parse(readFileSync(`${root}schemas/${name}.schema.json`, 'utf8')) as S;
}

function resolveRef(schema: S, node: S): S {
  if (typeof node.$ref !== 'string') return node;
  const target = node.$ref
    .slice(2)
    .split('/')
    .reduce<unknown>((o, k) => (o as S)[k], schema) as S;
  const { $ref: _ref, ...siblings } = node;
  return { ...resolveRef(schema, target), ...siblings };
}

/** Every `properties` entry with its JSON pointer. */
function properties(schema: S): Array<{ pointer: string; prop: S }> {
  const out: Array<{ pointer: string; prop: S }> = [];
  const walk = (node: unknown, pointer: string): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      node.forEach((n, i) => walk(n, `${pointer}/${i}`));
      return;
    }
    const n = node as S;
    if (n.properties && typeof n.properties === 'object') {
      for (const [k, v] of Object.entries(n.properties as S)) {
        // `properties: { run: true }` inside oneOf branches only mark required keys.
        if (v !== true) out.push({ pointer: `${pointer}/properties/${k}`, prop: v as S });
      }
    }
    for (const [k, v] of Object.entries(n))
      if (k !== 'examples' && k !== 'default') walk(v, `${pointer}/${k}`);
  };
  walk(schema, '');
  return out;
}

function objectSchemas(schema: S): Array<{ pointer: string; node: S }> {
  const out: Array<{ pointer: string; node: S }> = [];
  const walk = (node: unknown, pointer: string): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${pointer}/${i}`));
    const n = node as S;
    if (n.type === 'object') out.push({ pointer, node: n });
    for (const [k, v] of Object.entries(n))
      if (k !== 'examples' && k !== 'default') walk(v, `${pointer}/${k}`);
  };
  walk(schema, '');
  return out;
}

for (const name of names) {
  describe(`${name}.schema.json`, () => {
    const schema = read(name);

    it('is valid against the draft-07 meta-schema', () => {
      const ajv = new Ajv();
      expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
      const ok = ajv.validateSchema(schema);
      expect(ajv.errors ?? []).toEqual([]);
      expect(ok).toBe(true);
    });

    it('compiles in ajv strict mode', () => {
      const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
      expect(() => ajv.compile(schema)).not.toThrow();
    });

    it('is the file the loader uses', () => {
      expect(schemaFile(name)).toBe(`${root}schemas/${name}.schema.json`);
      expect(loadSchema(name)).toEqual(schema);
      // Compiled once per process: the same document every time.
      expect(loadSchema(name)).toBe(loadSchema(name));
    });

    it('documents every property (title, description, examples)', () => {
      const props = properties(schema);
      expect(props.length).toBeGreaterThan(10);
      const missing = props
        .map(({ pointer, prop }) => ({ pointer, p: resolveRef(schema, prop) }))
        .filter(
          ({ p }) =>
            typeof p.title !== 'string' || typeof p.description !== 'string' || !Array.isArray(p.examples),
        )
        .map(({ pointer }) => pointer);
      expect(missing).toEqual([]);
    });

    it('closes every object with fixed keys (additionalProperties: false)', () => {
      // The matrix is the one object whose other keys are user-chosen axes.
      const open = objectSchemas(schema)
        .filter(({ node }) => node.properties !== undefined && node.additionalProperties !== false)
        .map(({ pointer }) => pointer);
      expect(open).toEqual(name === 'workflow' ? ['/definitions/matrix'] : []);
    });

    it('has examples that validate against their own property', () => {
      const ajv = new Ajv({ strict: true, allowUnionTypes: true });
      ajv.addSchema(schema);
      const id = String(schema.$id);
      const bad: string[] = [];
      for (const { pointer, prop } of properties(schema)) {
        const validate = ajv.getSchema(`${id}#${pointer}`);
        const examples = resolveRef(schema, prop).examples as unknown[];
        for (const ex of examples) if (!validate?.(ex)) bad.push(`${pointer}: ${JSON.stringify(ex)}`);
      }
      const top = ajv.getSchema(id);
      for (const ex of (schema.examples as unknown[] | undefined) ?? [])
        if (!top?.(ex)) bad.push(`/: ${JSON.stringify(ex)}`);
      expect(bad).toEqual([]);
    });
  });
}
