/** read / write / edit / list against a real local sandbox. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOOLS } from '../../../../src/agent/tools/index.js';
import { toolErrorToText } from '../../../../src/agent/tools/tool.js';
import { SandboxError } from '../../../../src/errors.js';
import { ctx, openSandbox, PROFILES, type SandboxRig } from './sandbox-rig.js';

let rig: SandboxRig;
beforeAll(async () => {
  rig = await openSandbox();
});
afterAll(async () => {
  await rig.close();
});

const text = async (p: string): Promise<string> => (await rig.sandbox.readFile(p)).toString('utf8');

describe('read', () => {
  it('returns numbered lines, a range, and says what it left out', async () => {
    await rig.sandbox.writeFile(
      'r/lines.txt',
      Array.from({ length: 600 }, (_, i) => `row ${i + 1}`).join('\n') + '\n',
    );
    const all = await TOOLS.read.run({ path: 'r/lines.txt' }, ctx(rig.sandbox));
    expect(all.status).toBe('ok');
    const lines = all.output.split('\n');
    expect(lines[0]).toBe('     1  row 1');
    expect(lines[499]).toBe('   500  row 500');
    expect(all.output).toContain('[Showing lines 1-500 of 600]');

    const range = await TOOLS.read.run(
      { path: '/work/r/lines.txt', start_line: 598, end_line: 700 },
      ctx(rig.sandbox),
    );
    expect(range.output).toBe('   598  row 598\n   599  row 599\n   600  row 600');
  });

  it('cuts very long lines', async () => {
    await rig.sandbox.writeFile('r/long.txt', 'x'.repeat(2000));
    const r = await TOOLS.read.run({ path: 'r/long.txt' }, ctx(rig.sandbox));
    expect(r.output).toBe(`     1  ${'x'.repeat(500)}...`);
  });

  it('reports missing files, directories, binaries and out-of-range starts as errors', async () => {
    await rig.sandbox.writeFile('r/blob.dat', Buffer.from([1, 2, 3]));
    await rig.sandbox.writeFile('r/nul.txt', Buffer.from('a\0b'));
    const c = ctx(rig.sandbox);
    expect(await TOOLS.read.run({ path: 'r/nope.txt' }, c)).toEqual({
      status: 'error',
      output: 'File not found: /work/r/nope.txt',
    });
    expect((await TOOLS.read.run({ path: 'r' }, c)).output).toMatch(/^Not a file: \/work\/r is a directory/);
    expect((await TOOLS.read.run({ path: 'r/blob.dat' }, c)).output).toMatch(/^Cannot read binary file/);
    expect((await TOOLS.read.run({ path: 'r/nul.txt' }, c)).output).toMatch(/NUL bytes/);
    expect((await TOOLS.read.run({ path: 'r/long.txt', start_line: 5 }, c)).output).toBe(
      'Start line 5 exceeds file length (1 lines)',
    );
  });

  it('never leaves the sandbox: an escape is an agent-facing error (the loop turns it into text)', async () => {
    const escape = TOOLS.read.run({ path: '../../../../../../etc/passwd' }, ctx(rig.sandbox));
    const err: unknown = await escape.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SandboxError);
    expect((err as SandboxError).code).toBe('path-escape');
    expect(toolErrorToText(err)).toMatch(/^Error: path is outside the sandbox/);
  });
});

describe('write', () => {
  it('creates files with parent directories and overwrites them under full file_write', async () => {
    const c = ctx(rig.sandbox);
    const r1 = await TOOLS.write.run({ path: 'w/deep/new.txt', content: 'one\ntwo\n' }, c);
    expect(r1).toEqual({ status: 'ok', output: 'Created /work/w/deep/new.txt (8 bytes, 2 lines)' });
    const r2 = await TOOLS.write.run({ path: '/work/w/deep/new.txt', content: 'three' }, c);
    expect(r2.output).toBe('Overwrote /work/w/deep/new.txt (5 bytes, 1 lines)');
    expect(await text('w/deep/new.txt')).toBe('three');
  });

  it('keeps the mode of an overwritten file', async () => {
    await rig.sandbox.writeFile('w/run.sh', '#!/bin/sh\necho a\n', { mode: 0o755 });
    await TOOLS.write.run({ path: 'w/run.sh', content: '#!/bin/sh\necho b\n' }, ctx(rig.sandbox));
    expect((await rig.sandbox.stat('w/run.sh'))?.mode).toBe(0o755);
    expect((await rig.sandbox.exec('./w/run.sh')).stdout).toBe('b\n');
  });

  it('create-only creates new files but refuses to overwrite', async () => {
    const c = ctx(rig.sandbox, PROFILES.createOnly);
    expect((await TOOLS.write.run({ path: 'w/co.txt', content: 'first' }, c)).status).toBe('ok');
    const again = await TOOLS.write.run({ path: 'w/co.txt', content: 'second' }, c);
    expect(again.status).toBe('refused');
    expect(again.output).toMatch(/^File already exists: \/work\/w\/co.txt/);
    expect(await text('w/co.txt')).toBe('first');
  });

  it('refuses to write over a directory', async () => {
    const r = await TOOLS.write.run({ path: 'w', content: 'x' }, ctx(rig.sandbox));
    expect(r).toEqual({ status: 'error', output: 'Cannot write /work/w: it is a directory' });
  });
});

describe('edit', () => {
  it('edits a unique match in place and keeps the file mode', async () => {
    await rig.sandbox.writeFile('e/a.py', 'def f():\n    return 1\n', { mode: 0o750 });
    const r = await TOOLS.edit.run(
      { path: 'e/a.py', old_string: 'return 1', new_string: 'return 2' },
      ctx(rig.sandbox),
    );
    expect(r).toEqual({ status: 'ok', output: 'Edited /work/e/a.py: exact match' });
    expect(await text('e/a.py')).toBe('def f():\n    return 2\n');
    expect((await rig.sandbox.stat('e/a.py'))?.mode).toBe(0o750);
  });

  it('leaves the file untouched when the match is ambiguous or absent', async () => {
    await rig.sandbox.writeFile('e/b.txt', 'x = 1\nx = 1\n');
    const c = ctx(rig.sandbox);
    const amb = await TOOLS.edit.run({ path: 'e/b.txt', old_string: 'x = 1', new_string: 'x = 2' }, c);
    expect(amb.status).toBe('error');
    expect(amb.output).toContain('appears 2 times');
    const none = await TOOLS.edit.run({ path: 'e/b.txt', old_string: 'y = 1', new_string: 'y = 2' }, c);
    expect(none.output).toContain('old_string not found');
    expect(await text('e/b.txt')).toBe('x = 1\nx = 1\n');
    expect((await TOOLS.edit.run({ path: 'e/zz.txt', old_string: 'a', new_string: 'b' }, c)).output).toBe(
      'File not found: /work/e/zz.txt',
    );
  });

  it('uses the whitespace-tolerant fallback', async () => {
    await rig.sandbox.writeFile('e/c.py', 'if x:\n\tcall(a,  b)   \n');
    const r = await TOOLS.edit.run(
      { path: 'e/c.py', old_string: 'call(a, b)', new_string: 'call(b, a)' },
      ctx(rig.sandbox),
    );
    expect(r.output).toBe('Edited /work/e/c.py: whitespace-flexible match at line 2');
    expect(await text('e/c.py')).toBe('if x:\n\tcall(b, a)\n');
  });

  it('refuses files too large to rewrite', async () => {
    await rig.sandbox.exec('mkdir -p e && truncate -s 11M e/huge.bin');
    const r = await TOOLS.edit.run(
      { path: 'e/huge.bin', old_string: 'a', new_string: 'b' },
      ctx(rig.sandbox),
    );
    expect(r.output).toMatch(/^File too large to edit \(11534336 bytes/);
  });

  it('is refused under create-only (it modifies an existing file)', async () => {
    await rig.sandbox.writeFile('e/d.txt', 'keep');
    const r = await TOOLS.edit.run(
      { path: 'e/d.txt', old_string: 'keep', new_string: 'lost' },
      ctx(rig.sandbox, PROFILES.createOnly),
    );
    expect(r.status).toBe('refused');
    expect(await text('e/d.txt')).toBe('keep');
  });
});

describe('list', () => {
  beforeAll(async () => {
    await rig.sandbox.writeFile('l/b.txt', 'bb');
    await rig.sandbox.writeFile('l/a/inner.txt', 'i');
    await rig.sandbox.writeFile('l/a/deeper/x.txt', 'x');
    await rig.sandbox.writeFile('l/.hidden', 'h');
  });

  it('lists flat, directories first, without hidden files by default', async () => {
    const r = await TOOLS.list.run({ path: 'l' }, ctx(rig.sandbox));
    const rows = r.output.split('\n');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^drwx[-rwx]{6}\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+a\/$/);
    expect(rows[1]).toMatch(/^-rw[-rwx]{7}\s+2B\s+.*\sb\.txt$/);
    const hidden = await TOOLS.list.run({ path: 'l', show_hidden: true }, ctx(rig.sandbox));
    expect(hidden.output).toContain('.hidden');
  });

  it('draws a tree with recursive, bounded by max_depth', async () => {
    const r = await TOOLS.list.run({ path: '/work/l', recursive: true }, ctx(rig.sandbox));
    expect(r.output).toBe(
      [
        '/work/l/',
        '├── a/',
        '│   ├── deeper/',
        '│   │   └── x.txt (1B)',
        '│   └── inner.txt (1B)',
        '└── b.txt (2B)',
      ].join('\n'),
    );
    const shallow = await TOOLS.list.run({ path: 'l', recursive: true, max_depth: 1 }, ctx(rig.sandbox));
    expect(shallow.output).not.toContain('inner.txt');
  });

  it('reports missing directories and files', async () => {
    expect((await TOOLS.list.run({ path: 'nope' }, ctx(rig.sandbox))).output).toBe(
      'Directory not found: /work/nope',
    );
    expect((await TOOLS.list.run({ path: 'l/b.txt' }, ctx(rig.sandbox))).output).toBe(
      'Not a directory: /work/l/b.txt',
    );
  });

  it('caps the listing at 200 entries', async () => {
    await rig.sandbox.exec('mkdir -p many && cd many && for i in $(seq 1 250); do : > f$i; done');
    const r = await TOOLS.list.run({ path: 'many' }, ctx(rig.sandbox));
    expect(r.output.split('\n').filter((l) => /\sf\d+$/.test(l))).toHaveLength(200);
    expect(r.output).toContain('[Truncated at 200 entries]');
  });
});
