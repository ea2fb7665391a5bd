/**
 * A second thread for local copies (issue 7, target 5: an upload of 2,000
 * files ran at ~1.4× a `tar c | tar x` pipeline, which copies on two cores).
 *
 * The calling thread walks the tree, creates the directories and splits the
 * regular files of each directory into batches; it *offers* them to the copy
 * thread and works through the same batches itself. Each batch is claimed by
 * exactly one of the two with a compare-and-swap on shared memory, so
 * neither waits for the other: while the copy thread is busy (or still
 * starting) the calling thread simply takes more. Before a directory's fds
 * are closed the offer is *settled*: every batch not taken yet is claimed by
 * the caller (so the thread skips it) and the caller waits only for batches
 * the thread took — the thread never touches an fd after it was closed.
 *
 * The thread runs `local-copier.js`, a module next to this one (in `dist/`
 * and in the bundled CLI). Running from the TypeScript sources (tests), or
 * with `RHO_FLOW_COPY_THREAD=off`, there is none and the caller copies alone.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SandboxError, type SandboxErrorCode } from '../errors.js';

/** Files of one directory, copied as a unit by one thread. */
export interface FileBatch {
  srcDirFd: number;
  dstDirFd: number;
  names: string[];
  /** Paths for messages, relative to the transfer's root. */
  rels: string[];
}

/** An error as it crosses the thread. */
export interface WireCopyError {
  message: string;
  code?: string;
  sandbox?: { code: SandboxErrorCode; retryable: boolean };
}

/** What the thread did with one batch: per file its bytes or skip reason, up to an error if any. */
export interface BatchOutcome {
  i: number;
  results: Array<number | string>;
  error?: WireCopyError;
}

/** @internal */
export interface OfferMessage {
  id: number;
  state: Int32Array;
  umask: number;
  batches: FileBatch[];
}

/** Counters for tests and benchmarks: offers made, files the thread copied. @internal */
export const copyThreadStats = { offers: 0, threadFiles: 0 };

const FREE = 0;
const MINE = 2;
const THEIRS = 1;

/** The thread's error as the calling thread throws it. */
export function fromWire(e: WireCopyError): Error {
  if (e.sandbox) return new SandboxError(e.sandbox.code, e.message, { retryable: e.sandbox.retryable });
  return Object.assign(new Error(e.message), e.code !== undefined ? { code: e.code } : {});
}

/** One directory's batches, offered to the copy thread. */
export class Offer {
  readonly batches: readonly FileBatch[];
  readonly #state: Int32Array;
  readonly #answer: Promise<BatchOutcome[]>;
  #theirs = false;

  constructor(batches: readonly FileBatch[], state: Int32Array, answer: Promise<BatchOutcome[]>) {
    this.batches = batches;
    this.#state = state;
    this.#answer = answer;
    answer.catch(() => undefined); // observed by settle()
  }

  /** Claims batch `i` for the caller; false when the copy thread has it. */
  claim(i: number): boolean {
    const prev = Atomics.compareExchange(this.#state, i, FREE, MINE);
    if (prev === THEIRS) this.#theirs = true;
    return prev !== THEIRS;
  }

  /**
   * Claims every batch still free, then waits for the ones the thread took
   * and returns what it did with them (none when it took none).
   */
  async settle(): Promise<BatchOutcome[]> {
    for (let i = 0; i < this.batches.length; i++) this.claim(i);
    if (!this.#theirs) return [];
    const outcomes = await this.#answer;
    for (const o of outcomes) copyThreadStats.threadFiles += o.results.length;
    return outcomes;
  }
}

/** The copy thread: started on first use, kept (unref'd) while the process lives. */
export class CopyThread {
  static #instance: CopyThread | null | undefined;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (o: BatchOutcome[]) => void; reject: (e: Error) => void }>();
  #nextId = 1;

  /** The thread, or undefined where there is none (see the module comment). */
  static get(): CopyThread | undefined {
    if (CopyThread.#instance === undefined) {
      CopyThread.#instance = null;
      const entry = new URL('./local-copier.js', import.meta.url);
      if (process.env.RHO_FLOW_COPY_THREAD !== 'off' && existsSync(fileURLToPath(entry))) {
        try {
          CopyThread.#instance = new CopyThread(entry);
        } catch {
          // no worker threads here: copy on the calling thread
        }
      }
    }
    return CopyThread.#instance ?? undefined;
  }

  private constructor(entry: URL) {
    this.#worker = new Worker(entry, { execArgv: [], stdout: false, stderr: false });
    this.#worker.unref();
    this.#worker.on('message', (m: { id: number; outcomes: BatchOutcome[] }) => {
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) this.#worker.unref();
      p?.resolve(m.outcomes);
    });
    const fail = (err: Error): void => {
      if (CopyThread.#instance === this) CopyThread.#instance = undefined; // the next transfer starts a new one
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of pending)
        p.reject(
          new SandboxError('transfer-failed', `the copy thread failed: ${err.message}`, { retryable: true }),
        );
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => {
      fail(new Error(`exited with code ${code}`));
    });
  }

  /** Offers `batches` (all in directories the caller keeps open until `settle()`). */
  offer(batches: FileBatch[], umask: number): Offer {
    const state = new Int32Array(new SharedArrayBuffer(4 * batches.length));
    copyThreadStats.offers++;
    const id = this.#nextId++;
    const answer = new Promise<BatchOutcome[]>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    if (this.#pending.size === 1) this.#worker.ref();
    this.#worker.postMessage({ id, state, umask, batches } satisfies OfferMessage);
    return new Offer(batches, state, answer);
  }
}
