import { describe, expect, it } from 'vitest';
import { chooseReporter, resolveReporterMode, runDirOf } from '../../../src/reporters/reporter.js';
import { PlainReporter } from '../../../src/reporters/plain.js';
import { JsonReporter } from '../../../src/reporters/json.js';
import { ListrReporter } from '../../../src/reporters/listr.js';
import { Capture } from './script.js';

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
