/**
 * Issue 5 acceptance, part 3: the CLI on the `daytona` backend is killed.
 * SIGTERM mid-batch with creates still in flight → exit 143 and every
 * sandbox deleted, including the ones whose create landed after the signal;
 * SIGKILL → `rho-flow cleanup --backend daytona` deletes the orphans and
 * keeps what belongs to a live process or to another host.
 */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { LABELS } from '../../src/sandbox/daytona-cleanup.js';
import { startFakeDaytona } from '../helpers/fake-daytona/index.js';
import { daytonaCliEnv, execRuns } from '../helpers/fake-daytona/cli.js';
import { RunRig, waitFor } from '../helpers/run-rig.js';

function batch(rig: RunRig, name: string, jobs: number): string {
  return `name: ${name}
sandbox:
  backend: daytona
strategy:
  matrix:
    n: [${Array.from({ length: jobs }, (_, i) => i + 1).join(', ')}]
steps:
  - run: ${rig.sleep(600)}
finally:
  - run: echo cleaning up
`;
}

describe('rho-flow run --backend daytona, interrupted', () => {
  it('SIGTERM with creates in flight: exit 143, the late sandboxes are deleted too, nothing left', async () => {
    await using fake = await startFakeDaytona();
    await using rig = await RunRig.create();
    await rig.write('term.yaml', batch(rig, 'term', 6));
    // Creates after the first two take 2.5 s on the server (the sandbox appears only then).
    let creates = 0;
    fake.inject({
      endpoint: 'create',
      times: Infinity,
      mode: 'delay',
      delayMs: 2500,
      match: () => ++creates > 2,
    });
    const running = rig.start(
      ['run', 'term.yaml', '-j', '4', '-o', 'out', '--grace-period', '8s', '--reporter', 'plain'],
      daytonaCliEnv(fake),
    );
    const inFlight = (): number =>
      fake.requests.filter((r) => r.endpoint === 'create' && r.status === 0).length;
    await waitFor(
      () => rig.sleepers().length === 2 && inFlight() === 2,
      30_000,
      'two jobs sleeping and two creates in flight',
    );
    expect(fake.live()).toHaveLength(2);
    const sent = Date.now();
    running.kill('SIGTERM');
    const r = await running.result(30_000);
    expect(r.code, r.stderr + r.stdout).toBe(143);
    expect(Date.now() - sent).toBeLessThan(10_000);
    // The two creates in flight landed after the signal; the CLI waited for them and deleted both.
    expect(fake.sandboxes).toHaveLength(4);
    expect(fake.live()).toEqual([]);
    const results = await rig.results();
    expect(results).toHaveLength(6);
    expect(results.map((x) => x.status)).toEqual(Array(6).fill('cancelled'));
    // No sleeping command survived its sandbox.
    await waitFor(() => rig.sleepers().length === 0, 5_000, 'the jailed sleeps to end');
  });

  it('SIGKILL, then cleanup --backend daytona: orphans deleted; a live owner’s and a foreign host’s sandboxes kept', async () => {
    await using fake = await startFakeDaytona();
    await using rig = await RunRig.create();
    await rig.write('killed.yaml', batch(rig, 'killed', 2));
    const env = daytonaCliEnv(fake);
    const runId = 'e2e-killed';
    const running = rig.start(['run', 'killed.yaml', '-j', '2', '-o', 'out', '--run-id', runId], env);
    await waitFor(() => rig.sleepers().length === 2, 30_000, 'two jobs sleeping');
    running.kill('SIGKILL');
    await running.result(10_000);
    const orphans = fake.live();
    expect(orphans).toHaveLength(2);

    const now = new Date().toISOString();
    const common = { [LABELS.managed]: 'true', [LABELS.jobId]: 'x', [LABELS.createdAt]: now };
    // This test process is alive: its sandbox must survive any cleanup.
    const mine = await fake.seed({
      name: 'owned-by-a-live-process',
      labels: { ...common, [LABELS.runId]: 'live-run', [LABELS.owner]: `${os.hostname()}:${process.pid}` },
    });
    const foreign = await fake.seed({
      name: 'owned-by-another-host',
      labels: { ...common, [LABELS.runId]: 'far-run', [LABELS.owner]: 'another-host.example:4242' },
    });

    const dry = await rig.run(['cleanup', '--backend', 'daytona', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.match(/^would remove .* \(run e2e-killed\): dry run/gm)).toHaveLength(2);
    expect(fake.live()).toHaveLength(4);
    expect(fake.count('delete')).toBe(0);

    const clean = await rig.run(['cleanup', '--backend', 'daytona'], env);
    expect(clean.code, clean.stderr).toBe(0);
    expect(
      clean.stdout.match(/^removed .* \(run e2e-killed\): deleted: owner process \d+ is gone$/gm),
    ).toHaveLength(2);
    expect(clean.stdout).toContain(
      `kept ${mine.id} (run live-run): owner process ${process.pid} is still running`,
    );
    expect(clean.stdout).toContain(`kept ${foreign.id} (run far-run): owned by another host`);
    expect(clean.stderr).toContain('daytona: 2 removed, 2 kept, 0 failed');
    expect(
      fake
        .live()
        .map((s) => s.name)
        .sort(),
    ).toEqual(['owned-by-a-live-process', 'owned-by-another-host']);
    for (const sb of orphans) expect(sb.state).toBe('destroyed');
    await waitFor(() => rig.sleepers().length === 0, 5_000, 'the orphans’ sleeps to end');

    // Scoped by run id, the foreign host's sandbox is in scope; the live owner's never is.
    const scoped = await rig.run(['cleanup', '--backend', 'daytona', '--run-id', 'far-run'], env);
    expect(scoped.code, scoped.stderr).toBe(0);
    expect(fake.live().map((s) => s.name)).toEqual(['owned-by-a-live-process']);
    await fake.remove(mine.id);
    expect(fake.live()).toEqual([]);
  });
});

describe('rho-flow run --backend daytona --keep-sandboxes on-failure', () => {
  it('keeps the failed job’s sandbox, still exits although its toolbox hangs, and cleanup removes it later', async () => {
    await using fake = await startFakeDaytona();
    await using rig = await RunRig.create();
    await rig.write(
      'kept.yaml',
      'name: kept\nsandbox:\n  backend: daytona\ntimeout: 2s\nsteps:\n  - run: echo KEPT-HANG-MARKER\n',
    );
    fake.inject({ endpoint: 'exec', times: Infinity, mode: 'hang', match: execRuns('KEPT-HANG-MARKER') });
    const env = daytonaCliEnv(fake);
    const started = Date.now();
    const r = await rig.run(
      [
        'run',
        'kept.yaml',
        '-o',
        'out',
        '--keep-sandboxes',
        'on-failure',
        '--grace-period',
        '1s',
        '--reporter',
        'plain',
      ],
      env,
      20_000,
    );
    // The hung exec of the kept sandbox must not keep the process alive.
    expect(r.code, r.stderr + r.stdout).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stdout + r.stderr).toContain('kept sandbox');
    const [kept] = fake.live();
    expect(kept?.name).toMatch(/^rf-.*-kept-.*-a1$/);
    expect(fake.count('delete')).toBe(0);

    const clean = await rig.run(['cleanup', '--backend', 'daytona'], env);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain(`removed ${kept?.id ?? '?'}`);
    expect(fake.live()).toEqual([]);
  });
});
