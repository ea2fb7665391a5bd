/**
 * `RunLock`: one process per run dir. A live holder (this process, or a real
 * child process) is refused with its pid named; a dead holder's lock (a
 * child that exited) is taken over; release removes only our own lock.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { RunLock } from '../../../src/results/run-lock.js';
import { currentOwner, processStartTime } from '../../../src/sandbox/owner.js';

let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-lock-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function runDir(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

/** A lock file as process `pid` would have written it (same host and boot, its own start time). */
async function lockOf(dir: string, pid: number, startTime?: string): Promise<void> {
  const me = await currentOwner({ runId: 'r', jobId: 'run', nonce: 'theirs' });
  const marker = { ...me, pid, ...(startTime !== undefined ? { pidStartTime: startTime } : {}) };
  await fs.writeFile(path.join(dir, '.lock'), JSON.stringify(marker));
}

describe('RunLock', () => {
  test('a second holder in a live process is refused, naming it; after release the lock is free', async () => {
    const dir = await runDir('live');
    const lock = await RunLock.acquire(dir, 'r');
    expect(JSON.parse(await fs.readFile(lock.path, 'utf8'))).toMatchObject({ pid: process.pid, runId: 'r' });
    const err = await RunLock.acquire(dir, 'r').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(`in use by rho-flow pid ${process.pid}`);
    lock.release();
    await expect(fs.stat(lock.path)).rejects.toMatchObject({ code: 'ENOENT' });
    (await RunLock.acquire(dir, 'r')).release();
  });

  test('a lock held by another live process is refused; once that process is gone it is taken over', async () => {
    const dir = await runDir('other');
    const child = spawn('sleep', ['30']);
    const pid = child.pid ?? 0;
    await lockOf(dir, pid, await processStartTime(pid));
    await expect(RunLock.acquire(dir, 'r')).rejects.toThrow(`in use by rho-flow pid ${pid}`);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const lock = await RunLock.acquire(dir, 'r');
    expect(JSON.parse(await fs.readFile(lock.path, 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
  });

  test('a recycled pid (same pid, another start time) counts as gone', async () => {
    const dir = await runDir('recycled');
    await lockOf(dir, process.pid, '1');
    const lock = await RunLock.acquire(dir, 'r');
    lock.release();
  });

  test('release leaves a lock that is no longer ours; an unreadable fresh lock is refused, an old one removed', async () => {
    const dir = await runDir('foreign');
    const lock = await RunLock.acquire(dir, 'r');
    await lockOf(dir, 1); // replaced behind our back (pid 1: alive)
    lock.release();
    expect(await fs.readFile(path.join(dir, '.lock'), 'utf8')).toContain('"theirs"');

    const half = await runDir('half-written');
    await fs.writeFile(path.join(half, '.lock'), '{"pid": 12');
    await expect(RunLock.acquire(half, 'r')).rejects.toThrow(/being opened by another rho-flow/);
    const old = new Date(Date.now() - 60_000);
    await fs.utimes(path.join(half, '.lock'), old, old);
    (await RunLock.acquire(half, 'r')).release();
  });
});
