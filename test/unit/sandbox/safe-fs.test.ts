import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxError } from '../../../src/errors.js';
import type { LocalSandbox } from '../../../src/sandbox/local-sandbox.js';
import { SafeRoot, splitSandboxPath } from '../../../src/sandbox/safe-fs.js';
import { LocalRig } from '../../helpers/local-rig.js';

let rig: LocalRig;
let sb: LocalSandbox;
let outside: string;
let work: string;

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof SandboxError ? e.code : `foreign: ${String(e)}`;
  }
};

beforeAll(async () => {
  rig = await LocalRig.create({ isolation: 'strict' });
  sb = await rig.sandbox();
  work = path.join(sb.id, 'work');
  outside = await rig.dir('outside');
  await fs.writeFile(path.join(outside, 'f'), 'OUTSIDE');
});

afterAll(async () => {
  await rig[Symbol.asyncDispose]();
});

/** A relative link text that climbs from `fromDirRel` (inside the workspace) to `target` on the host. */
const climb = (fromDirRel: string, target: string): string =>
  path.relative(path.join(work, fromDirRel), target);

describe('splitSandboxPath', () => {
  it('normalizes and confines paths to the working dir', () => {
    expect(splitSandboxPath('a/./b//c/', '/work')).toEqual(['a', 'b', 'c']);
    expect(splitSandboxPath('/work/a/../b', '/work')).toEqual(['b']);
    expect(splitSandboxPath('/work', '/work')).toEqual([]);
    expect(splitSandboxPath('', '/work')).toEqual([]);
    expect(splitSandboxPath('x', '/work', '/work/sub')).toEqual(['sub', 'x']);
    for (const bad of ['../etc/passwd', '/etc/passwd', '/work/../etc', '/workspace/x', 'a/../../b', 'a\0b']) {
      expect(() => splitSandboxPath(bad, '/work'), bad).toThrow(
        expect.objectContaining({ code: 'path-escape' }) as Error,
      );
    }
  });
});

describe('host-side file operations never follow a symlink out of the workspace', () => {
  it('refuses a final-component symlink pointing outside', async () => {
    await sb.exec(
      `ln -s /etc/shadow shadow; ln -s ${outside}/f abs; ln -s ${climb('', path.join(outside, 'f'))} rel`,
    );
    for (const p of ['shadow', 'abs', 'rel']) expect(await codeOf(sb.readFile(p)), p).toBe('path-escape');
  });

  it('refuses a symlinked parent directory pointing outside', async () => {
    await sb.exec(
      `mkdir -p deep/er; ln -s / root; ln -s ${climb('deep/er', '/')} deep/er/up; ln -s ${outside} out`,
    );
    expect(await codeOf(sb.readFile('root/etc/passwd'))).toBe('path-escape');
    expect(await codeOf(sb.readFile(`deep/er/up${outside}/f`))).toBe('path-escape');
    expect(await codeOf(sb.readFile('out/f'))).toBe('path-escape');
    expect(await codeOf(sb.stat('out/f'))).toBe('path-escape');
    expect(await codeOf(sb.list('out'))).toBe('path-escape');
    expect(await codeOf(sb.list('root'))).toBe('path-escape');
  });

  it('follows symlinks that stay inside the workspace', async () => {
    await sb.exec(
      'mkdir -p in/dir && echo hi > in/dir/real.txt && ln -s real.txt in/dir/alias && ln -s /work/in/dir in/abs && ln -s dir in/rel && ln -s .. in/dir/back',
    );
    for (const p of [
      'in/dir/alias',
      'in/abs/real.txt',
      'in/rel/alias',
      'in/dir/back/dir/real.txt',
      '/work/in/abs/alias',
    ]) {
      expect((await sb.readFile(p)).toString(), p).toBe('hi\n');
    }
    await sb.writeFile('in/abs/via-link.txt', 'through');
    expect((await sb.exec('cat in/dir/via-link.txt')).stdout).toBe('through');
    expect((await sb.list('in/rel')).map((e) => e.name)).toContain('real.txt');
  });

  it('refuses writes through outward symlinks and writes nothing outside', async () => {
    await sb.exec(`ln -s ${outside}/f wlink; ln -s ${outside}/new wnew; ln -s ${outside} wdir`);
    expect(await codeOf(sb.writeFile('wlink', 'pwned'))).toBe('path-escape');
    expect(await codeOf(sb.writeFile('wnew', 'pwned'))).toBe('path-escape');
    expect(await codeOf(sb.writeFile('wdir/g', 'pwned'))).toBe('path-escape');
    expect(await codeOf(sb.writeFile('wdir/sub/g', 'pwned'))).toBe('path-escape');
    expect(await codeOf(sb.upload(path.join(outside, 'f'), 'wdir/up'))).toBe('path-escape');
    expect(await fs.readFile(path.join(outside, 'f'), 'utf8')).toBe('OUTSIDE');
    expect((await fs.readdir(outside)).sort()).toEqual(['f']);
    // createOnly never follows a final symlink: it exists.
    const err = await sb.writeFile('wlink', 'x', { createOnly: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'exec-failed', details: { reason: 'exists' } });
  });

  it('stat and list report symlinks without following them', async () => {
    await sb.exec(
      'mkdir -p ls/sub && echo 1 > ls/sub/one && echo 22 > ls/two && ln -s /etc ls/etc && ln -s / ls/root && touch ls/.hidden',
    );
    expect(await sb.stat('shadow')).toMatchObject({ type: 'symlink', path: '/work/shadow', name: 'shadow' });
    expect(await sb.stat('ls/two')).toMatchObject({ type: 'file', size: 3, path: '/work/ls/two' });
    expect(await sb.stat('ls/missing')).toBeUndefined();
    expect(await sb.stat('ls/two/below')).toBeUndefined();
    const flat = await sb.list('ls');
    expect(flat.map((e) => [e.path, e.type])).toEqual([
      ['/work/ls/etc', 'symlink'],
      ['/work/ls/root', 'symlink'],
      ['/work/ls/sub', 'dir'],
      ['/work/ls/two', 'file'],
    ]);
    const deep = await sb.list('ls', { recursive: true, showHidden: true });
    expect(deep.map((e) => e.path)).toEqual([
      '/work/ls/.hidden',
      '/work/ls/etc',
      '/work/ls/root',
      '/work/ls/sub',
      '/work/ls/sub/one',
      '/work/ls/two',
    ]);
    expect(await sb.list('ls', { recursive: true, limit: 2 })).toHaveLength(2);
    expect((await sb.list('ls', { recursive: true, maxDepth: 1 })).map((e) => e.name)).not.toContain('one');
    expect(await codeOf(sb.list('ls/two'))).toBe('not-found');
    expect(await codeOf(sb.list('ls/nope'))).toBe('not-found');
  });

  it('glob matches without descending into symlinked directories', async () => {
    const all = await sb.glob('ls/**/*');
    expect(all).toEqual(['/work/ls/etc', '/work/ls/root', '/work/ls/sub/one', '/work/ls/two']);
    expect(await sb.glob('*.txt', { cwd: 'in/dir' })).toEqual([
      '/work/in/dir/real.txt',
      '/work/in/dir/via-link.txt',
    ]);
    expect(await sb.glob('ls/**/.hidden')).toEqual(['/work/ls/.hidden']);
    expect(await sb.glob('nope/**')).toEqual([]);
    expect(await sb.glob('ls/two')).toEqual(['/work/ls/two']);
    expect(await codeOf(sb.glob('/etc/*'))).toBe('path-escape');
  });

  it('remove deletes a symlink itself, never its target', async () => {
    await sb.exec(`mkdir -p rm/d && ln -s ${outside} rm/d/out && ln -s ${outside}/f rm/flink`);
    await sb.remove('rm/flink');
    await sb.remove('rm', { recursive: true });
    expect(await fs.readFile(path.join(outside, 'f'), 'utf8')).toBe('OUTSIDE');
    expect(await sb.stat('rm')).toBeUndefined();
    expect(await codeOf(sb.remove('rm'))).toBe('not-found');
    expect(await codeOf(sb.remove('out/f'))).toBe('path-escape');
    expect(await codeOf(sb.remove('/work'))).toBe('exec-failed');
    await sb.exec('mkdir -p full && touch full/x');
    expect(await codeOf(sb.remove('full'))).toBe('exec-failed');
  });

  it('does not hang on FIFOs and reports symlink loops', async () => {
    await sb.exec('mkfifo fifo; ln -s loop loop; ln -s b a; ln -s a b');
    expect(await codeOf(sb.readFile('fifo'))).toBe('exec-failed');
    expect(await codeOf(sb.writeFile('fifo', 'x'))).toBe('exec-failed');
    expect(await codeOf(sb.readFile('loop'))).toBe('path-escape');
    expect(await codeOf(sb.readFile('a/x'))).toBe('path-escape');
  });

  it('reads and writes regular files with modes, limits and createOnly', async () => {
    await sb.writeFile('rw/nested/new.sh', '#!/bin/sh\necho run\n', { mode: 0o755 });
    expect((await sb.exec('./rw/nested/new.sh')).stdout).toBe('run\n');
    expect((await sb.stat('rw/nested/new.sh'))?.mode).toBe(0o755);
    await sb.writeFile('rw/nested/new.sh', 'short');
    expect((await sb.readFile('rw/nested/new.sh')).toString()).toBe('short');
    expect((await sb.stat('rw/nested/new.sh'))?.mode).toBe(0o755);
    expect((await sb.readFile('rw/nested/new.sh', { maxBytes: 3 })).toString()).toBe('sho');
    expect(await codeOf(sb.writeFile('rw/nested/new.sh', 'x', { createOnly: true }))).toBe('exec-failed');
    await sb.writeFile('rw/fresh', Buffer.from([0, 1, 2]), { createOnly: true });
    expect([...(await sb.readFile('rw/fresh'))]).toEqual([0, 1, 2]);
    expect(await codeOf(sb.readFile('rw/missing'))).toBe('not-found');
    expect(await codeOf(sb.readFile('rw'))).toBe('exec-failed');
    expect(await codeOf(sb.writeFile('rw', 'x'))).toBe('exec-failed');
    expect(await codeOf(sb.readFile('../../etc/passwd'))).toBe('path-escape');
    expect(await codeOf(sb.readFile('/etc/passwd'))).toBe('path-escape');
  });

  it('SafeRoot without followSymlinks refuses every symlink', async () => {
    const dir = await rig.dir('nofollow');
    await fs.mkdir(path.join(dir, 'real'));
    await fs.symlink('real', path.join(dir, 'inner'));
    const root = new SafeRoot(dir, { followSymlinks: false });
    await root.writeFile(['real', 'x'], 'ok');
    expect(await codeOf(root.writeFile(['inner', 'y'], 'no'))).toBe('path-escape');
    expect(await codeOf(root.readFile(['inner', 'x']))).toBe('path-escape');
  });
});

describe('host-side file operations under a concurrent symlink swap', () => {
  it('never reads or writes outside while a jailed process swaps a directory and a symlink', async () => {
    await sb.exec('mkdir -p race/real && echo inside > race/real/f');
    const relTarget = climb('race', outside);
    // Swap race/d between a real directory and symlinks out (relative climb and absolute host path).
    const swap = sb.exec(
      `perl -e 'my $end = time + 3; my $n = 0; my @t = ("${relTarget}", "${outside}");
        while (time < $end && $n < 200000) {
          system("rm", "-rf", "d") if -d "d" && ! -l "d";
          rename("real", "d"); select(undef, undef, undef, 0.0002); rename("d", "real");
          symlink($t[$n % 2], "d"); select(undef, undef, undef, 0.0002); unlink("d"); $n++ }
        print $n'`,
      { cwd: 'race', timeoutMs: 20_000 },
    );
    const state = { swapping: true };
    void swap.finally(() => (state.swapping = false));
    const tally = new Map<string, number>();
    const bump = (k: string): void => void tally.set(k, (tally.get(k) ?? 0) + 1);
    let naiveEscapes = 0;
    for (let i = 0; i < 20_000 && state.swapping; i++) {
      try {
        const text = (await sb.readFile('race/d/f')).toString();
        bump(text === 'inside\n' ? 'inside' : `LEAK:${text}`);
      } catch (e) {
        bump(e instanceof SandboxError ? e.code : `foreign:${String(e)}`);
      }
      bump(`write:${await codeOf(sb.writeFile('race/d/w', 'pwned'))}`);
      bump(`stat:${await codeOf(sb.stat('race/d/f'))}`);
      bump(`list:${await codeOf(sb.list('race/d'))}`);
      // Control: a naive host read does get redirected outside.
      const naive = await fs.readFile(path.join(work, 'race/d/f'), 'utf8').catch(() => '');
      if (naive === 'OUTSIDE') naiveEscapes++;
    }
    const result = await swap;
    expect(Number(result.stdout)).toBeGreaterThan(100);
    const keys = [...tally.keys()];
    expect(keys.filter((k) => k.startsWith('LEAK') || k.includes('foreign'))).toEqual([]);
    expect(tally.get('inside') ?? 0).toBeGreaterThan(0);
    expect(tally.get('path-escape') ?? 0).toBeGreaterThan(0);
    expect(naiveEscapes).toBeGreaterThan(0);
    expect((await fs.readdir(outside)).sort()).toEqual(['f']);
    expect(await fs.readFile(path.join(outside, 'f'), 'utf8')).toBe('OUTSIDE');
  });
});
