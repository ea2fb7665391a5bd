/**
 * Packing for upload: gzip only when a sample of the tree compresses, and a
 * plain tar otherwise (random or already-compressed data).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { packTree, worthCompressing } from '../../../src/sandbox/tree-archive.js';

let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-pack-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function tree(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const root = path.join(tmp, name);
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), content);
  }
  await fs.mkdir(root, { recursive: true });
  return root;
}

const source = (n: number): string =>
  Array.from({ length: n }, (_, i) => `export function f${i}(x: number): number { return x * ${i}; }\n`).join(
    '',
  );
const none = (): boolean => false;

describe('worthCompressing', () => {
  test('source code: yes; random bytes: no; nothing to sample: yes', async () => {
    expect(
      await worthCompressing(await tree('text', { 'src/a.ts': source(2000), 'b.md': source(10) }), none),
    ).toBe(true);
    expect(
      await worthCompressing(
        await tree('random', { 'a.bin': randomBytes(300_000), 'd/b.bin': randomBytes(900_000) }),
        none,
      ),
    ).toBe(false);
    expect(await worthCompressing(await tree('empty', {}), none)).toBe(true);
  });

  test('excluded paths are not sampled', async () => {
    const assets = Object.fromEntries(
      Array.from({ length: 20 }, (_, i) => [
        `assets/img-${String(i).padStart(2, '0')}.bin`,
        randomBytes(100_000),
      ]),
    );
    const root = await tree('mixed', { ...assets, 'src/a.ts': source(500) });
    expect(await worthCompressing(root, none)).toBe(false); // assets/ sorts first and fills the sample
    expect(await worthCompressing(root, (rel) => rel === 'assets')).toBe(true);
  });
});

describe('packTree', () => {
  test('writes gzip or a plain tar, and counts files and bytes', async () => {
    const root = await tree('pack', { 'a.txt': 'hello\n', 'd/b.txt': 'world\n' });
    const gz = path.join(tmp, 'out.tar.gz');
    const plain = path.join(tmp, 'out.tar');
    expect(await packTree(root, gz, true, none)).toEqual({ files: 2, bytes: 12 });
    expect(await packTree(root, plain, false, none)).toEqual({ files: 2, bytes: 12 });
    const magic = async (f: string): Promise<string> => (await fs.readFile(f)).subarray(0, 2).toString('hex');
    expect(await magic(gz)).toBe('1f8b');
    expect(await magic(plain)).not.toBe('1f8b');
    // ustar magic at offset 257 of the first header
    expect((await fs.readFile(plain)).subarray(257, 262).toString()).toBe('ustar');
  });
});
