import { afterEach, describe, expect, test } from 'vitest';
import { SandboxError } from '../../../src/errors.js';
import { AbortReason } from '../../../src/util/abort.js';
import { buildCreateParams, sandboxName } from '../../../src/sandbox/daytona-create.js';
import { LABELS, labelValue } from '../../../src/sandbox/daytona-cleanup.js';
import { startFakeDaytona, type FakeDaytona } from '../../helpers/fake-daytona/index.js';
import { daytonaRig, daytonaSpec } from '../../helpers/fake-daytona/backend.js';

describe('names and labels', () => {
  test('sandbox names are stable, distinct per attempt, and within Daytona name rules', () => {
    const a = sandboxName('run-1', 'fix-tests-task-flaky-1', 1);
    expect(sandboxName('run-1', 'fix-tests-task-flaky-1', 1)).toBe(a);
    expect(sandboxName('run-1', 'fix-tests-task-flaky-1', 2)).not.toBe(a);
    expect(sandboxName('run-2', 'fix-tests-task-flaky-1', 1)).not.toBe(a);
    const long = sandboxName('R'.repeat(200), 'Job With Spaces/And[Brackets]#'.repeat(10), 12);
    for (const n of [a, long]) {
      expect(n).toMatch(/^[a-z0-9][a-z0-9-]*$/);
      expect(n.length).toBeLessThanOrEqual(63);
    }
    // Truncation keeps a hash of the full ids: jobs differing only past the cut stay distinct.
    expect(sandboxName('r', `${'x'.repeat(40)}-a`, 1)).not.toBe(sandboxName('r', `${'x'.repeat(40)}-b`, 1));
  });

  test('label values are sanitized deterministically, distinct ids stay distinct', () => {
    expect(labelValue('run-20250101-abc')).toBe('run-20250101-abc');
    const v = labelValue('fix-tests[task=flaky]#1');
    expect(v).toMatch(/^[A-Za-z0-9._:@=+-]+$/);
    expect(labelValue('fix-tests[task=flaky]#1')).toBe(v);
    expect(labelValue('fix-tests[task=flaky]#2')).not.toBe(v);
    expect(labelValue('x'.repeat(100)).length).toBeLessThanOrEqual(63);
  });

  test('create params: labels, intervals, network, image vs snapshot, defaults lose to the file', () => {
    const now = new Date('2030-01-02T03:04:05.000Z');
    const fromImage = buildCreateParams(
      daytonaSpec({ resources: { cpu: 4 }, labels: { team: 'ml', [LABELS.managed]: 'false' } }),
      { image: 'ubuntu:latest', cpu: 1, memory: 2, disk: 5 },
      { owner: 'host-a:42', now },
    );
    expect(fromImage).toMatchObject({
      image: 'ubuntu:latest',
      resources: { cpu: 4, memory: 2, disk: 5 },
      envVars: { FOO: 'bar' },
      autoStopInterval: 30,
      autoDeleteInterval: 60,
      networkBlockAll: true,
      labels: {
        team: 'ml',
        [LABELS.managed]: 'true',
        [LABELS.runId]: 'run-20250101-abc',
        [LABELS.owner]: 'host-a:42',
        [LABELS.createdAt]: '2030-01-02T03:04:05.000Z',
      },
    });
    expect(fromImage.snapshot).toBeUndefined();

    const fromSnapshot = buildCreateParams(
      daytonaSpec({ snapshot: 'snap-1', network: 'on', autoStopMinutes: 0.5, autoDeleteMinutes: 90 }),
      { image: 'ubuntu:latest', cpu: 1 },
      { owner: 'h:1', now },
    );
    expect(fromSnapshot).toMatchObject({
      snapshot: 'snap-1',
      networkBlockAll: false,
      autoStopInterval: 1,
      autoDeleteInterval: 90,
    });
    expect(fromSnapshot.image).toBeUndefined();
    expect(fromSnapshot.resources).toBeUndefined();
  });
});

describe('safe create against the fake Daytona server', () => {
  let fake: FakeDaytona | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  test('a 429 storm is ridden out, honouring Retry-After', async () => {
    fake = await startFakeDaytona();
    const storm = fake.inject({
      endpoint: 'create',
      times: 3,
      status: 429,
      headers: { 'retry-after-ms': '60' },
    });
    await using rig = daytonaRig(fake);
    const started = Date.now();
    const sandbox = await rig.backend.create(daytonaSpec());
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
    expect(storm.hits).toBe(3);
    expect(fake.count('create')).toBe(4);
    expect(fake.sandboxes).toHaveLength(1);
    expect(rig.warnings.filter((w) => w.includes('retrying'))).toHaveLength(3);
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
  });

  test('an endless 429 storm ends in SandboxError rate-limited after the configured retries', async () => {
    fake = await startFakeDaytona();
    fake.inject({ endpoint: 'create', times: Infinity, status: 429, message: 'Too many requests' });
    await using rig = daytonaRig(fake, {
      tuning: { backoff: { rateLimit: { retries: 2, baseMs: 1, maxMs: 2 } } },
    });
    const err = await rig.backend.create(daytonaSpec()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ code: 'rate-limited', retryable: true, details: { attempts: 3 } });
    expect(fake.count('create')).toBe(3);
    expect(fake.sandboxes).toHaveLength(0);
    expect(fake.live()).toEqual([]);
  });

  test('a create that succeeds server-side but answers 502 is adopted, never duplicated', async () => {
    fake = await startFakeDaytona();
    fake.inject({ endpoint: 'create', mode: 'after', status: 502, message: 'Bad Gateway' });
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec());
    expect(fake.sandboxes).toHaveLength(1);
    expect(sandbox.id).toBe(fake.sandboxes[0]!.id);
    expect(fake.count('create')).toBe(1);
    expect(fake.count('get')).toBeGreaterThanOrEqual(1);
    expect(rig.warnings.some((w) => w.includes('adopted'))).toBe(true);
    expect((await sandbox.exec('echo adopted')).stdout).toBe('adopted\n');
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
  });

  test('a create that times out is looked up by name and adopted', async () => {
    fake = await startFakeDaytona();
    fake.inject({ endpoint: 'create', mode: 'hang-after' });
    await using rig = daytonaRig(fake, { tuning: { createTimeoutMs: 400 } });
    const sandbox = await rig.backend.create(daytonaSpec());
    expect(fake.sandboxes).toHaveLength(1);
    expect(sandbox.id).toBe(fake.sandboxes[0]!.id);
    expect(fake.requests.some((r) => r.endpoint === 'get' && r.url.includes(sandbox.name))).toBe(true);
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
  });

  test('a dropped connection with nothing created is retried under the same name', async () => {
    fake = await startFakeDaytona();
    fake.inject({ endpoint: 'create', mode: 'drop' });
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec());
    expect(fake.sandboxes).toHaveLength(1);
    const names = new Set(fake.requests.filter((r) => r.endpoint === 'get').map((r) => r.url));
    expect(names.size).toBe(1);
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
  });

  test('a 409 name conflict (an earlier attempt got through) leads to adoption', async () => {
    fake = await startFakeDaytona();
    await using rig = daytonaRig(fake);
    const spec = daytonaSpec();
    const first = await rig.backend.create(spec);
    // Same job attempt again, as a retry whose first POST actually succeeded would see it.
    const second = await rig.backend.create(spec);
    expect(second.id).toBe(first.id);
    expect(fake.sandboxes).toHaveLength(1);
    expect(fake.requests.some((r) => r.endpoint === 'create' && r.status === 409)).toBe(true);
    await first.dispose();
    await second.dispose();
    expect(fake.live()).toEqual([]);
  });

  test('a sandbox that comes up slowly (creating → started) is waited for', async () => {
    fake = await startFakeDaytona({ create: { initialState: 'creating', settleMs: 250 } });
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec());
    expect(fake.count('get')).toBeGreaterThanOrEqual(1);
    expect((await sandbox.exec('echo up')).stdout).toBe('up\n');
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
  });

  test('build_failed is not retried and the broken sandbox is deleted', async () => {
    fake = await startFakeDaytona({
      create: {
        initialState: 'pending_build',
        settleMs: 50,
        finalState: 'build_failed',
        errorReason: 'no such image',
      },
    });
    await using rig = daytonaRig(fake);
    const err = await rig.backend.create(daytonaSpec({ image: 'nope:404' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ code: 'create-failed', retryable: false });
    expect((err as Error).message).toContain('build');
    expect(fake.count('create')).toBe(1);
    expect(fake.sandboxes).toHaveLength(1);
    expect(fake.live()).toEqual([]);
  });

  test('a sandbox in error state is deleted and creation retried (transient)', async () => {
    fake = await startFakeDaytona({
      create: { initialState: 'creating', settleMs: 30, finalState: 'error', times: 1 },
    });
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec());
    expect(fake.sandboxes).toHaveLength(2);
    expect(fake.sandboxes[0]!.state).toBe('destroyed');
    expect(fake.live().map((s) => s.id)).toEqual([sandbox.id]);
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
  });

  test('validation and auth errors are never retried', async () => {
    fake = await startFakeDaytona();
    fake.inject({
      endpoint: 'create',
      status: 400,
      message: 'Cannot specify Sandbox resources when using a snapshot',
    });
    await using rig = daytonaRig(fake);
    await expect(rig.backend.create(daytonaSpec())).rejects.toMatchObject({
      code: 'create-failed',
      retryable: false,
    });
    expect(fake.count('create')).toBe(1);

    fake.inject({ endpoint: 'create', status: 403, message: 'Forbidden' });
    await expect(rig.backend.create(daytonaSpec())).rejects.toMatchObject({ code: 'auth', retryable: false });
    expect(fake.count('create')).toBe(2);
    expect(fake.live()).toEqual([]);
  });

  test('an abort while the create is in flight waits for it and deletes the sandbox', async () => {
    fake = await startFakeDaytona({ latency: { create: 400 } });
    await using rig = daytonaRig(fake);
    await rig.backend.preflight(); // load the SDK first, so the abort lands during the create
    const controller = new AbortController();
    setTimeout(() => controller.abort(new AbortReason('cancelled', 'user pressed Ctrl-C')), 100);
    const err = await rig.backend
      .create(daytonaSpec(), { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortReason);
    expect(fake.sandboxes).toHaveLength(1);
    expect(fake.live()).toEqual([]);
    expect(fake.count('delete')).toBe(1);
  });

  test('a create still in flight past the abort wait is deleted in the background; close() awaits it', async () => {
    fake = await startFakeDaytona({ latency: { create: 2_000 } });
    const rig = daytonaRig(fake, { tuning: { abortCreateWaitMs: 50 } });
    await rig.backend.preflight();
    const controller = new AbortController();
    setTimeout(() => controller.abort(new AbortReason('job-timeout')), 50);
    const started = Date.now();
    await expect(rig.backend.create(daytonaSpec(), { signal: controller.signal })).rejects.toMatchObject({
      kind: 'job-timeout',
    });
    expect(Date.now() - started).toBeLessThan(1_200);
    await rig.backend.close();
    expect(fake.sandboxes).toHaveLength(1);
    expect(fake.live()).toEqual([]);
    expect(rig.warnings.some((w) => w.includes('still in flight'))).toBe(true);
  });

  test('an abort while waiting for a creation token creates nothing', async () => {
    fake = await startFakeDaytona();
    await using rig = daytonaRig(fake, { tuning: { createsPerMinute: 1, createBurst: 1 } });
    const first = await rig.backend.create(daytonaSpec());
    const controller = new AbortController();
    setTimeout(() => controller.abort(new AbortReason('cancelled')), 50);
    await expect(
      rig.backend.create(daytonaSpec({ attempt: 2 }), { signal: controller.signal }),
    ).rejects.toBeInstanceOf(AbortReason);
    expect(fake.count('create')).toBe(1);
    await first.dispose();
    expect(fake.live()).toEqual([]);
  });
});
