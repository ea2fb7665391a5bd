/**
 * Issue 5 acceptance, part 2: faults injected on the fake Daytona server,
 * each through the real CLI (`rho-flow run --backend daytona`), each ending
 * with zero sandboxes left on the server. Retry and timeout delays are shrunk
 * through `RHO_FLOW_DAYTONA_TUNING` (see `daytonaCliEnv`).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sandboxName } from '../../src/sandbox/daytona-create.js';
import { startFakeDaytona, type FakeDaytona } from '../helpers/fake-daytona/index.js';
import { createsByName, daytonaCliEnv, execRuns } from '../helpers/fake-daytona/cli.js';
import { RunRig } from '../helpers/run-rig.js';

type Result = Record<string, unknown> & { id: string; status: string; attempts: number };

const byId = (results: Array<Record<string, unknown>>): Record<string, Result> =>
  Object.fromEntries(results.map((r) => [r.id as string, r as Result]));

/** A workflow on the daytona backend; `head` holds more top-level keys (strategy, timeout). */
function workflow(name: string, steps: string, head = ''): string {
  return `name: ${name}\nsandbox:\n  backend: daytona\n${head}steps:\n${steps}`;
}

/** Every sandbox the CLI created is gone (seeded ones are the test's own). */
function expectNothingLeft(fake: FakeDaytona): void {
  expect(fake.live().map((s) => s.name)).toEqual([]);
  for (const sb of fake.sandboxes) expect(sb.state).toBe('destroyed');
}

/** Gaps (ms) between consecutive create requests for the sandbox `name`. */
function createGaps(fake: FakeDaytona, name: string): number[] {
  const at = fake.requests
    .filter((r) => r.endpoint === 'create' && (r.body as { name?: string } | undefined)?.name === name)
    .map((r) => r.at);
  return at.slice(1).map((t, i) => t - (at[i] ?? t));
}

describe('rho-flow run --backend daytona under injected faults', () => {
  it('a 429 storm on create (with Retry-After): every job still passes, Retry-After is honoured', async () => {
    await using fake = await startFakeDaytona();
    await using rig = await RunRig.create();
    await rig.write(
      'storm.yaml',
      workflow('storm', '  - run: echo ok\n', 'strategy:\n  matrix:\n    n: [1, 2, 3, 4]\n'),
    );
    // The first two creates of each of the four jobs are refused: 8 × 429, "retry after 1 s".
    fake.inject({
      endpoint: 'create',
      times: 8,
      status: 429,
      message: 'Too many requests',
      headers: { 'retry-after': '1' },
    });
    const runId = 'e2e-storm';
    const r = await rig.run(
      ['run', 'storm.yaml', '-j', '4', '-o', 'out', '--run-id', runId, '--reporter', 'plain'],
      daytonaCliEnv(fake),
    );
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const results = await rig.results();
    expect(results.map((x) => [x.status, x.attempts])).toEqual(Array(4).fill(['passed', 1]));
    expect(fake.count('create')).toBe(12);
    // One sandbox per job, created on the third try; the waits follow Retry-After (1 s), not
    // the tuned 5–20 ms rate-limit backoff.
    expect(fake.sandboxes).toHaveLength(4);
    for (const [name, creates] of createsByName(fake)) {
      expect(creates, name).toBe(3);
      for (const gap of createGaps(fake, name)) expect(gap).toBeGreaterThanOrEqual(950);
    }
    expectNothingLeft(fake);
  });

  it('a create that answers 502 or hangs after creating, and a delete that fails twice: no duplicate, nothing left', async () => {
    await using fake = await startFakeDaytona();
    await using rig = await RunRig.create();
    await rig.write('bad-gateway.yaml', workflow('bad-gateway', '  - run: echo ok\n'));
    await rig.write('hung-create.yaml', workflow('hung-create', '  - run: echo ok\n'));
    await rig.write('sticky.yaml', workflow('sticky', '  - run: echo ok\n'));
    const runId = 'e2e-create-faults';
    const nameOf = (job: string): string => sandboxName(runId, job, 1);
    const named =
      (job: string) =>
      (req: { body: unknown }): boolean =>
        (req.body as { name?: string } | undefined)?.name === nameOf(job);
    // The server creates the sandbox, then answers 502 / never answers.
    fake.inject({ endpoint: 'create', mode: 'after', status: 502, match: named('bad-gateway') });
    fake.inject({ endpoint: 'create', mode: 'hang-after', match: named('hung-create') });
    const sticky = fake.inject({
      endpoint: 'delete',
      times: 2,
      status: 500,
      match: ({ url }) => {
        const sb = fake.sandboxes.find((s) => s.name === nameOf('sticky'));
        return sb !== undefined && url.includes(sb.id);
      },
    });
    const started = Date.now();
    const r = await rig.run(
      [
        'run',
        'bad-gateway.yaml',
        'hung-create.yaml',
        'sticky.yaml',
        '-j',
        '3',
        '-o',
        'out',
        '--run-id',
        runId,
        '--reporter',
        'plain',
      ],
      daytonaCliEnv(fake, {
        tuning: { createTimeoutMs: 1500, createBurst: 1 },
        // The user-facing creation-rate knob: 60/min with a burst of 1 = one create per second.
        extra: { RHO_FLOW_DAYTONA_CREATES_PER_MINUTE: '60' },
      }),
    );
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const results = byId(await rig.results());
    for (const id of ['bad-gateway', 'hung-create', 'sticky']) {
      expect(results[id]?.status, id).toBe('passed');
      expect(results[id]?.attempts, id).toBe(1);
    }
    // Each job created exactly one sandbox, once: the failed creates were reconciled by name.
    expect(Object.fromEntries(createsByName(fake))).toEqual({
      [nameOf('bad-gateway')]: 1,
      [nameOf('hung-create')]: 1,
      [nameOf('sticky')]: 1,
    });
    expect(fake.sandboxes).toHaveLength(3);
    expect(r.stdout + r.stderr).toMatch(/adopted Daytona sandbox .*bad-gateway/);
    expect(r.stdout + r.stderr).toMatch(/adopted Daytona sandbox .*hung-create/);
    // The delete of `sticky` failed twice, then succeeded.
    expect(sticky.hits).toBe(2);
    const stickyId = fake.sandboxes.find((s) => s.name === nameOf('sticky'))?.id;
    expect(fake.count('delete', stickyId)).toBe(3);
    // The three creates were paced by the limiter (tokens 1 s apart, so ~2 s from first to last;
    // unpaced they arrive within a few ms), and the hung create was abandoned after the 1.5 s
    // create timeout, not the 10 min default. The limiter spaces the tokens; between a token and
    // the request on the wire lies the SDK's own work, slower for its very first (cold) call by
    // up to ~150 ms on a loaded machine, so the first interval is not checked on its own.
    const creates = fake.requests.filter((x) => x.endpoint === 'create').map((x) => x.at);
    expect(creates).toHaveLength(3);
    expect(creates[2]! - creates[1]!).toBeGreaterThanOrEqual(900);
    expect(creates[2]! - creates[0]!).toBeGreaterThanOrEqual(1400);
    expect(Date.now() - started).toBeLessThan(20_000);
    expectNothingLeft(fake);
  });

  it('5xx on exec or create: a persistent fault ends the job as error (exit 3) after --retries; a transient one passes on the retry', async () => {
    await using fake = await startFakeDaytona();
    await using rig = await RunRig.create();
    await rig.write('exec-down.yaml', workflow('exec-down', '  - run: echo EXEC-DOWN-MARKER\n'));
    await rig.write('exec-blip.yaml', workflow('exec-blip', '  - run: echo EXEC-BLIP-MARKER\n'));
    await rig.write('create-down.yaml', workflow('create-down', '  - run: echo never\n'));
    const createDown = fake.inject({
      endpoint: 'create',
      times: Infinity,
      status: 503,
      match: ({ body }) => ((body as { name?: string } | undefined)?.name ?? '').includes('-create-down-'),
    });
    fake.inject({ endpoint: 'exec', times: Infinity, status: 503, match: execRuns('EXEC-DOWN-MARKER') });
    const blip = fake.inject({
      endpoint: 'exec',
      times: 1,
      status: 500,
      match: execRuns('EXEC-BLIP-MARKER'),
    });
    const r = await rig.run(
      [
        'run',
        'exec-down.yaml',
        'exec-blip.yaml',
        'create-down.yaml',
        '-j',
        '3',
        '-o',
        'out',
        '--retries',
        '1',
        '--reporter',
        'plain',
      ],
      daytonaCliEnv(fake),
    );
    expect(r.code, r.stderr + r.stdout).toBe(3);
    const results = byId(await rig.results());
    // Infrastructure, not a failure of the job: `error`, retried once (a fresh sandbox each time).
    expect(results['exec-down']).toMatchObject({
      status: 'error',
      attempts: 2,
      error: { kind: 'sandbox', code: 'exec-failed' },
    });
    expect(results['exec-blip']).toMatchObject({ status: 'passed', attempts: 2 });
    expect(blip.hits).toBe(1);
    // Each attempt tried the create 3 times (2 tuned transient retries), looking the name up in between.
    expect(results['create-down']).toMatchObject({
      status: 'error',
      attempts: 2,
      error: { kind: 'sandbox', code: 'create-failed' },
    });
    expect(createDown.hits).toBe(6);
    const summary = JSON.parse(await fs.readFile(path.join(await rig.runDir(), 'summary.json'), 'utf8')) as {
      counts: Record<string, number>;
    };
    expect(summary.counts).toMatchObject({ passed: 1, failed: 0, error: 2 });
    expect(fake.sandboxes).toHaveLength(4);
    expect(fake.sandboxes.map((s) => s.name.slice(-3)).sort()).toEqual(['-a1', '-a1', '-a2', '-a2']);
    expectNothingLeft(fake);
  });

  it('a toolbox that hangs (in a step, an upload, an artifact download): the job timeout wins and the sandbox is deleted', async () => {
    await using fake = await startFakeDaytona();
    await using rig = await RunRig.create();
    await rig.write('tree/a.txt', 'a\n');
    await rig.write(
      'hang-step.yaml',
      workflow('hang-step', '  - run: echo TOOLBOX-HANG-MARKER\n', 'timeout: 3s\n'),
    );
    await rig.write(
      'hang-upload.yaml',
      workflow('hang-upload', '  - run: echo never\n', 'timeout: 3s\nuploads:\n  - ./tree:/work/tree\n'),
    );
    await rig.write(
      'hang-artifact.yaml',
      workflow(
        'hang-artifact',
        '  - run: echo out > /work/out.txt\n',
        'timeout: 3s\nartifacts:\n  - path: /work/out.txt\n',
      ),
    );
    const faults = [
      fake.inject({
        endpoint: 'exec',
        times: Infinity,
        mode: 'hang',
        match: execRuns('TOOLBOX-HANG-MARKER'),
      }),
      // The command that unpacks the uploaded archive.
      fake.inject({ endpoint: 'exec', times: Infinity, mode: 'hang', match: execRuns('tar -x') }),
      fake.inject({ endpoint: 'download', times: Infinity, mode: 'hang' }),
    ];
    const started = Date.now();
    const r = await rig.run(
      [
        'run',
        'hang-step.yaml',
        'hang-upload.yaml',
        'hang-artifact.yaml',
        '-j',
        '3',
        '-o',
        'out',
        '--grace-period',
        '2s',
        '--reporter',
        'plain',
      ],
      daytonaCliEnv(fake),
      40_000,
    );
    const elapsed = Date.now() - started;
    expect(r.code, r.stderr + r.stdout).toBe(1);
    for (const f of faults) expect(f.hits).toBe(1);
    const results = byId(await rig.results());
    for (const id of ['hang-step', 'hang-upload', 'hang-artifact']) {
      expect(results[id], id).toMatchObject({
        status: 'timed-out',
        attempts: 1,
        error: { code: 'job-timeout' },
      });
      // The 3 s timeout, then at most the grace period (artifacts) and the kill wait.
      expect(results[id]?.durationMs as number, id).toBeLessThan(3000 + 2000 + 2000);
    }
    expect(results['hang-artifact']?.artifacts).toEqual([
      expect.objectContaining({ path: '/work/out.txt', status: 'error', message: 'cancelled' }),
    ]);
    // Process start and SDK import + the 3 s timeout + grace and kill waits, well short of any hang.
    expect(elapsed).toBeLessThan(15_000);
    expect(fake.sandboxes).toHaveLength(3);
    expectNothingLeft(fake);
  });
});
