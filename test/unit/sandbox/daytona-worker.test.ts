/**
 * The Daytona SDK on its own thread (`daytona-worker-client.ts`) against the
 * fake server, and the same behaviour with the SDK on the calling thread
 * (`RHO_FLOW_DAYTONA_THREAD=main`): errors keep what the retry policy reads,
 * aborts and the toolbox releaser reach the HTTP request itself, a thread
 * that dies fails its calls (and teardown still works), an idle process exits.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SandboxError } from '../../../src/errors.js';
import { classifyError } from '../../../src/sandbox/backoff.js';
import {
  createDaytonaClient,
  toolboxReleaser,
  type DaytonaClientLike,
  type DaytonaSandboxLike,
  type DaytonaThreadMode,
} from '../../../src/sandbox/daytona-client.js';
import { terminateDaytonaThread } from '../../../src/sandbox/daytona-sdk-thread.js';
import { watchChildExit } from '../../helpers/child-exit.js';
import { startFakeDaytona, type FakeDaytona } from '../../helpers/fake-daytona/index.js';
import { daytonaEnv, daytonaRig, daytonaSpec } from '../../helpers/fake-daytona/backend.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
let fake: FakeDaytona;
let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  fake = await startFakeDaytona();
});

afterAll(async () => {
  expect(fake.live()).toEqual([]);
  await fake.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

const PARAMS = {
  image: 'ubuntu:24.04',
  envVars: {},
  labels: { test: 'worker' },
  autoStopInterval: 30,
  autoDeleteInterval: 60,
  networkBlockAll: true,
};

/** Resolves once the fake has a request to `endpoint` of `sandboxId` still open. */
async function openRequest(endpoint: 'exec' | 'upload', sandboxId: string): Promise<void> {
  await expect
    .poll(() =>
      fake.requests.some((r) => r.endpoint === endpoint && r.sandboxId === sandboxId && !r.closedAt),
    )
    .toBe(true);
}

const closedRequests = (endpoint: 'exec' | 'upload', sandboxId: string): boolean =>
  fake.requests
    .filter((r) => r.endpoint === endpoint && r.sandboxId === sandboxId)
    .every((r) => r.closedAt !== undefined);

// First, while nothing else in this process has loaded the SDK.
describe('the SDK on its worker thread', () => {
  test('the calling thread never loads the SDK', async () => {
    await using rig = daytonaRig(fake);
    await rig.backend.preflight();
    const sandbox = await rig.backend.create(daytonaSpec({ jobSlug: 'no-sdk-here' }));
    expect((await sandbox.exec('echo hi')).stdout).toBe('hi\n');
    await sandbox.dispose();
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    expect(loaded.filter((f) => f.includes('@daytonaio'))).toEqual([]);
  });

  test('a thread that dies fails its pending calls with a SandboxError; teardown goes on in a new one', async () => {
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec({ jobSlug: 'crash' }));
    const fault = fake.inject({ endpoint: 'exec', mode: 'hang', times: Infinity, sandboxId: sandbox.id });
    const exec = sandbox.exec('echo never');
    exec.catch(() => undefined);
    await openRequest('exec', sandbox.id);
    const started = Date.now();
    await terminateDaytonaThread();
    const error = await exec.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(SandboxError);
    expect(error).toMatchObject({ code: 'unavailable' });
    expect((error as SandboxError).message).toContain('Daytona SDK thread');
    fault.times = 0;
    // The sandbox is found again by id in the new thread and deleted.
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
    const next = await rig.backend.create(daytonaSpec({ jobSlug: 'after-crash' }));
    expect((await next.exec('echo again')).stdout).toBe('again\n');
    await next.dispose();
  });
});

describe.each<DaytonaThreadMode>(['worker', 'main'])('the SDK on the %s thread', (mode) => {
  let client: DaytonaClientLike;
  const rig = () => daytonaRig(fake, { env: { RHO_FLOW_DAYTONA_THREAD: mode } });

  beforeAll(async () => {
    client = await createDaytonaClient(
      { apiKey: fake.apiKey, apiUrl: fake.apiUrl, requestTimeoutMs: 5_000 },
      mode,
    );
  });
  afterAll(async () => {
    await client[Symbol.asyncDispose]();
  });

  async function rawSandbox(name: string): Promise<DaytonaSandboxLike> {
    return client.create({ ...PARAMS, name: `${mode}-${name}` }, { timeout: 5 });
  }

  test('no redirect is followed, on the control plane or a toolbox (maxRedirects: 0 on every axios instance)', async () => {
    const sandbox = await rawSandbox('no-redirect');
    const moved = (to: string) => ({ status: 307, headers: { location: to }, times: 1 });
    // Were the redirect followed, each of these calls would succeed at the Location.
    const gets = fake.count('get', sandbox.id);
    fake.inject({ endpoint: 'get', sandboxId: sandbox.id, ...moved(`${fake.apiUrl}/sandbox/${sandbox.id}`) });
    await expect(client.get(sandbox.id)).rejects.toMatchObject({ statusCode: 307 });
    expect(fake.count('get', sandbox.id) - gets).toBe(1);

    const again = await client.get(sandbox.id); // a sandbox found by `get` (not created) is tuned too
    for (const s of [sandbox, again]) {
      const execs = fake.count('exec', sandbox.id);
      fake.inject({
        endpoint: 'exec',
        sandboxId: sandbox.id,
        ...moved(`${fake.origin}/toolbox/${sandbox.id}/process/execute`),
      });
      await expect(s.process.executeCommand('echo moved')).rejects.toMatchObject({ statusCode: 307 });
      expect(fake.count('exec', sandbox.id) - execs).toBe(1);
    }
    expect((await again.process.executeCommand('echo here')).result).toBe('here\n');
    await sandbox.delete();
  });

  test('an SDK error keeps its name, message, status, headers and stack', async () => {
    fake.inject({ endpoint: 'get', status: 429, headers: { 'retry-after': '7' }, message: 'slow down' });
    const limited = (await client.get('any').then(
      () => new Error('expected a rejection'),
      (e: unknown) => e,
    )) as Error;
    expect(limited).toBeInstanceOf(Error);
    expect(limited).toMatchObject({ name: 'DaytonaRateLimitError', statusCode: 429 });
    expect(limited.message).toContain('slow down');
    expect(limited.stack).toContain('DaytonaRateLimitError');
    expect(classifyError(limited)).toMatchObject({ kind: 'rate-limit', status: 429, retryAfterMs: 7_000 });

    const missing = await client.get('no-such-sandbox').catch((e: unknown) => e as Error);
    expect(missing).toMatchObject({ name: 'DaytonaNotFoundError', statusCode: 404 });
    fake.inject({ endpoint: 'get', status: 401, message: 'bad key' });
    expect(classifyError(await client.get('any').catch((e: unknown) => e))).toMatchObject({
      kind: 'fatal',
      status: 401,
    });
  });

  test('429 with Retry-After is retried per policy, 5xx is transient, 401 is fatal', async () => {
    await using r = rig();
    const creates = fake.count('create');
    fake.inject({ endpoint: 'create', times: 2, status: 429, headers: { 'retry-after-ms': '30' } });
    const sandbox = await r.backend.create(daytonaSpec({ jobSlug: `policy-${mode}` }));
    expect(fake.count('create') - creates).toBe(3);

    const infos = fake.count('file-info', sandbox.id);
    fake.inject({ endpoint: 'file-info', status: 503, sandboxId: sandbox.id });
    expect(await sandbox.stat('.')).toMatchObject({ type: 'dir' });
    expect(fake.count('file-info', sandbox.id) - infos).toBe(2);

    fake.inject({ endpoint: 'exec', status: 503, sandboxId: sandbox.id });
    await expect(sandbox.exec('echo x')).rejects.toMatchObject({ code: 'exec-failed', retryable: true });

    const before = fake.count('file-info', sandbox.id);
    fake.inject({ endpoint: 'file-info', status: 401, sandboxId: sandbox.id });
    await expect(sandbox.stat('.')).rejects.toMatchObject({ code: 'auth' });
    expect(fake.count('file-info', sandbox.id) - before).toBe(1);
    await sandbox.dispose();
  });

  test('an abort cancels an upload in flight: the HTTP request itself ends', async () => {
    const sandbox = await rawSandbox('abort-upload');
    const file = path.join(tmp, `upload-${mode}.bin`);
    await fs.writeFile(file, Buffer.alloc(64 * 1024, 7));
    const fault = fake.inject({ endpoint: 'upload', mode: 'hang', times: Infinity, sandboxId: sandbox.id });
    const controller = new AbortController();
    const upload = sandbox.fs.uploadFileStream(file, '/tmp/up.bin', {
      signal: controller.signal,
      timeout: 60,
    });
    upload.catch(() => undefined);
    await openRequest('upload', sandbox.id);
    const started = Date.now();
    controller.abort(new Error('give up'));
    await expect(upload).rejects.toBeDefined();
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect.poll(() => closedRequests('upload', sandbox.id)).toBe(true);
    fault.times = 0;
    await sandbox.delete();
  });

  test('the releaser cancels toolbox requests in flight and refuses new ones', async () => {
    const sandbox = await rawSandbox('release');
    const release = toolboxReleaser(sandbox);
    const fault = fake.inject({ endpoint: 'exec', mode: 'hang', times: Infinity, sandboxId: sandbox.id });
    const exec = sandbox.process.executeCommand('sleep 100', undefined, undefined, 300);
    exec.catch(() => undefined);
    await openRequest('exec', sandbox.id);
    release();
    await expect(exec).rejects.toBeDefined();
    await expect.poll(() => closedRequests('exec', sandbox.id)).toBe(true);
    const execs = fake.count('exec', sandbox.id);
    await expect(sandbox.process.executeCommand('echo late')).rejects.toBeDefined();
    expect(fake.count('exec', sandbox.id)).toBe(execs);
    fault.times = 0;
    // Control-plane requests are not under the switch: the sandbox can still be stopped and deleted.
    await sandbox.stop();
    expect(sandbox.state).toBe('stopped');
    await sandbox.delete();
  });

  test('buffers cross both ways intact', async () => {
    const sandbox = await rawSandbox('buffers');
    const data = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    const small = Buffer.from('small');
    await sandbox.fs.uploadFiles([
      { source: data, destination: '/tmp/big.bin' },
      { source: small, destination: '/tmp/small.txt' },
    ]);
    expect(small.toString()).toBe('small'); // the caller's buffer is left alone
    expect((await sandbox.fs.downloadFile('/tmp/big.bin')).equals(data)).toBe(true);
    const [big, little] = await sandbox.fs.downloadFiles([
      { source: '/tmp/big.bin' },
      { source: '/tmp/small.txt' },
    ]);
    expect(Buffer.isBuffer(big?.result) && big.result.equals(data)).toBe(true);
    expect(Buffer.isBuffer(little?.result) && little.result.toString()).toBe('small');
    await sandbox.delete();
  });

  test('a process that is done with the backend exits without closing it', async () => {
    const child = spawn(
      process.execPath,
      ['--import', './test/helpers/local-ts-loader.js', 'test/helpers/daytona-idle-child.ts'],
      {
        cwd: repoRoot,
        env: {
          ...process.env,
          CHILD_ENV: JSON.stringify(daytonaEnv(fake, { RHO_FLOW_DAYTONA_THREAD: mode })),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const r = await watchChildExit(child, 'done');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('from-child done\n');
    expect(r.code).toBe(0);
    expect(r.exitedAfterWordMs).toBeLessThan(3_000);
  });
});
