/**
 * The node side of the Perl spawner's frame protocol (perl-spawner.ts). The
 * helper itself runs the behaviour tests of spawner.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from '../../../src/sandbox/perl-spawner.js';
import type { FromWorker } from '../../../src/sandbox/spawner.js';

/** Builds an output frame as the helper writes it: u32 length, then `a N ...`. */
function frame(type: string, id: number, rest: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeUInt32BE(id, 1);
  const body = Buffer.concat([head, rest]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}
const str = (s: string): Buffer => {
  const b = Buffer.from(s);
  const n = Buffer.alloc(4);
  n.writeUInt32BE(b.length);
  return Buffer.concat([n, b]);
};
const i32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
};

describe('FrameDecoder', () => {
  const stream = Buffer.concat([
    frame('P', 7, Buffer.from([0, 0, 0x30, 0x39])),
    frame('O', 7, Buffer.concat([Buffer.from([2]), Buffer.from('héllo')])),
    frame('E', 8, Buffer.concat([str('spawn /x ENOENT'), str('ENOENT')])),
    frame('X', 7, Buffer.concat([i32(-1), str('SIGKILL')])),
    frame('C', 7, Buffer.concat([i32(3), str('')])),
  ]);
  const expected: FromWorker[] = [
    { type: 'spawned', id: 7, pid: 12345 },
    { type: 'data', id: 7, fd: 2, chunk: new Uint8Array(Buffer.from('héllo')) },
    { type: 'error', id: 8, message: 'spawn /x ENOENT', code: 'ENOENT' },
    { type: 'exit', id: 7, code: null, signal: 'SIGKILL' },
    { type: 'close', id: 7, code: 3, signal: null },
  ];

  it('decodes every message type', () => {
    const got: FromWorker[] = [];
    new FrameDecoder().push(stream, (m) => got.push(m));
    expect(got).toEqual(expected);
  });

  it('reassembles frames split at any byte', () => {
    for (const size of [1, 2, 3, 5, 7, 13]) {
      const got: FromWorker[] = [];
      const d = new FrameDecoder();
      for (let at = 0; at < stream.length; at += size)
        d.push(stream.subarray(at, at + size), (m) => got.push(m));
      expect(got).toEqual(expected);
    }
  });

  it('refuses an unknown frame type', () => {
    expect(() => {
      new FrameDecoder().push(frame('Z', 1, Buffer.alloc(0)), () => undefined);
    }).toThrow(/unknown frame/);
  });
});

describe('encodeFrame', () => {
  it('encodes a spawn as the Perl side unpacks it', () => {
    const f = encodeFrame({
      type: 'spawn',
      id: 3,
      file: '/bin/sh',
      args: ['-c', 'true'],
      cwd: '/',
      env: { A: 'b=c' },
      extraPipes: true,
      fd4Data: new Uint8Array([1, 2]),
    });
    expect(f.readUInt32BE(0)).toBe(f.length - 4);
    expect(f.toString('latin1', 4, 5)).toBe('S');
    expect(f.readUInt32BE(5)).toBe(3);
    const text = f.toString('latin1');
    expect(text).toContain('-c\0true');
    expect(text).toContain('A=b=c');
    const flags = f[9 + 4 + '/bin/sh'.length + 4 + '/'.length];
    expect(flags).toBe(1 | 4);
  });

  it('refuses a NUL byte inside an argument or the environment, as spawn does', () => {
    const base = { type: 'spawn', id: 1, file: '/bin/sh', cwd: '/', extraPipes: false } as const;
    expect(() => encodeFrame({ ...base, args: ['a\0b'], env: {} })).toThrow(/NUL/);
    expect(() => encodeFrame({ ...base, args: [], env: { A: 'x\0y' } })).toThrow(/NUL/);
  });
});
