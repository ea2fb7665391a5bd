/**
 * The fixture corpus: every file in test/fixtures/invalid/ must produce exactly
 * the diagnostics in its sibling `.expected.txt` (formatted lines, in order);
 * every file in test/fixtures/valid/ and workflows/ must load with no
 * diagnostic at all. `UPDATE_FIXTURES=1` rewrites the expected files (review
 * the diff before committing).
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../src/workflow/diagnostic.js';
import { loadWorkflowFile } from '../../../src/workflow/load.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const yamlIn = (dir: string): string[] =>
  readdirSync(root + dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => `${dir}/${f}`);

const invalid = yamlIn('test/fixtures/invalid');
const valid = yamlIn('test/fixtures/valid');
const examples = yamlIn('workflows');

describe('invalid fixtures', () => {
  it('holds at least 30 broken workflows', () => expect(invalid.length).toBeGreaterThanOrEqual(30));

  for (const file of invalid) {
    it(file.replace('test/fixtures/invalid/', ''), async () => {
      const { workflow, diagnostics } = await loadWorkflowFile(file, { cwd: root });
      const actual = diagnostics.map(formatDiagnostic).join('\n');
      const expectedFile = root + file.replace(/\.yaml$/, '.expected.txt');
      if (process.env.UPDATE_FIXTURES === '1') writeFileSync(expectedFile, `${actual}\n`);
      expect(existsSync(expectedFile), `${expectedFile} is missing`).toBe(true);
      expect(actual).toBe(readFileSync(expectedFile, 'utf8').trimEnd());
      expect(workflow).toBeUndefined();
      expect(diagnostics.some((d) => d.severity === 'error')).toBe(true);
    });
  }
});

describe('valid fixtures and examples', () => {
  for (const file of [...valid, ...examples]) {
    it(`${file} loads clean`, async () => {
      const { workflow, diagnostics } = await loadWorkflowFile(file, { cwd: root });
      expect(diagnostics.map(formatDiagnostic)).toEqual([]);
      expect(workflow?.file).toBe(file);
    });
  }

  it('examples carry the schema modeline', () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const file of examples) {
      expect(readFileSync(root + file, 'utf8').split('\n')[0]).toBe(
        '# yaml-language-server: $schema=../schemas/workflow.schema.json',
      );
    }
  });
});
