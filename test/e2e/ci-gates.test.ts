/**
 * Issue 6 acceptance, gates: exit codes of the real CLI follow product.md §4
 * in each combination — all passed 0; a failure 1; an infrastructure error
 * after retries 3 (even with failures); `--min-pass-rate` met 0, missed 1;
 * interrupted 130/143 (over everything else). Infrastructure errors (a model
 * API outage on the fake server) are retried per `--retries` in a fresh
 * sandbox and then pass; failures are never retried. The JUnit file parses
 * with junit2json: one test case per job, with failure / error / skipped.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { RunRig, waitFor } from '../helpers/run-rig.js';
import {
  COUNTED_PROMPT,
  junitCases,
  lastResults,
  readSummaryFile,
  startCountingModel,
} from './ci-helpers.js';

const OK = 'name: ok\nstrategy:\n  matrix:\n    n: [1, 2, 3]\nsteps:\n  - run: echo fine\n';
const FAIL = 'name: fail\nsteps:\n  - id: check\n    run: exit 1\n';
/** A prompt step: the fake decides per attempt whether the model API is down. */
const prompted = (name: string): string =>
  `name: ${name}\nsteps:\n  - id: ask\n    prompt: "${COUNTED_PROMPT}"\n    max-turns: 2\n`;

async function setup(rig: RunRig): Promise<void> {
  await rig.write('ok.yaml', OK);
  await rig.write('fail.yaml', FAIL);
  await rig.write('flaky.yaml', prompted('flaky'));
  await rig.write('down.yaml', prompted('down'));
}

describe('exit codes and retries through the CLI', () => {
  it('infra errors are retried and pass (0); a failure is not retried (1); a lasting outage is 3 even with failures', async () => {
    await using rig = await RunRig.create();
    await using model = await startCountingModel();
    await setup(rig);
    // flaky: its first attempt meets an outage; down: every attempt does.
    model.failWhen((id, attempt) => id === 'down' || (id === 'flaky' && attempt === 1));
    const run = (files: string[], extra: string[], id: string): ReturnType<RunRig['run']> =>
      rig.run(
        ['run', ...files, '-o', 'out', '--run-id', id, '--reporter', 'plain', ...extra],
        model.env,
        60_000,
      );

    const [passed, failed, infra] = await Promise.all([
      run(['ok.yaml', 'flaky.yaml'], ['--retries', '1'], 'passed'),
      run(['ok.yaml', 'fail.yaml'], ['--retries', '2'], 'failed'),
      run(['ok.yaml', 'fail.yaml', 'down.yaml'], ['--retries', '1'], 'infra'),
    ]);

    expect(passed.code, passed.stderr).toBe(0);
    const p = await lastResults(path.join(rig.out, 'passed'));
    expect(p.get('flaky')).toMatchObject({ status: 'passed', attempts: 2 });
    expect(passed.stdout).toMatch(/↻ flaky retrying: attempt 2 in \S+ after: .*injected outage/);
    // Two job attempts, each in its own sandbox: one request each.
    expect(model.count('flaky')).toBe(2);

    expect(failed.code, failed.stderr).toBe(1);
    const f = await lastResults(path.join(rig.out, 'failed'));
    expect(f.get('fail')).toMatchObject({ status: 'failed', attempts: 1 });
    expect(failed.stdout).not.toContain('retrying');

    expect(infra.code, infra.stderr).toBe(3);
    const i = await lastResults(path.join(rig.out, 'infra'));
    expect(i.get('down')).toMatchObject({ status: 'error', attempts: 2 });
    expect((i.get('down')?.error as { kind: string }).kind).toBe('model');
    expect(i.get('fail')).toMatchObject({ status: 'failed', attempts: 1 });
    expect(model.count('down')).toBe(2);
    const summary = await readSummaryFile(path.join(rig.out, 'infra'));
    expect(summary.counts).toMatchObject({ passed: 3, failed: 1, error: 1 });
    // Infrastructure errors are not verdicts on the agent: 3 of 4.
    expect(summary.passRate).toBe(0.75);
    expect(summary.exitCode).toBe(3);

    // JUnit: one case per job, failure for the failed one, error for the infra one.
    const { doc, cases } = await junitCases(path.join(rig.out, 'infra', 'junit.xml'));
    expect(cases.map((c) => [c.suite, c.name, c.outcome])).toEqual([
      ['ok', 'ok[n=1]', 'passed'],
      ['ok', 'ok[n=2]', 'passed'],
      ['ok', 'ok[n=3]', 'passed'],
      ['fail', 'fail', 'failure'],
      ['down', 'down', 'error'],
    ]);
    expect(doc).toMatchObject({ tests: 5, failures: 1, errors: 1 });
  }, 90_000);

  it('--min-pass-rate: met with failures 0, missed 1, never hides an infra error (3); --max-failures cancels the rest', async () => {
    await using rig = await RunRig.create();
    await using model = await startCountingModel();
    await setup(rig);
    model.failWhen((id) => id === 'down');
    const run = (files: string[], extra: string[], id: string): ReturnType<RunRig['run']> =>
      rig.run(
        ['run', ...files, '-o', 'out', '--run-id', id, '--reporter', 'plain', '--retries', '0', ...extra],
        model.env,
        60_000,
      );
    // 3 passed + 1 failed: pass rate 0.75.
    const [met, missed, infra, stopped] = await Promise.all([
      run(['ok.yaml', 'fail.yaml'], ['--min-pass-rate', '0.75'], 'met'),
      run(['ok.yaml', 'fail.yaml'], ['--min-pass-rate', '0.8'], 'missed'),
      run(['ok.yaml', 'fail.yaml', 'down.yaml'], ['--min-pass-rate', '0.5'], 'infra'),
      run(['fail.yaml', 'ok.yaml'], ['--max-failures', '1', '-j', '1'], 'stopped'),
    ]);
    expect(met.code, met.stderr).toBe(0);
    expect((await readSummaryFile(path.join(rig.out, 'met'))).exitCode).toBe(0);
    expect(missed.code).toBe(1);
    expect(infra.code).toBe(3);

    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toContain('--max-failures 1 reached: no new jobs will start');
    const s = await readSummaryFile(path.join(rig.out, 'stopped'));
    expect(s.counts).toMatchObject({ failed: 1, cancelled: 3, passed: 0 });
    const { cases } = await junitCases(path.join(rig.out, 'stopped', 'junit.xml'));
    expect(cases.map((c) => c.outcome)).toEqual(['failure', 'skipped', 'skipped', 'skipped']);
  }, 90_000);

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`interrupted by ${signal} after a failure and an infra error: ${code} wins`, async () => {
      await using rig = await RunRig.create();
      await using model = await startCountingModel();
      await setup(rig);
      model.failWhen((id) => id === 'down');
      await rig.write('hang.yaml', `name: hang\nsteps:\n  - run: ${rig.sleep(600)}\n`);
      const running = rig.start(
        [
          'run',
          'fail.yaml',
          'down.yaml',
          'hang.yaml',
          '-o',
          'out',
          '-j',
          '3',
          '--retries',
          '0',
          '--reporter',
          'plain',
        ],
        model.env,
      );
      await waitFor(
        async () =>
          (await lastResults(await rig.runDir().catch(() => rig.out))).size >= 2 &&
          rig.sleepers().length === 1,
        30_000,
        'fail and down recorded, hang sleeping',
      );
      running.kill(signal);
      const r = await running.result(30_000);
      expect(r.code, r.stderr + r.stdout).toBe(code);
      const summary = await readSummaryFile(await rig.runDir());
      expect(summary.counts).toMatchObject({ failed: 1, error: 1, cancelled: 1 });
      expect(summary.interrupted).toBe(signal);
      expect(summary.exitCode).toBe(code);
      expect(rig.processes()).toEqual([]);
    }, 60_000);
  }

  it('bad model retry tuning is a usage error before anything starts (exit 2)', async () => {
    await using rig = await RunRig.create();
    await rig.write('flaky.yaml', prompted('flaky'));
    const r = await rig.run(['run', 'flaky.yaml', '-o', 'out'], {
      OPENAI_API_KEY: 'test',
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
      RHO_FLOW_MODEL_RETRIES: 'many',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("RHO_FLOW_MODEL_RETRIES must be a whole number from 0 to 100, got 'many'");
    expect(rig.leftovers()).toEqual([]);
  });
});
