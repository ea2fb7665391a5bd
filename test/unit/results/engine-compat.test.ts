/**
 * The writer is what the engine's sinks are made of: `RunWriter` is a
 * `ResultSink` and `JobFiles` a `JobSinks` (checked by tsc through these
 * assignments, and at run time by using them only through those interfaces).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobSinks, ResultSink } from '../../../src/engine/engine-options.js';
import { RunWriter } from '../../../src/results/run-writer.js';
import { readResults } from '../../../src/results/read-results.js';
import { makeResult } from './make-result.js';

let out: string;
beforeEach(async () => {
  out = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await rm(out, { recursive: true, force: true });
});

describe('engine sinks', () => {
  it('RunWriter is a ResultSink and its job files are JobSinks', async () => {
    const writer = await RunWriter.open({
      outputDir: out,
      runId: 'r',
      argv: [],
      version: '0',
      plan: { workflows: [], jobs: [] },
      options: {},
    });
    const results: ResultSink = writer;
    const sinks: JobSinks = await writer.openJob('job-a');
    sinks.log('═══ job-a · attempt 1 · local ═══\n');
    sinks.transcript({ type: 'job-start', job: 'job-a' });
    await sinks.close();
    expect(sinks.artifactsDir).toBe(join(writer.runDir, 'jobs', 'job-a', 'artifacts'));
    await results.recordJob(makeResult({ id: 'job-a', slug: 'job-a' }));
    await writer.finish({ exitCode: 0 });
    expect(await readFile(join(writer.runDir, 'jobs', 'job-a', 'log.txt'), 'utf8')).toContain('attempt 1');
    expect((await readResults(writer.runDir)).results).toHaveLength(1);
  });
});
