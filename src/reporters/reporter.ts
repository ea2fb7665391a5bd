/**
 * Reporters render `RunEvent`s for a human or a machine; they never
 * influence the run. `chooseReporter` picks one by `--reporter`:
 * `auto` = the listr2 display on a TTY, plain lines when stdout is not a TTY,
 * when `CI` is set, or when `TERM=dumb`; `json` = one event per line.
 */
import { join } from 'node:path';
import type { RunEvent } from '../events.js';
import type { Redactor } from '../util/redact.js';
import { unreachable } from '../util/unreachable.js';
import type { Env } from './colors.js';

/** Something that renders events. `close` flushes and ends the display (idempotent). */
export interface Reporter {
  onEvent(e: RunEvent): void;
  close(): Promise<void>;
}

/** The part of a writable stream reporters use (`process.stdout` fits). */
export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

export type ReporterMode = 'auto' | 'tty' | 'plain' | 'json';
export const REPORTER_MODES: readonly ReporterMode[] = ['auto', 'tty', 'plain', 'json'];

/** What every reporter is built from. */
export interface ReporterOptions {
  stdout: OutStream;
  stderr: OutStream;
  /** The environment to honour (`CI`, `GITHUB_ACTIONS`, `NO_COLOR`, `FORCE_COLOR`, `TERM`). Never read from `process.env` here. */
  env: Env;
  /** `--color` (true) / `--no-color` (false); undefined = decide from env and TTY. */
  color?: boolean;
  /** Everything a reporter writes passes through it. */
  redactor?: Redactor;
  /** Clock (ms), for elapsed times and json `time`; tests pass a fake one. */
  now?: () => number;
}

/** The concrete reporter `mode` means for these streams and this environment. */
export function resolveReporterMode(
  mode: ReporterMode,
  options: { stdout: OutStream; env: Env },
): 'tty' | 'plain' | 'json' {
  switch (mode) {
    case 'tty':
    case 'plain':
    case 'json':
      return mode;
    case 'auto': {
      const ci = options.env.CI;
      if (ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0') return 'plain';
      if (options.env.TERM === 'dumb') return 'plain';
      // A terminal that reports no size (a pty nobody sized, some CI log capture) cannot show a
      // live view: listr2 renders nothing into zero rows. Plain lines still tell the story.
      if (options.stdout.isTTY === true && (options.stdout.rows === 0 || options.stdout.columns === 0))
        return 'plain';
      return options.stdout.isTTY === true ? 'tty' : 'plain';
    }
    default:
      throw new Error(`Unknown reporter mode: ${unreachable(mode)}`);
  }
}

/** Creates the reporter for `mode` (listr2 is imported only when the tty reporter is chosen). */
export async function chooseReporter(options: ReporterOptions & { mode: ReporterMode }): Promise<Reporter> {
  const mode = resolveReporterMode(options.mode, options);
  switch (mode) {
    case 'plain': {
      const { PlainReporter } = await import('./plain.js');
      return new PlainReporter(options);
    }
    case 'json': {
      const { JsonReporter } = await import('./json.js');
      return new JsonReporter(options);
    }
    case 'tty': {
      const { createListrReporter } = await import('./listr.js');
      return createListrReporter(options);
    }
    default:
      throw new Error(`Unknown reporter mode: ${unreachable(mode)}`);
  }
}

/** The run directory an event refers to (`runDir` when the engine set it). */
export function runDirOf(e: { outputDir: string; runDir?: string }, runId: string): string {
  return e.runDir ?? join(e.outputDir, runId);
}

/** A redacting line writer over `stream`. */
export function lineWriter(stream: OutStream, redactor: Redactor | undefined): (line: string) => void {
  return (line) => {
    stream.write((redactor ? redactor.redact(line) : line) + '\n');
  };
}

/** Longest time a batched line waits before it is written. */
export const LINE_BATCH_MS = 50;
/** Pending text written at once when it reaches this size. */
const LINE_BATCH_BYTES = 16 * 1024;

/**
 * Lines for a pipe or a file, written in batches: at most `LINE_BATCH_MS`
 * after the first pending one, when 16 KiB are pending, or at `flush()`.
 * Each `write` to a pipe is a syscall that also wakes the reader (a CI
 * runner, `tee`); a batch of 200 jobs at `-j 8` wrote ~800 lines one by one,
 * ~0.5 ms of rho-flow's main thread per job (issue 7, target 1). Reporters
 * flush at every run-level event and at `close()`.
 */
export class LineBatcher {
  readonly #stream: OutStream;
  readonly #redactor: Redactor | undefined;
  #pending = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(stream: OutStream, redactor: Redactor | undefined) {
    this.#stream = stream;
    this.#redactor = redactor;
  }

  /** Queues `line` (redacted, newline added). */
  line(line: string): void {
    this.#pending += (this.#redactor ? this.#redactor.redact(line) : line) + '\n';
    if (this.#pending.length >= LINE_BATCH_BYTES) this.flush();
    else
      this.#timer ??= setTimeout(() => {
        this.flush();
      }, LINE_BATCH_MS);
  }

  /** Writes what is pending now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending === '') return;
    const text = this.#pending;
    this.#pending = '';
    this.#stream.write(text);
  }
}
