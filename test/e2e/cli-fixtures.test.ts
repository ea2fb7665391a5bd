/**
 * The real binary on the shipped examples and the fixture corpus: every
 * example and valid fixture validates; every expected diagnostic of every
 * invalid fixture is printed by `rho-flow validate`, in every format.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT, runBin } from '../helpers/cli.js';

const INVALID = path.join(REPO_ROOT, 'test', 'fixtures', 'invalid');

async function expectedLines(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const name of (await fs.readdir(INVALID)).sort()) {
    if (!name.endsWith('.expected.txt')) continue;
    const text = await fs.readFile(path.join(INVALID, name), 'utf8');
    out.set(
      name.replace(/\.expected\.txt$/, '.yaml'),
      text.split('\n').filter((l) => l.trim() !== ''),
    );
  }
  return out;
}

describe('examples and valid fixtures', () => {
  test('rho-flow validate workflows/ test/fixtures/valid/ exits 0 with no diagnostics', async () => {
    const r = await runBin(['validate', 'workflows/', 'test/fixtures/valid/']);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^\d+ workflow files valid, \d+ jobs\n$/);
  });

  test('list workflows/ --json: every example expands, ids and slugs unique', async () => {
    const r = await runBin(['list', 'workflows/', '--json']);
    expect(r.code).toBe(0);
    const jobs = JSON.parse(r.stdout) as Array<{ index: number; id: string; slug: string; file: string }>;
    expect(jobs.length).toBeGreaterThanOrEqual(4);
    expect(jobs.map((j) => j.index)).toEqual(jobs.map((_, i) => i));
    expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length);
    expect(new Set(jobs.map((j) => j.slug.toLowerCase())).size).toBe(jobs.length);
    const files = new Set(jobs.map((j) => j.file));
    for (const f of [
      'workflows/hello.yaml',
      'workflows/matrix.yaml',
      'workflows/dataset.yaml',
      'workflows/daytona.yaml',
    ]) {
      expect(files).toContain(f);
    }
  });

  test('run workflows/ --dry-run prints the same plan and creates nothing', async () => {
    const r = await runBin(['run', 'workflows/', '--dry-run', '-o', '/nonexistent/rho-flow-results']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/dry run: \d+ jobs from \d+ workflows; nothing was created\n$/);
  });
});

describe('invalid fixtures', () => {
  test('text: exit 2, and every expected diagnostic line is printed', async () => {
    const expected = await expectedLines();
    expect(expected.size).toBeGreaterThanOrEqual(30);
    const r = await runBin(['validate', 'test/fixtures/invalid/*.yaml']);
    expect(r.code).toBe(2);
    const printed = new Set(r.stdout.split('\n'));
    const missing = [...expected].flatMap(([file, lines]) =>
      lines.filter((l) => !printed.has(l)).map((l) => `${file}: ${l}`),
    );
    expect(missing).toEqual([]);
    expect(r.stderr).toMatch(/^\d+ errors( and \d+ warnings?)? in \d+ files\n$/);
  });

  test('json: the same diagnostics, structured', async () => {
    const r = await runBin(['validate', 'test/fixtures/invalid/', '--format', 'json']);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as {
      valid: boolean;
      diagnostics: Array<{
        severity: string;
        path: string;
        message: string;
        location: { file: string; start: { line: number; col: number } };
      }>;
    };
    expect(doc.valid).toBe(false);
    const asText = new Set(
      doc.diagnostics.map(
        (d) =>
          `${d.location.file}:${d.location.start.line}:${d.location.start.col}: ${d.severity}: ${d.path === '' ? '' : `${d.path}: `}${d.message}`,
      ),
    );
    for (const [, lines] of await expectedLines()) for (const l of lines) expect(asText).toContain(l);
  });

  test('github: annotations capped at 10 per severity, then a notice', async () => {
    const r = await runBin(['validate', 'test/fixtures/invalid/', '--format', 'github']);
    expect(r.code).toBe(2);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('::error '))).toHaveLength(10);
    expect(lines.at(-1)).toMatch(
      /^::notice::\d+ errors( and \d+ warnings?)? not annotated \(GitHub shows at most 10 per type\); see the log above$/,
    );
  });
});
