import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  latestRunId,
  readResultIndex,
  readResults,
  readRunRecord,
  readSummary,
  scanResults,
} from '../../../src/results/read-results.js';
import { UserError } from '../../../src/errors.js';
import { makeResult } from './make-result.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const line = (r: object): string => JSON.stringify(r) + '\n';

describe('reading results.jsonl', () => {
  it('ignores a torn last line and reports it', async () => {
    const a = makeResult({ id: 'a', status: 'passed' });
    const b = makeResult({ id: 'b', index: 1, status: 'failed' });
    const full = line(b);
    await writeFile(join(dir, 'results.jsonl'), line(a) + full.slice(0, full.length / 2));
    const { results, stats } = await readResults(dir);
    expect(results.map((r) => r.id)).toEqual(['a']);
    expect(stats).toEqual({ lines: 2, records: 1, torn: true, invalid: [] });
  });

  it('accepts a complete last record that only lost its newline', async () => {
    await writeFile(join(dir, 'results.jsonl'), JSON.stringify(makeResult({ id: 'a' })));
    const { results, stats } = await readResults(dir);
    expect(results).toHaveLength(1);
    expect(stats.torn).toBe(false);
  });

  it('skips and reports bad lines in the middle, tolerates CRLF and blank lines', async () => {
    const text = [
      line(makeResult({ id: 'a' })).replace('\n', '\r\n'),
      '{not json\n',
      '\n',
      line({ id: 'x', slug: 'x', status: 'exploded' }),
      line([1, 2]),
      line(makeResult({ id: 'b', index: 1 })),
    ].join('');
    await writeFile(join(dir, 'results.jsonl'), text);
    const { results, stats } = await readResults(dir);
    expect(results.map((r) => r.id)).toEqual(['a', 'b']);
    expect(stats.invalid.map((i) => i.line)).toEqual([2, 4, 5]);
    expect(stats.invalid[1]?.reason).toMatch(/bad status/);
    expect(stats.torn).toBe(false);
  });

  it('keeps the last record per job id, but a skip never hides an outcome', async () => {
    await writeFile(
      join(dir, 'results.jsonl'),
      [
        line(makeResult({ id: 'a', status: 'error', attempts: 3 })),
        line(makeResult({ id: 'b', index: 1, status: 'passed' })),
        line(makeResult({ id: 'a', status: 'passed', attempts: 1 })),
        line(makeResult({ id: 'b', index: 1, status: 'skipped' })),
      ].join(''),
    );
    const { results } = await readResults(dir);
    expect(results.map((r) => [r.id, r.status, r.attempts])).toEqual([
      ['a', 'passed', 1],
      ['b', 'passed', 1],
    ]);
    const { jobs } = await readResultIndex(dir);
    expect(jobs.get('a')).toEqual({
      id: 'a',
      slug: 'a',
      workflow: 'wf',
      file: 'workflows/wf.yaml',
      index: 0,
      status: 'passed',
      attempts: 1,
      workflowHash: 'hash-1',
    });
    expect(jobs.get('b')?.status).toBe('passed');
  });

  it('streams large files in chunks with records split across chunk boundaries', async () => {
    const big = 'q'.repeat(200_000);
    const text = Array.from({ length: 20 }, (_, i) =>
      line(makeResult({ id: `j${i}`, index: i, sandboxId: big })),
    ).join('');
    await writeFile(join(dir, 'results.jsonl'), text);
    const seen: number[] = [];
    const stats = await scanResults(join(dir, 'results.jsonl'), (_r, n) => seen.push(n));
    expect(stats.records).toBe(20);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('a missing file is an empty scan', async () => {
    const { results, stats } = await readResults(join(dir, 'nope'));
    expect(results).toEqual([]);
    expect(stats).toEqual({ lines: 0, records: 0, torn: false, invalid: [] });
  });
});

describe('run records', () => {
  async function run(id: string, startedAt: string, sessions?: string[]): Promise<void> {
    await mkdir(join(dir, id), { recursive: true });
    const record = {
      runId: id,
      startedAt,
      plan: { workflows: [], jobs: [] },
      sessions: (sessions ?? [startedAt]).map((s) => ({ startedAt: s, argv: [], resumed: false })),
    };
    await writeFile(join(dir, id, 'run.json'), JSON.stringify(record));
  }

  it('latestRunId picks the run whose latest session started last', async () => {
    expect(await latestRunId(join(dir, 'missing'))).toBeUndefined();
    expect(await latestRunId(dir)).toBeUndefined();
    await run('old', '2025-01-01T00:00:00.000Z', ['2025-01-01T00:00:00.000Z', '2025-03-01T00:00:00.000Z']);
    await run('new', '2025-02-01T00:00:00.000Z');
    await mkdir(join(dir, 'not-a-run'));
    await writeFile(join(dir, 'stray-file'), 'x');
    expect(await latestRunId(dir)).toBe('old');
    expect((await readRunRecord(join(dir, 'new'))).runId).toBe('new');
  });

  it('missing or corrupt run.json / summary.json are user errors', async () => {
    await expect(readRunRecord(join(dir, 'none'))).rejects.toThrow(UserError);
    await writeFile(join(dir, 'run.json'), '{oops');
    await expect(readRunRecord(dir)).rejects.toThrow(/not valid JSON/);
    await writeFile(join(dir, 'summary.json'), '{"runId": 1}');
    await expect(readSummary(dir)).rejects.toThrow(/not a rho-flow summary/);
    await writeFile(join(dir, 'summary.json'), '{"runId": "r", "jobs": []}');
    expect((await readSummary(dir)).runId).toBe('r');
  });
});
