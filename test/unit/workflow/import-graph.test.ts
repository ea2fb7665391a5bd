/**
 * Loading and validating workflows must stay cheap: the loader's module graph
 * must not reach the model or sandbox SDKs or the terminal UI (they are
 * imported lazily at the edges). Checked statically over the import graph.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../../../src/', import.meta.url));
const HEAVY = ['openai', '@daytonaio/sdk', 'listr2'];

/** Bare package specifiers statically imported by `entry` and everything it imports. */
function packagesOf(entry: string): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const stack = [entry];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    // Static imports and re-exports (`import type` is erased and does not count).
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\s)[^'";]*?from\s+['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) stack.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return packages;
}

describe('loader import graph', () => {
  it('the scanner follows relative imports and ignores type-only and dynamic ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rho-flow-test-'));
    try {
      writeFileSync(
        join(dir, 'a.ts'),
        "import { b } from './b.js';\nimport type { X } from 'listr2';\nexport { b };\n",
      );
      writeFileSync(
        join(dir, 'b.ts'),
        "import {\n  OpenAI,\n} from 'openai';\nconst d = () => import('@daytonaio/sdk');\n",
      );
      expect([...packagesOf(join(dir, 'a.ts'))]).toEqual(['openai']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const entry of ['workflow/load.ts', 'profiles/load-profile.ts', 'profiles/builtin.ts']) {
    it(`${entry} imports no SDK or UI package`, () => {
      const packages = packagesOf(src + entry);
      expect(packages.has('yaml')).toBe(entry !== 'profiles/builtin.ts');
      for (const heavy of HEAVY) expect(packages.has(heavy), heavy).toBe(false);
    });
  }
});
