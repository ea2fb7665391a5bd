/**
 * Line-per-event output for CI logs and pipes: no cursor movement, no
 * timestamps (CI adds its own), stable wording. Jobs run concurrently, so
 * every line names its job. Under GitHub Actions live lines stay short (job
 * started, retries, warnings) and each job's step lines are printed as one
 * `::group::` block when the job finishes, so blocks never interleave.
 */
import type { ResumedInfo, RunEvent } from '../events.js';
import type { JobResult, StepResult } from '../results/types.js';
import { firstLine, formatDuration, jobErrorText } from '../results/summary.js';
import { unreachable } from '../util/unreachable.js';
import { palette, shouldUseColor, statusStyle, statusSymbol, type Palette } from './colors.js';
import { renderFinalSummary } from './final-summary.js';
import { LineBatcher, runDirOf, type Reporter, type ReporterOptions } from './reporter.js';

/** Lines of a failed step's output shown under it. */
const OUTPUT_TAIL_LINES = 20;
const OUTPUT_LINE_CHARS = 300;
/** Lines buffered per running job under GitHub Actions. */
const MAX_BUFFERED_LINES = 200;

/** The last `n` non-empty lines of `text`, each capped. */
export function outputTail(text: string, n = OUTPUT_TAIL_LINES): string[] {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  while (lines.length > 0 && (lines[lines.length - 1] ?? '').trim() === '') lines.pop();
  return lines
    .slice(-n)
    .map((l) => (l.length > OUTPUT_LINE_CHARS ? `${l.slice(0, OUTPUT_LINE_CHARS - 1)}…` : l));
}

/** `20 kept (18 passed, 2 failed), 10 to run again (7 missing, 3 error)`. */
export function resumedText(r: ResumedInfo): string {
  const list = (counts: Readonly<Record<string, number | undefined>>): string =>
    Object.entries(counts)
      .filter((e): e is [string, number] => (e[1] ?? 0) > 0)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
  const kept = r.kept > 0 ? `${r.kept} kept (${list(r.keptByStatus)})` : 'none kept';
  const rerun = r.rerun > 0 ? `${r.rerun} to run again (${list(r.reasons)})` : 'nothing to run again';
  return `${kept}, ${rerun}`;
}

/** Plain reporter: see the module comment. */
export class PlainReporter implements Reporter {
  readonly #lines: LineBatcher;
  readonly #out: (line: string) => void;
  readonly #p: Palette;
  readonly #github: boolean;
  /** GitHub Actions: step lines of running jobs, printed in a group when the job finishes. */
  readonly #buffers = new Map<string, { lines: string[]; dropped: number }>();
  #runId = '';
  #closed = false;

  constructor(options: ReporterOptions) {
    this.#lines = new LineBatcher(options.stdout, options.redactor);
    this.#out = (line) => {
      this.#lines.line(line);
    };
    this.#p = palette(
      shouldUseColor({
        env: options.env,
        stream: options.stdout,
        ...(options.color !== undefined ? { flag: options.color } : {}),
      }),
    );
    this.#github = options.env.GITHUB_ACTIONS === 'true';
  }

  onEvent(e: RunEvent): void {
    if (this.#closed) return;
    this.#render(e);
    // Run-level lines (start, interruption, the final summary) go out at once.
    if (e.type === 'run') this.#lines.flush();
  }

  #render(e: RunEvent): void {
    const p = this.#p;
    switch (e.type) {
      case 'run':
        switch (e.reason) {
          case 'started': {
            this.#runId = e.runId;
            const skipped = e.resumed
              ? ` (resumed: ${resumedText(e.resumed)}${e.skipped > e.resumed.kept ? `; ${e.skipped - e.resumed.kept} in other shards` : ''})`
              : e.skipped > 0
                ? ` (${e.skipped} skipped)`
                : '';
            this.#out(
              p.bold(
                `rho-flow run ${e.runId}: ${e.jobs.length} job${e.jobs.length === 1 ? '' : 's'}${skipped}, concurrency ${e.concurrency}`,
              ) + ` → ${runDirOf(e, e.runId)}`,
            );
            return;
          }
          case 'interrupted':
            this.#out(
              p.yellow(
                e.forced
                  ? `⏹ ${e.signal} again: tearing down what is left now`
                  : `⏹ ${e.signal}: no new jobs; cancelling running jobs and tearing down (send it again to force)`,
              ),
            );
            return;
          case 'finished': {
            for (const [jobId] of this.#buffers)
              this.#flushGroup(jobId, p.yellow(`${jobId} did not report an end`));
            const runDir = runDirOf(e, e.summary.runId || this.#runId);
            for (const line of renderFinalSummary(e.summary, {
              runDir,
              palette: p,
              ...(e.junitPath !== undefined ? { junitPath: e.junitPath } : {}),
            })) {
              this.#out(line);
            }
            return;
          }
          default:
            throw new Error(`Unknown run event: ${unreachable(e)}`);
        }
      case 'job':
        switch (e.reason) {
          case 'started':
            if (this.#github) this.#buffers.set(e.jobId, { lines: [], dropped: 0 });
            this.#out(`${p.cyan('▶')} ${e.jobId} started${p.dim(` (attempt ${e.attempt})`)}`);
            return;
          case 'phase':
            return;
          case 'retrying':
            this.#out(
              p.yellow(
                `↻ ${e.jobId} retrying: attempt ${e.attempt} in ${formatDuration(e.delayMs)} after: ${firstLine(e.error, 200)}`,
              ),
            );
            return;
          case 'finished':
            this.#jobFinished(e.result);
            return;
          default:
            throw new Error(`Unknown job event: ${unreachable(e)}`);
        }
      case 'step':
        switch (e.reason) {
          case 'started':
            this.#jobLine(
              e.jobId,
              `${p.dim('›')} ${e.finally ? 'finally ' : ''}step ${e.stepId}${e.name !== e.stepId ? p.dim(`: ${firstLine(e.name, 120)}`) : ''}`,
            );
            return;
          case 'finished':
            for (const line of this.#stepLines(e.result)) this.#jobLine(e.jobId, line);
            return;
          case 'output':
            return;
          default:
            throw new Error(`Unknown step event: ${unreachable(e)}`);
        }
      case 'agent':
        // Turns and tool calls are too chatty for CI logs; they are in transcript.jsonl.
        return;
      case 'warning':
        this.#out(p.yellow(`⚠ warning${e.jobId !== undefined ? ` (${e.jobId})` : ''}: ${e.message}`));
        return;
      default:
        throw new Error(`Unknown event: ${unreachable(e)}`);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#lines.flush();
    return Promise.resolve();
  }

  #stepLines(s: StepResult): string[] {
    const p = this.#p;
    const style = statusStyle(p, s.status);
    const details = [
      s.exitCode !== undefined && s.status !== 'passed' ? `exit ${s.exitCode}` : undefined,
      formatDuration(s.durationMs),
    ]
      .filter((x) => x !== undefined)
      .join(', ');
    const allowed =
      s.continueOnError && s.status !== 'passed' && s.status !== 'skipped'
        ? p.dim(' (continue-on-error)')
        : '';
    const err = s.error ? `: ${firstLine(s.error.message, 300)}` : '';
    const lines = [
      `${style(`${statusSymbol(s.status)} step ${s.id} ${s.status}`)} ${p.dim(`(${details})`)}${allowed}${err}`,
    ];
    if (s.status !== 'passed' && s.status !== 'skipped' && s.output !== undefined && s.output.trim() !== '') {
      for (const l of outputTail(s.output)) lines.push(p.dim(`    │ ${l}`));
    }
    return lines;
  }

  /** A line about a running job: live with a job prefix, or buffered for its group under GitHub Actions. */
  #jobLine(jobId: string, text: string): void {
    const buf = this.#github ? this.#buffers.get(jobId) : undefined;
    if (!buf) {
      this.#out(`  ${jobId} ${text}`);
      return;
    }
    if (buf.lines.length < MAX_BUFFERED_LINES) buf.lines.push(`  ${text}`);
    else buf.dropped++;
  }

  #jobFinished(r: JobResult): void {
    const p = this.#p;
    const style = statusStyle(p, r.status);
    const attempts = r.attempts > 1 ? `, ${r.attempts} attempts` : '';
    const error = firstLine(jobErrorText(r), 300);
    const err = error !== '' ? `: ${error}` : '';
    const head = `${style(`${statusSymbol(r.status)} ${r.id} ${r.status}`)} ${p.dim(`(${formatDuration(r.durationMs)}${attempts})`)}${err}`;
    // Artifacts that were not downloaded are worth a line; the rest is in manifest.json.
    const notes = r.artifacts
      .filter((a) => a.status !== 'downloaded')
      .map((a) =>
        p.yellow(`artifact ${a.path}: ${a.status}${a.message ? ` (${firstLine(a.message, 200)})` : ''}`),
      );
    if (this.#github && this.#buffers.has(r.id)) {
      this.#flushGroup(r.id, head, notes);
      return;
    }
    this.#out(head);
    for (const n of notes) this.#out(`  ${r.id} ${n}`);
  }

  #flushGroup(jobId: string, head: string, notes: readonly string[] = []): void {
    const buf = this.#buffers.get(jobId);
    this.#buffers.delete(jobId);
    this.#out(`::group::${head}`);
    for (const l of buf?.lines ?? []) this.#out(l);
    if (buf && buf.dropped > 0) this.#out(this.#p.dim(`  … ${buf.dropped} more lines (see log.txt)`));
    for (const n of notes) this.#out(`  ${n}`);
    this.#out('::endgroup::');
  }
}
