/**
 * Starts the local backend's processes from a helper thread.
 *
 * Why: `child_process.spawn` blocks the calling thread until the child has
 * called `exec` (libuv forks, then waits on a pipe). Forking a ~100 MB node
 * process and getting the child scheduled on a busy machine takes 2–6 ms, and
 * every job spawns at least one jail: on the main thread that was about a
 * third of rho-flow's own time per trivial job (issue 7, target 1). From the
 * spawner thread the main thread keeps running jobs while the fork happens.
 *
 * The thread is one `worker_threads` Worker per process, started on first
 * use, running the small CommonJS program below (`eval`, so it works from
 * `dist/` and from the TypeScript sources alike). It spawns, feeds the jail
 * arguments and stdin, and relays output and exit back as messages. It lives
 * as long as the process: bwrap's `--die-with-parent` is tied to the thread
 * that forked it, so jails still die with rho-flow, and no earlier. Killing
 * is done by pid from the calling thread. The Worker holds a reference on the
 * event loop only while one of its children is running. When no Worker can be
 * started, processes are spawned on the calling thread as before.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';

/** What to start. `extra` adds pipes at fds 3 (read) and 4 (write, gets `fd4Data`). */
export interface ChildSpec {
  file: string;
  args: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
  /** Open a readable pipe at fd 3 and a writable one at fd 4 (bwrap's status and arguments). */
  extraPipes: boolean;
  /** Written to fd 4, then closed. */
  fd4Data?: Buffer;
  /** Written to stdin, then closed; without it stdin is `/dev/null`. */
  stdin?: string | Buffer;
}

/** Callbacks of one child, in the order Node's `ChildProcess` would emit them. */
export interface ChildEvents {
  /** The process exists (not called when it could not be started). */
  spawned(pid: number): void;
  /** Output of fd 1 (stdout), 2 (stderr) or 3 (the extra read pipe). */
  data(fd: 1 | 2 | 3, chunk: Buffer): void;
  /** Could not start (then `close` follows), or a later failure. */
  error(err: Error): void;
  exit(code: number | null, signal: NodeJS.Signals | null): void;
  /** Exited and every output pipe is closed: the last event. */
  close(code: number | null, signal: NodeJS.Signals | null): void;
}

export interface ChildHandle {
  /** Closes the child's pipes on our side (stop waiting for stragglers holding them open). */
  destroyStreams(): void;
}

type ToWorker =
  | {
      type: 'spawn';
      id: number;
      file: string;
      args: readonly string[];
      cwd: string;
      env: Readonly<Record<string, string>>;
      extraPipes: boolean;
      fd4Data?: Uint8Array;
      stdin?: Uint8Array;
    }
  | { type: 'destroy'; id: number };

type FromWorker =
  | { type: 'spawned'; id: number; pid: number }
  | { type: 'data'; id: number; fd: 1 | 2 | 3; chunk: Uint8Array }
  | { type: 'error'; id: number; message: string; code?: string }
  | { type: 'exit' | 'close'; id: number; code: number | null; signal: NodeJS.Signals | null };

/**
 * The spawner thread's program. It uses only Node's own modules, loaded with
 * `import()` so that it runs whether eval'd code is CommonJS or ES module
 * (`--input-type`); messages wait in the port until the listener is added.
 */
const WORKER_SOURCE = `
(async () => {
  const { parentPort } = await import('node:worker_threads');
  const { spawn } = await import('node:child_process');
  const children = new Map();
  const post = (m, transfer) => parentPort.postMessage(m, transfer);
  const relay = (id, fd) => (chunk) => {
    const copy = new Uint8Array(chunk); // exact-size copy: transferring chunk.buffer could move a shared pool
    post({ type: 'data', id, fd, chunk: copy }, [copy.buffer]);
  };
  parentPort.on('message', (m) => {
    if (m.type === 'destroy') {
      const child = children.get(m.id);
      if (child) for (const s of child.stdio) if (s) s.destroy();
      return;
    }
    const id = m.id;
    let child;
    try {
      child = spawn(m.file, m.args, {
        cwd: m.cwd,
        env: m.env,
        detached: true,
        stdio: [m.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(m.extraPipes ? ['pipe', 'pipe'] : [])],
      });
    } catch (e) {
      post({ type: 'error', id, message: String((e && e.message) || e), code: e && e.code });
      post({ type: 'close', id, code: null, signal: null });
      return;
    }
    children.set(id, child);
    if (child.pid !== undefined) post({ type: 'spawned', id, pid: child.pid });
    child.on('error', (e) => post({ type: 'error', id, message: e.message, code: e.code }));
    child.stdout.on('data', relay(id, 1));
    child.stderr.on('data', relay(id, 2));
    if (m.extraPipes) {
      child.stdio[3].on('data', relay(id, 3));
      child.stdio[3].on('error', () => {});
      child.stdio[4].on('error', () => {});
      child.stdio[4].end(m.fd4Data ? Buffer.from(m.fd4Data) : undefined);
    }
    if (m.stdin) {
      child.stdin.on('error', () => {}); // EPIPE when the command does not read its input
      child.stdin.end(Buffer.from(m.stdin));
    }
    child.on('exit', (code, signal) => post({ type: 'exit', id, code, signal }));
    child.on('close', (code, signal) => {
      children.delete(id);
      post({ type: 'close', id, code, signal });
    });
  });
})();
`;

class SpawnerThread {
  readonly #worker: Worker;
  readonly #children = new Map<number, ChildEvents>();
  #nextId = 1;
  #broken: Error | undefined;

  constructor() {
    // No inherited node options: not the parent's --import loaders, profilers or --input-type.
    // A small young generation: the thread's garbage is the output chunks it relays, collected
    // quickly instead of piling up to the default 16 MB semi-spaces (the process's RSS stays
    // ~30 MB lower, which also makes every fork cheaper).
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      stdout: false,
      stderr: false,
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 },
    });
    this.#worker.unref();
    this.#worker.on('message', (m: FromWorker) => this.#onMessage(m));
    const fail = (err: Error): void => {
      this.#broken ??= err;
      const pending = [...this.#children.values()];
      this.#children.clear();
      this.#worker.unref();
      for (const events of pending) {
        events.error(err);
        events.close(null, null);
      }
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`the spawner thread exited (code ${code})`)));
  }

  start(spec: ChildSpec, events: ChildEvents): ChildHandle {
    const id = this.#nextId++;
    if (this.#broken) {
      const err = this.#broken;
      queueMicrotask(() => {
        events.error(err);
        events.close(null, null);
      });
      return { destroyStreams: () => undefined };
    }
    if (this.#children.size === 0) this.#worker.ref();
    this.#children.set(id, events);
    const message: ToWorker = {
      type: 'spawn',
      id,
      file: spec.file,
      args: spec.args,
      cwd: spec.cwd,
      env: spec.env,
      extraPipes: spec.extraPipes,
      ...(spec.fd4Data ? { fd4Data: spec.fd4Data } : {}),
      ...(spec.stdin !== undefined
        ? { stdin: typeof spec.stdin === 'string' ? Buffer.from(spec.stdin) : spec.stdin }
        : {}),
    };
    this.#worker.postMessage(message);
    return {
      destroyStreams: () => {
        if (this.#children.has(id)) this.#worker.postMessage({ type: 'destroy', id } satisfies ToWorker);
      },
    };
  }

  #onMessage(m: FromWorker): void {
    const events = this.#children.get(m.id);
    if (!events) return;
    switch (m.type) {
      case 'spawned':
        events.spawned(m.pid);
        return;
      case 'data':
        events.data(m.fd, Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
        return;
      case 'error': {
        const err = new Error(m.message) as NodeJS.ErrnoException;
        if (m.code !== undefined) err.code = m.code;
        events.error(err);
        return;
      }
      case 'exit':
        events.exit(m.code, m.signal);
        return;
      case 'close':
        this.#children.delete(m.id);
        if (this.#children.size === 0) this.#worker.unref();
        events.close(m.code, m.signal);
        return;
      default:
        return;
    }
  }
}

/** Spawns on the calling thread (the fallback when no worker can run). */
function startHere(spec: ChildSpec, events: ChildEvents): ChildHandle {
  const stdio: StdioOptions = [
    spec.stdin !== undefined ? 'pipe' : 'ignore',
    'pipe',
    'pipe',
    ...(spec.extraPipes ? (['pipe', 'pipe'] as const) : []),
  ];
  const child = spawn(spec.file, [...spec.args], { cwd: spec.cwd, env: spec.env, detached: true, stdio });
  if (child.pid !== undefined) {
    const pid = child.pid;
    queueMicrotask(() => events.spawned(pid));
  }
  child.on('error', (e) => events.error(e));
  child.stdout?.on('data', (c: Buffer) => events.data(1, c));
  child.stderr?.on('data', (c: Buffer) => events.data(2, c));
  if (spec.extraPipes) {
    const status = child.stdio[3] as Readable | null;
    status?.on('data', (c: Buffer) => events.data(3, c));
    status?.on('error', () => undefined);
    const args = child.stdio[4] as Writable | null;
    args?.on('error', () => undefined);
    args?.end(spec.fd4Data);
  }
  if (spec.stdin !== undefined && child.stdin) {
    child.stdin.on('error', () => undefined); // EPIPE when the command does not read its input
    child.stdin.end(spec.stdin);
  }
  child.on('exit', (code, signal) => events.exit(code, signal));
  child.on('close', (code: number | null, signal: NodeJS.Signals | null) => events.close(code, signal));
  return {
    destroyStreams: () => {
      for (const s of child.stdio) s?.destroy();
    },
  };
}

let thread: SpawnerThread | null | undefined;

/**
 * Starts a detached process (its own process group) and reports what happens
 * to it through `events`, always asynchronously. Never throws: a process that
 * cannot be started gets `error` then `close`. `where: 'here'` spawns on the
 * calling thread (the fallback; for tests).
 */
export function startChild(
  spec: ChildSpec,
  events: ChildEvents,
  where: 'thread' | 'here' = 'thread',
): ChildHandle {
  if (where === 'thread' && thread === undefined) {
    try {
      thread = new SpawnerThread();
    } catch {
      thread = null; // no worker threads here: spawn on this thread
    }
  }
  if (where === 'thread' && thread) return thread.start(spec, events);
  try {
    return startHere(spec, events);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    queueMicrotask(() => {
      events.error(err);
      events.close(null, null);
    });
    return { destroyStreams: () => undefined };
  }
}
