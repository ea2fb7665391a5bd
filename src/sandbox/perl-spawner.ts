/**
 * The spawner helper as a Perl process (the default where `perl` exists:
 * Debian's `perl-base` is essential, so every Debian and Ubuntu has it).
 *
 * Why not node: the node helper (`spawner.ts`) costs 2.5–2.8 ms of CPU per
 * jail — a `ChildProcess`, five stream objects and their sockets, and a
 * serialized IPC message per event — on a two-core machine where the jails
 * themselves need ~10 ms (issue 7, target 1). The Perl program
 * (`perl-spawner-source.ts`) forks, `dup2`s and `exec`s with a handful of
 * syscalls and relays output in binary frames; it starts in ~10 ms and takes
 * ~5 MB instead of ~40.
 *
 * This module is the node side: it finds `perl`, starts the program, and
 * translates between the spawner's messages and the frames.
 */
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { findOnPath } from '../util/find-executable.js';
import { PERL_SPAWNER_SOURCE } from './perl-spawner-source.js';
import type { FromWorker, SpawnerChannel, ToWorker } from './spawner.js';

let perlPath: string | null | undefined;

/** The first executable `perl` on `PATH` (memoized); `undefined` when there is none. */
export function findPerl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (perlPath === undefined) perlPath = findOnPath('perl', env.PATH ?? '/usr/bin:/bin') ?? null;
  return perlPath ?? undefined;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
};
/** `N/a*`: a length-prefixed byte string. */
const field = (data: string | Uint8Array): Buffer[] => {
  const b =
    typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return [u32(b.length), b];
};

/** Encodes one message as a frame; throws on a NUL inside an argument or the environment (as `spawn` does). */
export function encodeFrame(m: ToWorker): Buffer {
  if (m.type === 'destroy') return Buffer.concat([u32(5), Buffer.from('D'), u32(m.id)]);
  const env = Object.entries(m.env).map(([k, v]) => `${k}=${v}`);
  for (const s of [m.file, m.cwd, ...m.args, ...env]) {
    if (s.includes('\0'))
      throw Object.assign(new TypeError('an argument or variable contains a NUL byte'), {
        code: 'ERR_INVALID_ARG_VALUE',
      });
  }
  const flags = (m.extraPipes ? 1 : 0) | (m.stdin ? 2 : 0) | (m.fd4Data ? 4 : 0);
  const body = Buffer.concat([
    Buffer.from('S'),
    u32(m.id),
    ...field(m.file),
    ...field(m.cwd),
    Buffer.from([flags]),
    ...field(m.args.join('\0')),
    ...field(env.join('\0')),
    ...field(m.fd4Data ?? ''),
    ...field(m.stdin ?? ''),
  ]);
  return Buffer.concat([u32(body.length), body]);
}

/** Splits a stream of frames into messages; keeps a partial frame for the next chunk. */
export class FrameDecoder {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, emit: (m: FromWorker) => void): void {
    let buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      emit(decode(buf.subarray(4, 4 + len)));
      buf = buf.subarray(4 + len);
    }
    // A copy, so a retained tail does not pin the whole chunk it came in.
    this.#pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
  }
}

function decode(f: Buffer): FromWorker {
  const type = String.fromCharCode(f[0] ?? 0);
  const id = f.readUInt32BE(1);
  const str = (at: number): [string, number] => {
    const n = f.readUInt32BE(at);
    return [f.toString('utf8', at + 4, at + 4 + n), at + 4 + n];
  };
  switch (type) {
    case 'P':
      return { type: 'spawned', id, pid: f.readUInt32BE(5) };
    case 'O': {
      const fd = f[5] as 1 | 2 | 3;
      // An exact copy: the frame's buffer is the helper's whole read chunk.
      return { type: 'data', id, fd, chunk: new Uint8Array(f.subarray(6)) };
    }
    case 'E': {
      const [message, next] = str(5);
      const [code] = str(next);
      return { type: 'error', id, message, ...(code !== '' ? { code } : {}) };
    }
    case 'X':
    case 'C': {
      const code = f.readInt32BE(5);
      const [signal] = str(9);
      return {
        type: type === 'X' ? 'exit' : 'close',
        id,
        code: code < 0 ? null : code,
        signal: signal === '' ? null : (signal as NodeJS.Signals),
      };
    }
    default:
      throw new Error(`the perl spawner sent an unknown frame ${JSON.stringify(type)}`);
  }
}

/**
 * Starts the Perl helper. `onMessage` gets its messages; `fail` is called once
 * it is gone (or could not start). Throws when there is no `perl`.
 */
export function startPerlChannel(
  onMessage: (m: FromWorker) => void,
  fail: (err: Error) => void,
): SpawnerChannel {
  const perl = findPerl();
  if (perl === undefined) throw new Error('perl not found on PATH');
  const child = spawn(perl, ['-e', PERL_SPAWNER_SOURCE], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
  const decoder = new FrameDecoder();
  child.stdout.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk, onMessage);
    } catch (e) {
      fail(e instanceof Error ? e : new Error(String(e)));
      child.kill('SIGKILL');
    }
  });
  child.stdin.on('error', () => undefined); // EPIPE once the helper has died: its exit reports it
  child.on('error', fail);
  child.on('exit', (code, signal) => {
    fail(new Error(`the perl spawner exited (${signal ?? `code ${String(code)}`})`));
  });
  const pipes = [child.stdout, child.stdin] as unknown as Socket[];
  const unref = (): void => {
    child.unref();
    for (const p of pipes) p.unref();
  };
  unref();
  return {
    post: (m) => {
      let frame: Buffer;
      try {
        frame = encodeFrame(m);
      } catch (e) {
        const err = e as Error & { code?: string };
        queueMicrotask(() => {
          onMessage({
            type: 'error',
            id: m.id,
            message: err.message,
            ...(err.code ? { code: err.code } : {}),
          });
          onMessage({ type: 'close', id: m.id, code: null, signal: null });
        });
        return;
      }
      child.stdin.write(frame);
    },
    ref: () => {
      child.ref();
      for (const p of pipes) p.ref();
    },
    unref,
  };
}
