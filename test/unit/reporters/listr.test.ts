import { describe, expect, it, vi } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { createListrReporter, MAX_LANES, WINDOW } from '../../../src/reporters/listr.js';
import { stripAnsi } from '../../../src/reporters/colors.js';
import type { RunEvent } from '../../../src/events.js';
import { Redactor } from '../../../src/util/redact.js';
import { SummaryBuilder } from '../../../src/results/summary.js';
import { makeResult } from '../results/make-result.js';
import { Capture, SECRET, scriptedEvents } from './script.js';

/** A TTY that keeps each write separately (log-update writes one frame per write). */
class TtyCapture extends Capture {
  chunks: string[] = [];
  constructor() {
    super(true);
  }
  override write(chunk: string | Uint8Array): boolean {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    this.chunks.push(s);
    return super.write(s);
  }
}

describe('listr2 reporter', () => {
  it('shows a header with counts, a line per running job, a window of finished ones, then the final summary', async () => {
    const stdout = new TtyCapture();
    const stderr = new TtyCapture();
    let t = 1_000_000;
    const reporter = await createListrReporter({
      stdout,
      stderr,
      env: {},
      color: false,
      redactor: new Redactor([SECRET]),
      now: () => t,
    });
    const events = scriptedEvents();
    const upTo = events.findIndex((e) => e.type === 'job' && e.reason === 'finished');
    for (const e of events.slice(0, upTo)) reporter.onEvent(e);
    t += 12_000;
    // Before the run started, the warning went straight to stderr.
    expect(stderr.text).toContain('⚠ bubblewrap (bwrap) not found');
    expect(reporter.snapshot()).toEqual({
      header: '▶ 0/3 done · 2 running · 12.0s',
      lanes: [
        'hello[greeting=hi] · read: /work/input/notes.txt 12.0s',
        'hello[greeting=hey] · step verify failed 12.0s',
      ].map((l) => l.replace('· read', '· step agent · read')),
    });
    // The display starts asynchronously (listr2 loads its renderer); wait for the frames.
    const waitFor = (texts: string[]): Promise<void> =>
      vi.waitFor(
        () => {
          const screen = stripAnsi(stdout.text);
          for (const text of texts) expect(screen).toContain(text);
        },
        { timeout: 10_000, interval: 50 },
      );
    await waitFor([
      '\n▶ 0/3 done · 2 running · 12.0s',
      '  ⠋ hello[greeting=hi] · step agent · read: /work/input/notes.txt 12.0s'.slice(4),
      'hello[greeting=hey] · step verify failed 12.0s',
    ]);

    for (const e of events.slice(upTo, -1)) reporter.onEvent(e);
    t += 3_000;
    await waitFor([
      '▶ 3/3 done · 1 failed · 1 error · 0 running · 15.0s\n  ✖ hello[greeting=hey] failed 2.5s step verify exited with code 1',
      '  ⚠ deploy: sandbox slow to start (key ***)',
    ]);

    reporter.onEvent(events.at(-1) as RunEvent);
    await reporter.close();
    await reporter.close();
    const all = stripAnsi(stdout.text);
    expect(all).not.toContain(SECRET);
    // After the display: the warnings raised during the run, then the summary.
    const tail = all.slice(all.lastIndexOf('⚠ deploy'));
    expect(tail).toContain('rho-flow run run-42 finished in 15.0s');
    expect(tail).toContain('junit     out/run-42/junit.xml');
  });

  it('keeps the frame bounded for a 5,000-job batch', async () => {
    const stdout = new TtyCapture();
    const reporter = await createListrReporter({
      stdout,
      stderr: new TtyCapture(),
      env: {},
      color: false,
    });
    const total = 5000;
    reporter.onEvent({
      type: 'run',
      reason: 'started',
      runId: 'big',
      outputDir: 'out',
      jobs: Array.from({ length: total }, (_, i) => ({
        id: `j${i}`,
        slug: `j${i}`,
        workflow: 'w',
        file: 'w.yaml',
      })),
      skipped: 0,
      concurrency: 64,
      startedAt: '2025-01-01T00:00:00.000Z',
    });
    await vi.waitFor(() => expect(stripAnsi(stdout.text)).toContain('0/5,000 done'), {
      timeout: 10_000,
      interval: 50,
    });
    const builder = new SummaryBuilder();
    let next = 0;
    const running: number[] = [];
    while (next < total || running.length > 0) {
      // Keep 40 jobs running (more than the lanes), finish the oldest ones.
      while (running.length < 40 && next < total) {
        reporter.onEvent({ type: 'job', reason: 'started', jobId: `j${next}`, attempt: 1 });
        running.push(next++);
      }
      for (let k = 0; k < 20 && running.length > 0; k++) {
        const i = running.shift()!;
        const r = makeResult({ id: `j${i}`, index: i, status: i % 9 === 0 ? 'failed' : 'passed' });
        builder.add(r);
        reporter.onEvent({ type: 'job', reason: 'finished', result: r });
      }
      if (next % 1000 === 0) {
        const snap = reporter.snapshot();
        expect(snap.lanes.length).toBe(MAX_LANES);
        // header + window + "N more running"
        expect(snap.header.split('\n').length).toBeLessThanOrEqual(1 + WINDOW + 1);
        await sleep(250);
      }
    }
    await sleep(250);
    const summary = builder.build({ runId: 'big', startedAt: 'x', endedAt: 'x', exitCode: 1 });
    reporter.onEvent({ type: 'run', reason: 'finished', summary, outputDir: 'out' });
    await reporter.close();
    const frames = stdout.chunks.map((c) => stripAnsi(c).split('\n').length);
    expect(frames.length).toBeGreaterThan(5);
    expect(Math.max(...frames)).toBeLessThanOrEqual(1 + WINDOW + 1 + MAX_LANES + 2);
    expect(stripAnsi(stdout.text)).toContain('more running');
    expect(stripAnsi(stdout.text)).toContain(
      `jobs      ${total.toLocaleString('en-US')} · ✔ 4,444 passed · ✖ 556 failed`,
    );
  });

  it('close() without a finished run ends the display with the counts', async () => {
    const stdout = new TtyCapture();
    const reporter = await createListrReporter({
      stdout,
      stderr: new TtyCapture(),
      env: {},
      color: false,
      now: () => 0,
    });
    reporter.onEvent({
      type: 'run',
      reason: 'started',
      runId: 'r',
      outputDir: 'out',
      jobs: [{ id: 'a', slug: 'a', workflow: 'w', file: 'w.yaml' }],
      skipped: 0,
      concurrency: 1,
      startedAt: 'x',
    });
    reporter.onEvent({ type: 'job', reason: 'started', jobId: 'a', attempt: 1 });
    reporter.onEvent({ type: 'run', reason: 'interrupted', signal: 'SIGTERM', forced: false });
    await vi.waitFor(() => expect(stripAnsi(stdout.text)).toContain('⏹ SIGTERM: cancelling running jobs'), {
      timeout: 10_000,
      interval: 50,
    });
    await reporter.close();
    expect(stripAnsi(stdout.text).trimEnd().split('\n').at(-1)).toBe(
      '▶ 0/1 done · 1 running · 0.0s · ⏹ SIGTERM: cancelling running jobs (send it again to force)',
    );
  });

  it('does not register signal listeners', async () => {
    const before = process.listenerCount('SIGINT');
    const reporter = await createListrReporter({
      stdout: new TtyCapture(),
      stderr: new TtyCapture(),
      env: {},
      color: false,
    });
    reporter.onEvent({
      type: 'run',
      reason: 'started',
      runId: 'r',
      outputDir: 'o',
      jobs: [],
      skipped: 0,
      concurrency: 1,
      startedAt: 'x',
    });
    await sleep(50);
    expect(process.listenerCount('SIGINT')).toBe(before);
    await reporter.close();
  });
});
