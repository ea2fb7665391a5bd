/**
 * A hung toolbox must never outlast an abort: every sandbox call returns as
 * soon as its signal aborts (the request is left behind), and disposing the
 * sandbox cancels what was left behind so nothing keeps the process alive.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AbortReason } from '../../../src/util/abort.js';
import type { DaytonaSandbox } from '../../../src/sandbox/daytona-sandbox.js';
import { startFakeDaytona, type FakeDaytona } from '../../helpers/fake-daytona/index.js';
import { daytonaRig, daytonaSpec, type DaytonaRig } from '../../helpers/fake-daytona/backend.js';

let fake: FakeDaytona;
let rig: DaytonaRig;
let sandbox: DaytonaSandbox;
let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  fake = await startFakeDaytona();
  rig = daytonaRig(fake);
  sandbox = await rig.backend.create(daytonaSpec());
  await sandbox.writeFile('f.txt', 'content\n');
  // From here on, every toolbox request of this sandbox hangs.
  fake.inject({ endpoint: 'toolbox', times: Infinity, mode: 'hang', sandboxId: sandbox.id });
});

afterAll(async () => {
  await sandbox.dispose();
  await rig.backend.close();
  expect(fake.live()).toEqual([]);
  await fake.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

const ABORT_AFTER_MS = 200;

/** Runs `call` with a signal that aborts after 200 ms; resolves with the rejection and how long it took. */
async function abortedAfter(
  call: (signal: AbortSignal) => Promise<unknown>,
): Promise<{ error: unknown; ms: number }> {
  const controller = new AbortController();
  const reason = new AbortReason('job-timeout', 'test timeout');
  const timer = setTimeout(() => controller.abort(reason), ABORT_AFTER_MS);
  const started = Date.now();
  try {
    await call(controller.signal);
    throw new Error('expected the call to be aborted');
  } catch (error) {
    return { error, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

describe('a hung toolbox yields to the abort signal', () => {
  const calls: Array<[string, (s: DaytonaSandbox, signal: AbortSignal) => Promise<unknown>]> = [
    ['readFile', (s, signal) => s.readFile('f.txt', { signal })],
    ['writeFile', (s, signal) => s.writeFile('g.txt', 'x', { signal })],
    ['stat', (s, signal) => s.stat('f.txt', { signal })],
    ['list', (s, signal) => s.list('.', { signal })],
    ['glob', (s, signal) => s.glob('**/*.txt', { signal })],
    ['remove', (s, signal) => s.remove('f.txt', { signal })],
    ['upload', (s, signal) => s.upload(tmp, '/work/up', { signal })],
    ['download', (s, signal) => s.download('f.txt', path.join(tmp, 'down'), { signal })],
    ['exec', (s, signal) => s.exec('echo hi', { signal })],
  ];
  for (const [name, call] of calls) {
    test(`${name} rejects with the abort reason right after the abort`, async () => {
      const { error, ms } = await abortedAfter((signal) => call(sandbox, signal));
      expect(error).toBeInstanceOf(AbortReason);
      expect((error as AbortReason).kind).toBe('job-timeout');
      // exec also waits (bounded by killWaitMs) for its in-sandbox kill command.
      expect(ms).toBeLessThan(ABORT_AFTER_MS + (name === 'exec' ? 2_500 : 500));
    });
  }

  test('the requests left behind stay open until dispose cancels them', async () => {
    const open = (): number =>
      fake.requests.filter((r) => r.sandboxId === sandbox.id && r.faulted && r.closedAt === undefined).length;
    // One per call above, plus the kill command of the aborted exec.
    expect(open()).toBeGreaterThanOrEqual(calls.length);
    await sandbox.dispose();
    await expect.poll(open, { timeout: 2_000 }).toBe(0);
    expect(fake.live()).toEqual([]);
  });
});
