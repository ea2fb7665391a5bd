import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { watch } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IN_MEMORY_ARCHIVE_BYTES, extractSafely } from '../../../src/sandbox/daytona-transfer.js';
import type { DaytonaSandbox } from '../../../src/sandbox/daytona-sandbox.js';
import { startFakeDaytona, type FakeDaytona } from '../../helpers/fake-daytona/index.js';
import { daytonaRig, daytonaSpec, type DaytonaRig } from '../../helpers/fake-daytona/backend.js';

let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A source tree with what file-by-file uploads lose: modes, symlinks, empty dirs, dotfiles. */
async function makeTree(root: string): Promise<void> {
  await fs.mkdir(path.join(root, 'src/deep'), { recursive: true });
  await fs.mkdir(path.join(root, 'empty'));
  await fs.mkdir(path.join(root, 'node_modules/pkg'), { recursive: true });
  await fs.writeFile(path.join(root, 'README.md'), 'hello\n');
  await fs.writeFile(path.join(root, '.env.example'), 'A=1\n');
  await fs.writeFile(path.join(root, 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
  await fs.writeFile(path.join(root, 'src/deep/code.py'), 'print(1)\n');
  await fs.writeFile(path.join(root, 'src/deep/cache.tmp'), 'junk');
  await fs.writeFile(path.join(root, 'node_modules/pkg/index.js'), 'x');
  await fs.symlink('../README.md', path.join(root, 'src/readme-link'));
  await fs.symlink('/etc/hostname', path.join(root, 'outside-link'));
}

async function inspect(sandbox: DaytonaSandbox, dir: string): Promise<string> {
  const r = await sandbox.exec(
    `cd ${dir} && find . -mindepth 1 | sort | while read -r f; do printf '%s %s %s\\n' "$f" "$(stat -c '%a %F' "$f")" "$(readlink "$f")"; done`,
  );
  return r.stdout;
}

const EXPECTED_TREE = [
  './.env.example 644 regular file ',
  './README.md 644 regular file ',
  './empty 755 directory ',
  './outside-link 777 symbolic link /etc/hostname',
  './run.sh 755 regular file ',
  './src 755 directory ',
  './src/deep 755 directory ',
  './src/deep/code.py 644 regular file ',
  './src/readme-link 777 symbolic link ../README.md',
  '',
].join('\n');

describe.each([
  { label: 'tar', hidden: [] as string[] },
  { label: 'no tar (bulk fallback)', hidden: ['tar'] },
])('transfers with $label', ({ hidden }) => {
  let fake: FakeDaytona;
  let rig: DaytonaRig;
  let sandbox: DaytonaSandbox;

  beforeAll(async () => {
    fake = await startFakeDaytona({ hiddenCommands: hidden });
    rig = daytonaRig(fake);
    sandbox = await rig.backend.create(daytonaSpec());
    expect(sandbox.tools.has('tar')).toBe(hidden.length === 0);
  });

  afterAll(async () => {
    await sandbox.dispose();
    await rig.backend.close();
    expect(fake.live()).toEqual([]);
    await fake.close();
  });

  test('a directory upload keeps modes, symlinks and empty dirs and honours exclude', async () => {
    const src = await fs.mkdtemp(path.join(tmp, 'src-'));
    await makeTree(src);
    const before = fake.requests.length;
    const stats = await sandbox.upload(src, '/work/repo', { exclude: ['**/*.tmp', 'node_modules'] });
    expect(stats).toMatchObject({ files: 4, bytes: 6 + 4 + 19 + 9 });
    expect(stats.requests).toBe(fake.requests.length - before);
    expect(await inspect(sandbox, '/work/repo')).toBe(EXPECTED_TREE);
    expect((await sandbox.exec('./run.sh', { cwd: 'repo' })).stdout).toBe('ran\n');
  });

  test('incompressible data (sent as a plain tar) arrives byte for byte', async () => {
    const src = await fs.mkdtemp(path.join(tmp, 'random-'));
    const sums: string[] = [];
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(200_000 + i);
      await fs.writeFile(path.join(src, `r${i}.bin`), data);
      sums.push(`${createHash('sha256').update(data).digest('hex')}  r${i}.bin`);
    }
    const stats = await sandbox.upload(src, '/work/random');
    expect(stats.files).toBe(3);
    expect((await sandbox.exec('sha256sum r*.bin', { cwd: '/work/random' })).stdout).toBe(
      `${sums.join('\n')}\n`,
    );
  });

  test('a single-file upload lands at the remote path with its mode', async () => {
    const file = path.join(tmp, 'tool.sh');
    await fs.writeFile(file, '#!/bin/sh\necho tool\n', { mode: 0o750 });
    const stats = await sandbox.upload(file, 'bin/tool.sh');
    expect(stats.files).toBe(1);
    expect((await sandbox.exec('stat -c %a bin/tool.sh && bin/tool.sh')).stdout).toBe('750\ntool\n');
  });

  test('a directory download lands under <localDir>/<basename>, symlinks skipped and reported', async () => {
    const dest = path.join(await fs.mkdtemp(path.join(tmp, 'dl-')), 'artifacts');
    const r = await sandbox.download('/work/repo', dest);
    expect(r.written).toEqual([
      'repo/.env.example',
      'repo/README.md',
      'repo/run.sh',
      'repo/src/deep/code.py',
    ]);
    expect(r.skipped.map((s) => s.path).sort()).toEqual(['repo/outside-link', 'repo/src/readme-link']);
    expect(r).toMatchObject({ files: 4, bytes: 6 + 4 + 19 + 9 });
    expect(await fs.readFile(path.join(dest, 'repo/src/deep/code.py'), 'utf8')).toBe('print(1)\n');
    expect((await fs.stat(path.join(dest, 'repo/run.sh'))).mode & 0o111).not.toBe(0);
    expect((await fs.stat(path.join(dest, 'repo/empty'))).isDirectory()).toBe(true);
    await expect(fs.lstat(path.join(dest, 'repo/outside-link'))).rejects.toThrow();
  });

  test('a file download lands as <localDir>/<basename>', async () => {
    const dest = await fs.mkdtemp(path.join(tmp, 'dl-'));
    const r = await sandbox.download('repo/README.md', dest);
    expect(r.written).toEqual(['README.md']);
    expect(await fs.readFile(path.join(dest, 'README.md'), 'utf8')).toBe('hello\n');
  });

  test('glob matches keep their path below the static base', async () => {
    const dest = await fs.mkdtemp(path.join(tmp, 'dl-'));
    const r = await sandbox.download('/work/repo/**/*.{py,md}', dest);
    expect(r.written).toEqual(['README.md', 'src/deep/code.py']);
    const none = await sandbox.download('repo/*.nothing', dest).catch((e: unknown) => e);
    expect(none).toMatchObject({ code: 'not-found' });
  });

  test('a missing path is not-found', async () => {
    const dest = await fs.mkdtemp(path.join(tmp, 'dl-'));
    await expect(sandbox.download('/work/nope', dest)).rejects.toMatchObject({ code: 'not-found' });
  });

  test('a failed upload request fails loudly as transfer-failed', async () => {
    const src = await fs.mkdtemp(path.join(tmp, 'src-'));
    await fs.writeFile(path.join(src, 'a.txt'), 'a');
    fake.inject({ endpoint: 'upload', status: 500, message: 'disk full' });
    await expect(sandbox.upload(src, '/work/fail')).rejects.toMatchObject({
      code: 'transfer-failed',
      retryable: true,
    });
  });
});

describe('request counts', () => {
  test('a 2,000-file upload takes as many requests as a 10-file one (tar: 2)', async () => {
    await using fake = await startFakeDaytona();
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec());
    const counts: number[] = [];
    for (const n of [10, 2000]) {
      const src = await fs.mkdtemp(path.join(tmp, `many-${n}-`));
      const dirs = n >= 100 ? 20 : 2;
      for (let d = 0; d < dirs; d++) {
        await fs.mkdir(path.join(src, `d${d}`));
        for (let f = 0; f < n / dirs; f++)
          await fs.writeFile(path.join(src, `d${d}`, `f${f}.txt`), `${d}/${f}\n`);
      }
      const before = fake.requests.length;
      const stats = await sandbox.upload(src, `/work/many-${n}`);
      counts.push(fake.requests.length - before);
      expect(stats.files).toBe(n);
      expect(stats.requests).toBe(counts.at(-1));
      expect((await sandbox.exec(`find /work/many-${n} -type f | wc -l`)).stdout.trim()).toBe(String(n));
    }
    expect(counts).toEqual([2, 2]);
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
  });
});

describe('upload archives shared by a run', () => {
  test('sandboxes of one backend uploading the same source pack it once; each gets the whole tree', async () => {
    await using fake = await startFakeDaytona();
    await using rig = daytonaRig(fake);
    const src = await fs.mkdtemp(path.join(tmp, 'shared-'));
    await makeTree(src);
    const sandboxes = await Promise.all(
      [1, 2, 3].map((i) => rig.backend.create(daytonaSpec({ jobSlug: `s${i}` }))),
    );
    // All three at once: the ones that arrive while the first packs wait for its archive.
    const stats = await Promise.all(
      sandboxes.map((sb) => sb.upload(src, '/work/repo', { exclude: ['**/*.tmp', 'node_modules'] })),
    );
    expect(rig.backend.uploadArchivePacks).toBe(1);
    for (const [i, sb] of sandboxes.entries()) {
      expect(stats[i]).toMatchObject({ files: 4, bytes: 6 + 4 + 19 + 9, requests: 2 });
      expect(await inspect(sb, '/work/repo')).toBe(EXPECTED_TREE);
    }
    // Another exclude list is another archive; the same one again is not.
    await sandboxes[0]?.upload(src, '/work/all');
    await sandboxes[1]?.upload(src, '/work/repo2', { exclude: ['node_modules', '**/*.tmp'] });
    expect(rig.backend.uploadArchivePacks).toBe(2);
    expect((await sandboxes[0]?.exec('ls /work/all/node_modules'))?.stdout).toBe('pkg\n');
    await Promise.all(sandboxes.map((sb) => sb.dispose()));
    expect(fake.live()).toEqual([]);
  });
});

describe('downloads: in memory or through a file, and when the sandbox may go', () => {
  /** SHA-256 of a file in the sandbox. */
  async function remoteSha(sandbox: DaytonaSandbox, p: string): Promise<string> {
    return (await sandbox.exec(`sha256sum ${p}`)).stdout.split(' ')[0] ?? '';
  }
  async function localSha(p: string): Promise<string> {
    return createHash('sha256')
      .update(await fs.readFile(p))
      .digest('hex');
  }
  /** Runs `fn` with TMPDIR at a fresh dir and returns what was created in it meanwhile (inotify). */
  async function tempEntries<T>(fn: () => Promise<T>): Promise<{ value: T; created: string[] }> {
    const dir = await fs.mkdtemp(path.join(tmp, 'tmpdir-'));
    const created: string[] = [];
    const watcher = watch(dir, (_event, name) => {
      if (name && !created.includes(name)) created.push(name);
    });
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    try {
      const value = await fn();
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { value, created };
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
      watcher.close();
    }
  }

  test(`an archive up to ${IN_MEMORY_ARCHIVE_BYTES} bytes is unpacked from memory, a larger one through a temporary file; both arrive whole`, async () => {
    await using fake = await startFakeDaytona();
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec());
    // Random bytes do not compress: the packed archive is as large as the file.
    const big = IN_MEMORY_ARCHIVE_BYTES + 512 * 1024;
    await sandbox.exec(
      `mkdir -p s && head -c ${big} /dev/urandom > s/big.bin && head -c 100000 /dev/urandom > s/small.bin`,
    );
    for (const [name, expectTemp] of [
      ['small.bin', false],
      ['big.bin', true],
    ] as const) {
      const dest = await fs.mkdtemp(path.join(tmp, 'dl-'));
      const { value, created } = await tempEntries(() => sandbox.download(`s/${name}`, dest));
      expect(value.written).toEqual([name]);
      expect(await localSha(path.join(dest, name))).toBe(await remoteSha(sandbox, `s/${name}`));
      expect(created.some((n) => n.startsWith('rho-flow-transfer-'))).toBe(expectTemp);
    }
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
  });

  test('without `wc` in the image the archive size is unknown: it goes through a file and arrives whole', async () => {
    await using fake = await startFakeDaytona({ hiddenCommands: ['wc'] });
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec());
    await sandbox.exec(`mkdir -p s && head -c 5000 /dev/urandom > s/a.bin`);
    const dest = await fs.mkdtemp(path.join(tmp, 'dl-'));
    const { value, created } = await tempEntries(() => sandbox.download('s/a.bin', dest));
    expect(value.written).toEqual(['a.bin']);
    expect(await localSha(path.join(dest, 'a.bin'))).toBe(await remoteSha(sandbox, 's/a.bin'));
    expect(created.some((n) => n.startsWith('rho-flow-transfer-'))).toBe(true);
    await sandbox.dispose();
  });

  test('onFetched comes once the archive has arrived: the sandbox can be deleted then and the files still land', async () => {
    await using fake = await startFakeDaytona();
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec());
    await sandbox.exec('mkdir -p out/sub && for i in $(seq 1 50); do echo "$i" > out/sub/f$i.txt; done');
    const dest = await fs.mkdtemp(path.join(tmp, 'dl-'));
    let fetchedAt = -1;
    let disposing: Promise<void> | undefined;
    const r = await sandbox.download('out', dest, {
      onFetched: () => {
        fetchedAt = fake.requests.length;
        // The last request so far is the archive's download, answered.
        expect(fake.requests.at(-1)?.endpoint).toBe('download');
        disposing = sandbox.dispose();
      },
    });
    expect(fetchedAt).toBeGreaterThan(0);
    await disposing;
    expect(fake.live()).toEqual([]);
    expect(r.files).toBe(50);
    expect(await fs.readFile(path.join(dest, 'out/sub/f50.txt'), 'utf8')).toBe('50\n');
    // Nothing reached the sandbox after the fetch but its deletion.
    expect(fake.requests.slice(fetchedAt).map((q) => q.endpoint)).toEqual(['delete']);
  });
});

describe('extractSafely', () => {
  test('never writes outside the destination; reports what it skipped', async () => {
    const work = await fs.mkdtemp(path.join(tmp, 'evil-'));
    await fs.mkdir(path.join(work, 'inner'));
    await fs.writeFile(path.join(work, 'outside.txt'), 'outside');
    await fs.writeFile(path.join(work, 'inner/ok.txt'), 'ok');
    await fs.symlink('/etc/passwd', path.join(work, 'inner/link'));
    const archive = path.join(work, 'evil.tar');
    execFileSync('tar', [
      '-cPf',
      archive,
      '-C',
      path.join(work, 'inner'),
      'ok.txt',
      'link',
      '../outside.txt',
      path.join(work, 'outside.txt'),
    ]);
    const dest = path.join(work, 'dest');
    await fs.mkdir(dest);
    const r = await extractSafely(archive, dest);
    expect(r.written).toEqual(['ok.txt']);
    expect(r.skipped.map((s) => s.reason)).toEqual([
      'symlink to /etc/passwd',
      'path outside the destination',
      'path outside the destination',
    ]);
    expect(await fs.readdir(dest)).toEqual(['ok.txt']);
  });
});
