import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../helpers/cli.js';

const run = promisify(execFile);

describe('docs/workflow-reference.md', () => {
  it('is generated from the current schema (node scripts/gen-workflow-reference.js)', async () => {
    const r = await run(process.execPath, ['scripts/gen-workflow-reference.js', '--check'], {
      cwd: REPO_ROOT,
    }).then(
      () => 0,
      (e: unknown) => (e as { code: number }).code,
    );
    expect(r).toBe(0);
  });
});
