import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxError } from '../../../src/errors.js';
import { AbortReason } from '../../../src/util/abort.js';
import type { LocalSandbox } from '../../../src/sandbox/local-sandbox.js';
import { LocalRig, processesWith, uniqueSleep, waitFor } from '../../helpers/local-rig.js';

let rig: LocalRig;
let sb: LocalSandbox;

beforeAll(async () => {
  process.env.HOME_SECRET_TEST = 'do-not-leak-4711';
  rig = await LocalRig.create({ isolation: 'strict' });
  sb = await rig.sandbox({ env: { GREETING: 'hello', SHARED: 'from-spec' } });
});

afterAll(async () => {
  delete process.env.HOME_SECRET_TEST;
  await rig[Symbol.asyncDispose]();
});

describe('local exec basics (bwrap)', () => {
  it('runs in a jail', () => {
    expect(sb.jailed).toBe(true);
    expect(rig.warnings).toEqual([]);
  });

  it('returns exit codes without throwing', async () => {
    expect((await sb.exec('true')).exitCode).toBe(0);
    expect((await sb.exec('exit 7')).exitCode).toBe(7);
    const killed = await sb.exec('kill -TERM $$');
    expect(killed.exitCode).toBe(143);
    expect(killed.timedOut).toBe(false);
  });

  it('keeps stdout and stderr apart', async () => {
    const r = await sb.exec('echo out; echo err >&2; echo out2');
    expect(r.stdout).toBe('out\nout2\n');
    expect(r.stderr).toBe('err\n');
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('passes only the spec and exec env, with sane defaults', async () => {
    const r = await sb.exec('env', { env: { SHARED: 'from-exec', EXTRA: 'x y' } });
    const env = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env.GREETING).toBe('hello');
    expect(env.SHARED).toBe('from-exec');
    expect(env.EXTRA).toBe('x y');
    expect(env.HOME).toBe('/work');
    expect(env.TMPDIR).toBe('/tmp');
    expect(env.LANG).toBe('C.UTF-8');
    expect(env.PATH).toContain('/usr/bin');
    expect(r.stdout).not.toContain('do-not-leak-4711');
    expect(env.HOME_SECRET_TEST).toBeUndefined();
    // Only what we set, plus what bash itself exports.
    const allowed = new Set([
      'GREETING',
      'SHARED',
      'EXTRA',
      'HOME',
      'TMPDIR',
      'LANG',
      'PATH',
      'PWD',
      'SHLVL',
      '_',
    ]);
    expect(Object.keys(env).filter((k) => !allowed.has(k))).toEqual([]);
  });

  it('lets the workflow env override the defaults', async () => {
    const r = await sb.exec('echo "$HOME $LANG"', { env: { HOME: '/tmp', LANG: 'C' } });
    expect(r.stdout).toBe('/tmp C\n');
    // Even a PATH without bash still starts the command.
    expect((await sb.exec('echo "$PATH"', { env: { PATH: '/nonexistent' } })).stdout).toBe('/nonexistent\n');
  });

  it('does not put env values on the bwrap command line', async () => {
    const marker = uniqueSleep();
    const controller = new AbortController();
    const p = sb.exec(`sleep ${marker}`, {
      env: { SECRET_VALUE: 'sekrit-on-cmdline-42' },
      signal: controller.signal,
    });
    expect(await waitFor(async () => (await processesWith(marker)).length > 0, 10_000)).toBe(true);
    const jails = await processesWith(sb.id);
    expect(jails.length).toBeGreaterThan(0);
    expect(await processesWith('sekrit-on-cmdline-42')).toEqual([]);
    controller.abort(new AbortReason('cancelled'));
    await expect(p).rejects.toBeInstanceOf(AbortReason);
  });

  it('runs in the working dir by default and honours cwd', async () => {
    await sb.exec('mkdir -p sub/dir');
    expect((await sb.exec('pwd')).stdout).toBe('/work\n');
    expect((await sb.exec('pwd', { cwd: 'sub/dir' })).stdout).toBe('/work/sub/dir\n');
    expect((await sb.exec('pwd', { cwd: '/work/sub' })).stdout).toBe('/work/sub\n');
    expect((await sb.exec('pwd', { cwd: '/tmp' })).stdout).toBe('/tmp\n');
  });

  it('fails the command (not the sandbox) for a missing cwd', async () => {
    const r = await sb.exec('pwd', { cwd: 'nope' });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/nope/);
    const r2 = await sb.exec('pwd', { cwd: '/var/nope' });
    expect(r2.exitCode).not.toBe(0);
    expect(r2.stderr).toMatch(/chdir/);
  });

  it('feeds stdin', async () => {
    expect((await sb.exec('tr a-z A-Z', { stdin: 'shout\n' })).stdout).toBe('SHOUT\n');
    expect((await sb.exec('wc -c', { stdin: Buffer.alloc(300_000, 0x61) })).stdout.trim()).toBe('300000');
    // A command that ignores its stdin must not break on EPIPE.
    expect((await sb.exec('true', { stdin: Buffer.alloc(1_000_000) })).exitCode).toBe(0);
    // Without stdin, reads see EOF instead of hanging.
    expect((await sb.exec('cat; echo done')).stdout).toBe('done\n');
  });

  it('caps output per stream with a marker, and streams it live', async () => {
    const chunks: Array<[string, string]> = [];
    const r = await sb.exec('head -c 100000 /dev/zero | tr "\\0" a; echo tail >&2', {
      maxOutputBytes: 1000,
      onOutput: (c, s) => chunks.push([s, c]),
    });
    expect(r.stdout.startsWith('a'.repeat(1000))).toBe(true);
    expect(r.stdout).toMatch(/output truncated: 99000 more bytes dropped/);
    expect(r.stdout.length).toBeLessThan(1100);
    expect(r.stderr).toBe('tail\n');
    const live = chunks
      .filter(([s]) => s === 'stdout')
      .map(([, c]) => c)
      .join('');
    expect(live.length).toBe(100000);
    expect(chunks.some(([s, c]) => s === 'stderr' && c.includes('tail'))).toBe(true);
  });

  it('handles unicode, including characters split across chunks and by the cap', async () => {
    const r = await sb.exec('printf "h\\xc3\\xa9llo \\xe2\\x9c\\x93 \\xf0\\x9f\\x98\\x80\\n"');
    expect(r.stdout).toBe('héllo ✓ 😀\n');
    const parts: string[] = [];
    const big = await sb.exec('for i in $(seq 1 20000); do printf "é"; done', {
      onOutput: (c) => parts.push(c),
    });
    expect(big.stdout).toBe('é'.repeat(20000));
    expect(parts.join('')).toBe('é'.repeat(20000));
    const cut = await sb.exec('printf "aé"', { maxOutputBytes: 2 });
    expect(cut.stdout.startsWith('a')).toBe(true);
    expect(cut.stdout).not.toContain('\uFFFD');
  });

  it('does not let background processes outlive the command', async () => {
    const marker = uniqueSleep();
    const r = await sb.exec(`(sleep ${marker} &) ; nohup sleep ${marker} >/dev/null 2>&1 & echo started`);
    expect(r.stdout).toBe('started\n');
    expect(await waitFor(async () => (await processesWith(marker)).length === 0, 10_000)).toBe(true);
  });
});

describe('local exec timeouts and aborts', () => {
  const assertGone = async (marker: string): Promise<void> => {
    expect(await waitFor(async () => (await processesWith(marker)).length === 0, 10_000)).toBe(true);
  };

  it('kills a sleeping command at its timeout', async () => {
    const marker = uniqueSleep();
    const started = Date.now();
    const r = await sb.exec(`sleep ${marker}`, { timeoutMs: 1000 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    await assertGone(marker);
  });

  it('kills background children and setsid/nohup escapees at the timeout', async () => {
    const marker = uniqueSleep();
    const started = Date.now();
    const r = await sb.exec(
      `sleep ${marker} & setsid sleep ${marker} & nohup setsid bash -c 'sleep ${marker}' >/dev/null 2>&1 & sleep ${marker}; wait`,
      { timeoutMs: 1500 },
    );
    expect(r.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    await assertGone(marker);
  });

  it('keeps output produced before the timeout', async () => {
    const r = await sb.exec(`echo before; sleep ${uniqueSleep()}`, { timeoutMs: 800 });
    expect(r.timedOut).toBe(true);
    expect(r.stdout).toBe('before\n');
  });

  it('rejects with the abort reason and kills the process group', async () => {
    const marker = uniqueSleep();
    const controller = new AbortController();
    const p = sb.exec(`setsid sleep ${marker} & sleep ${marker}; wait`, { signal: controller.signal });
    expect(await waitFor(async () => (await processesWith(marker)).length >= 2, 10_000)).toBe(true);
    const reason = new AbortReason('cancelled', 'test cancel');
    controller.abort(reason);
    await expect(p).rejects.toBe(reason);
    await assertGone(marker);
  });

  it('rejects at once for an already-aborted signal', async () => {
    const reason = new AbortReason('step-timeout');
    await expect(sb.exec('true', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('runs many commands concurrently', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => sb.exec(`echo ${i}`)));
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
  });

  it('reports a jail that cannot start as SandboxError, not as a step failure', async () => {
    const err = await sb.exec('true', { env: { 'BAD=NAME': 'x' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
  });
});
