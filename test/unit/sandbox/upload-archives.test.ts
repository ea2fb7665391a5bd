/**
 * `UploadArchives`: one pack per source, excludes and compression, shared by
 * concurrent callers; failures not kept; `close()` removes every archive.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UploadArchives, type PackedTree } from '../../../src/sandbox/upload-archives.js';

let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-archives-'));
  await fs.mkdir(path.join(tmp, 'src'));
  await fs.symlink(path.join(tmp, 'src'), path.join(tmp, 'link'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A pack function that counts its calls and writes `content` after `delayMs`. */
function packer(content = 'archive', delayMs = 20) {
  const calls: string[] = [];
  const pack = async (file: string): Promise<PackedTree> => {
    calls.push(file);
    await new Promise((r) => setTimeout(r, delayMs));
    await fs.writeFile(file, content);
    return { files: 1, bytes: content.length };
  };
  return { calls, pack };
}

describe('UploadArchives', () => {
  test('concurrent uploads of one source share one pack; the same tree by another path too', async () => {
    const archives = new UploadArchives();
    const { calls, pack } = packer();
    const key = { source: path.join(tmp, 'src'), exclude: ['a', 'b'], gzip: true };
    const got = await Promise.all([
      archives.get(key, pack),
      archives.get(key, pack),
      archives.get({ ...key, source: path.join(tmp, 'link'), exclude: ['b', 'a'] }, pack),
    ]);
    expect(calls).toHaveLength(1);
    expect(archives.packs).toBe(1);
    expect(new Set(got.map((a) => a.path)).size).toBe(1);
    expect(got[0]).toMatchObject({ files: 1, bytes: 7 });
    expect(got[0].path.endsWith('.tar.gz')).toBe(true);
    expect(await fs.readFile(got[0].path, 'utf8')).toBe('archive');
    await archives.close();
  });

  test('whether to gzip a source is decided once per run (by path or link), again for other excludes', async () => {
    const archives = new UploadArchives();
    let samples = 0;
    const decide = async (): Promise<boolean> => {
      samples++;
      await new Promise((r) => setTimeout(r, 10));
      return samples === 1;
    };
    const source = path.join(tmp, 'src');
    const answers = await Promise.all([
      archives.compress(source, ['a', 'b'], decide),
      archives.compress(source, ['b', 'a'], decide),
      archives.compress(path.join(tmp, 'link'), ['a', 'b'], decide),
    ]);
    expect(answers).toEqual([true, true, true]);
    expect(samples).toBe(1);
    expect(await archives.compress(source, ['a', 'b'], decide)).toBe(true);
    expect(await archives.compress(source, [], decide)).toBe(false);
    expect(samples).toBe(2);
    // A failed decision is not kept.
    await expect(archives.compress(source, ['z'], () => Promise.reject(new Error('no')))).rejects.toThrow(
      'no',
    );
    expect(await archives.compress(source, ['z'], decide)).toBe(false);
    await archives.close();
  });

  test('other excludes or compression pack again', async () => {
    const archives = new UploadArchives();
    const { calls, pack } = packer();
    const source = path.join(tmp, 'src');
    await archives.get({ source, exclude: [], gzip: true }, pack);
    await archives.get({ source, exclude: ['x'], gzip: true }, pack);
    const plain = await archives.get({ source, exclude: [], gzip: false }, pack);
    expect(calls).toHaveLength(3);
    expect(plain.path.endsWith('.tar')).toBe(true);
    await archives.close();
  });

  test('a failed pack is not kept: the next upload packs again', async () => {
    const archives = new UploadArchives();
    let fail = true;
    const { calls, pack } = packer();
    const flaky = async (file: string): Promise<PackedTree> => {
      if (fail) {
        fail = false;
        await fs.writeFile(file, 'half');
        throw new Error('disk full');
      }
      return pack(file);
    };
    const key = { source: path.join(tmp, 'src'), exclude: [], gzip: false };
    await expect(archives.get(key, flaky)).rejects.toThrow('disk full');
    const ok = await archives.get(key, flaky);
    expect(calls).toHaveLength(1);
    expect(await fs.readFile(ok.path, 'utf8')).toBe('archive');
    await archives.close();
  });

  test('close() removes every archive and refuses new packs', async () => {
    const archives = new UploadArchives();
    const { pack } = packer();
    const a = await archives.get({ source: path.join(tmp, 'src'), exclude: [], gzip: false }, pack);
    const dir = path.dirname(a.path);
    await archives.close();
    await expect(fs.stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(
      archives.get({ source: path.join(tmp, 'src'), exclude: [], gzip: false }, pack),
    ).rejects.toThrow(/closed/);
    await archives.close(); // idempotent
  });
});
