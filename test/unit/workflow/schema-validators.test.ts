/**
 * The precompiled schema validators (`schema-validators.generated.ts`) must
 * be generated from the current schemas and must say "valid" exactly when
 * the full ajv does: they decide alone for every valid document.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import * as precompiled from '../../../src/workflow/schema-validators.generated.js';
import { schemaFile, validateWithSchema, type SchemaName } from '../../../src/workflow/validate.js';
import { parseYaml } from '../../../src/workflow/parse.js';
import { REPO_ROOT } from '../../helpers/cli.js';

const run = promisify(execFile);

/** The validator as src/workflow/validate.ts compiles it for its diagnostics. */
function fullAjv(name: SchemaName): (data: unknown) => boolean {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
  const validate = ajv.compile(JSON.parse(readFileSync(schemaFile(name), 'utf8')) as object);
  return (data) => validate(data);
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => path.join(dir, f));
}

/** Workflow documents: every shipped example and fixture, plus hand-made edge cases. */
function workflowDocuments(): Array<[string, unknown]> {
  const docs: Array<[string, unknown]> = [];
  for (const dir of ['workflows', 'test/fixtures/valid', 'test/fixtures/invalid']) {
    for (const file of yamlFiles(path.join(REPO_ROOT, dir))) {
      if (file.includes(`${path.sep}profiles${path.sep}`)) continue;
      try {
        docs.push([path.relative(REPO_ROOT, file), parse(readFileSync(file, 'utf8'), { merge: true })]);
      } catch {
        // Not YAML at all (a syntax fixture): nothing to validate.
      }
    }
  }
  const base = { name: 't', steps: [{ run: 'echo' }] };
  const edge: Array<[string, unknown]> = [
    ['empty', null],
    ['a list', []],
    ['minimal', base],
    ['unknown key', { ...base, jobs: 1 }],
    ['x- extension', { ...base, 'x-defaults': { a: 1 } }],
    ['bare number duration', { ...base, timeout: 60 }],
    ['duration', { ...base, timeout: '1h30m' }],
    ['step with run and prompt', { name: 't', steps: [{ run: 'a', prompt: 'b' }] }],
    ['duplicate tools', { name: 't', steps: [{ prompt: 'x', tools: ['read', 'read'] }] }],
    ['literal secret', { ...base, secrets: { A: 'value' } }],
    ['secret from env', { ...base, secrets: { A: { 'from-env': 'A' } } }],
    ['upload short form', { ...base, uploads: ['./a:/work/a'] }],
    ['upload without to', { ...base, uploads: [{ from: './a' }] }],
    ['model as number', { ...base, model: 4.1 }],
    ['bad name', { name: 'a b', steps: [{ run: 'x' }] }],
    ['empty steps', { name: 't', steps: [] }],
  ];
  return [...docs, ...edge];
}

describe('precompiled schema validators', () => {
  it('are generated from the current schemas (node scripts/gen-schema-validators.js)', async () => {
    const code = await run(process.execPath, ['scripts/gen-schema-validators.js', '--check'], {
      cwd: REPO_ROOT,
    }).then(
      () => 0,
      (e: unknown) => (e as { code: number }).code,
    );
    expect(code).toBe(0);
  });

  it('agree with the full ajv on every workflow document', () => {
    const full = fullAjv('workflow');
    const docs = workflowDocuments();
    let valid = 0;
    for (const [name, data] of docs) {
      const expected = full(data);
      if (expected) valid++;
      expect(precompiled.workflow(data), name).toBe(expected);
    }
    // Both outcomes are exercised.
    expect(valid).toBeGreaterThan(5);
    expect(docs.length - valid).toBeGreaterThan(5);
  });

  it('agree with the full ajv on profile documents', () => {
    const full = fullAjv('profile');
    const docs: Array<[string, unknown]> = yamlFiles(path.join(REPO_ROOT, 'test/fixtures'))
      .filter((f) => f.includes(`${path.sep}profiles${path.sep}`))
      .map((f) => [f, parse(readFileSync(f, 'utf8'))]);
    docs.push(
      ['minimal', { profile: 'p', shell: { mode: 'restricted' } }],
      ['bad mode', { profile: 'p', shell: { mode: 'sometimes' } }],
      ['unknown key', { profile: 'p', colour: 'blue' }],
    );
    for (const [name, data] of docs) expect(precompiled.profile(data), name).toBe(full(data));
  });

  it('leave the diagnostics of an invalid document to the full ajv', () => {
    const parsed = parseYaml('name: t\nsteps:\n  - run: echo\ntimeout: 60\n', 'w.yaml');
    expect(precompiled.workflow(parsed.data)).toBe(false);
    expect(validateWithSchema('workflow', parsed).map((d) => d.message)).toEqual([
      'a duration needs a unit: add one, e.g. "60s" or "60m"',
    ]);
  });
});
