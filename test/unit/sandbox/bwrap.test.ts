import { lstatSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ARGS_FD,
  bwrapArgs,
  commandEnv,
  DEFAULT_PATH,
  envArgsData,
  findBwrap,
  hostLayoutArgs,
  probeBwrap,
  STATUS_FD,
  validateWorkingDir,
} from '../../../src/sandbox/bwrap.js';
import { parseStatus } from '../../../src/sandbox/local-exec.js';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** True when `args` contains `seq` as consecutive elements. */
const hasSeq = (args: readonly string[], ...seq: string[]): boolean =>
  args.some((_, i) => seq.every((s, j) => args[i + j] === s));

describe('findBwrap', () => {
  it('searches PATH, and honours the RHO_FLOW_BWRAP override', async () => {
    const bin = path.join(tmp, 'bin');
    await fs.mkdir(bin);
    await fs.writeFile(path.join(bin, 'bwrap'), '#!/bin/sh\n', { mode: 0o755 });
    await fs.writeFile(path.join(tmp, 'not-exec'), '', { mode: 0o644 });
    expect(findBwrap({ PATH: `/nonexistent:${bin}` })).toBe(path.join(bin, 'bwrap'));
    expect(findBwrap({ PATH: '/nonexistent' })).toBeUndefined();
    expect(findBwrap({})).toBeUndefined();
    expect(findBwrap({ PATH: bin, RHO_FLOW_BWRAP: 'none' })).toBeUndefined();
    expect(findBwrap({ PATH: bin, RHO_FLOW_BWRAP: '' })).toBeUndefined();
    expect(findBwrap({ PATH: '/nonexistent', RHO_FLOW_BWRAP: '/usr/bin/bwrap' })).toBe('/usr/bin/bwrap');
    expect(findBwrap({ RHO_FLOW_BWRAP: path.join(tmp, 'not-exec') })).toBeUndefined();
    expect(findBwrap({ RHO_FLOW_BWRAP: bin })).toBeUndefined(); // a directory
  });

  it('probes a real jail', async () => {
    expect(await probeBwrap('/usr/bin/bwrap')).toBeUndefined();
    expect(await probeBwrap('/bin/false')).toBeDefined();
  });
});

describe('host layout', () => {
  it('mirrors /bin, /lib*, /sbin as symlinks or read-only binds, as on the host', () => {
    const args = hostLayoutArgs();
    for (const p of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
      let st;
      try {
        st = lstatSync(p);
      } catch {
        expect(args.includes(p), p).toBe(false);
        continue;
      }
      if (st.isSymbolicLink()) expect(hasSeq(args, '--symlink', readlinkSync(p), p), p).toBe(true);
      else expect(hasSeq(args, '--ro-bind', p, p), p).toBe(true);
    }
    expect(hasSeq(args, '--ro-bind', '/usr', '/usr')).toBe(true);
    expect(hasSeq(args, '--ro-bind', '/etc', '/etc')).toBe(true);
    expect(
      args.some((a) => a === '/root' || a === '/home' || a.startsWith('/work') || a.startsWith('/tmp')),
    ).toBe(false);
    expect(hasSeq(args, '--ro-bind', '/dev/null', '/etc/shadow')).toBe(true);
    // Masks come after the /etc bind, or they would be hidden by it.
    expect(args.indexOf('/etc/shadow')).toBeGreaterThan(args.indexOf('/etc'));
  });
});

describe('bwrapArgs', () => {
  const base = {
    workspace: '/tmp/ws/work',
    workingDir: '/work',
    cwd: '/work/sub',
    network: 'off' as const,
    readOnly: false,
  };

  it('builds a closed jail with the workspace at the working dir', () => {
    const args = bwrapArgs(base);
    for (const flag of ['--unshare-all', '--die-with-parent', '--new-session']) expect(args).toContain(flag);
    expect(hasSeq(args, '--cap-drop', 'ALL')).toBe(true);
    expect(hasSeq(args, '--args', String(ARGS_FD))).toBe(true);
    expect(hasSeq(args, '--json-status-fd', String(STATUS_FD))).toBe(true);
    expect(hasSeq(args, '--proc', '/proc')).toBe(true);
    expect(hasSeq(args, '--dev', '/dev')).toBe(true);
    expect(hasSeq(args, '--bind', '/tmp/ws/work', '/work')).toBe(true);
    expect(hasSeq(args, '--chdir', '/work/sub')).toBe(true);
    expect(args).not.toContain('--share-net');
    expect(args.at(-1)).toBe('--');
    // /tmp is mounted before the workspace, so a working dir under /tmp stays visible.
    expect(args.indexOf('/tmp/ws/work')).toBeGreaterThan(args.lastIndexOf('--tmpfs'));
  });

  it('shares the network only when asked and binds read-only on request', () => {
    expect(bwrapArgs({ ...base, network: 'on' })).toContain('--share-net');
    const ro = bwrapArgs({ ...base, readOnly: true });
    expect(hasSeq(ro, '--ro-bind', '/tmp/ws/work', '/work')).toBe(true);
    expect(hasSeq(ro, '--bind', '/tmp/ws/work', '/work')).toBe(false);
  });

  it('passes the environment on the --args fd, never in argv', () => {
    const data = envArgsData({ A: '1', SECRET: 'x y\nz' });
    expect(data.toString().split('\0')).toEqual([
      '--clearenv',
      '--setenv',
      'A',
      '1',
      '--setenv',
      'SECRET',
      'x y\nz',
      '',
    ]);
    expect(bwrapArgs(base).join(' ')).not.toContain('SECRET');
  });
});

describe('commandEnv', () => {
  it('layers defaults, the sandbox env and the exec env', () => {
    expect(commandEnv({ home: '/work', tmpdir: '/tmp' })).toEqual({
      PATH: DEFAULT_PATH,
      HOME: '/work',
      TMPDIR: '/tmp',
      LANG: 'C.UTF-8',
    });
    expect(commandEnv({ home: '/work', tmpdir: '/tmp' }, { A: '1', LANG: 'C' }, { A: '2' })).toMatchObject({
      A: '2',
      LANG: 'C',
    });
  });

  it('rejects names and values an environment cannot hold', () => {
    const bads: Array<Record<string, string>> = [{ 'A=B': '1' }, { '': '1' }, { A: 'x\0y' }];
    for (const bad of bads) {
      expect(() => commandEnv({ home: '/w', tmpdir: '/tmp' }, bad)).toThrow(
        expect.objectContaining({ code: 'exec-failed' }) as Error,
      );
    }
  });
});

describe('validateWorkingDir', () => {
  it('accepts plain absolute dirs and refuses the jail layout', () => {
    for (const ok of ['/work', '/home/agent/w', '/tmp/job', '/srv/x/', '/usrx', '/run/app', '/runx'])
      expect(() => validateWorkingDir(ok), ok).not.toThrow();
    for (const bad of [
      'work',
      '/',
      '//',
      '/usr',
      '/usr/local/w',
      '/etc/x',
      '/proc',
      '/dev/shm',
      '/bin',
      '/lib64/x',
      '/a/../b',
      '/a/./b',
      // where run steps' outputs file is bound
      '/run',
      '/run/rho-flow',
      '/run/rho-flow/x',
    ]) {
      expect(() => validateWorkingDir(bad), bad).toThrow(
        expect.objectContaining({ code: 'create-failed' }) as Error,
      );
    }
  });
});

describe('parseStatus', () => {
  it('reads child-pid and exit-code documents, ignoring partial lines', () => {
    expect(parseStatus('{ "child-pid": 12, "pid-namespace": 4 }\n{ "exit-code": 3 }\n')).toEqual({
      childPid: 12,
      exitCode: 3,
    });
    expect(parseStatus('{ "child-pid": 12 }\n{ "exit-')).toEqual({ childPid: 12 });
    expect(parseStatus('')).toEqual({});
  });
});
