import { describe, expect, it } from 'vitest';
import {
  chooseReporter,
  LINE_BATCH_MS,
  LineBatcher,
  resolveReporterMode,
  runDirOf,
} from '../../../src/reporters/reporter.js';
import { PlainReporter } from '../../../src/reporters/plain.js';
import { JsonReporter } from '../../../src/reporters/json.js';
import { ListrReporter } from '../../../src/reporters/listr.js';
import { Redactor } from '../../../src/util/redact.js';
import { Capture, scriptedEvents } from './script.js';

describe('choosing a reporter', () => {
  it('auto = tty on a TTY, plain in CI, on pipes and on dumb terminals', () => {
    const tty = new Capture(true);
    const pipe = new Capture(false);
    expect(resolveReporterMode('auto', { stdout: tty, env: {} })).toBe('tty');
    expect(resolveReporterMode('auto', { stdout: pipe, env: {} })).toBe('plain');
    expect(resolveReporterMode('auto', { stdout: tty, env: { CI: 'true' } })).toBe('plain');
    expect(resolveReporterMode('auto', { stdout: tty, env: { CI: 'false' } })).toBe('tty');
    expect(resolveReporterMode('auto', { stdout: tty, env: { TERM: 'dumb' } })).toBe('plain');
    expect(resolveReporterMode('json', { stdout: tty, env: {} })).toBe('json');
    expect(resolveReporterMode('tty', { stdout: pipe, env: { CI: '1' } })).toBe('tty');
  });

  it('auto = plain on a terminal that reports no size (listr2 would render nothing)', () => {
    const unsized = Object.assign(new Capture(true), { rows: 0, columns: 0 });
    expect(resolveReporterMode('auto', { stdout: unsized, env: {} })).toBe('plain');
    const sized = Object.assign(new Capture(true), { rows: 40, columns: 120 });
    expect(resolveReporterMode('auto', { stdout: sized, env: {} })).toBe('tty');
  });

  it('creates the matching reporter', async () => {
    const base = { stdout: new Capture(true), stderr: new Capture(true), env: {} };
    expect(await chooseReporter({ ...base, mode: 'plain' })).toBeInstanceOf(PlainReporter);
    expect(await chooseReporter({ ...base, mode: 'json' })).toBeInstanceOf(JsonReporter);
    const tty = await chooseReporter({ ...base, mode: 'auto' });
    expect(tty).toBeInstanceOf(ListrReporter);
    await tty.close();
  });

  it('derives the run dir when the event has none', () => {
    expect(runDirOf({ outputDir: 'out' }, 'r1')).toBe('out/r1');
    expect(runDirOf({ outputDir: 'out', runDir: '/abs/r1' }, 'r1')).toBe('/abs/r1');
  });
});

describe('LineBatcher (issue 7: one write per batch of lines, not per line)', () => {
  class Writes {
    chunks: string[] = [];
    write(chunk: string): boolean {
      this.chunks.push(chunk);
      return true;
    }
  }

  it(`writes pending lines together within ${LINE_BATCH_MS} ms, redacted`, async () => {
    const out = new Writes();
    const b = new LineBatcher(out, new Redactor(['s3cret']));
    b.line('one');
    b.line('two s3cret');
    expect(out.chunks).toEqual([]);
    const t0 = Date.now();
    while (out.chunks.length === 0 && Date.now() - t0 < 2_000) await new Promise((r) => setTimeout(r, 5));
    expect(out.chunks).toEqual(['one\ntwo ***\n']);
    expect(Date.now() - t0).toBeLessThan(LINE_BATCH_MS + 500);
  });

  it('writes at once when 16 KiB are pending, and on flush', () => {
    const out = new Writes();
    const b = new LineBatcher(out, undefined);
    const long = 'x'.repeat(1023);
    for (let i = 0; i < 16; i++) b.line(long);
    expect(out.chunks).toHaveLength(1);
    expect(out.chunks[0]).toBe(`${long}\n`.repeat(16));
    b.line('tail');
    b.flush();
    b.flush();
    expect(out.chunks).toEqual([`${long}\n`.repeat(16), 'tail\n']);
  });

  it('the plain reporter prints run-level lines at once and job lines in a batch', async () => {
    const out = new Writes();
    const r = new PlainReporter({ stdout: out, stderr: new Writes(), env: { CI: 'true' } });
    const events = scriptedEvents();
    const at = events.findIndex((e) => e.type === 'run');
    for (const e of events.slice(0, at)) r.onEvent(e); // a warning: waits for the batch
    expect(out.chunks).toEqual([]);
    r.onEvent(events[at]!); // the run started: everything so far goes out now
    expect(out.chunks).toHaveLength(1);
    expect(out.chunks[0]).toMatch(/warning.*\nrho-flow run run-42/s);
    for (const e of events.slice(at + 1).filter((x) => x.type !== 'run')) r.onEvent(e);
    expect(out.chunks).toHaveLength(1); // job and step lines wait for the batch
    await r.close();
    expect(out.chunks).toHaveLength(2);
  });
});
