import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SandboxError } from '../../../src/errors.js';
import { AbortReason } from '../../../src/util/abort.js';
import type { DaytonaSandbox } from '../../../src/sandbox/daytona-sandbox.js';
import { startFakeDaytona, type FakeDaytona } from '../../helpers/fake-daytona/index.js';
import { daytonaRig, daytonaSpec, type DaytonaRig } from '../../helpers/fake-daytona/backend.js';

let fake: FakeDaytona;
let rig: DaytonaRig;
let sandbox: DaytonaSandbox;

beforeAll(async () => {
  fake = await startFakeDaytona();
  rig = daytonaRig(fake, { tuning: { execGraceMs: 400, killWaitMs: 1_000 } });
  sandbox = await rig.backend.create(daytonaSpec({ env: { FOO: 'bar', SECRET_TOKEN: 's3cr3t' } }));
});

afterAll(async () => {
  await sandbox.dispose();
  await rig.backend.close();
  expect(fake.live()).toEqual([]);
  await fake.close();
});

/**
 * Sleep durations unique to this run: the fake's jails share the host's pid
 * namespace, so a fixed `sleep 300` could be another test run's process.
 */
const S = 10_000 + Math.floor(Math.random() * 80_000) * 10;

/** Is any process of this test still alive in the sandbox? */
async function alive(marker: string): Promise<boolean> {
  // Sanity: the probe itself must see a process that is running.
  const probe = await sandbox.exec(
    `ps -eo args | grep -v grep | grep -q -- 'ps -eo args' && echo yes || echo no`,
  );
  expect(probe.stdout.trim()).toBe('yes');
  const r = await sandbox.exec(`ps -eo args | grep -v grep | grep -qE -- '${marker}' && echo yes || echo no`);
  return r.stdout.trim() === 'yes';
}

describe('exec', () => {
  test('separates stdout and stderr, keeps the exit code, one request per command', async () => {
    const before = fake.count('exec');
    const r = await sandbox.exec('echo out; echo err >&2; printf "no newline"; exit 7');
    expect(r).toMatchObject({ exitCode: 7, stdout: 'out\nno newline', stderr: 'err\n', timedOut: false });
    expect(fake.count('exec') - before).toBe(1);
  });

  test('runs in the working dir with the sandbox env plus per-command env, cwd and stdin', async () => {
    expect((await sandbox.exec('pwd; echo $FOO')).stdout).toBe('/work\nbar\n');
    const r = await sandbox.exec('mkdir -p sub && cd sub && pwd && echo "$EXTRA" && cat', {
      env: { EXTRA: "it's quoted $HOME `x`" },
      stdin: 'from stdin\n',
    });
    expect(r.stdout).toBe("/work/sub\nit's quoted $HOME `x`\nfrom stdin\n");
    expect((await sandbox.exec('pwd', { cwd: 'sub' })).stdout).toBe('/work/sub\n');
    expect((await sandbox.exec('pwd', { cwd: '/tmp' })).stdout).toBe('/tmp\n');
  });

  test('quoting-heavy commands survive the round trip', async () => {
    const cmd = `printf '%s|' "a b" 'c"d' $'e\\tf' "$(echo g)"; echo`;
    expect((await sandbox.exec(cmd)).stdout).toBe('a b|c"d|e\tf|g|\n');
  });

  test('a command too long to pass inline is uploaded first', async () => {
    const big = 'x'.repeat(200_000);
    const r = await sandbox.exec(`s='${big}'; echo \${#s}`);
    expect(r.stdout).toBe('200000\n');
  });

  test('a bad cwd is a failed command, not an infrastructure error', async () => {
    const r = await sandbox.exec('echo never', { cwd: '/does/not/exist' });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('/does/not/exist');
  });

  test('output beyond maxOutputBytes is cut with a marker', async () => {
    const r = await sandbox.exec('head -c 5000 /dev/zero | tr "\\0" a', { maxOutputBytes: 100 });
    expect(r.stdout.startsWith('a'.repeat(100))).toBe(true);
    expect(r.stdout).toContain('truncated');
    expect(r.stdout.length).toBeLessThan(300);
  });

  test('a timeout kills the whole process group inside the sandbox', async () => {
    const started = Date.now();
    const r = await sandbox.exec(`sleep ${S} & sleep ${S + 1}; echo never`, { timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(124);
    expect(r.stdout).toBe('');
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(await alive(`sleep ${S}|sleep ${S + 1}`)).toBe(false);
  });

  test('a command that exits on its own before the timeout is not timed out', async () => {
    const r = await sandbox.exec('sleep 0.1; exit 124', { timeoutMs: 5_000 });
    expect(r).toMatchObject({ timedOut: false, exitCode: 124 });
  });

  test('onOutput sees stdout and stderr', async () => {
    const seen: Array<[string, string]> = [];
    await sandbox.exec('echo a; echo b >&2', { onOutput: (chunk, stream) => seen.push([stream, chunk]) });
    expect(seen).toEqual([
      ['stdout', 'a\n'],
      ['stderr', 'b\n'],
    ]);
  });

  test('abort kills the command group and rejects with the reason', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new AbortReason('step-timeout')), 300);
    const started = Date.now();
    await expect(
      sandbox.exec(`sleep ${S + 2} & sleep ${S + 3}`, { signal: controller.signal }),
    ).rejects.toMatchObject({
      kind: 'step-timeout',
    });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await alive(`sleep ${S + 2}|sleep ${S + 3}`)).toBe(false);
  });

  test('an abort that overtakes the command on its way to the toolbox still leaves nothing running', async () => {
    // The command's request is held back past the kill's wait for it, so the kill request
    // arrives and gives up first; the command must still not start.
    fake.inject({ endpoint: 'exec', mode: 'delay', delayMs: 2_500 });
    const controller = new AbortController();
    const p = sandbox.exec(`sleep ${S + 4}`, { signal: controller.signal });
    setTimeout(() => controller.abort(new AbortReason('cancelled')), 50);
    await expect(p).rejects.toBeInstanceOf(AbortReason);
    await new Promise((r) => setTimeout(r, 2_800));
    expect(await alive(`sleep ${S + 4}`)).toBe(false);
  });

  test('a 5xx from the exec API is SandboxError exec-failed, retryable', async () => {
    fake.inject({ endpoint: 'exec', status: 503, message: 'toolbox unavailable' });
    const err = await sandbox.exec('echo hi').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ code: 'exec-failed', retryable: true });
    // The sandbox is still usable afterwards.
    expect((await sandbox.exec('echo hi')).stdout).toBe('hi\n');
  });

  test('a hanging toolbox: exec with a timeout still returns promptly as timed out', async () => {
    fake.inject({ endpoint: 'exec', mode: 'hang', times: 2 }); // the command, then the kill
    const started = Date.now();
    const r = await sandbox.exec('echo hi', { timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.stderr).toContain('did not answer');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  test('a hanging toolbox: abort returns promptly with the reason', async () => {
    fake.inject({ endpoint: 'exec', mode: 'hang', times: 2 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new AbortReason('job-timeout')), 200);
    const started = Date.now();
    await expect(sandbox.exec('echo hi', { signal: controller.signal })).rejects.toMatchObject({
      kind: 'job-timeout',
    });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  test('a daemon-side timeout (408) is reported as timed out', async () => {
    fake.inject({
      endpoint: 'exec',
      status: 408,
      message: 'Command execution timed out',
      code: 'PROCESS_EXECUTION_TIMEOUT',
    });
    const r = await sandbox.exec('echo hi', { timeoutMs: 10_000 });
    expect(r.timedOut).toBe(true);
  });
});

describe('files', () => {
  test('write, read, stat, list, glob, remove', async () => {
    await sandbox.writeFile('notes/a.txt', 'alpha\n');
    await sandbox.writeFile('/work/notes/run.sh', '#!/bin/sh\necho run\n', { mode: 0o755 });
    await sandbox.writeFile('notes/.hidden', 'h');
    await sandbox.writeFile('notes/deep/b.md', 'beta');
    expect((await sandbox.readFile('/work/notes/a.txt')).toString()).toBe('alpha\n');
    expect((await sandbox.readFile('notes/a.txt', { maxBytes: 3 })).toString()).toBe('alp');
    expect((await sandbox.exec('./notes/run.sh')).stdout).toBe('run\n');

    const st = await sandbox.stat('notes/run.sh');
    expect(st).toMatchObject({
      path: '/work/notes/run.sh',
      name: 'run.sh',
      type: 'file',
      size: 19,
      mode: 0o755,
    });
    expect(st!.mtimeMs).toBeGreaterThan(0);
    expect((await sandbox.stat('notes'))?.type).toBe('dir');
    expect(await sandbox.stat('notes/missing')).toBeUndefined();

    const top = await sandbox.list('notes');
    expect(top.map((e) => e.path)).toEqual(['/work/notes/a.txt', '/work/notes/deep', '/work/notes/run.sh']);
    const all = await sandbox.list('/work/notes', { recursive: true, showHidden: true });
    expect(all.map((e) => e.path)).toEqual([
      '/work/notes/.hidden',
      '/work/notes/a.txt',
      '/work/notes/deep',
      '/work/notes/deep/b.md',
      '/work/notes/run.sh',
    ]);
    expect(await sandbox.list('notes', { recursive: true, limit: 2 })).toHaveLength(2);

    expect(await sandbox.glob('notes/**/*.md')).toEqual(['/work/notes/deep/b.md']);
    expect(await sandbox.glob('*.txt', { cwd: 'notes' })).toEqual(['/work/notes/a.txt']);
    expect(await sandbox.glob('/work/notes/*.{sh,txt}')).toEqual(['/work/notes/a.txt', '/work/notes/run.sh']);
    expect(await sandbox.glob('nothing/**')).toEqual([]);

    await sandbox.remove('notes/a.txt');
    expect(await sandbox.stat('notes/a.txt')).toBeUndefined();
    await sandbox.remove('notes', { recursive: true });
    expect(await sandbox.stat('notes')).toBeUndefined();
  });

  test('missing files are SandboxError not-found', async () => {
    await expect(sandbox.readFile('missing.txt')).rejects.toMatchObject({ code: 'not-found' });
    await expect(sandbox.list('missing-dir')).rejects.toMatchObject({ code: 'not-found' });
    await sandbox.writeFile('plain.txt', 'x');
    await expect(sandbox.list('plain.txt')).rejects.toMatchObject({ code: 'not-found' });
    await expect(sandbox.remove('missing.txt')).rejects.toMatchObject({ code: 'not-found' });
  });

  test('createOnly refuses to overwrite', async () => {
    await sandbox.writeFile('once.txt', 'first', { createOnly: true });
    await expect(sandbox.writeFile('once.txt', 'second', { createOnly: true })).rejects.toBeInstanceOf(
      SandboxError,
    );
    expect((await sandbox.readFile('once.txt')).toString()).toBe('first');
  });

  test('idempotent reads are retried on transient errors', async () => {
    await sandbox.writeFile('retry.txt', 'ok');
    fake.inject({ endpoint: 'download', times: 2, status: 502 });
    expect((await sandbox.readFile('retry.txt')).toString()).toBe('ok');
  });
});

describe('dispose', () => {
  test('a delete that fails twice is retried until it succeeds', async () => {
    const sb = await rig.backend.create(daytonaSpec({ jobSlug: 'delete-retry' }));
    fake.inject({ endpoint: 'delete', times: 2, status: 500, sandboxId: sb.id });
    await sb.dispose();
    expect(fake.count('delete', sb.id)).toBe(3);
    expect(fake.live().map((s) => s.id)).not.toContain(sb.id);
  });

  test('dispose is memoized and safe to call concurrently', async () => {
    const sb = await rig.backend.create(daytonaSpec({ jobSlug: 'delete-memo' }));
    await Promise.all([sb.dispose(), sb.dispose(), sb[Symbol.asyncDispose]()]);
    await sb.dispose();
    expect(fake.count('delete', sb.id)).toBe(1);
    await expect(sb.exec('true')).rejects.toMatchObject({ code: 'gone' });
  });

  test('a sandbox already gone (404) counts as deleted', async () => {
    const sb = await rig.backend.create(daytonaSpec({ jobSlug: 'delete-gone' }));
    fake.inject({ endpoint: 'delete', status: 404, sandboxId: sb.id, message: 'Sandbox not found' });
    await sb.dispose();
    expect(fake.count('delete', sb.id)).toBe(1);
    // The 404 was injected, so the fake still has it: remove it for the zero-left check.
    await fake.remove(sb.id);
  });

  test('a refused delete (403) stops the sandbox instead and warns', async () => {
    const sb = await rig.backend.create(daytonaSpec({ jobSlug: 'delete-refused' }));
    const refusal = fake.inject({
      endpoint: 'delete',
      times: Infinity,
      status: 403,
      sandboxId: sb.id,
      message: 'Forbidden',
    });
    await sb.dispose();
    expect(fake.count('delete', sb.id)).toBe(1);
    expect(fake.sandboxes.find((s) => s.id === sb.id)?.state).toBe('stopped');
    expect(rig.warnings.some((w) => w.includes(sb.id) && w.includes('stopped it instead'))).toBe(true);
    refusal.hits = Infinity; // Daytona allows deletes again
    await fake.remove(sb.id);
  });

  test('the keep-alive refreshes activity while the sandbox lives, and stops at dispose', async () => {
    const keepRig = daytonaRig(fake, { tuning: { keepAliveMs: 50 } });
    const sb = await keepRig.backend.create(daytonaSpec({ jobSlug: 'keepalive' }));
    await new Promise((r) => setTimeout(r, 400));
    const record = fake.sandboxes.find((s) => s.id === sb.id)!;
    expect(record.activityRefreshes).toBeGreaterThanOrEqual(3);
    await sb.dispose();
    const after = fake.count('activity', sb.id);
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.count('activity', sb.id)).toBe(after);
    await keepRig.backend.close();
  });
});
