import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isTempName,
  openAtomic,
  tempPathFor,
  writeFileAtomic,
  writeJsonAtomic,
} from '../../../src/results/atomic.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('atomic writes', () => {
  it('temp names live next to the target, never equal it, and are unique', () => {
    const target = join(dir, 'result.json');
    const a = tempPathFor(target);
    const b = tempPathFor(target);
    expect(a).not.toBe(target);
    expect(a).not.toBe(b);
    expect(a.startsWith(join(dir, '.result.json.'))).toBe(true);
    expect(isTempName(a.slice(dir.length + 1))).toBe(true);
    expect(isTempName('result.json')).toBe(false);
  });

  // fsync: false with a small file takes the synchronous path (result.json of every job).
  for (const fsync of [true, false]) {
    it(`writes the content and leaves no temp file behind (fsync ${fsync})`, async () => {
      const target = join(dir, 'summary.json');
      await writeFile(target, 'old');
      await writeJsonAtomic(target, { a: 1 }, { fsync });
      expect(JSON.parse(await readFile(target, 'utf8'))).toEqual({ a: 1 });
      expect(await readdir(dir)).toEqual(['summary.json']);
      const big = 'é'.repeat(300_000); // past the synchronous path's size limit
      await writeFileAtomic(target, big, { fsync });
      expect(await readFile(target, 'utf8')).toBe(big);
      expect(await readdir(dir)).toEqual(['summary.json']);
    });
  }

  it('a crash between the temp write and the rename leaves the old file intact', async () => {
    const target = join(dir, 'result.json');
    await writeFile(target, 'old');
    const file = await openAtomic(target);
    await file.write('new content, ');
    await file.write('not yet committed');
    // The "crash": the process stops here. The target still holds the old content…
    expect(await readFile(target, 'utf8')).toBe('old');
    // …and the new content sits only under a name that is not the target's.
    expect(await readFile(file.tempPath, 'utf8')).toBe('new content, not yet committed');
    expect(file.tempPath).not.toBe(target);
    await file.abort();
    expect(await readdir(dir)).toEqual(['result.json']);
    expect(await readFile(target, 'utf8')).toBe('old');
  });

  it('commit replaces the file in one step', async () => {
    const target = join(dir, 'junit.xml');
    await writeFile(target, 'old');
    const file = await openAtomic(target);
    for (let i = 0; i < 100; i++) void file.write(`${i},`);
    await file.commit();
    await file.commit(); // idempotent
    expect(await readFile(target, 'utf8')).toBe(Array.from({ length: 100 }, (_, i) => `${i},`).join(''));
    expect(await readdir(dir)).toEqual(['junit.xml']);
    await expect(file.write('late')).rejects.toThrow(/committed/);
  });

  for (const fsync of [true, false]) {
    it(`a failed rename removes the temp file and keeps what was there (fsync ${fsync})`, async () => {
      const target = join(dir, 'taken');
      await mkdir(target);
      await writeFile(join(target, 'inside'), 'x');
      await expect(writeFileAtomic(target, 'data', { fsync })).rejects.toThrow();
      expect((await readdir(dir)).sort()).toEqual(['taken']);
      expect(await readFile(join(target, 'inside'), 'utf8')).toBe('x');
    });
  }
});
