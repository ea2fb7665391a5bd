import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxError } from '../../../src/errors.js';
import type { LocalSandbox } from '../../../src/sandbox/local-sandbox.js';
import { LocalRig } from '../../helpers/local-rig.js';

let rig: LocalRig;
let sb: LocalSandbox;
let src: string;
let outside: string;

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof SandboxError ? e.code : `foreign: ${String(e)}`;
  }
};

/** Every path below `dir`, relative, sorted; symlinks shown as `name -> target`. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) out.push(`${r} -> ${await fs.readlink(path.join(d, e.name))}`);
      else if (e.isDirectory()) {
        out.push(`${r}/`);
        await walk(path.join(d, e.name), r);
      } else out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

beforeAll(async () => {
  rig = await LocalRig.create({ isolation: 'strict' });
  sb = await rig.sandbox();
  outside = await rig.dir('outside');
  await fs.writeFile(path.join(outside, 'secret'), 'OUTSIDE');
  src = await rig.dir('src');
  await fs.mkdir(path.join(src, 'bin'), { recursive: true });
  await fs.writeFile(path.join(src, 'bin/run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
  await fs.writeFile(path.join(src, 'readme.md'), 'hello\n');
  await fs.chmod(path.join(src, 'readme.md'), 0o640);
  await fs.mkdir(path.join(src, 'empty/nested-empty'), { recursive: true });
  await fs.mkdir(path.join(src, 'a/b/c'), { recursive: true });
  await fs.writeFile(path.join(src, 'a/b/c/deep.txt'), 'deep');
  await fs.writeFile(path.join(src, 'a/skip.tmp'), 'tmp');
  await fs.mkdir(path.join(src, 'node_modules/pkg'), { recursive: true });
  await fs.writeFile(path.join(src, 'node_modules/pkg/index.js'), '');
  await fs.mkdir(path.join(src, '.git'), { recursive: true });
  await fs.writeFile(path.join(src, '.git/HEAD'), 'ref');
  await fs.writeFile(path.join(src, '.env'), 'X=1');
  await fs.symlink('readme.md', path.join(src, 'link-in'));
  await fs.symlink(path.join(outside, 'secret'), path.join(src, 'link-out'));
  await fs.symlink('../../..', path.join(src, 'a/up'));
  await fs.mkdir(path.join(src, 'ro'), { mode: 0o555 });
  await fs.chmod(path.join(src, 'ro'), 0o555);
  await fs.writeFile(path.join(src, 'big.bin'), Buffer.alloc(5 * 1024 * 1024 + 123, 7));
});

afterAll(async () => {
  await rig[Symbol.asyncDispose]();
});

describe('upload', () => {
  it('copies a tree preserving modes, symlinks and empty dirs', async () => {
    const stats = await sb.upload(src, '/work/repo');
    expect(stats.requests).toBe(0);
    expect(stats.bytes).toBeGreaterThan(5 * 1024 * 1024);
    const hostCopy = path.join(sb.id, 'work', 'repo');
    expect(await tree(hostCopy)).toEqual(await tree(src));
    expect((await sb.exec('./bin/run.sh', { cwd: 'repo' })).stdout).toBe('ran\n');
    expect((await sb.stat('repo/readme.md'))?.mode).toBe(0o640);
    expect((await sb.stat('repo/bin/run.sh'))?.mode).toBe(0o755);
    expect((await sb.stat('repo/ro'))?.mode).toBe(0o555);
    expect((await sb.stat('repo/link-out'))?.type).toBe('symlink');
    expect((await sb.stat('repo/empty/nested-empty'))?.type).toBe('dir');
    expect((await sb.readFile('repo/link-in')).toString()).toBe('hello\n');
    expect((await sb.readFile('repo/big.bin')).length).toBe(5 * 1024 * 1024 + 123);
    const mtimeSrc = (await fs.stat(path.join(src, 'a/b/c/deep.txt'))).mtimeMs;
    expect(Math.abs(((await sb.stat('repo/a/b/c/deep.txt'))?.mtimeMs ?? 0) - mtimeSrc)).toBeLessThan(1000);
    // The outward link was copied as a link, never dereferenced.
    expect(await codeOf(sb.readFile('repo/link-out'))).toBe('path-escape');
    expect((await sb.exec('cat repo/link-out || echo unreadable')).stdout).toBe('unreadable\n');
  });

  it('keeps each file mode exactly: read-only, under a restrictive umask, and over a file of another mode', async () => {
    const modes = await rig.dir('modes');
    const want: Record<string, number> = { 'ro.txt': 0o444, 'rw.txt': 0o644, 'x.sh': 0o750, priv: 0o600 };
    for (const [name, mode] of Object.entries(want)) {
      await fs.writeFile(path.join(modes, name), name);
      await fs.chmod(path.join(modes, name), mode);
    }
    const modesIn = async (dir: string): Promise<Record<string, number>> => {
      const got: Record<string, number> = {};
      for (const name of Object.keys(want)) got[name] = (await sb.stat(`${dir}/${name}`))?.mode ?? -1;
      return got;
    };
    // Fresh files under a umask that masks group/other bits: 0644 and 0750 must still come out as such.
    const old = process.umask(0o077);
    try {
      await sb.upload(modes, 'modes-a');
    } finally {
      process.umask(old);
    }
    expect(await modesIn('modes-a')).toEqual(want);
    // Over existing files of other modes (not fresh): the source's mode wins.
    await sb.exec(
      'mkdir -p modes-b && for f in ro.txt rw.txt x.sh priv; do echo old > modes-b/$f; chmod 0777 modes-b/$f; done',
    );
    await sb.upload(modes, 'modes-b');
    expect(await modesIn('modes-b')).toEqual(want);
    expect((await sb.readFile('modes-b/ro.txt')).toString()).toBe('ro.txt');
  });

  it('applies exclude globs relative to the source root', async () => {
    await sb.upload(src, 'filtered', { exclude: ['**/*.tmp', 'node_modules', '.git', 'big.bin', 'a/b/**'] });
    const got = await tree(path.join(sb.id, 'work', 'filtered'));
    expect(got).not.toContain('a/skip.tmp');
    expect(got.some((p) => p.startsWith('node_modules'))).toBe(false);
    expect(got.some((p) => p.startsWith('.git'))).toBe(false);
    expect(got).not.toContain('big.bin');
    expect(got.some((p) => p.startsWith('a/b'))).toBe(false);
    expect(got).toContain('.env');
    expect(got).toContain('bin/run.sh');
  });

  it('uploads a single file to a path or into a directory', async () => {
    await sb.upload(path.join(src, 'bin/run.sh'), 'tools/run');
    expect((await sb.stat('tools/run'))?.mode).toBe(0o755);
    await sb.upload(path.join(src, 'readme.md'), 'tools/');
    expect((await sb.readFile('tools/readme.md')).toString()).toBe('hello\n');
    await sb.upload(path.join(src, 'readme.md'), 'tools');
    expect((await sb.readFile('tools/readme.md')).toString()).toBe('hello\n');
  });

  it('overwrites an existing tree, replacing planted symlinks instead of following them', async () => {
    await sb.exec(
      `mkdir -p over/a/b && ln -s ${outside} over/bin && ln -s ${outside}/secret over/readme.md && ln -s ${outside} over/a/b/c`,
    );
    await sb.upload(src, 'over');
    expect(await fs.readFile(path.join(outside, 'secret'), 'utf8')).toBe('OUTSIDE');
    expect((await fs.readdir(outside)).sort()).toEqual(['secret']);
    expect((await sb.stat('over/bin'))?.type).toBe('dir');
    expect((await sb.readFile('over/readme.md')).toString()).toBe('hello\n');
    expect((await sb.readFile('over/a/b/c/deep.txt')).toString()).toBe('deep');
  });

  it('reports a missing source', async () => {
    expect(await codeOf(sb.upload(path.join(src, 'nope'), 'x'))).toBe('transfer-failed');
  });
});

describe('download', () => {
  beforeAll(async () => {
    await sb.exec(
      [
        'mkdir -p out/logs/sub out/empty',
        'echo one > out/logs/a.log',
        'echo two > out/logs/sub/b.log',
        'echo txt > out/logs/c.txt',
        'printf "#!/bin/sh\\n" > out/tool.sh && chmod 755 out/tool.sh',
        `ln -s ${outside}/secret out/leak`,
        `ln -s ${outside} out/logs/leakdir`,
        'ln -s ../../../../../../../../.. out/logs/up.log',
        'mkfifo out/logs/pipe.log',
      ].join(' && '),
    );
  });

  it('copies a directory under its basename, skipping and reporting symlinks', async () => {
    const dest = await rig.dir('dl-dir');
    const r = await sb.download('out', dest);
    expect(r.written).toEqual(['out/logs/a.log', 'out/logs/c.txt', 'out/logs/sub/b.log', 'out/tool.sh']);
    expect(r.files).toBe(4);
    expect(r.skipped).toEqual(
      expect.arrayContaining([
        { path: '/work/out/leak', reason: 'symlink' },
        { path: '/work/out/logs/leakdir', reason: 'symlink' },
        { path: '/work/out/logs/up.log', reason: 'symlink' },
        { path: '/work/out/logs/pipe.log', reason: 'not a regular file' },
      ]),
    );
    expect(await tree(dest)).toEqual([
      'out/',
      'out/empty/',
      'out/logs/',
      'out/logs/a.log',
      'out/logs/c.txt',
      'out/logs/sub/',
      'out/logs/sub/b.log',
      'out/tool.sh',
    ]);
    expect((await fs.stat(path.join(dest, 'out/tool.sh'))).mode & 0o777).toBe(0o755);
    expect((await fs.readdir(outside)).sort()).toEqual(['secret']);
  });

  it('copies a file as localDir/<basename>', async () => {
    const dest = await rig.dir('dl-file');
    const r = await sb.download('/work/out/logs/a.log', dest);
    expect(r.written).toEqual(['a.log']);
    expect(await fs.readFile(path.join(dest, 'a.log'), 'utf8')).toBe('one\n');
  });

  it('copies glob matches relative to the static base', async () => {
    const dest = await rig.dir('dl-glob');
    const r = await sb.download('out/logs/**/*.log', dest);
    expect(r.written).toEqual(['a.log', 'sub/b.log']);
    expect(r.skipped).toEqual(expect.arrayContaining([{ path: '/work/out/logs/up.log', reason: 'symlink' }]));
    expect(await tree(dest)).toEqual(['a.log', 'sub/', 'sub/b.log']);
    const d2 = await rig.dir('dl-glob2');
    expect((await sb.download('/work/out/*', d2)).written).toEqual([
      'logs/a.log',
      'logs/c.txt',
      'logs/sub/b.log',
      'tool.sh',
    ]);
  });

  it('refuses a symlinked source and reports nothing-matched as not-found', async () => {
    const dest = await rig.dir('dl-link');
    const r = await sb.download('out/leak', dest);
    expect(r.written).toEqual([]);
    expect(r.skipped).toEqual([{ path: '/work/out/leak', reason: 'symlink' }]);
    expect(await fs.readdir(dest)).toEqual([]);
    expect(await codeOf(sb.download('out/missing', dest))).toBe('not-found');
    expect(await codeOf(sb.download('out/*.nothing', dest))).toBe('not-found');
    expect(await codeOf(sb.download('/etc/passwd', dest))).toBe('path-escape');
    expect(await codeOf(sb.download('out/logs/leakdir/secret', dest))).toBe('path-escape');
  });

  it('never follows a symlink already present in the destination', async () => {
    const dest = await rig.dir('dl-planted');
    await fs.symlink(outside, path.join(dest, 'out'));
    await fs.symlink(path.join(outside, 'secret'), path.join(dest, 'a.log'));
    // A planted directory symlink is refused; a planted file symlink is replaced, never written through.
    expect(await codeOf(sb.download('out', dest))).toBe('path-escape');
    await sb.download('out/logs/a.log', dest);
    expect(await fs.readFile(path.join(outside, 'secret'), 'utf8')).toBe('OUTSIDE');
    expect((await fs.readdir(outside)).sort()).toEqual(['secret']);
    expect(await fs.readFile(path.join(dest, 'a.log'), 'utf8')).toBe('one\n');
  });
});

describe('many files', () => {
  // Speed is measured against tar in benchmarks; here only a generous bound (the test machine is shared).
  it('uploads 600 files across 24 directories', { timeout: 60_000 }, async () => {
    const many = await rig.dir('many');
    for (let d = 0; d < 24; d++) {
      await fs.mkdir(path.join(many, `d${d}`));
      await Promise.all(
        Array.from({ length: 25 }, (_, f) =>
          fs.writeFile(path.join(many, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`),
        ),
      );
    }
    const started = performance.now();
    const r = await sb.upload(many, 'many');
    expect(r.files).toBe(600);
    expect(performance.now() - started).toBeLessThan(45_000);
    expect((await sb.exec('find many -type f | wc -l')).stdout.trim()).toBe('600');

    // Aborting stops a transfer with the abort reason.
    const reason = new Error('stop');
    await expect(sb.upload(many, 'aborted', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    const controller = new AbortController();
    setImmediate(() => controller.abort(reason));
    await expect(sb.upload(many, 'aborted2', { signal: controller.signal })).rejects.toBe(reason);
    const dl = new AbortController();
    setImmediate(() => dl.abort(reason));
    await expect(sb.download('many', await rig.dir('dl-aborted'), { signal: dl.signal })).rejects.toBe(
      reason,
    );
  });
});
