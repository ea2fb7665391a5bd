import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandboxError, UserError } from '../../../src/errors.js';
import { LocalBackend } from '../../../src/sandbox/local.js';
import { cleanupWorkspaces } from '../../../src/sandbox/local-cleanup.js';
import { ownerFileName } from '../../../src/sandbox/local-run-dir.js';
import { currentOwner, isOwnerAlive, parseStartTime, processStartTime } from '../../../src/sandbox/owner.js';
import { AbortReason } from '../../../src/util/abort.js';
import { LocalRig, processesWith, uniqueSleep, waitFor } from '../../helpers/local-rig.js';

let rig: LocalRig;
beforeEach(async () => {
  rig = await LocalRig.create({ isolation: 'strict' });
});
afterEach(async () => {
  await rig[Symbol.asyncDispose]();
});

const exists = (p: string): Promise<boolean> =>
  fs.access(p).then(
    () => true,
    () => false,
  );

describe('workspace creation', () => {
  it('creates $TMPDIR/rho-flow/<run-id>/<job-slug>, the run marked by its owner outside the jail', async () => {
    const sb = await rig.sandbox({ jobId: 'my job[x=1]', jobSlug: 'my-job_x_1_' });
    expect(sb.id).toBe(path.join(rig.tmp, 'rho-flow', rig.runId, 'my-job_x_1_'));
    expect(sb.workingDir).toBe('/work');
    const markerFile = path.join(path.dirname(sb.id), ownerFileName());
    const marker = JSON.parse(await fs.readFile(markerFile, 'utf8')) as Record<string, unknown>;
    expect(marker).toMatchObject({ runId: rig.runId, pid: process.pid, host: os.hostname() });
    expect(marker.pidStartTime).toBe(await processStartTime(process.pid));
    expect(Date.now() - Date.parse(String(marker.createdAt))).toBeLessThan(60_000);
    const r = await sb.exec(
      `ls -A /work; ls -A / | tr "\\n" " "; cat ../${ownerFileName()} ../../${ownerFileName()} 2>/dev/null || true`,
    );
    expect(r.stdout).not.toContain('"pid"');
    expect(r.stdout).not.toContain(String(process.pid));
    expect((await fs.stat(path.join(rig.tmp, 'rho-flow'))).mode & 0o777).toBe(0o700);
    expect((await fs.stat(markerFile)).mode & 0o777).toBe(0o600);
  });

  it('creates a nested working dir and honours TMPDIR from the backend env', async () => {
    const sb = await rig.sandbox({ workingDir: '/home/agent/project/' });
    expect(sb.workingDir).toBe('/home/agent/project');
    expect((await sb.exec('pwd; echo $HOME')).stdout).toBe('/home/agent/project\n/home/agent/project\n');
    expect(sb.id.startsWith(rig.tmp)).toBe(true);
  });

  it('replaces a stale workspace of an earlier attempt with the same slug', async () => {
    const first = await rig.sandbox({ jobSlug: 'retry-me' });
    await first.writeFile('stale.txt', 'old');
    const marker = uniqueSleep();
    const running = first.exec(`sleep ${marker}`).catch((e: unknown) => e);
    expect(await waitFor(async () => (await processesWith(marker)).length > 0, 10_000)).toBe(true);
    const second = await rig.sandbox({ jobSlug: 'retry-me', attempt: 2 });
    expect(second.id).toBe(first.id);
    expect(await second.stat('stale.txt')).toBeUndefined();
    // The earlier attempt's jail was killed with its workspace.
    expect(await waitFor(async () => (await processesWith(marker)).length === 0, 10_000)).toBe(true);
    await running;
    // Disposing the stale handle must not delete the new attempt's workspace.
    await second.writeFile('fresh.txt', 'new');
    await first.dispose();
    expect((await second.readFile('fresh.txt')).toString()).toBe('new');
  });

  it('rejects unusable working dirs and slugs', async () => {
    for (const workingDir of ['relative', '/', '/usr/work', '/etc', '/proc/x', '/a/../b']) {
      await expect(rig.backend.create(rig.spec({ workingDir })), workingDir).rejects.toMatchObject({
        code: 'create-failed',
      });
    }
    for (const jobSlug of ['..', 'a/b', '', '-x']) {
      await expect(rig.backend.create(rig.spec({ jobSlug })), jobSlug).rejects.toMatchObject({
        code: 'create-failed',
      });
    }
  });

  it('rejects with the abort reason and leaves nothing behind', async () => {
    const reason = new AbortReason('cancelled');
    await expect(rig.backend.create(rig.spec(), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(await exists(path.join(rig.tmp, 'rho-flow', rig.runId))).toBe(false);
  });

  it('creates many sandboxes concurrently', async () => {
    const all = await Promise.all(Array.from({ length: 8 }, () => rig.sandbox()));
    expect(new Set(all.map((s) => s.id)).size).toBe(8);
    await Promise.all(all.map((s) => s.dispose()));
    expect(await exists(path.join(rig.tmp, 'rho-flow', rig.runId))).toBe(false);
  });
});

describe('dispose', () => {
  it('is memoized, safe concurrently and twice, and removes the workspace and empty run dir', async () => {
    const sb = await rig.sandbox();
    const other = await rig.sandbox();
    await sb.exec('mkdir -p a/b && echo x > a/b/c');
    const p1 = sb.dispose();
    const p2 = sb.dispose();
    expect(p2).toBe(p1);
    await Promise.all([p1, p2, sb[Symbol.asyncDispose]()]);
    await sb.dispose();
    expect(await exists(sb.id)).toBe(false);
    expect(await exists(other.id)).toBe(true);
    await other.dispose();
    expect(await exists(path.dirname(sb.id))).toBe(false);
    await expect(sb.exec('true')).rejects.toMatchObject({ code: 'gone' });
    await expect(sb.readFile('a/b/c')).rejects.toMatchObject({ code: 'gone' });
  });

  it('kills running commands, including escapees, before removing the workspace', async () => {
    const sb = await rig.sandbox();
    const marker = uniqueSleep();
    const running = sb
      .exec(`setsid sleep ${marker} & nohup sleep ${marker} & sleep ${marker}; wait`)
      .catch((e: unknown) => e);
    expect(await waitFor(async () => (await processesWith(marker)).length >= 3, 10_000)).toBe(true);
    await sb.dispose();
    const err = await running;
    expect(err).toBeInstanceOf(SandboxError);
    expect((err as SandboxError).code).toBe('gone');
    expect(await waitFor(async () => (await processesWith(marker)).length === 0, 10_000)).toBe(true);
    expect(await exists(sb.id)).toBe(false);
  });

  it('never leaves a command behind when exec and dispose race', async () => {
    const sb = await rig.sandbox();
    const marker = uniqueSleep();
    const execs = Array.from({ length: 4 }, () => sb.exec(`sleep ${marker}`).catch((e: unknown) => e));
    await sb.dispose();
    for (const r of await Promise.all(execs)) expect(r).toMatchObject({ code: 'gone' });
    expect(await waitFor(async () => (await processesWith(marker)).length === 0, 10_000)).toBe(true);
    expect(await exists(sb.id)).toBe(false);
  });

  // bwrap killed while it sets a jail up (after cloning the jail's init, before that init armed its
  // parent-death signal and left the group) leaves the init running, reparented to pid 1: seen under
  // load when a run is cancelled right after its steps started. The stand-in below is such an
  // orphan as /proc shows it: argv[0] `bwrap`, the workspace's work dir among its arguments, in a
  // session of its own. A sandbox whose jailed command was killed must find and kill it.
  /** A process as /proc shows an orphaned jail init: argv[0] `bwrap`, `work` bound, its own session. */
  const fakeJailInit = (work: string): ChildProcess =>
    spawn('/bin/sh', ['-c', 'sleep 60; :', 'sh', '--bind', work, '/work'], {
      argv0: 'bwrap',
      detached: true,
      stdio: 'ignore',
    });

  for (const how of ['a timed-out command', 'a command killed by dispose'] as const) {
    it(`kills an orphaned jail init bound to the workspace after ${how}`, async () => {
      const sb = await rig.sandbox();
      const work = path.join(sb.id, 'work');
      const orphan = fakeJailInit(work);
      try {
        const pid = orphan.pid ?? 0;
        expect(pid).toBeGreaterThan(0);
        if (how === 'a timed-out command') {
          const r = await sb.exec('sleep 30', { timeoutMs: 200 });
          expect(r.timedOut).toBe(true);
          await sb.dispose();
        } else {
          const running = sb.exec('sleep 30').catch((e: unknown) => e);
          await new Promise((r) => setTimeout(r, 200));
          await sb.dispose();
          expect(await running).toMatchObject({ code: 'gone' });
        }
        const gone = await waitFor(async () => {
          try {
            const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
            return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z'); // killed, not yet reaped
          } catch {
            return true;
          }
        }, 5_000);
        expect(gone).toBe(true);
      } finally {
        orphan.kill('SIGKILL');
      }
    });
  }

  it('does not scan for orphans after a command that ended by itself (the common, cheap path)', async () => {
    const sb = await rig.sandbox();
    const work = path.join(sb.id, 'work');
    const bystander = fakeJailInit(work);
    try {
      expect((await sb.exec('true')).exitCode).toBe(0);
      await sb.dispose();
      await new Promise((r) => setTimeout(r, 200));
      process.kill(bystander.pid ?? 0, 0); // still alive: throws otherwise
    } finally {
      bystander.kill('SIGKILL');
    }
  });

  it('works with await using', async () => {
    let id: string;
    {
      await using sb = await rig.backend.create(rig.spec());
      id = sb.id;
      expect(await exists(id)).toBe(true);
    }
    expect(await exists(id)).toBe(false);
  });
});

describe('owner liveness', () => {
  it('parses /proc/<pid>/stat start times, even with odd command names', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    expect(parseStartTime(`123 (we ird) x) ${fields.join(' ')}`)).toBe('22');
    expect(parseStartTime('garbage')).toBeUndefined();
  });

  it('tells a live owner from a dead pid and a reused pid', async () => {
    const me = await currentOwner({ runId: 'r' });
    expect((await isOwnerAlive(me)).alive).toBe(true);
    const child = spawn('true');
    await new Promise((r) => child.on('exit', r));
    expect(await isOwnerAlive({ ...me, pid: child.pid! })).toMatchObject({ alive: false });
    expect(await isOwnerAlive({ ...me, pidStartTime: '1' })).toMatchObject({
      alive: false,
      reason: expect.stringMatching(/reused/) as string,
    });
    expect((await isOwnerAlive({ ...me, bootId: 'another-boot' })).alive).toBe(false);
    expect(await isOwnerAlive({ ...me, host: 'elsewhere', pid: child.pid! })).toMatchObject({ alive: true });
  });
});

describe('cleanup and owner death', () => {
  const loader = path.resolve('test/helpers/local-ts-loader.js');
  const childScript = path.resolve('test/helpers/local-owner-child.ts');

  const startOwner = async (
    runId: string,
    duration: string,
    mode = 'auto',
  ): Promise<{ child: ChildProcess; id: string }> => {
    const child = spawn(process.execPath, ['--import', loader, childScript, rig.tmp, runId, duration, mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const id = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) resolve((JSON.parse(line) as { id: string }).id);
      });
      child.on('exit', (code) => reject(new Error(`owner child exited early (${code})`)));
    });
    return { child, id };
  };

  it(
    'after SIGKILL of the owner, its jail dies and cleanup removes only the orphaned workspace',
    { timeout: 60_000 },
    async () => {
      const duration = uniqueSleep();
      const { child, id: orphan } = await startOwner('dead-run', duration);
      // `sleep <duration>`: the owner's own command line holds the duration too.
      expect(await waitFor(async () => (await processesWith(`sleep ${duration}`)).length > 0, 10_000)).toBe(
        true,
      );
      const live = await rig.sandbox();

      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // --die-with-parent: the jailed sleep dies with its owner.
      expect(await waitFor(async () => (await processesWith(duration)).length === 0, 10_000)).toBe(true);
      expect(await exists(orphan)).toBe(true);

      const dry = await rig.backend.cleanup({ dryRun: true });
      expect(dry.removed.map((r) => r.id)).toEqual([orphan]);
      expect(await exists(orphan)).toBe(true);

      expect((await rig.backend.cleanup({ runId: 'another-run' })).removed).toEqual([]);
      expect((await rig.backend.cleanup({ olderThanMs: 3_600_000 })).removed).toEqual([]);
      expect(await exists(orphan)).toBe(true);

      const report = await rig.backend.cleanup({});
      expect(report.removed).toEqual([
        { id: orphan, runId: 'dead-run', reason: expect.stringMatching(/gone/) as string },
      ]);
      expect(report.kept).toEqual([
        { id: live.id, runId: rig.runId, reason: expect.stringMatching(/alive/) as string },
      ]);
      expect(report.failed).toEqual([]);
      expect(await exists(orphan)).toBe(false);
      expect(await exists(path.dirname(orphan))).toBe(false);
      expect(await exists(live.id)).toBe(true);
      expect((await live.exec('echo still here')).stdout).toBe('still here\n');
    },
  );

  it('kills the leftover unjailed processes of an orphaned workspace', { timeout: 60_000 }, async () => {
    const duration = uniqueSleep();
    const { child, id: orphan } = await startOwner('dead-unjailed', duration, 'none');
    // `sleep <duration>`: the owner's own command line holds the duration too.
    const inGroup = `sleep ${duration}`;
    const escaped = `sleep 1${duration}`; // left its process group with setsid
    expect(
      await waitFor(
        async () => (await processesWith(inGroup)).length > 0 && (await processesWith(escaped)).length > 0,
        10_000,
      ),
    ).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Without a jail, the spawner kills the command's process group when its owner dies...
    expect(await waitFor(async () => (await processesWith(inGroup)).length === 0, 10_000)).toBe(true);
    // ...but a process that left the group survives...
    expect((await processesWith(escaped)).length).toBeGreaterThan(0);
    // ...so cleanup kills it.
    const report = await rig.backend.cleanup({ runId: 'dead-unjailed' });
    expect(report.removed.map((r) => r.id)).toEqual([orphan]);
    expect(await waitFor(async () => (await processesWith(duration)).length === 0, 10_000)).toBe(true);
  });

  it('judges runs by their markers: missing, corrupt, reused pid, other host, one of two alive', async () => {
    const root = path.join(rig.tmp, 'rho-flow');
    const me = await currentOwner({ runId: 'x' });
    /** A run dir with one workspace per slug and the given markers (by pid), its mtimes `ageMs` ago. */
    const mk = async (
      run: string,
      slugs: string[],
      markers: Record<number, unknown>,
      ageMs = 0,
    ): Promise<string[]> => {
      const runDir = path.join(root, run);
      const dirs = slugs.map((s) => path.join(runDir, s));
      for (const d of dirs) await fs.mkdir(path.join(d, 'work'), { recursive: true });
      for (const [pid, m] of Object.entries(markers)) {
        await fs.writeFile(
          path.join(runDir, ownerFileName(Number(pid))),
          typeof m === 'string' ? m : JSON.stringify(m),
        );
      }
      const t = new Date(Date.now() - ageMs);
      for (const d of [...dirs, runDir]) await fs.utimes(d, t, t);
      return dirs;
    };
    const reused = await mk('r1', ['a', 'b'], { 1: { ...me, pidStartTime: '1' } });
    const fresh = await mk('r2', ['unmarked-fresh'], {});
    const old = await mk('r3', ['unmarked-old'], {}, 3_600_000);
    const corrupt = await mk('r4', ['corrupt'], { 1: '{not json' }, 3_600_000);
    const remote = await mk('r5', ['remote'], { 1: { ...me, host: 'some-other-host', pid: 1 } });
    const mine = await mk('r6', ['mine'], { [process.pid]: me });
    const shared = await mk('r7', ['shared'], { 1: { ...me, pidStartTime: '1' }, [process.pid]: me });
    await fs.symlink('/etc', path.join(root, 'r6', 'symlinked'));

    const report = await cleanupWorkspaces(root, {});
    expect(report.removed.map((r) => r.id).sort()).toEqual([...reused, ...old, ...corrupt].sort());
    expect(report.kept.map((r) => r.id).sort()).toEqual([...fresh, ...remote, ...mine, ...shared].sort());
    expect(report.failed).toEqual([]);
    expect(await exists('/etc/passwd')).toBe(true);
    expect(await exists(path.join(root, 'r6', 'symlinked'))).toBe(true);
    // A dead run's markers and directory go with its last workspace; a live one's stay.
    for (const run of ['r1', 'r3', 'r4']) expect(await exists(path.join(root, run))).toBe(false);
    expect(await exists(path.join(root, 'r7', ownerFileName(1)))).toBe(true);
  });
});

describe('without bubblewrap', () => {
  it('warns once and runs unjailed in the workspace with a cleared env', async () => {
    await using noJail = await LocalRig.create({ env: { RHO_FLOW_BWRAP: 'none' } });
    await noJail.backend.preflight();
    const a = await noJail.sandbox({ env: { ONLY: 'this' } });
    const b = await noJail.sandbox();
    expect(noJail.warnings).toHaveLength(1);
    expect(noJail.warnings[0]).toMatch(/bwrap.*not found.*WITHOUT isolation.*apt-get install bubblewrap/);
    expect(a.jailed).toBe(false);
    process.env.HOME_SECRET_TEST = 'unjailed-leak';
    try {
      const r = await a.exec('pwd; echo "$ONLY|$HOME_SECRET_TEST|$HOME"; echo hi > made.txt');
      const work = path.join(a.id, 'work');
      expect(r.stdout).toBe(`${work}\nthis||${work}\n`);
    } finally {
      delete process.env.HOME_SECRET_TEST;
    }
    expect((await a.readFile('/work/made.txt')).toString()).toBe('hi\n');
    await a.exec('mkdir -p sub');
    expect((await a.exec('pwd', { cwd: '/work/sub' })).stdout).toBe(`${path.join(a.id, 'work', 'sub')}\n`);
    expect((await b.exec('exit 3')).exitCode).toBe(3);
    expect((await b.exec('echo "$PATH"', { env: { PATH: '/nonexistent' } })).stdout).toBe('/nonexistent\n');
  });

  it('kills unjailed commands at their timeout and escapees at dispose', async () => {
    await using noJail = await LocalRig.create({ env: { RHO_FLOW_BWRAP: 'none' } });
    const sb = await noJail.sandbox();
    const marker = uniqueSleep();
    const r = await sb.exec(`sleep ${marker} & sleep ${marker}; wait`, { timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(await waitFor(async () => (await processesWith(marker)).length === 0, 10_000)).toBe(true);
    // A background job holding stdout neither delays the result nor outlives the command.
    const bg = uniqueSleep();
    const started = Date.now();
    expect((await sb.exec(`sleep ${bg} & echo done`)).stdout).toBe('done\n');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await waitFor(async () => (await processesWith(bg)).length === 0, 10_000)).toBe(true);
    const escapee = uniqueSleep();
    // Give setsid time to leave the group before the command ends (which kills what is left in the group).
    await sb.exec(`setsid sleep ${escapee} > /dev/null 2>&1 < /dev/null & sleep 0.5`);
    expect(await waitFor(async () => (await processesWith(escapee)).length > 0, 10_000)).toBe(true);
    await sb.dispose();
    expect(await waitFor(async () => (await processesWith(escapee)).length === 0, 10_000)).toBe(true);
  });

  it('refuses under strict isolation with a UserError, from preflight and create', async () => {
    for (const env of [
      { RHO_FLOW_BWRAP: 'none' },
      { PATH: '/nonexistent' },
      { RHO_FLOW_BWRAP: '/bin/false' },
    ]) {
      const warnings: string[] = [];
      const backend = new LocalBackend({
        isolation: 'strict',
        warn: (m) => warnings.push(m),
        env: { TMPDIR: rig.tmp, ...env },
      });
      await expect(backend.preflight()).rejects.toBeInstanceOf(UserError);
      await expect(backend.create(rig.spec())).rejects.toBeInstanceOf(UserError);
      expect(warnings).toEqual([]);
    }
    expect(await exists(path.join(rig.tmp, 'rho-flow'))).toBe(false);
  });

  it('falls back when bwrap exists but cannot build a jail', async () => {
    const warnings: string[] = [];
    const backend = new LocalBackend({
      isolation: 'auto',
      warn: (m) => warnings.push(m),
      env: { TMPDIR: rig.tmp, RHO_FLOW_BWRAP: '/bin/false' },
    });
    await backend.preflight();
    await backend.preflight();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/does not work here/);
    await using sb = await backend.create(rig.spec());
    expect(sb.jailed).toBe(false);
  });
});
