/**
 * Issue 3 acceptance: teardown holds — no workspace and no process left —
 * on success, failure, step timeout, job timeout, SIGINT/SIGTERM mid-batch,
 * a second signal during teardown, and SIGKILL followed by cleanup. Real
 * CLI processes, real bwrap jails, real signals.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import path from 'node:path';
import { RunRig, waitFor } from '../helpers/run-rig.js';

const byId = (results: Array<Record<string, unknown>>): Record<string, Record<string, unknown>> =>
  Object.fromEntries(results.map((r) => [r.id as string, r]));

describe('teardown', () => {
  it('after success, failure, step timeout and job timeout: statuses, timing, nothing left', async () => {
    await using rig = await RunRig.create();
    await rig.write('ok.yaml', 'name: ok\nsteps:\n  - run: echo fine\n');
    await rig.write('fail.yaml', 'name: fail\nsteps:\n  - run: exit 3\n  - run: echo never\n');
    await rig.write(
      'step-timeout.yaml',
      `name: step-timeout\nsteps:\n  - run: ${rig.sleep(600)}\n    timeout: 2s\n`,
    );
    await rig.write(
      'job-timeout.yaml',
      `name: job-timeout\ntimeout: 3s\nsteps:\n  - run: echo start\n  - run: ${rig.sleep(600)}\n`,
    );
    const started = Date.now();
    const r = await rig.run(
      [
        'run',
        'ok.yaml',
        'fail.yaml',
        'step-timeout.yaml',
        'job-timeout.yaml',
        '-j',
        '4',
        '-o',
        'out',
        '--grace-period',
        '3s',
      ],
      {},
      60_000,
    );
    const elapsed = Date.now() - started;
    expect(r.code, r.stderr).toBe(1);
    // The slowest job is bounded by its 3 s timeout plus the 3 s grace period (plus process start).
    expect(elapsed).toBeLessThan(15_000);
    const results = byId(await rig.results());
    expect(results.ok?.status).toBe('passed');
    expect(results.fail?.status).toBe('failed');
    expect((results.fail?.steps as Array<{ status: string }>).map((s) => s.status)).toEqual([
      'failed',
      'skipped',
    ]);
    expect(results['step-timeout']?.status).toBe('timed-out');
    expect(results['job-timeout']?.status).toBe('timed-out');
    expect((results['job-timeout']?.durationMs as number) < 3000 + 3000 + 2000).toBe(true);
    expect(rig.leftovers()).toEqual([]);
    expect(rig.processes()).toEqual([]);
  });

  for (const [signal, code, group] of [
    ['SIGINT', 130, false],
    ['SIGTERM', 143, false],
    // Ctrl-C in a terminal signals the whole process group: rho-flow's helper processes too.
    ['SIGINT', 130, true],
  ] as const) {
    const to = group ? ' to the process group' : '';
    it(`${signal}${to} mid-batch: exit ${code}, finished results intact, the rest cancelled, nothing left`, async () => {
      await using rig = await RunRig.create();
      await rig.write(
        'batch.yaml',
        `name: batch
strategy:
  matrix:
    n: [1, 2, 3, 4, 5, 6]
steps:
  - run: |
      if [ \${{ matrix.n }} -le 2 ]; then sleep 0.2; else ${rig.sleep(600)}; fi
finally:
  - run: echo cleaning up
`,
      );
      const running = rig.start(
        ['run', 'batch.yaml', '-j', '2', '-o', 'out', '--grace-period', '5s', '--reporter', 'plain'],
        {},
        { group },
      );
      await waitFor(
        async () => (await rig.results().catch(() => [])).length >= 2 && rig.sleepers().length === 2,
        30_000,
        'two jobs done and two sleeping',
      );
      await waitFor(() => rig.workspaces().length === 2, 10_000, 'two live workspaces');
      const sent = Date.now();
      if (group) running.killGroup(signal);
      else running.kill(signal);
      const r = await running.result(30_000);
      expect(r.code, r.stderr + r.stdout).toBe(code);
      expect(Date.now() - sent).toBeLessThan(8_000);
      const results = await rig.results();
      expect(results).toHaveLength(6);
      const status = Object.fromEntries(results.map((x) => [(x.matrix as { n: number }).n, x.status]));
      expect(status).toEqual({
        1: 'passed',
        2: 'passed',
        3: 'cancelled',
        4: 'cancelled',
        5: 'cancelled',
        6: 'cancelled',
      });
      // The cancelled running jobs still ran their finally step.
      const running3 = results.find((x) => (x.matrix as { n: number }).n === 3)!;
      expect(
        (running3.steps as Array<{ finally: boolean; status: string }>).filter((s) => s.finally),
      ).toEqual([expect.objectContaining({ finally: true, status: 'passed' })]);
      const summary = JSON.parse(
        await fs.readFile(path.join(await rig.runDir(), 'summary.json'), 'utf8'),
      ) as {
        interrupted: string;
        counts: Record<string, number>;
      };
      expect(summary.interrupted).toBe(signal);
      expect(summary.counts).toMatchObject({ passed: 2, cancelled: 4 });
      expect(rig.leftovers()).toEqual([]);
      expect(rig.processes()).toEqual([]);
    });
  }

  it('a second signal during teardown deletes what is left at once and exits', async () => {
    await using rig = await RunRig.create();
    await rig.write(
      'slow.yaml',
      `name: slow
strategy:
  matrix:
    n: [1, 2]
steps:
  - run: ${rig.sleep(600)}
finally:
  - run: echo finally-started; ${rig.sleep(599)}
`,
    );
    const running = rig.start([
      'run',
      'slow.yaml',
      '-j',
      '2',
      '-o',
      'out',
      '--grace-period',
      '60s',
      '--reporter',
      'plain',
    ]);
    await waitFor(() => rig.sleepers().length === 2, 30_000, 'two sleeping jobs');
    running.kill('SIGINT');
    // The first signal cancels the steps; the finally steps start and would take 599 s.
    await waitFor(
      () => rig.processes(rig.sleep(599).split(' ')[1]).length >= 2,
      15_000,
      'finally steps running',
    );
    const second = Date.now();
    running.kill('SIGINT');
    const r = await running.result(30_000);
    expect(r.code, r.stderr + r.stdout).toBe(130);
    expect(Date.now() - second).toBeLessThan(10_000);
    await waitFor(() => rig.processes().length === 0, 5_000, 'no jailed process left');
    expect(rig.leftovers()).toEqual([]);
  });

  it('after SIGKILL of the CLI the jailed processes die, and cleanup / the next run remove the workspace', async () => {
    await using rig = await RunRig.create();
    await rig.write('long.yaml', `name: long\nsteps:\n  - run: ${rig.sleep(600)}\n`);
    await rig.write('quick.yaml', 'name: quick\nsteps:\n  - run: "true"\n');
    const running = rig.start(['run', 'long.yaml', '-o', 'out']);
    await waitFor(
      () => rig.sleepers().length > 0 && rig.workspaces().length === 1,
      30_000,
      'the job to sleep',
    );
    running.kill('SIGKILL');
    await running.result();
    await waitFor(() => rig.processes().length === 0, 10_000, 'jailed processes to die with their parent');
    const orphan = rig.workspaces();
    expect(orphan).toHaveLength(1);

    const dry = await rig.run(['cleanup', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('would remove');
    expect(rig.workspaces()).toEqual(orphan);

    // A new run sweeps dead runs' workspaces before it starts.
    const next = await rig.run(['run', 'quick.yaml', '-o', 'out2']);
    expect(next.code, next.stderr).toBe(0);
    expect(rig.leftovers()).toEqual([]);
  });

  it('rho-flow cleanup removes an orphaned workspace and keeps one whose owner is alive', async () => {
    await using rig = await RunRig.create();
    await rig.write('long.yaml', `name: long\nsteps:\n  - run: ${rig.sleep(600)}\n`);
    // The live run starts first, so its own start-up sweep cannot be what removes the orphan.
    const alive = rig.start(['run', 'long.yaml', '-o', 'out-alive']);
    await waitFor(() => rig.sleepers().length === 1, 30_000, 'the live job to sleep');
    const live = rig.workspaces();
    expect(live).toHaveLength(1);
    const dead = rig.start(['run', 'long.yaml', '-o', 'out-dead']);
    await waitFor(() => rig.sleepers().length === 2, 30_000, 'the second job to sleep');
    dead.kill('SIGKILL');
    await dead.result();
    await waitFor(() => rig.sleepers().length === 1, 10_000, 'the orphan to die with its parent');
    expect(rig.workspaces()).toHaveLength(2);

    const r = await rig.run(['cleanup']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/removed .*long/);
    expect(r.stdout).toMatch(/kept .*long/);
    expect(rig.workspaces()).toEqual(live);
    // The dead run's marker and directory went with its workspace; the live run keeps its marker.
    const liveRun = path.dirname(live[0]!);
    expect(rig.leftovers().filter((e) => !live.includes(e))).toEqual([
      expect.stringMatching(new RegExp(`^${liveRun}/\\.owner-\\d+\\.json$`)) as string,
    ]);

    alive.kill('SIGTERM');
    const end = await alive.result();
    expect(end.code).toBe(143);
    expect(rig.leftovers()).toEqual([]);
  });

  it('an uncaught exception in the CLI process still deletes every sandbox (exit 1)', async () => {
    await using rig = await RunRig.create();
    await rig.write(
      'c.yaml',
      `name: c\nstrategy:\n  matrix:\n    n: [1, 2]\nsteps:\n  - run: ${rig.sleep(600)}\n`,
    );
    const r = await rig.run(
      ['run', 'c.yaml', '-j', '2', '-o', 'out'],
      { RHO_FLOW_TEST_FAULT: 'uncaught-after-create' },
      30_000,
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('internal error');
    expect(r.stderr).toContain('injected uncaught exception');
    await waitFor(() => rig.processes().length === 0, 5_000, 'no jailed process left');
    expect(rig.leftovers()).toEqual([]);
  });
});
