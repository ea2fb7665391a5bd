/**
 * The README's main command: `rho-flow run workflows/hello.yaml --replay
 * workflows/cassettes` succeeds offline (no API key), and its artifacts show
 * that the agent's tool calls really ran in the sandbox. Also without
 * bubblewrap (unjailed, with one warning), and refused under --isolation strict.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import path from 'node:path';
import { RunRig } from '../helpers/run-rig.js';
import { REPO_ROOT } from '../helpers/cli.js';

const HELLO = path.join(REPO_ROOT, 'workflows', 'hello.yaml');
const CASSETTES = path.join(REPO_ROOT, 'workflows', 'cassettes');

describe('the shipped hello example', () => {
  for (const mode of ['jailed', 'unjailed'] as const) {
    it(`runs offline from recorded responses (${mode})`, async () => {
      await using rig = await RunRig.create();
      const env = {
        OPENAI_API_KEY: undefined,
        OPENAI_BASE_URL: undefined,
        ...(mode === 'unjailed' ? { RHO_FLOW_BWRAP: 'none' } : {}),
      };
      const r = await rig.run(
        ['run', HELLO, '--replay', CASSETTES, '-o', rig.out, '--reporter', 'plain'],
        env,
      );
      expect(r.code, r.stderr + r.stdout).toBe(0);
      const warnings = (r.stdout + r.stderr).match(/isolation is off|bubblewrap/gi) ?? [];
      if (mode === 'unjailed') expect(warnings.length).toBeGreaterThan(0);
      else expect(warnings).toEqual([]);

      const job = path.join(await rig.runDir(), 'jobs', 'hello');
      // The agent's `write` call created the file in the sandbox; it came back as an artifact.
      const summary = await fs.readFile(path.join(job, 'artifacts', 'summary.md'), 'utf8');
      expect(summary).toContain('bubblewrap jail');
      // A later run step saw that file inside the sandbox and counted its words.
      const log = await fs.readFile(path.join(job, 'log.txt'), 'utf8');
      expect(log).toMatch(/── step check \(Check the summary\) ──\n\d+ out\/summary\.md\n/);
      // The agent's `read` returned the uploaded notes, and its `bash` call ran `wc` in the sandbox.
      const transcript = (await fs.readFile(path.join(job, 'transcript.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; name?: string; output?: string });
      const results = transcript.filter((e) => e.type === 'tool-result');
      expect(results.map((e) => e.name)).toEqual(['read', 'write', 'bash']);
      expect(results[0]?.output).toContain('Every sandbox is torn down');
      expect(results[2]?.output).toMatch(/"output":\s*"\d+ out\/summary\.md/);
      expect(rig.leftovers()).toEqual([]);
    });
  }

  it('refuses to run unjailed under --isolation strict, before creating anything', async () => {
    await using rig = await RunRig.create();
    const r = await rig.run(['run', HELLO, '--replay', CASSETTES, '-o', rig.out, '--isolation', 'strict'], {
      RHO_FLOW_BWRAP: 'none',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bubblewrap|bwrap/);
    await expect(fs.access(rig.out)).rejects.toThrow();
    expect(rig.leftovers()).toEqual([]);
  });
});
