/**
 * `rho-flow run` after validation: start the run, render it, handle
 * interrupts in two stages, publish CI output, return the exit code.
 */
import type { Plan } from '../workflow/plan.js';
import { selectShard } from '../workflow/plan.js';
import type { RunEvent } from '../events.js';
import type { RunCliOptions } from './run-options.js';
import type { CliIo } from './io.js';
import { println } from './io.js';
import type { Reporter } from '../reporters/reporter.js';
import { chooseReporter } from '../reporters/reporter.js';
import { startRun, type RunHandle } from '../engine/run-workflows.js';
import type { EngineHooks } from '../engine/engine-options.js';
import { signalExitCode, type InterruptSignal } from '../engine/run-exit-code.js';
import { publishGitHub } from '../results/github.js';
import { AbortReason } from '../util/abort.js';
import { version } from './version.js';
import { reportError } from './exit-code.js';
import { describeChange, planResume, resumedInfo, type ResumeDecision } from '../engine/resume.js';

/** After a forced teardown, how long the results may still take to be written. */
const FORCED_FINISH_MS = 3000;
/** How long a forced teardown may take before we exit anyway. */
const FORCE_TEARDOWN_MS = 5000;

export interface ExecuteOptions {
  options: RunCliOptions;
  plan: Plan;
  io: CliIo;
  /** The command line, for run.json. */
  argv: readonly string[];
}

/** Runs the plan (or this shard of it). Resolves to the exit code. */
export async function executePlan({ options, plan, io, argv }: ExecuteOptions): Promise<number> {
  const planJobs = options.shard ? selectShard(plan.jobs, options.shard) : plan.jobs;
  const controller = new AbortController();
  let interrupted: InterruptSignal | undefined;
  let reporter: Reporter | undefined;
  const buffered: RunEvent[] = [];
  const emit = (event: RunEvent): void => {
    if (reporter) reporter.onEvent(event);
    else buffered.push(event);
  };
  // `--resume`: run again only what has no verdict yet, into the same run directory.
  let resume: ResumeDecision | undefined;
  if (options.resume) {
    try {
      resume = await planResume({
        outputDir: options.outputDir,
        ...(options.resume.runId !== undefined ? { runId: options.resume.runId } : {}),
        jobs: planJobs,
        ...(options.shard ? { shard: options.shard } : {}),
        ...(options.force ? { force: true } : {}),
      });
    } catch (e) {
      return reportError(e, io);
    }
    for (const note of resume.notes) emit({ type: 'warning', message: note });
    if (resume.changes.length > 0) {
      emit({
        type: 'warning',
        message: `--force: the workflows changed since run ${resume.runId} started; running all jobs of the changed ones again:\n${resume.changes.map((c) => `  ${describeChange(c)}`).join('\n')}`,
      });
    }
  }
  const jobs = resume ? resume.rerun : planJobs;
  // A signal during preflight cancels before anything is created.
  if (io.signal?.aborted) return signalExitCode('SIGINT');
  io.signal?.addEventListener('abort', () => controller.abort(io.signal?.reason), { once: true });

  let handle: RunHandle | undefined;
  let uninstall: (() => void) | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  let forcing: Promise<void> | undefined;

  const force = (why: string): Promise<void> => {
    forcing ??= (async () => {
      if (!handle) return;
      emit({ type: 'warning', message: `${why}: deleting every remaining sandbox now` });
      const left = await handle.forceTeardown(FORCE_TEARDOWN_MS);
      if (left.length > 0) {
        emit({
          type: 'warning',
          message: `could not delete ${left.length} sandbox(es): ${left.join(', ')} — run 'rho-flow cleanup --run-id ${handle.runId}'`,
        });
      }
    })();
    return forcing;
  };

  if (io.interrupts) {
    const interrupts = io.interrupts;
    uninstall = interrupts.install({
      onFirst(signal) {
        interrupted = signal;
        emit({ type: 'run', reason: 'interrupted', signal, forced: false });
        controller.abort(new AbortReason('cancelled', `${signal} received`));
        // No job may outlive the grace period: after it, force.
        graceTimer = setTimeout(() => void force('grace period over'), options.gracePeriodMs + 1000);
        graceTimer.unref();
      },
      onFatal(error) {
        // A bug escaped the engine: keep the teardown guarantee, then exit as an internal error.
        const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
        io.stderr.write(`rho-flow: internal error (a bug in rho-flow; please report it):\n${detail}\n`);
        controller.abort(new AbortReason('cancelled', 'internal error'));
        void (async () => {
          await force('internal error');
          const finished = handle?.done.then(
            () => undefined,
            () => undefined,
          );
          await Promise.race([finished, new Promise((r) => setTimeout(r, FORCED_FINISH_MS).unref())]);
          await reporter?.close().catch(() => undefined);
          interrupts.exit(1);
        })();
      },
      onSecond(signal) {
        emit({ type: 'run', reason: 'interrupted', signal, forced: true });
        const code = signalExitCode(interrupted ?? signal);
        void (async () => {
          await force(`second ${signal}`);
          // Give the engine a moment to write the results of what just ended.
          const finished = handle?.done.then(
            () => undefined,
            () => undefined,
          );
          await Promise.race([finished, new Promise((r) => setTimeout(r, FORCED_FINISH_MS).unref())]);
          await reporter?.close().catch(() => undefined);
          interrupts.exit(code);
        })();
      },
    });
  }

  try {
    try {
      handle = await startRun({
        jobs,
        outputDir: options.outputDir,
        ...(resume
          ? {
              runId: resume.runId,
              resume: true,
              keepResult: resume.keepsResult,
              resumed: resumedInfo(resume),
            }
          : options.runId !== undefined
            ? { runId: options.runId }
            : {}),
        planJobs,
        ...(options.shard ? { shard: options.shard } : {}),
        skipped: plan.jobs.length - jobs.length,
        concurrency: options.concurrency,
        ...(options.backend ? { backendOverride: options.backend } : {}),
        isolation: options.isolation,
        retries: options.retries,
        ...(options.maxFailures !== undefined ? { maxFailures: options.maxFailures } : {}),
        ...(options.minPassRate !== undefined ? { minPassRate: options.minPassRate } : {}),
        gracePeriodMs: options.gracePeriodMs,
        keepSandboxes: options.keepSandboxes,
        ...(options.model !== undefined ? { modelOverride: options.model } : {}),
        ...(options.record !== undefined ? { recordDir: options.record } : {}),
        ...(options.replay !== undefined ? { replayDir: options.replay } : {}),
        ...(options.shard ? { junitFile: `junit-${options.shard.index}-of-${options.shard.total}.xml` } : {}),
        env: io.env,
        argv,
        version: version(),
        signal: controller.signal,
        interruptedBy: () => interrupted,
        onEvent: emit,
        ...testFaultHooks(io.env),
      });
    } catch (e) {
      for (const event of buffered)
        if (event.type === 'warning') println(io.stderr, `warning: ${event.message}`);
      return reportError(e, io);
    }

    reporter = await chooseReporter({
      mode: options.reporter,
      stdout: io.stdout,
      stderr: io.stderr,
      env: io.env,
      ...(io.color ? { color: io.color.stdout } : {}),
      redactor: handle.redactor,
    });
    for (const event of buffered.splice(0)) reporter.onEvent(event);

    const { summary, exitCode } = await handle.done;
    await forcing;
    await publishGitHub({
      summary,
      env: io.env,
      runDir: handle.runDir,
      junitPath: handle.writer.junitPath,
      locate: (workflow, stepId) => handle?.writer.locate(workflow, stepId),
      write: (line) => (options.reporter === 'json' ? io.stderr : io.stdout).write(line),
      redactor: handle.redactor,
    });
    return exitCode;
  } finally {
    if (graceTimer) clearTimeout(graceTimer);
    uninstall?.();
    await reporter?.close();
  }
}

/**
 * Test-only fault injection (DEVELOPING.md): `RHO_FLOW_TEST_FAULT=uncaught-after-create`
 * throws an uncaught exception right after a sandbox is created, so a test can
 * prove that a crash still tears every sandbox down.
 */
function testFaultHooks(env: CliIo['env']): { hooks?: EngineHooks } {
  if (env.RHO_FLOW_TEST_FAULT !== 'uncaught-after-create') return {};
  return {
    hooks: {
      afterCreate: () => {
        setImmediate(() => {
          throw new Error('injected uncaught exception (RHO_FLOW_TEST_FAULT)');
        });
      },
    },
  };
}
