/**
 * `strategy.max-parallel` bounds one workflow below `--concurrency`, measured
 * from outside; `--keep-sandboxes on-failure` keeps exactly the failed jobs'
 * sandboxes and says where they are.
 */
import { describe, expect, it } from 'vitest';
import { RunRig } from '../helpers/run-rig.js';

describe('run options', () => {
  it('max-parallel caps one workflow while another uses the rest of --concurrency', async () => {
    await using rig = await RunRig.create();
    const matrix = (n: number): string => `[${Array.from({ length: n }, (_, i) => i + 1).join(', ')}]`;
    await rig.write(
      'capped.yaml',
      `name: capped\nstrategy:\n  max-parallel: 2\n  matrix:\n    n: ${matrix(8)}\nsteps:\n  - run: sleep 0.4\n`,
    );
    await rig.write(
      'free.yaml',
      `name: free\nstrategy:\n  matrix:\n    n: ${matrix(8)}\nsteps:\n  - run: sleep 0.4\n`,
    );
    const running = rig.start(['run', 'capped.yaml', 'free.yaml', '-j', '6', '-o', 'out']);
    let peakCapped = 0;
    let peakAll = 0;
    const timer = setInterval(() => {
      const ws = rig.workspaces();
      peakAll = Math.max(peakAll, ws.length);
      peakCapped = Math.max(peakCapped, ws.filter((w) => w.split('/')[1]!.startsWith('capped')).length);
    }, 10);
    const r = await running.result(120_000);
    clearInterval(timer);
    expect(r.code, r.stderr).toBe(0);
    expect(peakCapped).toBe(2);
    expect(peakAll).toBe(6);
    expect(await rig.results()).toHaveLength(16);
  });

  it('--keep-sandboxes on-failure keeps the failed job sandbox only, and names it', async () => {
    await using rig = await RunRig.create();
    await rig.write(
      'k.yaml',
      'name: k\nstrategy:\n  matrix:\n    ok: [yes, no]\nsteps:\n  - run: echo evidence > clue.txt; test ${{ matrix.ok }} = yes\n',
    );
    const r = await rig.run([
      'run',
      'k.yaml',
      '-o',
      'out',
      '--keep-sandboxes',
      'on-failure',
      '--reporter',
      'plain',
    ]);
    expect(r.code).toBe(1);
    const left = rig.workspaces();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/\/k.*ok.no/);
    expect(r.stdout + r.stderr).toMatch(/kept sandbox .*k.*ok.no/);
  });
});
