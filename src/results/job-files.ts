/**
 * The streaming files of one job: `jobs/<slug>/log.txt` (run-step output and
 * the engine's step headers) and `jobs/<slug>/transcript.jsonl` (one JSON
 * event per line: steps, model turns, tool calls). Both are appended as
 * things happen (buffered for at most `FLUSH_INTERVAL_MS`, so a crash keeps
 * all but the last second), and both pass through the run's `Redactor` first.
 *
 * Structurally this is the engine's `JobSinks` (`log`, `transcript`,
 * `artifactsDir`, `close`).
 */
import { closeSync, mkdirSync, openSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Redactor } from '../util/redact.js';

/** Default cap of `log.txt` per job; a runaway `yes` must not fill the disk. */
export const DEFAULT_MAX_LOG_BYTES = 64 * 1024 * 1024;
/** Default cap of `transcript.jsonl` per job. */
export const DEFAULT_MAX_TRANSCRIPT_BYTES = 256 * 1024 * 1024;

/**
 * A partial line is held back (so a secret split across two output chunks
 * is still masked) until a newline arrives or it grows past this; then all
 * but the last `HOLD_TAIL` characters are written.
 */
const MAX_PARTIAL_CHARS = 16 * 1024;
const HOLD_TAIL = 512;

export interface JobFilesOptions {
  /** The job's folder, `<run dir>/jobs/<slug>`; created if missing. */
  dir: string;
  redactor?: Redactor;
  maxLogBytes?: number;
  maxTranscriptBytes?: number;
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** Pending text written at once when it reaches this size (asynchronously: a busy job's log never blocks the loop). */
export const FLUSH_BYTES = 64 * 1024;
/** Longest time text waits in memory before it is written (what a SIGKILLed rho-flow can lose). */
export const FLUSH_INTERVAL_MS = 1_000;

/**
 * An append-only text file with a byte cap and deferred error reporting:
 * writes never throw; the first failure is rethrown by `flush()`/`close()`.
 *
 * Text is buffered in memory and written when `FLUSH_BYTES` are pending, a
 * second after the first pending write, or at `flush`/`close`. A short job's
 * file is therefore opened, written and closed with three synchronous
 * syscalls at the end instead of a thread-pool round trip for the open,
 * each write and the close (issue 7: those round trips were ~1 ms of main
 * thread per job). Larger amounts go out asynchronously, in order.
 */
class CappedAppender {
  readonly #path: string;
  readonly #max: number;
  readonly #what: string;
  #fd: number | undefined;
  #pending: string[] = [];
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Asynchronous writes in flight, in order. */
  #chain: Promise<void> = Promise.resolve();
  #bytes = 0;
  #truncated = false;
  #error: Error | undefined;
  #closed: Promise<void> | undefined;

  constructor(path: string, max: number, what: string) {
    this.#path = path;
    this.#max = max;
    this.#what = what;
  }

  get bytes(): number {
    return this.#bytes;
  }

  write(text: string): void {
    if (this.#closed || this.#truncated || this.#error !== undefined || text === '') return;
    const size = Buffer.byteLength(text);
    if (this.#bytes + size > this.#max) {
      this.#truncated = true;
      this.#push(`\n[rho-flow: ${this.#what} truncated at ${this.#max} bytes]\n`);
      return;
    }
    this.#bytes += size;
    this.#push(text);
  }

  /** Resolves when everything written so far has reached the file. */
  async flush(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#writeOut();
    await this.#chain;
    if (this.#error !== undefined) throw this.#error;
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearTimeout(this.#timer);
      await this.#chain;
      // The file exists even when nothing was written, as the layout promises.
      if (this.#pendingBytes < FLUSH_BYTES) this.#writeNow();
      else this.#writeOut();
      await this.#chain;
      if (this.#fd !== undefined) {
        try {
          closeSync(this.#fd);
        } catch (e) {
          this.#error ??= asError(e);
        }
        this.#fd = undefined;
      }
      if (this.#error !== undefined) throw this.#error;
    })();
    return this.#closed;
  }

  #push(text: string): void {
    this.#pending.push(text);
    this.#pendingBytes += text.length;
    if (this.#pendingBytes >= FLUSH_BYTES) this.#writeOut();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#writeOut();
      }, FLUSH_INTERVAL_MS);
      this.#timer.unref();
    }
  }

  #take(): string {
    const data = this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    return data;
  }

  #open(): number {
    this.#fd ??= openSync(this.#path, 'a');
    return this.#fd;
  }

  /** Synchronously: opens the file if needed and appends what is pending (only when nothing is in flight). */
  #writeNow(): void {
    const data = this.#take();
    try {
      const fd = this.#open();
      if (data !== '') writeSync(fd, data);
    } catch (e) {
      this.#error ??= asError(e);
    }
  }

  /** Asynchronously, after the writes already in flight: appends what is pending. */
  #writeOut(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pendingBytes === 0 || this.#error !== undefined) return;
    const data = Buffer.from(this.#take());
    this.#chain = this.#chain.then(async () => {
      try {
        if (this.#error !== undefined) return;
        const fd = this.#open();
        for (let off = 0; off < data.length;) {
          off += await new Promise<number>((resolve, reject) => {
            write(fd, data, off, data.length - off, null, (err, n) => {
              if (err) reject(err);
              else resolve(n);
            });
          });
        }
      } catch (e) {
        this.#error ??= asError(e);
      }
    });
  }
}

/**
 * `log.txt` and `transcript.jsonl` of one job. Open one per attempt (files
 * are appended to, never truncated, so retries and resumed runs add to the
 * same log). `log` and `transcript` never throw; write errors surface from
 * `flush()` / `close()`.
 */
export class JobFiles {
  /** The job's folder. */
  readonly dir: string;
  /** `<dir>/artifacts`, where the engine downloads artifacts (created by whoever writes there first). */
  readonly artifactsDir: string;
  readonly logPath: string;
  readonly transcriptPath: string;
  readonly #redactor: Redactor | undefined;
  readonly #log: CappedAppender;
  readonly #transcript: CappedAppender;
  #partial = '';
  #closing: Promise<void> | undefined;

  private constructor(options: JobFilesOptions) {
    this.dir = options.dir;
    this.artifactsDir = join(options.dir, 'artifacts');
    this.logPath = join(options.dir, 'log.txt');
    this.transcriptPath = join(options.dir, 'transcript.jsonl');
    this.#redactor = options.redactor;
    this.#log = new CappedAppender(this.logPath, options.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES, 'log');
    this.#transcript = new CappedAppender(
      this.transcriptPath,
      options.maxTranscriptBytes ?? DEFAULT_MAX_TRANSCRIPT_BYTES,
      'transcript',
    );
  }

  /**
   * Creates the job folder and opens both files for appending. `artifacts/`
   * is left to the artifact collection, so a job without artifacts costs no
   * directory. The `mkdir` is synchronous: one syscall when the parent exists,
   * cheaper than a thread-pool round trip at the start of every job (issue 7).
   */
  static async open(options: JobFilesOptions): Promise<JobFiles> {
    mkdirSync(options.dir, { recursive: true });
    return Promise.resolve(new JobFiles(options));
  }

  /**
   * Appends `text` to `log.txt`. Complete lines are redacted and written at
   * once; a trailing partial line waits for its newline (or `flush`/`close`)
   * so a secret split across chunks is still masked.
   */
  log(text: string): void {
    if (this.#closing) return;
    const all = this.#partial + text;
    const nl = all.lastIndexOf('\n');
    let ready = '';
    if (nl >= 0) {
      ready = all.slice(0, nl + 1);
      this.#partial = all.slice(nl + 1);
    } else {
      this.#partial = all;
    }
    if (this.#partial.length > MAX_PARTIAL_CHARS) {
      ready += this.#partial.slice(0, -HOLD_TAIL);
      this.#partial = this.#partial.slice(-HOLD_TAIL);
    }
    if (ready !== '') this.#log.write(this.#redact(ready));
  }

  /**
   * Appends one event to `transcript.jsonl`, with a `time` field (ISO) when
   * the event has none. Every string inside is redacted before serializing.
   */
  transcript(event: Record<string, unknown>): void {
    if (this.#closing) return;
    const withTime = 'time' in event ? event : { ...event, time: new Date().toISOString() };
    let line: string;
    try {
      line = JSON.stringify(this.#redactor ? this.#redactor.redactValue(withTime) : withTime);
    } catch (e) {
      // A cyclic or BigInt value is a caller bug; keep the transcript valid JSONL.
      line = JSON.stringify({ type: 'transcript-error', message: String(e), time: withTime.time });
    }
    this.#transcript.write(line + '\n');
  }

  /** Writes any held partial line and waits until both files have what was written so far. */
  async flush(): Promise<void> {
    this.#flushPartial();
    await Promise.all([this.#log.flush(), this.#transcript.flush()]);
  }

  /** Flushes and closes both files. Idempotent; rejects with the first write error, if any. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#flushPartial();
      const results = await Promise.allSettled([this.#log.close(), this.#transcript.close()]);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    })();
    return this.#closing;
  }

  /** Bytes written so far (after redaction). @internal */
  debugState(): { logBytes: number; transcriptBytes: number; partialChars: number } {
    return {
      logBytes: this.#log.bytes,
      transcriptBytes: this.#transcript.bytes,
      partialChars: this.#partial.length,
    };
  }

  #flushPartial(): void {
    if (this.#partial === '') return;
    this.#log.write(this.#redact(this.#partial));
    this.#partial = '';
  }

  #redact(text: string): string {
    return this.#redactor ? this.#redactor.redact(text) : text;
  }
}
