/**
 * `runJobAttempt`'s teardown order around artifacts, with a scripted sandbox:
 * once the last artifact has been fetched the sandbox is deleted while the
 * files are still being written locally — unless it may have to be kept.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runJobAttempt } from '../../../src/engine/job-runner.js';
import { SandboxTracker } from '../../../src/engine/sandbox-tracker.js';
import type { EngineOptions } from '../../../src/engine/engine-options.js';
import type {
  DownloadOptions,
  DownloadResult,
  Sandbox,
  SandboxBackend,
} from '../../../src/sandbox/sandbox.js';
import { SandboxError } from '../../../src/errors.js';
import { Redactor } from '../../../src/util/redact.js';
import { buildPlan } from '../../../src/workflow/plan.js';
import type { ArtifactSpec } from '../../../src/workflow/types.js';
import type { RunEvent } from '../../../src/events.js';
import { makeWorkflow, tpl } from '../../helpers/make-workflow.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** What happened, in order: `fetched <path>`, `written <path>`, `dispose`. */
type Log = string[];

/**
 * A sandbox whose downloads report `onFetched`, then take 20 ms to "write"
 * their files; paths not in `present` are not-found.
 */
function scriptedBackend(log: Log, present: readonly string[]): SandboxBackend {
  const sandbox = {
    backend: 'local',
    id: 'sb-1',
    workingDir: '/work',
    async download(
      remote: string,
      _localDir: string,
      options: DownloadOptions = {},
    ): Promise<DownloadResult> {
      if (!present.includes(remote)) throw new SandboxError('not-found', `nothing at ${remote}`);
      log.push(`fetched ${remote}`);
      options.onFetched?.();
      await new Promise((resolve) => setTimeout(resolve, 20));
      log.push(`written ${remote}`);
      return { files: 1, bytes: 1, written: ['x'], skipped: [], requests: 2, durationMs: 1 };
    },
    dispose(): Promise<void> {
      log.push('dispose');
      return Promise.resolve();
    },
  } as unknown as Sandbox;
  return {
    name: 'local',
    preflight: () => Promise.resolve(),
    create: () => Promise.resolve(sandbox),
    cleanup: () => Promise.resolve({ removed: [], kept: [], failed: [] }),
    close: () => Promise.resolve(),
  } as unknown as SandboxBackend;
}

function artifact(p: string, ifNoFilesFound: ArtifactSpec['ifNoFilesFound'] = 'warn'): ArtifactSpec {
  return { path: tpl(p), to: '', when: 'always', ifNoFilesFound, loc: { file: 'wf.yaml', line: 1, col: 1 } };
}

async function runOne(
  artifacts: ArtifactSpec[],
  present: readonly string[],
  keepSandboxes: EngineOptions['keepSandboxes'],
): Promise<{ log: Log; status: string; events: RunEvent[] }> {
  const wf = makeWorkflow('wf', { artifacts });
  const job = buildPlan([wf]).plan?.jobs[0];
  if (!job) throw new Error('no job');
  const log: Log = [];
  const events: RunEvent[] = [];
  const backend = scriptedBackend(log, present);
  const engine = {
    jobs: [job],
    runId: 'r1',
    concurrency: 1,
    backends: new Map([['local', backend]]),
    retries: 0,
    retryDelayMs: () => 0,
    gracePeriodMs: 1000,
    keepSandboxes,
    secrets: {},
    redactor: new Redactor([]),
    models: { forStep: () => ({}) },
    signal: new AbortController().signal,
    onEvent: (e: RunEvent) => events.push(e),
    results: { recordJob: async () => {} },
    openJobSinks: () =>
      Promise.resolve({
        log: () => {},
        transcript: () => {},
        artifactsDir: path.join(dir, 'artifacts'),
        close: () => Promise.resolve(),
      }),
  } as unknown as EngineOptions;
  const result = await runJobAttempt(
    job,
    1,
    engine,
    new SandboxTracker(() => {}),
    new AbortController().signal,
  );
  return { log, status: result.status, events };
}

describe('runJobAttempt: teardown and artifacts', () => {
  it('deletes the sandbox once the last artifact is fetched, before its files are written', async () => {
    const { log, status } = await runOne([artifact('a'), artifact('b')], ['a', 'b'], 'never');
    expect(status).toBe('passed');
    expect(log).toEqual(['fetched a', 'written a', 'fetched b', 'dispose', 'written b']);
  });

  it('deletes it after collection when the last artifact is missing', async () => {
    const { log, status } = await runOne([artifact('a'), artifact('gone')], ['a'], 'never');
    expect(status).toBe('passed');
    expect(log).toEqual(['fetched a', 'written a', 'dispose']);
  });

  it('with --keep-sandboxes on-failure, waits for the artifacts (they decide the status) before deleting', async () => {
    const { log, status } = await runOne([artifact('a'), artifact('b')], ['a', 'b'], 'on-failure');
    expect(status).toBe('passed');
    expect(log).toEqual(['fetched a', 'written a', 'fetched b', 'written b', 'dispose']);
  });

  it('with --keep-sandboxes on-failure, keeps the sandbox of a job a missing required artifact fails', async () => {
    const { log, status, events } = await runOne(
      [artifact('a'), artifact('gone', 'error')],
      ['a'],
      'on-failure',
    );
    expect(status).toBe('failed');
    expect(log).toEqual(['fetched a', 'written a']);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'warning',
        message: expect.stringMatching(/kept sandbox sb-1/) as unknown,
      }),
    );
  });

  it('tears down once, with one teardown phase event', async () => {
    const { log, events } = await runOne([artifact('a')], ['a'], 'never');
    expect(log.filter((l) => l === 'dispose')).toHaveLength(1);
    const phases = events.flatMap((e) => (e.type === 'job' && e.reason === 'phase' ? [e.phase] : []));
    expect(phases).toEqual(['create', 'upload', 'steps', 'artifacts', 'teardown']);
  });
});
