import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobFiles } from '../../../src/results/job-files.js';
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
});
