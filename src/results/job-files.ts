/**
 * The streaming files of one job: `jobs/<slug>/log.txt` (run-step output and
 * the engine's step headers) and `jobs/<slug>/transcript.jsonl` (one JSON
 * event per line: steps, model turns, tool calls). Both are appended as
 * things happen, so a crash keeps everything written so far, and both pass
 * through the run's `Redactor` first.
 *
 * Structurally this is the engine's `JobSinks` (`log`, `transcript`,
 * `artifactsDir`, `close`).
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
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

/**
 * An append-only text file with a byte cap and deferred error reporting:
 * writes never throw; the first failure is rethrown by `close()`.
 */
class CappedAppender {
  readonly #stream: WriteStream;
  readonly #max: number;
  readonly #what: string;
  #bytes = 0;
  #truncated = false;
  #error: Error | undefined;
  #closed: Promise<void> | undefined;

  constructor(path: string, max: number, what: string) {
    this.#stream = createWriteStream(path, { flags: 'a' });
    this.#stream.on('error', (e) => {
      this.#error ??= e;
    });
    this.#max = max;
    this.#what = what;
  }

  get bytes(): number {
    return this.#bytes;
  }

  write(text: string): void {
    if (this.#closed || this.#truncated || this.#error || text === '') return;
    const size = Buffer.byteLength(text);
    if (this.#bytes + size > this.#max) {
      this.#truncated = true;
      this.#stream.write(`\n[rho-flow: ${this.#what} truncated at ${this.#max} bytes]\n`);
      return;
    }
    this.#bytes += size;
    this.#stream.write(text);
  }

  /** Resolves when everything written so far has reached the file. */
  async flush(): Promise<void> {
    if (this.#closed) return;
    await new Promise<void>((resolve) => this.#stream.write('', () => resolve()));
    if (this.#error) throw this.#error;
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve, reject) => {
      this.#stream.end(() => {
        if (this.#error) reject(this.#error);
        else resolve();
      });
    });
    return this.#closed;
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
