import { describe, expect, it } from 'vitest';
import { JsonReporter } from '../../../src/reporters/json.js';
import type { RunEvent } from '../../../src/events.js';
import { Redactor } from '../../../src/util/redact.js';
import { expectGolden } from '../results/golden.js';
import { Capture, SECRET, scriptedEvents } from './script.js';

describe('json reporter', () => {
  it('writes one JSON event per line with a time, nothing else on stdout (golden)', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    let t = Date.parse('2025-01-01T00:00:00.000Z');
    const r = new JsonReporter({
      stdout,
      stderr,
      env: {},
      redactor: new Redactor([SECRET]),
      now: () => (t += 250),
    });
    const events = scriptedEvents();
    for (const e of events) r.onEvent(e);
    await r.close();
    const lines = stdout.text.trimEnd().split('\n');
    expect(lines).toHaveLength(events.length);
    const parsed = lines.map((l) => JSON.parse(l) as RunEvent & { time: string });
    expect(parsed.map((p) => `${p.type}:${'reason' in p ? p.reason : ''}`)).toEqual(
      events.map((e) => `${e.type}:${'reason' in e ? e.reason : ''}`),
    );
    expect(parsed[0]?.time).toBe('2025-01-01T00:00:00.250Z');
    expect(stdout.text).not.toContain(SECRET);
    expect(stdout.text).toContain('token=***');
    await expectGolden('json-reporter.jsonl', stdout.text);
    // The human summary goes to stderr.
    expect(stderr.text).toContain('rho-flow run run-42 finished in 15.0s');
    expect(stderr.text).toContain('results   out/run-42');
  });
});
