/**
 * The TTY display, on listr2 (the only module that imports it, lazily).
 *
 * The engine owns scheduling; listr2 is only the renderer. The bridge: one
 * root task whose title is the header (`▶ 12/40 done · 3 failed · 8 running
 * · 1m12s`) followed by a rolling window of the last finished jobs, and a
 * fixed set of "lane" subtasks, one per concurrency slot. A running job
 * borrows a lane and its title shows the job's current phase / step; when
 * the job finishes it collapses into one status line in the window and the
 * lane is free again. Lane tasks resolve when the run finishes. So the
 * frame has at most 1 + window + lanes lines however many jobs the batch
 * has, and listr2 never holds thousands of finished tasks.
 *
 * listr2 defaults that would hurt us are off: `registerSignalListeners`
 * (its SIGINT handler calls `process.exit(127)`; the CLI owns signals) and
 * `exitOnError`. The renderer declares itself TTY-capable because the
 * caller already decided the stream is a TTY (listr2 would otherwise look at
 * `process.stdout`, not at the stream we render to).
 */
import type { ListrTaskWrapper } from 'listr2';
import type { RunEvent, JobPhase } from '../events.js';
import type { JobStatus } from '../results/types.js';
import { firstLine, formatDuration, formatInt, jobErrorText } from '../results/summary.js';
import { Deferred } from '../util/deferred.js';
import { unreachable } from '../util/unreachable.js';
import { palette, shouldUseColor, statusStyle, statusSymbol, type Palette } from './colors.js';
import { renderFinalSummary } from './final-summary.js';
import { lineWriter, runDirOf, type OutStream, type Reporter, type ReporterOptions } from './reporter.js';

type Listr2 = typeof import('listr2');
// The task wrapper type is generic over renderers we never name; this alias keeps the bridge readable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTask = ListrTaskWrapper<any, any, any>;

/** Most lanes shown at once (a terminal is only so tall). */
export const MAX_LANES = 16;
/** Finished jobs kept in the rolling window. */
export const WINDOW = 5;
/** How often titles are refreshed (elapsed times tick). */
const REFRESH_MS = 200;
const MAX_WARNINGS = 20;

interface Running {
  attempt: number;
  since: number;
  detail: string;
  lane: number | undefined;
}

const PHASE_TEXT: Record<JobPhase, string> = {
  create: 'creating sandbox',
  upload: 'uploading',
  steps: 'running steps',
  finally: 'finally steps',
  artifacts: 'collecting artifacts',
  teardown: 'tearing down',
};

/** Creates the TTY reporter, importing listr2 now. */
export async function createListrReporter(options: ReporterOptions): Promise<ListrReporter> {
  const mod = await import('listr2');
  return new ListrReporter(mod, options);
}

/** The listr2 reporter; see the module comment. */
export class ListrReporter implements Reporter {
  readonly #mod: Listr2;
  readonly #stdout: OutStream;
  readonly #stderr: OutStream;
  readonly #out: (line: string) => void;
  readonly #err: (line: string) => void;
  readonly #p: Palette;
  readonly #now: () => number;
  readonly #redact: (s: string) => string;

  #runId = '';
  #total = 0;
  #startedAt = 0;
  readonly #counts: Record<JobStatus, number> = {
    passed: 0,
    failed: 0,
    'timed-out': 0,
    error: 0,
    cancelled: 0,
    skipped: 0,
  };
  readonly #running = new Map<string, Running>();
  readonly #window: string[] = [];
  readonly #warnings: string[] = [];
  #droppedWarnings = 0;
  #interrupted: string | undefined;
  #finalLines: string[] | undefined;

  #lanes: Array<{ task?: AnyTask; jobId?: string; shown?: string }> = [];
  #header: AnyTask | undefined;
  #headerShown: string | undefined;
  readonly #release = new Deferred<void>();
  #run: Promise<unknown> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(mod: Listr2, options: ReporterOptions) {
    this.#mod = mod;
    this.#stdout = options.stdout;
    this.#stderr = options.stderr;
    this.#out = lineWriter(options.stdout, options.redactor);
    this.#err = lineWriter(options.stderr, options.redactor);
    this.#redact = (s) => (options.redactor ? options.redactor.redact(s) : s);
    this.#p = palette(
      shouldUseColor({
        env: options.env,
        stream: options.stdout,
        ...(options.color !== undefined ? { flag: options.color } : {}),
      }),
    );
    this.#now = options.now ?? Date.now;
  }

  onEvent(e: RunEvent): void {
    if (this.#closing) return;
    switch (e.type) {
      case 'run':
        switch (e.reason) {
          case 'started':
            this.#runId = e.runId;
            this.#total = e.jobs.length;
            this.#startedAt = this.#now();
            this.#start(Math.max(1, Math.min(MAX_LANES, e.concurrency, e.jobs.length)));
            break;
          case 'interrupted':
            this.#interrupted = e.forced
              ? `${e.signal} again: tearing down now`
              : `${e.signal}: cancelling running jobs (send it again to force)`;
            break;
          case 'finished':
            this.#finalLines = renderFinalSummary(e.summary, {
              runDir: runDirOf(e, e.summary.runId || this.#runId),
              palette: this.#p,
              ...(e.junitPath !== undefined ? { junitPath: e.junitPath } : {}),
            });
            // The display ends now; close() waits for listr2 and prints the summary.
            this.#release.resolve();
            break;
          default:
            throw new Error(`Unknown run event: ${unreachable(e)}`);
        }
        break;
      case 'job':
        switch (e.reason) {
          case 'started': {
            const prev = this.#running.get(e.jobId);
            this.#running.set(e.jobId, {
              attempt: e.attempt,
              since: this.#now(),
              detail: e.attempt > 1 ? `attempt ${e.attempt}` : 'starting',
              lane: prev?.lane,
            });
            this.#assignLanes();
            break;
          }
          case 'phase':
            this.#detail(e.jobId, PHASE_TEXT[e.phase]);
            break;
          case 'retrying':
            this.#detail(e.jobId, `retrying in ${formatDuration(e.delayMs)}: ${firstLine(e.error, 80)}`);
            break;
          case 'finished': {
            const r = e.result;
            const run = this.#running.get(r.id);
            this.#running.delete(r.id);
            const lane = run?.lane !== undefined ? this.#lanes[run.lane] : undefined;
            if (lane) lane.jobId = undefined;
            this.#counts[r.status]++;
            const style = statusStyle(this.#p, r.status);
            const error = firstLine(jobErrorText(r), 100);
            const err = error !== '' ? ` ${this.#p.dim(error)}` : '';
            this.#pushWindow(
              `${style(`${statusSymbol(r.status)} ${r.id}`)} ${r.status} ${this.#p.dim(formatDuration(r.durationMs))}${err}`,
            );
            this.#assignLanes();
            break;
          }
          default:
            throw new Error(`Unknown job event: ${unreachable(e)}`);
        }
        break;
      case 'step':
        switch (e.reason) {
          case 'started':
            this.#detail(
              e.jobId,
              `${e.finally ? 'finally ' : ''}step ${e.stepId}${e.name !== e.stepId ? `: ${firstLine(e.name, 60)}` : ''}`,
            );
            break;
          case 'finished':
            this.#detail(e.jobId, `step ${e.result.id} ${e.result.status}`);
            break;
          case 'output':
            break;
          default:
            throw new Error(`Unknown step event: ${unreachable(e)}`);
        }
        break;
      case 'agent':
        switch (e.reason) {
          case 'turn':
            this.#detail(e.jobId, `step ${e.stepId} · turn ${e.turn}`);
            break;
          case 'tool-call':
            this.#detail(e.jobId, `step ${e.stepId} · ${e.tool}: ${firstLine(e.summary, 60)}`);
            break;
          default:
            throw new Error(`Unknown agent event: ${unreachable(e)}`);
        }
        break;
      case 'warning': {
        const text = `⚠ ${e.jobId !== undefined ? `${e.jobId}: ` : ''}${firstLine(e.message, 300)}`;
        if (!this.#run) {
          this.#err(this.#p.yellow(text));
          break;
        }
        if (this.#warnings.length < MAX_WARNINGS) this.#warnings.push(text);
        else this.#droppedWarnings++;
        this.#pushWindow(this.#p.yellow(text));
        break;
      }
      default:
        throw new Error(`Unknown event: ${unreachable(e)}`);
    }
  }

  /** Ends the display (if the run did not finish, as it stands) and prints the final summary. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Lines the display would show now (header + window, then lanes). @internal */
  snapshot(): { header: string; lanes: string[] } {
    return {
      header: this.#headerText(),
      lanes: this.#lanes.map((l) => (l.jobId !== undefined ? this.#laneText(l.jobId) : '')),
    };
  }

  async #close(): Promise<void> {
    this.#release.resolve();
    if (this.#timer) clearInterval(this.#timer);
    if (this.#run) {
      try {
        await this.#run;
      } catch (e) {
        // A renderer failure must not hide the results: fall back to plain lines.
        this.#err(`rho-flow: the terminal display failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    for (const w of this.#warnings) this.#out(this.#p.yellow(w));
    if (this.#droppedWarnings > 0) this.#out(this.#p.yellow(`⚠ … ${this.#droppedWarnings} more warnings`));
    if (this.#finalLines) {
      for (const line of this.#finalLines) this.#out(line);
    } else if (this.#run) {
      this.#out(this.#headerLine());
    }
  }

  #start(lanes: number): void {
    if (this.#run) return;
    const { Listr, DefaultRenderer, ListrLogger, ProcessOutput, ListrDefaultRendererLogLevels } = this.#mod;
    class TtyRenderer extends DefaultRenderer {
      // We already know the stream is a TTY; listr2 would check process.stdout.
      static override nonTTY = true;
    }
    this.#lanes = Array.from({ length: lanes }, () => ({}));
    const p = this.#p;
    // Colour listr2's own icons with our decision (it otherwise reads the process env on import).
    const color = Object.fromEntries(
      Object.values(ListrDefaultRendererLogLevels).map((level) => [
        level,
        level === ListrDefaultRendererLogLevels.FAILED
          ? p.red
          : level === ListrDefaultRendererLogLevels.COMPLETED
            ? p.green
            : p.cyan,
      ]),
    );
    // listr2 only calls write() and reads isTTY/columns/rows, which OutStream has.
    const processOutput = new ProcessOutput(
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- structural use only
      this.#stdout as NodeJS.WriteStream,
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- structural use only
      this.#stderr as NodeJS.WriteStream,
    );
    const laneTasks = this.#lanes.map((lane) => ({
      title: '',
      task: (_ctx: unknown, task: AnyTask): Promise<void> => {
        lane.task = task;
        lane.shown = '';
        return this.#release.promise;
      },
    }));
    const listr = new Listr(
      [
        {
          title: this.#headerText(),
          task: (_ctx: unknown, task: AnyTask) => {
            this.#header = task;
            return task.newListr(laneTasks, { concurrent: true, exitOnError: false });
          },
        },
      ],
      {
        concurrent: false,
        exitOnError: false,
        registerSignalListeners: false,
        renderer: TtyRenderer,
        rendererOptions: {
          clearOutput: true,
          formatOutput: 'truncate',
          collapseSubtasks: false,
          showSubtasks: true,
          removeEmptyLines: true,
          logger: new ListrLogger({ useIcons: true, processOutput }),
          color,
          // The header (the only started task with subtasks) carries its own `▶`; lanes keep the spinner.
          icon: { [ListrDefaultRendererLogLevels.PENDING]: '' },
        },
      },
    );
    this.#run = listr.run();
    this.#timer = setInterval(() => this.#apply(), REFRESH_MS);
    this.#timer.unref();
  }

  #detail(jobId: string, detail: string): void {
    const r = this.#running.get(jobId);
    if (r) r.detail = detail;
  }

  #pushWindow(line: string): void {
    this.#window.push(line);
    if (this.#window.length > WINDOW) this.#window.shift();
  }

  /** Gives free lanes to running jobs that have none (in start order). */
  #assignLanes(): void {
    for (const [jobId, r] of this.#running) {
      if (r.lane !== undefined && this.#lanes[r.lane]?.jobId === jobId) continue;
      const free = this.#lanes.findIndex((l) => l.jobId === undefined);
      if (free < 0) {
        r.lane = undefined;
        continue;
      }
      const lane = this.#lanes[free];
      if (lane) lane.jobId = jobId;
      r.lane = free;
    }
  }

  #headerLine(): string {
    const c = this.#counts;
    const done = c.passed + c.failed + c['timed-out'] + c.error + c.cancelled + c.skipped;
    const parts = [`${formatInt(done)}/${formatInt(this.#total)} done`];
    const failed = c.failed + c['timed-out'];
    if (failed > 0) parts.push(this.#p.red(`${formatInt(failed)} failed`));
    if (c.error > 0) parts.push(this.#p.red(`${formatInt(c.error)} error`));
    if (c.cancelled > 0) parts.push(this.#p.yellow(`${formatInt(c.cancelled)} cancelled`));
    parts.push(`${formatInt(this.#running.size)} running`);
    parts.push(formatDuration(this.#now() - this.#startedAt));
    const head = `▶ ${parts.join(' · ')}`;
    return this.#interrupted !== undefined ? `${head} · ${this.#p.yellow(`⏹ ${this.#interrupted}`)}` : head;
  }

  #headerText(): string {
    const lines = [this.#headerLine(), ...this.#window];
    const hidden = [...this.#running.values()].filter((r) => r.lane === undefined).length;
    if (hidden > 0) lines.push(this.#p.dim(`… ${formatInt(hidden)} more running`));
    return this.#redact(lines.join('\n'));
  }

  #laneText(jobId: string): string {
    const r = this.#running.get(jobId);
    if (!r) return '';
    return this.#redact(
      `${jobId} ${this.#p.dim('·')} ${r.detail} ${this.#p.dim(formatDuration(this.#now() - r.since))}`,
    );
  }

  /** Pushes changed titles to listr2 (each assignment re-renders, so only changes). */
  #apply(): void {
    if (this.#header) {
      const text = this.#headerText();
      if (text !== this.#headerShown) {
        this.#headerShown = text;
        this.#header.title = text;
      }
    }
    for (const lane of this.#lanes) {
      if (!lane.task) continue;
      const text = lane.jobId !== undefined ? this.#laneText(lane.jobId) : '';
      if (text !== lane.shown) {
        lane.shown = text;
        lane.task.title = text;
      }
    }
  }
}
