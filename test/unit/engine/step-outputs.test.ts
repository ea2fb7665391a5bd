import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  OutputTrailerSplitter,
  newTrailerMarker,
  parseStepOutputs,
  shellQuote,
  splitTrailer,
  wrapRunScript,
} from '../../../src/engine/step-outputs.js';

const run = promisify(execFile);

async function bash(
  script: string,
  env: Record<string, string> = { PATH: process.env.PATH ?? '' },
): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run('bash', ['-c', script], { env });
    return { stdout, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; code: number };
    return { stdout: err.stdout, code: err.code };
  }
}

describe('parseStepOutputs', () => {
  it('reads name=value lines and heredoc blocks; later values win', () => {
    const { outputs, problems } = parseStepOutputs('a=1\nb=x=y\nmulti<<EOF\nline 1\nline 2\nEOF\na=2\n');
    expect(outputs).toEqual({ a: '2', b: 'x=y', multi: 'line 1\nline 2' });
    expect(problems).toEqual([]);
  });

  it('reports malformed lines and unclosed blocks without failing', () => {
    const { outputs, problems } = parseStepOutputs('no equals here\n=x\nok=1\nm<<END\nabc\n');
    expect(outputs).toEqual({ ok: '1', m: 'abc\n' });
    expect(problems).toHaveLength(3);
    expect(problems[2]).toContain("missing closing delimiter 'END'");
  });
});

describe('shellQuote', () => {
  it('round-trips quotes through bash', async () => {
    const nasty = `it's "quoted" $HOME \`x\` \\ done`;
    const { stdout } = await bash(`printf %s ${shellQuote(nasty)}`);
    expect(stdout).toBe(nasty);
  });
});

describe('wrapRunScript', () => {
  it('runs with -eo pipefail, keeps the exit code, and returns outputs behind the marker', async () => {
    const marker = newTrailerMarker();
    const script = 'echo hello\necho "answer=42" >> "$RHO_FLOW_OUTPUT"';
    const { stdout, code } = await bash(wrapRunScript(script, marker));
    expect(code).toBe(0);
    const split = splitTrailer(stdout, marker);
    expect(split.stdout).toBe('hello\n');
    expect(parseStepOutputs(split.trailer ?? '').outputs).toEqual({ answer: '42' });
  });

  it('stops at the first failing command (errexit) and a failing pipeline (pipefail)', async () => {
    const marker = newTrailerMarker();
    const r1 = await bash(wrapRunScript('echo one\nfalse\necho two', marker));
    expect(r1.code).toBe(1);
    expect(splitTrailer(r1.stdout, marker).stdout).toBe('one\n');
    const r2 = await bash(wrapRunScript('false | cat\necho unreachable', marker));
    expect(r2.code).toBe(1);
    expect(r2.stdout).not.toContain('unreachable');
  });

  it('survives scripts with quotes, parentheses and an explicit exit', async () => {
    const marker = newTrailerMarker();
    const script = `case x in x) echo "it's (ok)";; esac\necho "k=v" >> $RHO_FLOW_OUTPUT\nexit 3`;
    const { stdout, code } = await bash(wrapRunScript(script, marker));
    expect(code).toBe(3);
    const split = splitTrailer(stdout, marker);
    expect(split.stdout).toBe("it's (ok)\n");
    expect(parseStepOutputs(split.trailer ?? '').outputs).toEqual({ k: 'v' });
  });
});

describe('wrapRunScript process count and temp file', () => {
  it('needs no program but bash and rm (builtins instead of mktemp and cat), and removes its file', async () => {
    const bin = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
    try {
      for (const tool of ['bash', 'rm']) {
        const { stdout: where } = await run('bash', ['-c', `command -v ${tool}`]);
        await fs.symlink(where.trim(), path.join(bin, tool));
      }
      const tmp = path.join(bin, 'tmp');
      await fs.mkdir(tmp);
      const marker = newTrailerMarker();
      const script = 'echo "a=1" >> "$RHO_FLOW_OUTPUT"\nprintf \'b<<E\\nx\\nE\' >> "$RHO_FLOW_OUTPUT"';
      const { stdout, code } = await bash(wrapRunScript(script, marker), { PATH: bin, TMPDIR: tmp });
      expect(code).toBe(0);
      expect(parseStepOutputs(splitTrailer(stdout, marker).trailer ?? '').outputs).toEqual({
        a: '1',
        b: 'x',
      });
      expect(await fs.readdir(tmp)).toEqual([]);
    } finally {
      await fs.rm(bin, { recursive: true, force: true });
    }
  });

  it('exits 97 when no outputs file can be created', async () => {
    const { code } = await bash(wrapRunScript('echo never', newTrailerMarker()), {
      PATH: process.env.PATH ?? '',
      TMPDIR: '/nonexistent-rho-flow-dir',
    });
    expect(code).toBe(97);
  });
});

describe('OutputTrailerSplitter', () => {
  it('passes text through and stops at the marker even when it is split across chunks', () => {
    const marker = 'MARK';
    const full = 'line 1\nline 2\n\nMARK\nx=1\n';
    for (let size = 1; size <= full.length; size++) {
      const seen: string[] = [];
      const s = new OutputTrailerSplitter(marker, (t) => seen.push(t));
      for (let i = 0; i < full.length; i += size) s.push(full.slice(i, i + size));
      s.end();
      expect(seen.join('')).toBe('line 1\nline 2\n');
      expect(s.trailer).toBe('x=1\n');
    }
  });

  it('flushes everything when no marker arrives', () => {
    const seen: string[] = [];
    const s = new OutputTrailerSplitter('MARK', (t) => seen.push(t));
    s.push('partial\nMA');
    s.end();
    expect(seen.join('')).toBe('partial\nMA');
    expect(s.trailer).toBeUndefined();
  });
});
