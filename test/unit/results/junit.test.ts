import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type TestCase, type TestSuite, type TestSuites } from 'junit2json';
import { RunWriter } from '../../../src/results/run-writer.js';
import {
  escapeXmlAttr,
  escapeXmlText,
  readTail,
  renderTestCase,
  writeJUnitReport,
  xmlSafe,
} from '../../../src/results/junit.js';
import { SummaryBuilder, summaryJobOf } from '../../../src/results/summary.js';
import { Redactor } from '../../../src/util/redact.js';
import { makeResult, step } from './make-result.js';
import type { JobResult } from '../../../src/results/types.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const plan = { workflows: [], jobs: [] };

async function runWith(
  results: JobResult[],
  logs: Record<string, string> = {},
): Promise<{ xml: string; doc: TestSuites }> {
  const w = await RunWriter.open({
    outputDir: dir,
    runId: 'r',
    argv: [],
    version: '0',
    plan,
    options: {},
    fsync: false,
    redactor: new Redactor(['s3cr3t-value']),
    startedAt: '2025-01-01T00:00:00.000Z',
  });
  for (const r of results) {
    const files = await w.openJob(r.slug);
    if (logs[r.id] !== undefined) files.log(logs[r.id] ?? '');
    await files.close();
    await w.recordJob(r);
  }
  await w.finish({ exitCode: 1, endedAt: '2025-01-01T00:01:00.000Z' });
  const xml = await readFile(w.junitPath, 'utf8');
  const doc = (await parse(xml)) as TestSuites;
  return { xml, doc };
}

function cases(doc: TestSuites): TestCase[] {
  return (doc.testsuite ?? []).flatMap((s: TestSuite) => s.testcase ?? []);
}

describe('JUnit report', () => {
  it('parses with junit2json: one suite per workflow, one case per job, the right element per status', async () => {
    const results = [
      makeResult({ id: 'a[t=1]', index: 0, status: 'passed', durationMs: 1500 }),
      makeResult({ id: 'a[t=2]', index: 1, status: 'failed' }),
      makeResult({ id: 'a[t=3]', index: 2, status: 'timed-out' }),
      makeResult({ id: 'b[x=1]', index: 3, workflow: 'b', file: 'flows/b.yaml', status: 'error' }),
      makeResult({ id: 'b[x=2]', index: 4, workflow: 'b', file: 'flows/b.yaml', status: 'cancelled' }),
      makeResult({ id: 'b[x=3]', index: 5, workflow: 'b', file: 'flows/b.yaml', status: 'skipped' }),
    ].map((r) => (r.workflow === 'wf' ? { ...r, workflow: 'a', file: 'flows/a.yaml' } : r));
    const { xml, doc } = await runWith(results, {
      'a[t=2]': '── step test ──\nrunning tests\nFAIL: expected 1 got 2\n',
    });
    expect(doc).toMatchObject({ name: 'rho-flow', tests: 6, failures: 2, errors: 1, time: 60 });
    expect(xml).toMatch(/<testsuites [^>]*skipped="2"/);
    const suites = doc.testsuite ?? [];
    expect(suites.map((s) => [s.name, s.tests, s.failures, s.errors, s.skipped])).toEqual([
      ['a', 3, 2, 0, 0],
      ['b', 3, 0, 1, 2],
    ]);
    expect(xml).toContain('<testsuite name="a" file="flows/a.yaml"');
    const [passed, failed, timedOut, errored, cancelled, skipped] = cases(doc);
    expect(passed).toMatchObject({ classname: 'a', name: 'a[t=1]', time: 1.5 });
    expect(passed?.failure).toBeUndefined();
    expect(xml).toContain('<testcase classname="a" name="a[t=1]" file="flows/a.yaml" time="1.500"');
    expect(failed?.failure?.[0]).toMatchObject({ message: 'step test exited with code 1', type: 'failed' });
    expect(failed?.failure?.[0]?.inner).toContain('step test failed, exit code 1');
    expect(failed?.failure?.[0]?.inner).toContain('1 failed');
    expect(failed?.['system-out']?.[0]).toContain('FAIL: expected 1 got 2');
    expect(timedOut?.failure?.[0]).toMatchObject({
      type: 'timed-out',
      message: 'step build: step-timeout after 2000 ms',
    });
    expect(errored?.error?.[0]).toMatchObject({
      type: 'sandbox:create-failed',
      message: 'sandbox create failed: 503 Service Unavailable',
    });
    expect(cancelled?.skipped?.[0]?.message).toBe('cancelled: cancelled by SIGINT');
    expect(skipped?.skipped?.[0]?.message).toMatch(/^skipped/);
  });

  it('escapes markup, strips characters XML 1.0 cannot carry, and redacts', async () => {
    const nasty = 'a<b>&"c\' \x00\x07\x1b[31mred\x1b[0m \uD800 end';
    const r = makeResult({
      id: 'w[q=<&>"]',
      status: 'failed',
      error: { kind: 'step', message: `${nasty} s3cr3t-value` },
      steps: [step({ id: 't', status: 'failed', exitCode: 2, output: `${nasty}\n` })],
    });
    const { xml, doc } = await runWith([r], { [r.id]: `${nasty} s3cr3t-value\n` });
    expect(xml).not.toContain('s3cr3t-value');
    // eslint-disable-next-line no-control-regex
    expect(xml).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f]/);
    const [c] = cases(doc);
    expect(c?.name).toBe('w[q=<&>"]');
    expect(c?.failure?.[0]?.message).toBe('a<b>&"c\' red  end ***');
    // The lone surrogate became U+FFFD when the log was written as UTF-8: legal, so kept.
    expect(c?.['system-out']?.[0]).toMatch(/^a<b>&"c' red \uFFFD? end \*\*\*\n$/);
  });

  it('makes test names unique', async () => {
    const s = new SummaryBuilder().build({ runId: 'r', startedAt: 'x', endedAt: 'x', exitCode: 0 });
    const job = summaryJobOf(makeResult({ id: 'dup' }));
    const path = join(dir, 'junit.xml');
    await writeJUnitReport({ path, summary: { ...s, jobs: [job, job, { ...job, workflow: 'other' }] } });
    const doc = (await parse(await readFile(path, 'utf8'))) as TestSuites;
    expect(cases(doc).map((c) => c.name)).toEqual(['dup', 'dup (2)', 'dup (3)']);
  });

  it('bounds system-out to the tail of the log', async () => {
    const log = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'é'.repeat(10)}`).join('\n') + '\n';
    const { doc } = await runWith([makeResult({ id: 'a', status: 'failed' })], { a: log });
    const out = cases(doc)[0]?.['system-out']?.[0] ?? '';
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(64 * 1024 + 100);
    expect(out).toMatch(/^\[… \d+ earlier bytes omitted\]\nline \d+ /);
    expect(out).toContain('line 19999 ');
    expect(out).not.toContain('\uFFFD');
  });

  it('works without per-job files (summary entries only) and with a custom source', async () => {
    const b = new SummaryBuilder();
    b.add(makeResult({ id: 'x', status: 'error' }));
    const summary = b.build({
      runId: 'r',
      startedAt: '2025-01-01T00:00:00.000Z',
      endedAt: '2025-01-01T00:00:00.000Z',
      exitCode: 3,
    });
    const path = join(dir, 'j.xml');
    await writeJUnitReport({ path, summary, runDir: join(dir, 'nowhere') });
    let doc = (await parse(await readFile(path, 'utf8'))) as TestSuites;
    expect(cases(doc)[0]?.error?.[0]).toMatchObject({
      message: 'sandbox create failed: 503 Service Unavailable',
      type: 'error',
    });
    await writeJUnitReport({
      path,
      summary,
      source: () => Promise.resolve({ logTail: 'from elsewhere' }),
      name: 'merged',
    });
    doc = (await parse(await readFile(path, 'utf8'))) as TestSuites;
    expect(doc.name).toBe('merged');
    expect(cases(doc)[0]?.['system-out']?.[0]).toBe('from elsewhere');
  });
});

describe('XML helpers', () => {
  it('escape text and attributes', () => {
    expect(escapeXmlText('a & <b>')).toBe('a &amp; &lt;b&gt;');
    expect(escapeXmlAttr('"x"\n\'y\'\t')).toBe('&quot;x&quot;&#10;&apos;y&apos;&#9;');
    expect(xmlSafe('ok\u0001\uFFFE\u{1F600}')).toBe('ok\u{1F600}');
  });

  it('renders a self-closing passed case', () => {
    const job = summaryJobOf(makeResult({ id: 'p', durationMs: 12 }));
    expect(renderTestCase({ job }, 'p')).toBe(
      '    <testcase classname="wf" name="p" file="workflows/wf.yaml" time="0.012"/>\n',
    );
  });

  it('readTail starts at a character and a line', async () => {
    const path = join(dir, 'log.txt');
    expect(await readTail(path, 10)).toBeUndefined();
    await writeFile(path, 'ééééé\nabc\n');
    expect(await readTail(path, 100)).toBe('ééééé\nabc\n');
    expect(await readTail(path, 7)).toBe('[… 11 earlier bytes omitted]\nabc\n');
  });
});
