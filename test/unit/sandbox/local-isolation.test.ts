import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalSandbox } from '../../../src/sandbox/local-sandbox.js';
import { LocalRig, processesWith, uniqueSleep, waitFor } from '../../helpers/local-rig.js';

let rig: LocalRig;
let a: LocalSandbox;
let b: LocalSandbox;
const homeFile = path.join(os.homedir(), `.rho-flow-isolation-${process.pid}`);

beforeAll(async () => {
  rig = await LocalRig.create({ isolation: 'strict' });
  [a, b] = await Promise.all([rig.sandbox(), rig.sandbox()]);
  await fs.writeFile(homeFile, 'home-secret-contents');
});

afterAll(async () => {
  await fs.rm(homeFile, { force: true });
  await rig[Symbol.asyncDispose]();
});

describe('local jail isolation', () => {
  it('cannot read a file in the host home', async () => {
    expect((await fs.readFile(homeFile, 'utf8')).length).toBeGreaterThan(0);
    const r = await a.exec(`cat ${homeFile}; ls -a ${os.homedir()}; ls /home`);
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).not.toContain('home-secret-contents');
    expect(r.stdout).toBe('');
  });

  it('cannot read the project checkout or the host TMPDIR', async () => {
    const pkg = path.join(process.cwd(), 'package.json');
    expect((await fs.stat(pkg)).isFile()).toBe(true);
    const other = await rig.sandbox({ workingDir: '/srv/job' });
    for (const sb of [a, other]) {
      const r = await sb.exec(`cat ${pkg}; ls ${rig.tmp}; ls ${os.tmpdir()}/rho-flow`);
      expect(r.exitCode).not.toBe(0);
      expect(r.stdout).not.toContain('"name"');
    }
    expect((await a.exec('ls -A /tmp')).stdout).toBe('');
  });

  it('masks secrets in /etc and keeps the host userland read-only', async () => {
    const shadow = await a.exec('cat /etc/shadow');
    expect(shadow.stdout).not.toMatch(/root:/);
    const r = await a.exec(
      'touch /usr/rho-flow-x || touch /etc/rho-flow-x || touch /bin/rho-flow-x || echo refused',
    );
    expect(r.stdout).toBe('refused\n');
    await expect(fs.stat('/usr/rho-flow-x')).rejects.toThrow();
    // The userland works: symlinked /bin and /lib resolve.
    expect((await a.exec('/bin/sh -c "echo ok"')).stdout).toBe('ok\n');
    expect((await a.exec('hostname')).stdout).toBe('rho-flow\n');
  });

  it('cannot see another sandbox workspace, not even through /proc', async () => {
    const marker = `marker-${uniqueSleep()}`;
    await a.exec(`echo ${marker} > secret.txt`);
    const stop = new AbortController();
    const sleeper = a
      .exec(`sleep ${uniqueSleep()} # ${marker}`, { signal: stop.signal })
      .catch((e: unknown) => e);
    expect(await waitFor(async () => (await processesWith(marker)).length > 0, 10_000)).toBe(true);
    // The pattern is assembled inside the jail so that b's own command lines do not contain it.
    const half = Math.floor(marker.length / 2);
    const search =
      `printf '%s%s' '${marker.slice(0, half)}' '${marker.slice(half)}' > /tmp/pat; ` +
      `cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c -f /tmp/pat; grep -rs -f /tmp/pat /work; ls ${a.id}; ls /proc | grep -c '^[0-9]'`;
    // Positive control: inside a, next to a process carrying the marker, the same search finds it and the file.
    const own = await a.exec(`bash -c 'sleep 30; : ${marker}' & ${search}`);
    expect(Number(own.stdout.split('\n')[0])).toBeGreaterThanOrEqual(1);
    expect(own.stdout).toContain('secret.txt');
    const r = await b.exec(search);
    expect(r.stdout.split('\n')[0]).toBe('0'); // no cmdline match
    expect(r.stdout).not.toContain('secret.txt');
    // Only the handful of processes of b's own command are visible.
    expect(Number(r.stdout.trim().split('\n').pop())).toBeLessThan(10);
    expect((await a.exec('cat secret.txt')).stdout).toBe(`${marker}\n`);
    stop.abort(new Error('done'));
    expect(await sleeper).toBeInstanceOf(Error);
  });

  it('has no network with network: off, and has it with network: on', async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.end('pong\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const probe = `exec 3<>/dev/tcp/127.0.0.1/${port} && cat <&3`;
      const off = await a.exec(probe, { timeoutMs: 5000 });
      expect(off.exitCode).not.toBe(0);
      expect(off.stdout).toBe('');
      expect(connections).toBe(0);
      expect(
        (await a.exec('cat /sys/class/net/*/operstate 2>/dev/null; ls /sys 2>&1 | head -1')).stdout,
      ).not.toMatch(/eth|up/);

      const online = await rig.sandbox({ network: 'on' });
      const on = await online.exec(probe, { timeoutMs: 5000 });
      expect(on.stdout).toBe('pong\n');
      expect(connections).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('readOnly mounts the workspace read-only but keeps /tmp writable', async () => {
    await a.exec('echo keep > ro.txt');
    const r = await a.exec(
      'echo x > ro.txt || echo refused; touch new.txt || echo refused2; echo t > /tmp/t && cat /tmp/t',
      { readOnly: true },
    );
    expect(r.stdout).toBe('refused\nrefused2\nt\n');
    expect((await a.readFile('ro.txt')).toString()).toBe('keep\n');
    expect(await a.stat('new.txt')).toBeUndefined();
    // Without readOnly the same command writes.
    expect((await a.exec('touch new.txt && echo ok')).stdout).toBe('ok\n');
  });

  it('keeps /tmp private to each command', async () => {
    await a.exec('echo one > /tmp/x');
    expect((await a.exec('cat /tmp/x 2>/dev/null || echo none')).stdout).toBe('none\n');
  });
});
