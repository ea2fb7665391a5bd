import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { LABELS, isPidAlive, ownerId } from '../../../src/sandbox/daytona-cleanup.js';
import { startFakeDaytona, type FakeDaytona, type FakeSandbox } from '../../helpers/fake-daytona/index.js';
import { daytonaRig, type DaytonaRig } from '../../helpers/fake-daytona/backend.js';

const HOUR = 3_600_000;
const host = os.hostname();
/** The pid of a process that has exited. */
const deadPid = spawnSync('true').pid;

function labels(runId: string, owner: string, createdAt: string): Record<string, string> {
  return {
    [LABELS.managed]: 'true',
    [LABELS.runId]: runId,
    [LABELS.jobId]: 'job',
    [LABELS.owner]: owner,
    [LABELS.createdAt]: createdAt,
  };
}

describe('owner checks', () => {
  test('ownerId is host:pid; isPidAlive tells live from dead pids', () => {
    expect(ownerId()).toBe(`${host}:${process.pid}`);
    expect(isPidAlive(process.pid)).toBe(true);
    expect(isPidAlive(deadPid)).toBe(false);
    expect(isPidAlive(NaN)).toBe(false);
  });
});

describe('cleanup --backend daytona', () => {
  let fake: FakeDaytona;
  let rig: DaytonaRig;
  let sb: Record<string, FakeSandbox>;

  beforeEach(async () => {
    fake = await startFakeDaytona();
    rig = daytonaRig(fake);
    const old = new Date(Date.now() - 5 * HOUR).toISOString();
    const young = new Date().toISOString();
    sb = {
      liveOwner: await fake.seed({ labels: labels('r1', `${host}:${process.pid}`, old) }),
      deadOwner: await fake.seed({ labels: labels('r1', `${host}:${deadPid}`, old) }),
      otherRun: await fake.seed({ labels: labels('r2', `${host}:${deadPid}`, old) }),
      young: await fake.seed({ labels: labels('r1', `${host}:${deadPid}`, young) }),
      foreign: await fake.seed({ labels: labels('r1', 'ci-runner-7:1234', old) }),
      stopped: await fake.seed({ labels: labels('r3', `${host}:${deadPid}`, old), state: 'stopped' }),
      unmanaged: await fake.seed({ labels: { team: 'someone-else' } }),
    };
  });

  afterEach(async () => {
    await rig.backend.close();
    // Tests leave the sandboxes cleanup must never touch; remove them so nothing is left.
    for (const s of fake.live()) await fake.remove(s.id);
    expect(fake.live()).toEqual([]);
    await fake.close();
  });

  const ids = (entries: Array<{ id: string }>): string[] => entries.map((e) => e.id).sort();
  const idsOf = (...names: string[]): string[] => names.map((n) => sb[n]!.id).sort();

  test('dry run reports what it would delete and deletes nothing', async () => {
    const report = await rig.backend.cleanup({ runId: 'r1', dryRun: true });
    expect(ids(report.removed)).toEqual(idsOf('deadOwner', 'young', 'foreign'));
    expect(report.removed.every((r) => r.reason.startsWith('dry run'))).toBe(true);
    expect(ids(report.kept)).toEqual(idsOf('liveOwner'));
    expect(report.kept[0]!.reason).toContain(String(process.pid));
    expect(fake.count('delete')).toBe(0);
    expect(fake.live()).toHaveLength(7);
  });

  test('a run id scopes the sweep; live owners are never touched', async () => {
    const report = await rig.backend.cleanup({ runId: 'r1' });
    expect(ids(report.removed)).toEqual(idsOf('deadOwner', 'young', 'foreign'));
    expect(ids(report.kept)).toEqual(idsOf('liveOwner'));
    expect(report.failed).toEqual([]);
    expect(ids(fake.live())).toEqual(idsOf('liveOwner', 'otherRun', 'stopped', 'unmanaged'));
  });

  test('olderThan keeps young sandboxes', async () => {
    const report = await rig.backend.cleanup({ olderThanMs: HOUR });
    expect(ids(report.removed)).toEqual(idsOf('deadOwner', 'otherRun', 'foreign', 'stopped'));
    expect(ids(report.kept)).toEqual(idsOf('liveOwner', 'young'));
    expect(report.kept.find((k) => k.id === sb.young!.id)!.reason).toContain('younger');
    expect(ids(fake.live())).toEqual(idsOf('liveOwner', 'young', 'unmanaged'));
  });

  test('without a scope, sandboxes of another host are kept (their owner cannot be checked)', async () => {
    const report = await rig.backend.cleanup({});
    expect(ids(report.removed)).toEqual(idsOf('deadOwner', 'otherRun', 'young', 'stopped'));
    expect(ids(report.kept)).toEqual(idsOf('liveOwner', 'foreign'));
    expect(report.kept.find((k) => k.id === sb.foreign!.id)!.reason).toContain('another host');
  });

  test('a delete that keeps failing is reported in failed, the rest still go', async () => {
    fake.inject({ endpoint: 'delete', sandboxId: sb.deadOwner!.id, times: Infinity, status: 500 });
    fake.inject({ endpoint: 'stop', sandboxId: sb.deadOwner!.id, times: Infinity, status: 500 });
    const report = await rig.backend.cleanup({ runId: 'r1' });
    expect(report.failed.map((f) => f.id)).toEqual([sb.deadOwner!.id]);
    expect(report.failed[0]!.error).toContain('could not delete');
    expect(ids(report.removed)).toEqual(idsOf('young', 'foreign'));
  });

  test('pages through long listings', async () => {
    await fake.close();
    fake = await startFakeDaytona({ pageSize: 2 });
    await rig.backend.close();
    rig = daytonaRig(fake);
    const old = new Date(Date.now() - 5 * HOUR).toISOString();
    for (let i = 0; i < 5; i++) await fake.seed({ labels: labels('r9', `${host}:${deadPid}`, old) });
    const report = await rig.backend.cleanup({ runId: 'r9' });
    expect(report.removed).toHaveLength(5);
    expect(fake.count('list')).toBe(3);
  });
});
