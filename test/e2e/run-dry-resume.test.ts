import { describe, expect, it } from 'vitest';
import { RunRig } from '../helpers/run-rig.js';

describe('rho-flow run --resume --dry-run', () => {
  it('lists exactly the jobs a resume would run again, and creates nothing', async () => {
    await using rig = await RunRig.create();
    await rig.write(
      'r.yaml',
      'name: r\nstrategy:\n  matrix:\n    n: [1, 2, 3]\nsteps:\n  - run: test ${{ matrix.n }} -ne 1\n',
    );
    const first = await rig.run(['run', 'r.yaml', '-j', '1', '--max-failures', '1', '-o', 'out']);
    expect(first.code, first.stderr).toBe(1);
    const before = await rig.results();
    expect(before.map((r) => r.status)).toEqual(['failed', 'cancelled', 'cancelled']);

    const dry = await rig.run(['run', 'r.yaml', '--resume', '--dry-run', '-o', 'out', '--reporter', 'json']);
    expect(dry.code, dry.stderr).toBe(0);
    const jobs = JSON.parse(dry.stdout) as Array<{ id: string }>;
    expect(jobs.map((j) => j.id)).toEqual(['r[n=2]', 'r[n=3]']);
    expect(dry.stderr).toMatch(/2 jobs .*to run again in .* \(1 kept\); nothing was created/);
    expect(await rig.results()).toHaveLength(3);
    expect(rig.leftovers()).toEqual([]);
  });
});
