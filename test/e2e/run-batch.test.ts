/**
 * Issue 3 acceptance: a batch of 40 jobs at -j 8 on real bwrap sandboxes.
 * The number of live sandboxes is measured from outside, by counting the
 * workspaces under the run's private TMPDIR while the CLI runs.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import path from 'node:path';
import { RunRig } from '../helpers/run-rig.js';

describe('rho-flow run: a 40-job batch at -j 8', () => {
  it('runs every job, keeps at most 8 sandboxes alive, reaches 8, and leaves nothing behind', async () => {
    await using rig = await RunRig.create();
    await rig.write(
      'batch.yaml',
      `name: batch
strategy:
  matrix:
    n: [${Array.from({ length: 40 }, (_, i) => i + 1).join(', ')}]
steps:
  - id: work
    run: |
      mkdir -p /work/out
      echo "job \${{ matrix.n }}" > /work/out/n.txt
      sleep 0.4
      echo "n=\${{ matrix.n }}" >> "$RHO_FLOW_OUTPUT"
artifacts:
  - path: /work/out/n.txt
`,
    );
    const running = rig.start(['run', 'batch.yaml', '-j', '8', '-o', 'out', '--reporter', 'plain']);
    let peak = 0;
    let samples = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rig.workspaces().length);
      samples++;
    }, 10);
    const r = await running.result(120_000);
    clearInterval(sampler);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(samples).toBeGreaterThan(20);
    expect(peak).toBe(8);

    const results = await rig.results();
    expect(results).toHaveLength(40);
    expect(new Set(results.map((x) => x.status))).toEqual(new Set(['passed']));
    const runDir = await rig.runDir();
    const seen = new Set<number>();
    for (const res of results) {
      const n = (res.matrix as { n: number }).n;
      seen.add(n);
      const artifact = path.join(runDir, 'jobs', res.slug as string, 'artifacts', 'n.txt');
      await expect(fs.readFile(artifact, 'utf8')).resolves.toBe(`job ${n}\n`);
      expect((res.steps as Array<{ outputs: Record<string, string> }>)[0]!.outputs).toEqual({ n: String(n) });
    }
    expect(seen.size).toBe(40);
    const summary = JSON.parse(await fs.readFile(path.join(runDir, 'summary.json'), 'utf8')) as {
      counts: { passed: number };
    };
    expect(summary.counts.passed).toBe(40);
    expect(rig.leftovers()).toEqual([]);
  });
});
