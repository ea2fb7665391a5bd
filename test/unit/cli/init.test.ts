import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { schemaReference, starterWorkflow } from '../../../src/cli/commands/init.js';
import { schemaPath } from '../../../src/cli/commands/schema.js';
import { version } from '../../../src/cli/version.js';
import { REPO_ROOT, runInProcess } from '../../helpers/cli.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('schemaReference', () => {
  test('inside the rho-flow source tree: a relative path', () => {
    expect(schemaReference(path.join(REPO_ROOT, 'workflows'))).toBe('../schemas/workflow.schema.json');
    expect(schemaReference(REPO_ROOT)).toBe('./schemas/workflow.schema.json');
  });

  test('installed in the project: a relative path through node_modules', () => {
    const schema = '/proj/node_modules/rho-flow/schemas/workflow.schema.json';
    expect(schemaReference('/proj', schema)).toBe('./node_modules/rho-flow/schemas/workflow.schema.json');
    expect(schemaReference('/proj/flows/ci', schema)).toBe(
      '../../node_modules/rho-flow/schemas/workflow.schema.json',
    );
  });

  test('global install or npx cache: the versioned schema on unpkg', () => {
    const url = `https://unpkg.com/rho-flow@${version()}/schemas/workflow.schema.json`;
    expect(
      schemaReference('/home/me/proj', '/usr/lib/node_modules/rho-flow/schemas/workflow.schema.json'),
    ).toBe(url);
    expect(
      schemaReference('/tmp/x', '/home/me/.npm/_npx/ab12/node_modules/rho-flow/schemas/workflow.schema.json'),
    ).toBe(url);
  });

  test('the default points at the shipped schema', () => {
    expect(schemaPath('workflow')).toBe(path.join(REPO_ROOT, 'schemas', 'workflow.schema.json'));
  });
});

describe('rho-flow init', () => {
  test('writes workflow.rho-flow.yaml with the modeline first; it validates clean', async () => {
    const r = await runInProcess(['init'], { cwd: dir });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('created workflow.rho-flow.yaml');
    const text = await fs.readFile(path.join(dir, 'workflow.rho-flow.yaml'), 'utf8');
    expect(text.split('\n')[0]).toBe(`# yaml-language-server: $schema=${schemaReference(dir)}`);
    expect(text).toBe(starterWorkflow('workflow', schemaReference(dir)));
    expect(text).toContain('\nname: workflow ');

    const v = await runInProcess(['validate', 'workflow.rho-flow.yaml'], { cwd: dir });
    expect(v).toMatchObject({ code: 0, stdout: '' });
    expect(v.stderr).toBe('1 workflow file valid, 1 job\n');
  });

  test('a given name names the file and the workflow', async () => {
    expect((await runInProcess(['init', 'nightly-eval'], { cwd: dir })).code).toBe(0);
    const text = await fs.readFile(path.join(dir, 'nightly-eval.rho-flow.yaml'), 'utf8');
    expect(text).toContain('\nname: nightly-eval ');
    expect((await runInProcess(['validate', '.'], { cwd: dir })).code).toBe(0);
  });

  test('refuses to overwrite without --force, and leaves the file alone', async () => {
    const file = path.join(dir, 'workflow.rho-flow.yaml');
    await fs.writeFile(file, 'mine');
    const r = await runInProcess(['init'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('workflow.rho-flow.yaml already exists (use --force to overwrite it)');
    expect(await fs.readFile(file, 'utf8')).toBe('mine');
    expect((await runInProcess(['init', '--force'], { cwd: dir })).code).toBe(0);
    expect(await fs.readFile(file, 'utf8')).toContain('yaml-language-server');
  });

  test('rejects unsafe names', async () => {
    for (const name of ['../evil', '.hidden', 'a b', '-x=']) {
      const r = await runInProcess(['init', '--', name], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`invalid workflow name '${name}'`);
    }
    expect(await fs.readdir(dir)).toEqual([]);
  });
});
