import { describe, expect, it } from 'vitest';
import { PlainReporter, outputTail } from '../../../src/reporters/plain.js';
import { Redactor } from '../../../src/util/redact.js';
import { expectGolden } from '../results/golden.js';
import { Capture, SECRET, scriptedEvents } from './script.js';

async function render(env: Record<string, string>, color?: boolean): Promise<{ out: string; err: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const r = new PlainReporter({
    stdout,
    stderr,
    env,
    redactor: new Redactor([SECRET]),
    ...(color !== undefined ? { color } : {}),
  });
  for (const e of scriptedEvents()) r.onEvent(e);
  await r.close();
  return { out: stdout.text, err: stderr.text };
}

describe('plain reporter', () => {
  it('prints one stable line per meaningful event (golden)', async () => {
    const { out, err } = await render({ CI: 'true' });
    expect(err).toBe('');
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain('\x1b[');
    expect(out).not.toMatch(/::group::/);
    await expectGolden('plain-reporter.txt', out);
  });

  it('groups each finished job under GitHub Actions and keeps live lines short (golden)', async () => {
    const { out } = await render({ CI: 'true', GITHUB_ACTIONS: 'true' });
    expect(out).not.toContain(SECRET);
    const groups = out.match(/^::group::.*$/gm) ?? [];
    expect(groups).toHaveLength(3);
    expect(out.match(/^::endgroup::$/gm)).toHaveLength(3);
    // Step lines of a job only appear inside its group, never interleaved live.
    const beforeFirstGroup = out.slice(0, out.indexOf('::group::'));
    expect(beforeFirstGroup).not.toContain('step setup');
    await expectGolden('plain-reporter-github.txt', out);
  });

  it('colours only when enabled', async () => {
    expect((await render({ FORCE_COLOR: '1' })).out).toContain('\x1b[32m');
    expect((await render({ FORCE_COLOR: '1' }, false)).out).not.toContain('\x1b[');
    expect((await render({ NO_COLOR: '1' }, true)).out).toContain('\x1b[');
  });

  it('ignores events after close', async () => {
    const stdout = new Capture();
    const r = new PlainReporter({ stdout, stderr: new Capture(), env: {} });
    await r.close();
    r.onEvent({ type: 'warning', message: 'late' });
    expect(stdout.text).toBe('');
  });

  it('outputTail keeps the last non-empty lines, capped', () => {
    expect(outputTail('a\r\nb\n\n\n', 5)).toEqual(['a', 'b']);
    expect(outputTail(Array.from({ length: 30 }, (_, i) => String(i)).join('\n'), 3)).toEqual([
      '27',
      '28',
      '29',
    ]);
    expect(outputTail('x'.repeat(1000))[0]).toHaveLength(300);
  });
});
