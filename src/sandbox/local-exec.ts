/**
 * Runs one command of a local sandbox as a host process group (`detached`),
 * so a timeout, an abort or `dispose` can kill the whole group at once. For a
 * jailed command the group leader is `bwrap`, which runs with
 * `--die-with-parent` as pid 1's parent of a private pid namespace: killing it
 * takes everything inside the jail down with it, including processes that
 * called `setsid` to leave the group.
 *
 * When the command's main process exits, whatever it left running in its
 * group is killed too (in a jail, the pid namespace is already gone), so no
 * command outlives its `exec`.
 */
import { constants as osConstants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { startChild, type ChildHandle } from './spawner.js';

/** Who killed a process: its timeout, the caller's signal, or the sandbox being disposed. */
export type KillCause = 'timeout' | 'abort' | 'dispose';

/** Default cap on the stdout/stderr kept in a result (each). */
export const DEFAULT_MAX_OUTPUT = 10 * 1024 * 1024;
/** How long to wait for the output pipes to close after the main process exited. */
const PIPE_GRACE_MS = 2_000;

export interface ProcessSpec {
  file: string;
  args: readonly string[];
  /** Host directory the process starts in. */
  cwd: string;
  env: Readonly<Record<string, string>>;
  /** bwrap only: data for the `--args` fd; also opens the `--json-status-fd` pipe. */
  jailArgs?: Buffer;
}

export interface ProcessOptions {
  stdin?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  maxOutputBytes?: number;
}

/** bwrap's `--json-status-fd` reports. `exitCode` is absent when the jail failed to start the command. */
export interface JailStatus {
  childPid?: number;
  exitCode?: number;
}

export interface ProcessOutcome {
  /** Exit code, or 128 + signal number when the process was killed by a signal. */
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  killedBy?: KillCause;
  jailStatus?: JailStatus;
  /** The process could not be started at all. */
  spawnError?: Error;
}

/** Keeps up to `max` bytes of one stream and forwards decoded chunks live. */
class OutputBuffer {
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #dropped = 0;
  readonly #live = new StringDecoder('utf8');
  readonly #max: number;
  readonly #emit: ((chunk: string) => void) | undefined;

  constructor(max: number, emit: ((chunk: string) => void) | undefined) {
    this.#max = Math.max(0, max);
    this.#emit = emit;
  }

  push(chunk: Buffer): void {
    if (this.#emit) {
      const text = this.#live.write(chunk);
      if (text !== '') this.#emit(text);
    }
    const room = this.#max - this.#kept;
    if (room >= chunk.length) {
      this.#chunks.push(chunk);
      this.#kept += chunk.length;
    } else {
      if (room > 0) this.#chunks.push(chunk.subarray(0, room));
      this.#kept += Math.max(0, room);
      this.#dropped += chunk.length - Math.max(0, room);
    }
  }

  /** The kept text (a multi-byte character cut by the cap is dropped whole) plus a truncation marker. */
  finish(): string {
    if (this.#emit) {
      const rest = this.#live.end();
      if (rest !== '') this.#emit(rest);
    }
    const decoder = new StringDecoder('utf8');
    let text = '';
    for (const c of this.#chunks) text += decoder.write(c);
    if (this.#dropped === 0) return text + decoder.end();
    return `${text}\n[rho-flow: output truncated: ${this.#dropped} more bytes dropped]\n`;
  }
}

/**
 * Sends SIGKILL to the process group led by `pid` and, unless `groupOnly`,
 * to `pid` itself. Use `groupOnly` once `pid` has been reaped: the number may
 * then belong to an unrelated process, while a group id stays reserved as long
 * as the group has members.
 */
export function killGroup(pid: number | undefined, groupOnly = false): void {
  if (pid === undefined) return;
  for (const target of groupOnly ? [-pid] : [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // ESRCH: already gone.
    }
  }
}

/** One running command. `done` never rejects; inspect the outcome. */
export class ProcessRun {
  readonly done: Promise<ProcessOutcome>;
  readonly #child: ChildHandle;
  /** Known once the spawner reports the process started. */
  #pid: number | undefined;
  /** A kill asked for before the pid was known: carried out as soon as it is. */
  #pendingKill = false;
  #killedBy: KillCause | undefined;
  #finished = false;
  #exited = false;

  constructor(spec: ProcessSpec, options: ProcessOptions) {
    const started = performance.now();
    const jailed = spec.jailArgs !== undefined;
    const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const onOutput = options.onOutput;
    const safeEmit =
      (stream: 'stdout' | 'stderr') =>
      (text: string): void => {
        try {
          onOutput?.(text, stream);
        } catch {
          // A failing log listener must not break the command.
        }
      };
    const out = new OutputBuffer(max, onOutput ? safeEmit('stdout') : undefined);
    const err = new OutputBuffer(max, onOutput ? safeEmit('stderr') : undefined);
    let statusText = '';
    let resolveDone!: (outcome: ProcessOutcome) => void;
    this.done = new Promise<ProcessOutcome>((resolve) => (resolveDone = resolve));

    let timer: NodeJS.Timeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let spawnError: Error | undefined;
    const onAbort = (): void => this.kill('abort');

    const finish = (): void => {
      if (this.#finished) return;
      this.#finished = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      options.signal?.removeEventListener('abort', onAbort);
      this.#child.destroyStreams();
      const outcome: ProcessOutcome = {
        exitCode: exitCodeOf(exit),
        stdout: out.finish(),
        stderr: err.finish(),
        durationMs: Math.round(performance.now() - started),
      };
      if (this.#killedBy) outcome.killedBy = this.#killedBy;
      if (jailed) outcome.jailStatus = parseStatus(statusText);
      if (spawnError) outcome.spawnError = spawnError;
      resolveDone(outcome);
    };

    // Started from the spawner thread (see spawner.ts): the fork does not block this thread.
    this.#child = startChild(
      {
        file: spec.file,
        args: spec.args,
        cwd: spec.cwd,
        env: spec.env,
        extraPipes: jailed,
        ...(spec.jailArgs ? { fd4Data: spec.jailArgs } : {}),
        ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
      },
      {
        spawned: (pid) => {
          this.#pid = pid;
          if (this.#pendingKill) killGroup(pid, this.#exited);
        },
        data: (fd, chunk) => {
          if (fd === 1) out.push(chunk);
          else if (fd === 2) err.push(chunk);
          else statusText += chunk.toString('utf8'); // fd 3: bwrap's --json-status-fd
        },
        error: (e) => {
          spawnError ??= e;
          if (this.#pid === undefined) finish();
        },
        exit: (code, signal) => {
          exit = { code, signal };
          this.#exited = true;
          // Nothing of this command may outlive it: background jobs left in its group die now.
          killGroup(this.#pid, true);
          graceTimer = setTimeout(finish, PIPE_GRACE_MS);
          graceTimer.unref();
        },
        close: (code, signal) => {
          exit ??= { code, signal };
          finish();
        },
      },
    );

    if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
      timer = setTimeout(() => this.kill('timeout'), options.timeoutMs);
    }
    if (options.signal) {
      if (options.signal.aborted) queueMicrotask(onAbort);
      else options.signal.addEventListener('abort', onAbort, { once: true });
    }
  }

  /** Host pid of the group leader (bwrap, or bash when unjailed); undefined until it has started. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** Kills the whole process group. The first cause wins. No-op once finished. */
  kill(cause: KillCause): void {
    if (this.#finished) return;
    // Once the main process exited on its own, the result stands; only stragglers are killed.
    if (!this.#exited) this.#killedBy ??= cause;
    if (this.#pid === undefined) this.#pendingKill = true;
    else killGroup(this.#pid, this.#exited);
  }
}

function exitCodeOf(exit: { code: number | null; signal: NodeJS.Signals | null } | undefined): number {
  if (!exit) return -1;
  if (exit.code !== null) return exit.code;
  const n = exit.signal ? osSignalNumber(exit.signal) : undefined;
  return n === undefined ? -1 : 128 + n;
}

function osSignalNumber(signal: NodeJS.Signals): number | undefined {
  return (osConstants.signals as Partial<Record<string, number>>)[signal];
}

/** Parses bwrap's `--json-status-fd` stream: one JSON document per line. */
export function parseStatus(text: string): JailStatus {
  const status: JailStatus = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const doc = JSON.parse(line) as Record<string, unknown>;
      if (typeof doc['child-pid'] === 'number') status.childPid = doc['child-pid'];
      if (typeof doc['exit-code'] === 'number') status.exitCode = doc['exit-code'];
    } catch {
      // A partial line from a killed bwrap: ignore.
    }
  }
  return status;
}
