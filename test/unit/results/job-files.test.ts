import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FLUSH_BYTES, FLUSH_INTERVAL_MS, JobFiles } from '../../../src/results/job-files.js';
import { Redactor } from '../../../src/util/redact.js';

const SECRET = 'hunter2-very-secret';
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('JobFiles', () => {
  it('creates the job folder (artifacts/ only when used) and appends the log as it is written', async () => {
    const files = await JobFiles.open({ dir: join(dir, 'jobs', 'a') });
    expect((await stat(files.dir)).isDirectory()).toBe(true);
    expect(existsSync(files.artifactsDir)).toBe(false);
    files.log('── step build ──\n');
    files.log('compiling\n');
    await files.flush();
    // Written before close: a crash now keeps it.
    expect(await readFile(files.logPath, 'utf8')).toBe('── step build ──\ncompiling\n');
    await files.close();
    await files.close();
  });

  it('masks a secret even when it arrives split across output chunks', async () => {
    const files = await JobFiles.open({ dir, redactor: new Redactor([SECRET]) });
    files.log('token=hunter2-ve');
    files.log('ry-secret done\nnext line ');
    files.log(SECRET.slice(0, 5));
    await files.close(); // the held partial line is written on close, redacted
    const log = await readFile(join(dir, 'log.txt'), 'utf8');
    expect(log).toBe('token=*** done\nnext line hunte');
    expect(log).not.toContain(SECRET);
  });

  it('a very long line without newline is still written (keeping a tail back)', async () => {
    const files = await JobFiles.open({ dir });
    files.log('y'.repeat(40_000));
    expect(files.debugState().partialChars).toBeLessThanOrEqual(512);
    await files.flush();
    expect((await readFile(join(dir, 'log.txt'), 'utf8')).length).toBe(40_000);
    await files.close();
  });

  it('writes transcript events as JSON lines with a time, redacted inside values', async () => {
    const files = await JobFiles.open({ dir, redactor: new Redactor([SECRET]) });
    files.transcript({ type: 'tool-call', tool: 'bash', args: { command: `echo "${SECRET}"` } });
    files.transcript({ type: 'step-end', step: 'x', time: '2025-01-01T00:00:00.000Z' });
    const cyclic: Record<string, unknown> = { type: 'bad' };
    cyclic.self = cyclic;
    files.transcript(cyclic);
    await files.close();
    const text = await readFile(join(dir, 'transcript.jsonl'), 'utf8');
    expect(text).not.toContain(SECRET);
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ type: 'tool-call', args: { command: 'echo "***"' } });
    expect(typeof lines[0]?.time).toBe('string');
    expect(lines[1]?.time).toBe('2025-01-01T00:00:00.000Z');
    expect(lines[2]?.type).toBe('transcript-error');
  });

  it('appends across attempts instead of truncating', async () => {
    const first = await JobFiles.open({ dir });
    first.log('attempt 1\n');
    await first.close();
    const second = await JobFiles.open({ dir });
    second.log('attempt 2\n');
    await second.close();
    expect(await readFile(join(dir, 'log.txt'), 'utf8')).toBe('attempt 1\nattempt 2\n');
  });

  it('caps the log size with one marker', async () => {
    const files = await JobFiles.open({ dir, maxLogBytes: 100 });
    for (let i = 0; i < 50; i++) files.log('0123456789\n');
    await files.close();
    const log = await readFile(join(dir, 'log.txt'), 'utf8');
    expect(log.startsWith('0123456789\n'.repeat(9))).toBe(true);
    expect(log.match(/truncated at 100 bytes/g)).toHaveLength(1);
    expect(log.length).toBeLessThan(200);
  });

  it('ignores writes after close', async () => {
    const files = await JobFiles.open({ dir });
    await files.close();
    files.log('late\n');
    files.transcript({ type: 'late' });
    expect(await readFile(join(dir, 'log.txt'), 'utf8')).toBe('');
  });

  describe('buffering (issue 7: a short job costs a few synchronous syscalls)', () => {
    const size = (p: string): number => (existsSync(p) ? readFileSync(p).length : -1);

    it('keeps short output in memory until close, then both files exist with it', async () => {
      const files = await JobFiles.open({ dir });
      files.log('one line\n');
      files.transcript({ type: 'step-start', time: 't' });
      expect(size(files.logPath)).toBe(-1);
      await files.close();
      expect(await readFile(files.logPath, 'utf8')).toBe('one line\n');
      expect(await readFile(files.transcriptPath, 'utf8')).toBe('{"type":"step-start","time":"t"}\n');
    });

    it('creates both files at close even when nothing was written', async () => {
      const files = await JobFiles.open({ dir });
      await files.close();
      expect(size(files.logPath)).toBe(0);
      expect(size(files.transcriptPath)).toBe(0);
    });

    it(`writes pending output within ${FLUSH_INTERVAL_MS} ms without a flush (what a crash can lose)`, async () => {
      const files = await JobFiles.open({ dir });
      files.log('progress 1\n');
      const t0 = Date.now();
      while (size(files.logPath) <= 0 && Date.now() - t0 < FLUSH_INTERVAL_MS * 3) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const waited = Date.now() - t0;
      expect(await readFile(files.logPath, 'utf8')).toBe('progress 1\n');
      expect(waited).toBeGreaterThanOrEqual(FLUSH_INTERVAL_MS - 50);
      expect(waited).toBeLessThan(FLUSH_INTERVAL_MS * 3);
      await files.close();
    });

    it(`writes at once (asynchronously, in order) when ${FLUSH_BYTES} bytes are pending`, async () => {
      const files = await JobFiles.open({ dir });
      const big = 'x'.repeat(FLUSH_BYTES - 1) + '\n';
      files.log(big);
      const t0 = Date.now();
      while (size(files.logPath) < big.length && Date.now() - t0 < FLUSH_INTERVAL_MS) {
        await new Promise((r) => setImmediate(r));
      }
      expect(size(files.logPath)).toBe(big.length);
      expect(Date.now() - t0).toBeLessThan(FLUSH_INTERVAL_MS / 2);
      files.log('tail\n');
      files.log(big);
      files.log('end\n');
      await files.close();
      expect(await readFile(files.logPath, 'utf8')).toBe(big + 'tail\n' + big + 'end\n');
    });

    it('reports a write failure from close', async () => {
      const files = await JobFiles.open({ dir: join(dir, 'job') });
      files.log('x\n');
      // The log's path becomes a directory: opening it for appending fails (EISDIR), even as root.
      mkdirSync(files.logPath);
      await expect(files.close()).rejects.toThrow(/EISDIR/);
    });
  });
});
