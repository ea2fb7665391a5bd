/**
 * Starts the local backend's processes from a small helper process.
 *
 * Why: libuv starts a process with `fork()`, which copies the page tables of
 * the ~100 MB rho-flow process, and afterwards every page rho-flow writes
 * takes a copy-on-write fault; `spawn` also blocks the calling thread until
 * the child has exec'd (2–6 ms on a busy machine). Every job spawns at least
 * one jail, so on a batch of trivial jobs this was about a third of
 * rho-flow's own CPU (issue 7, target 1: `perf` shows `kernel_clone` and
 * page faults at 17 % of all samples of a 400-job run).
 *
 * The helper is started once on first use (or by `warmSpawner()` while the
 * backend probes bwrap): a small Perl program where `perl` is on PATH
 * (`perl-spawner.ts`, the default), else a node process running the program
 * below from `-e` (no file to find, in `dist/` or the sources). It spawns the
 * jails, feeds them their arguments and stdin, and relays output and exits
 * as messages. Its forks copy a small process, and rho-flow's
 * own pages are never write-protected. Killing is done by pid (every child
 * leads its own process group) from rho-flow. The helper's IPC channel holds
 * the event loop only while one of its children runs.
 *
 * Lifetime: bwrap's `--die-with-parent` ties each jail to the helper; when
 * rho-flow goes away, even by SIGKILL, its pipe or channel closes and the
 * helper SIGKILLs every process group it started, then exits. `RHO_FLOW_SPAWNER=thread`
 * runs the same program on a worker thread of rho-flow instead (the previous
 * design: no fork saved, but the main thread never blocks in `spawn`); when
 * neither can start, processes are spawned on the calling thread.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { findPerl, startPerlChannel } from './perl-spawner.js';

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

/** @internal */
export type ToWorker =
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

/** @internal */
export type FromWorker =
  | { type: 'spawned'; id: number; pid: number }
  | { type: 'data'; id: number; fd: 1 | 2 | 3; chunk: Uint8Array }
  | { type: 'error'; id: number; message: string; code?: string }
  | { type: 'exit' | 'close'; id: number; code: number | null; signal: NodeJS.Signals | null };

/**
 * The spawner's program (the part shared by the thread and the process). It
 * uses only Node's own modules, loaded with `import()` so that it runs
 * whether eval'd code is CommonJS or ES module; messages wait in the port
 * until the listener is added.
 */
const CHILDREN_PROGRAM = `
  port.on('message', (m) => {
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
`;

const WORKER_SOURCE = `
(async () => {
  const { parentPort: port } = await import('node:worker_threads');
  const { spawn } = await import('node:child_process');
  const children = new Map();
  const post = (m, transfer) => port.postMessage(m, transfer);
  const relay = (id, fd) => (chunk) => {
    const copy = new Uint8Array(chunk); // exact-size copy: transferring chunk.buffer could move a shared pool
    post({ type: 'data', id, fd, chunk: copy }, [copy.buffer]);
  };
${CHILDREN_PROGRAM}
})();
`;

/**
 * The helper process: the same program over the IPC channel (advanced
 * serialization carries the `Uint8Array` chunks). When rho-flow goes away
 * (the channel closes) it kills every process group it started and exits.
 */
const PROCESS_SOURCE = `
(async () => {
  const { spawn } = await import('node:child_process');
  const children = new Map();
  const port = { on: (e, f) => process.on(e, f) };
  const post = (m) => process.send(m);
  const relay = (id, fd) => (chunk) => post({ type: 'data', id, fd, chunk: new Uint8Array(chunk) });
  // A Ctrl-C or a SIGTERM sent to rho-flow's process group must not take the jails down with the
  // helper: rho-flow cancels them itself (finally steps, grace period). The helper goes when the
  // channel closes.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => {});
  process.on('disconnect', () => {
    for (const c of children.values()) { try { process.kill(-c.pid, 'SIGKILL'); } catch {} }
    process.exit(0);
  });
${CHILDREN_PROGRAM}
})();
`;

/** What the spawner runs in: a helper process or a thread of this process. @internal */
export interface SpawnerChannel {
  post(message: ToWorker): void;
  ref(): void;
  unref(): void;
}

class Spawner {
  readonly #channel: SpawnerChannel;
  readonly #children = new Map<number, ChildEvents>();
  #nextId = 1;
  #broken: Error | undefined;

  readonly kind: HelperKind;

  constructor(kind: HelperKind) {
    this.kind = kind;
    const fail = (err: Error): void => {
      this.#broken ??= err;
      const pending = [...this.#children.values()];
      this.#children.clear();
      this.#channel.unref();
      for (const events of pending) {
        events.error(err);
        events.close(null, null);
      }
    };
    const onMessage = (m: FromWorker): void => {
      this.#onMessage(m);
    };
    if (kind === 'perl') {
      this.#channel = startPerlChannel(onMessage, fail);
      return;
    }
    if (kind === 'process') {
      const child = spawn(
        process.execPath,
        ['--max-semi-space-size=1', '--input-type=commonjs', '-e', PROCESS_SOURCE],
        { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced', env: {} },
      );
      child.on('message', onMessage);
      child.on('error', fail);
      child.on('exit', (code) => {
        fail(new Error(`the spawner process exited (code ${String(code)})`));
      });
      const unref = (): void => {
        child.unref();
        child.channel?.unref();
      };
      unref();
      this.#channel = {
        post: (m) => child.send(m),
        ref: () => {
          child.ref();
          child.channel?.ref();
        },
        unref,
      };
      return;
    }
    // No inherited node options: not the parent's --import loaders, profilers or --input-type.
    // A small young generation: the thread's garbage is the output chunks it relays, collected
    // quickly instead of piling up to the default 16 MB semi-spaces (the process's RSS stays
    // ~30 MB lower, which also makes every fork cheaper).
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      stdout: false,
      stderr: false,
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 },
    });
    worker.unref();
    worker.on('message', onMessage);
    worker.on('error', fail);
    worker.on('exit', (code) => {
      fail(new Error(`the spawner thread exited (code ${code})`));
    });
    this.#channel = {
      post: (m) => {
        worker.postMessage(m);
      },
      ref: () => worker.ref(),
      unref: () => worker.unref(),
    };
  }

  /** Set once the thread or process has died; every later `start` fails with it. */
  /** Whether it ever started a process (a helper that died before that could not run here). */
  started = false;

  get broken(): boolean {
    return this.#broken !== undefined;
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
    if (this.#children.size === 0) this.#channel.ref();
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
    this.#channel.post(message);
    return {
      destroyStreams: () => {
        if (this.#children.has(id)) this.#channel.post({ type: 'destroy', id } satisfies ToWorker);
      },
    };
  }

  #onMessage(m: FromWorker): void {
    const events = this.#children.get(m.id);
    if (!events) return;
    switch (m.type) {
      case 'spawned':
        this.started = true;
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
        if (this.#children.size === 0) this.#channel.unref();
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

/** Where `startChild` starts processes. */
export type SpawnerKind = 'perl' | 'process' | 'thread' | 'here';

type HelperKind = Exclude<SpawnerKind, 'here'>;
const spawners = new Map<HelperKind, Spawner | null>();
/** Set once a Perl helper died before starting anything: this process uses the node helper. */
let perlUnusable = false;

/**
 * `RHO_FLOW_SPAWNER` when set to a kind; otherwise the Perl helper where
 * `perl` is on PATH, else the node helper process.
 */
function defaultKind(): SpawnerKind {
  const v = process.env.RHO_FLOW_SPAWNER;
  if (v === 'perl' || v === 'process' || v === 'thread' || v === 'here') return v;
  return findPerl() !== undefined ? 'perl' : 'process';
}

function spawnerOf(kind: HelperKind): Spawner | null {
  let s = spawners.get(kind);
  // A spawner that died (its children died with it: their jobs fail as infrastructure errors) is
  // replaced by a new one for the processes started after.
  if (kind === 'perl' && (perlUnusable || (s?.broken === true && s.kind === 'perl' && !s.started))) {
    // A Perl helper that died without ever starting a process cannot run here (a perl without
    // the modules of perl-base, say): the node helper takes over for good.
    perlUnusable = true;
    return spawnerOf('process');
  }
  if (s === undefined || s?.broken) {
    try {
      s = new Spawner(kind);
    } catch {
      // Cannot start this kind here: the next one down (perl -> node helper -> this thread).
      s = kind === 'perl' ? spawnerOf('process') : null;
    }
    spawners.set(kind, s);
  }
  return s;
}

/**
 * Starts the default spawner now, so that its start overlaps other work
 * (the local backend calls it before probing bwrap). Idempotent.
 */
export function warmSpawner(): void {
  const kind = defaultKind();
  if (kind !== 'here') spawnerOf(kind);
}

/**
 * Starts a detached process (its own process group) and reports what happens
 * to it through `events`, always asynchronously. Never throws: a process that
 * cannot be started gets `error` then `close`. `where` picks the spawner
 * (default: the helper process; `here` is the calling thread, the fallback).
 */
export function startChild(
  spec: ChildSpec,
  events: ChildEvents,
  where: SpawnerKind = defaultKind(),
): ChildHandle {
  const s = where === 'here' ? null : spawnerOf(where);
  if (s) return s.start(spec, events);
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
