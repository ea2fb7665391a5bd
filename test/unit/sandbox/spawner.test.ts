/**
 * `startChild` from the helper process (the default), the spawner thread and
 * the calling thread (the fallback): the same events, in the same order, for
 * the same processes. And the helper's lifetime: it holds the event loop only
 * while a child runs, and takes its children down when rho-flow is SIGKILLed.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { startChild, type ChildSpec, type SpawnerKind } from '../../../src/sandbox/spawner.js';
import { REPO_ROOT } from '../../helpers/cli.js';

interface Outcome {
  pid?: number;
  out: Record<1 | 2 | 3, string>;
  errors: string[];
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  close: { code: number | null; signal: NodeJS.Signals | null };
  order: string[];
}

/** Runs `spec` to its `close` event; `onPid` may act on the running process. */
function run(
  spec: Partial<ChildSpec> & { args: string[] },
  where: SpawnerKind,
  hooks: { onPid?: (pid: number) => void; onExit?: (destroy: () => void) => void } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const o: Omit<Outcome, 'close'> = { out: { 1: '', 2: '', 3: '' }, errors: [], order: [] };
    let sync = true;
    const handle = startChild(
      { file: '/bin/sh', cwd: '/', env: { PATH: '/usr/bin:/bin' }, extraPipes: false, ...spec },
      {
        spawned: (pid) => {
          expect(sync).toBe(false);
          o.pid = pid;
          o.order.push('spawned');
          hooks.onPid?.(pid);
        },
        data: (fd, chunk) => {
          o.out[fd] += chunk.toString('utf8');
        },
        error: (e) => {
          o.order.push('error');
          o.errors.push((e as NodeJS.ErrnoException).code ?? e.message);
        },
        exit: (code, signal) => {
          o.order.push('exit');
          o.exit = { code, signal };
          hooks.onExit?.(() => handle.destroyStreams());
        },
        close: (code, signal) => {
          o.order.push('close');
          resolve({ ...o, close: { code, signal } });
        },
      },
      where,
    );
    sync = false;
  });
}

const NAMES = {
  perl: 'perl helper',
  process: 'helper process',
  thread: 'spawner thread',
  here: 'calling thread',
} as const;

for (const where of ['perl', 'process', 'thread', 'here'] as const) {
  describe(`startChild (${NAMES[where]})`, () => {
    it('reports the pid, the output of each stream apart, and the exit', async () => {
      const o = await run({ args: ['-c', 'echo out; echo err >&2; exit 3'] }, where);
      expect(o.pid).toBeGreaterThan(0);
      expect(o.out[1]).toBe('out\n');
      expect(o.out[2]).toBe('err\n');
      expect(o.exit).toEqual({ code: 3, signal: null });
      expect(o.close).toEqual({ code: 3, signal: null });
      expect(o.order).toEqual(['spawned', 'exit', 'close']);
    });

    it('feeds stdin, and fd 4 to a child that echoes it to fd 3', async () => {
      const o = await run(
        {
          args: ['-c', 'cat; cat <&4 >&3'],
          stdin: 'from stdin\n',
          extraPipes: true,
          fd4Data: Buffer.from('--clearenv\0--setenv\0A\0b\0'),
        },
        where,
      );
      expect(o.out[1]).toBe('from stdin\n');
      expect(o.out[3]).toBe('--clearenv\0--setenv\0A\0b\0');
      expect(o.exit?.code).toBe(0);
    });

    it('carries stdin and output larger than a pipe buffer, byte for byte', async () => {
      // 1 MiB each way: the helper must queue what a pipe cannot take at once and split output into frames.
      const input = Buffer.alloc(1 << 20);
      for (let i = 0; i < input.length; i++) input[i] = 97 + ((i * 131 + 7) % 26);
      const o = await run(
        { args: ['-c', 'cat; head -c 300000 /dev/zero | tr "\\0" x >&2'], stdin: input },
        where,
      );
      expect(o.exit?.code).toBe(0);
      expect(o.out[1] === input.toString('latin1')).toBe(true);
      expect(o.out[2]).toBe('x'.repeat(300_000));
    });

    it('starts the child with default signal dispositions (none ignored)', async () => {
      // The helpers ignore SIGINT/SIGTERM/SIGHUP themselves; a jail must not inherit that.
      const o = await run({ args: ['-c', 'exec grep SigIgn /proc/self/status'] }, where);
      expect(o.out[1]).toBe('SigIgn:\t0000000000000000\n');
    });

    it('passes the environment and the working directory', async () => {
      const o = await run(
        { args: ['-c', 'echo "$GREETING $(pwd)"'], env: { GREETING: 'hi' }, cwd: '/tmp' },
        where,
      );
      expect(o.out[1]).toBe('hi /tmp\n');
    });

    it('starts the child in its own process group (detached)', async () => {
      const o = await run({ args: ['-c', 'ps -o pgid= -p $$'] }, where);
      expect(Number(o.out[1].trim())).toBe(o.pid);
    });

    it('reports a command that cannot start as error then close, without a pid', async () => {
      const missing = await run({ file: '/nonexistent/rho-flow-bin', args: [] }, where);
      expect(missing.pid).toBeUndefined();
      expect(missing.errors).toEqual(['ENOENT']);
      expect(missing.order).toEqual(['error', 'close']);
      const badCwd = await run({ args: ['-c', 'true'], cwd: '/nonexistent-rho-flow-dir' }, where);
      expect(badCwd.errors).toEqual(['ENOENT']);
      expect(badCwd.order.at(-1)).toBe('close');
    });

    it('can be killed by pid (the group) once spawned', async () => {
      const o = await run({ args: ['-c', 'sleep 30'] }, where, {
        onPid: (pid) => process.kill(-pid, 'SIGKILL'),
      });
      expect(o.exit).toEqual({ code: null, signal: 'SIGKILL' });
    });

    it('destroyStreams stops waiting for a straggler that holds stdout open', async () => {
      const t0 = Date.now();
      const o = await run({ args: ['-c', 'sleep 30 & echo $!'] }, where, {
        onExit: (destroy) => destroy(),
      });
      const straggler = Number(o.out[1].trim());
      expect(o.order).toEqual(['spawned', 'exit', 'close']);
      expect(Date.now() - t0).toBeLessThan(10_000);
      process.kill(straggler, 'SIGKILL');
    });
  });
}

/** Runs `code` (an ES module that may import `startChild`) in a node process, with the TS loader. */
function nodeArgs(code: string): string[] {
  return [
    '--import',
    path.join(REPO_ROOT, 'test/helpers/local-ts-loader.js'),
    '--input-type=module',
    '-e',
    code,
  ];
}

const SPAWNER = JSON.stringify(path.join(REPO_ROOT, 'src/sandbox/spawner.ts'));

/** The spawner helper processes of `kind` among `pid`'s children. */
function helpersOf(pid: number, kind: 'perl' | 'process'): number[] {
  const mark = kind === 'perl' ? '# rho-flow spawner helper' : '--input-type=commonjs';
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return ppid === pid && readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(mark);
      } catch {
        return false;
      }
    })
    .map(Number);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the default helper', () => {
  /** The command line of the process that started the child, as the child sees it. */
  async function helperCmdline(env: NodeJS.ProcessEnv): Promise<string> {
    const code = `
      import { startChild } from ${SPAWNER};
      startChild({ file: '/bin/sh', args: ['-c', 'tr "\\\\0" " " < /proc/$PPID/cmdline | head -c 200'], cwd: '/', env: {}, extraPipes: false }, {
        spawned() {}, error(e) { console.error(e); }, exit() {}, close() {},
        data(_fd, chunk) { process.stdout.write(chunk); },
      });
    `;
    const { RHO_FLOW_SPAWNER: _, ...rest } = process.env;
    const r = await promisify(execFile)(process.execPath, nodeArgs(code), {
      timeout: 20_000,
      env: { ...rest, ...env },
    });
    return r.stdout;
  }

  it('is the Perl helper where perl is on PATH', async () => {
    expect(await helperCmdline({})).toContain('# rho-flow spawner helper');
  });

  it('falls back to the node helper for good when the perl on PATH cannot run the helper', async () => {
    // A perl that exits at once (as one without perl-base's modules would): the first process
    // fails with it, every later one runs through the node helper.
    const dir = mkdtempSync(path.join(tmpdir(), 'rho-flow-fake-perl-'));
    try {
      writeFileSync(path.join(dir, 'perl'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
      const code = `
        import { startChild } from ${SPAWNER};
        const run = (args) => new Promise((resolve) => {
          let out = '';
          const errors = [];
          startChild({ file: '/bin/sh', args, cwd: '/', env: {}, extraPipes: false }, {
            spawned() {}, exit() {},
            error(e) { errors.push(e.message); },
            data(_fd, chunk) { out += chunk; },
            close(c) { resolve({ out, errors, code: c }); },
          });
        });
        const first = await run(['-c', 'echo first']);
        const results = [first];
        for (let i = 0; i < 3; i++) results.push(await run(['-c', 'tr "\\\\0" " " < /proc/$PPID/cmdline | head -c 200']));
        process.stdout.write(JSON.stringify(results));
      `;
      const { RHO_FLOW_SPAWNER: _, ...rest } = process.env;
      const r = await promisify(execFile)(process.execPath, nodeArgs(code), {
        timeout: 20_000,
        env: { ...rest, PATH: `${dir}:/usr/bin:/bin` },
      });
      const results = JSON.parse(r.stdout) as Array<{ out: string; errors: string[]; code: number | null }>;
      expect(results[0]?.errors.join(' ')).toMatch(/perl spawner exited/);
      for (const later of results.slice(1)) {
        expect(later.errors).toEqual([]);
        expect(later.code).toBe(0);
        expect(later.out).toContain('--input-type=commonjs');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is the node helper process when there is no perl', async () => {
    const out = await helperCmdline({ PATH: '/nonexistent-rho-flow-bin' });
    expect(out).toContain('--input-type=commonjs');
    expect(out).not.toContain('rho-flow spawner helper');
  });
});

describe('the spawner and the event loop', () => {
  for (const kind of ['perl', 'process', 'thread'] as const) {
    it(`keeps node alive while a child runs, and lets it exit afterwards (${NAMES[kind]})`, async () => {
      // A node process whose only pending work is one child: it must print the child's output, then exit.
      const code = `
        import { startChild } from ${SPAWNER};
        startChild({ file: '/bin/sh', args: ['-c', 'sleep 0.3; echo from-child'], cwd: '/', env: {}, extraPipes: false }, {
          spawned() {}, error(e) { console.error(e); }, exit() {},
          data(_fd, chunk) { process.stdout.write(chunk); },
          close(c) { process.stdout.write('closed ' + c + '\\n'); },
        });
      `;
      const r = await promisify(execFile)(process.execPath, nodeArgs(code), {
        timeout: 20_000,
        env: { ...process.env, RHO_FLOW_SPAWNER: kind },
      });
      expect(r.stdout).toBe('from-child\nclosed 0\n');
    });
  }

  for (const kind of ['perl', 'process'] as const) {
    it(`survives a Ctrl-C to the process group: rho-flow, not the helper, decides what to cancel (${NAMES[kind]})`, async () => {
      // The parent ignores SIGINT (as rho-flow handles it); it starts a child through the helper,
      // prints the child's pid, and waits. SIGINT to the whole group must leave the helper alive.
      const code = `
        import { startChild } from ${SPAWNER};
        process.on('SIGINT', () => {});
        startChild({ file: '/bin/sh', args: ['-c', 'echo $$; exec sleep 60'], cwd: '/', env: {}, extraPipes: false }, {
          spawned() {}, error(e) { console.error(e); }, exit() {}, close() {},
          data(_fd, chunk) { process.stdout.write(chunk); },
        });
        setInterval(() => {}, 1000);
      `;
      const child = spawn(process.execPath, nodeArgs(code), {
        detached: true,
        env: { ...process.env, RHO_FLOW_SPAWNER: kind },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.once('data', () => {
            resolve();
          });
          child.once('exit', () => {
            reject(new Error('exited early'));
          });
        });
        const helper = helpersOf(child.pid ?? 0, kind);
        expect(helper).toHaveLength(1);
        process.kill(-(child.pid ?? 0), 'SIGINT');
        await new Promise((r) => setTimeout(r, 500));
        expect(alive(child.pid ?? 0)).toBe(true);
        expect(helper.filter(alive)).toEqual(helper);
      } finally {
        child.kill('SIGKILL');
      }
    });

    it(`kills the process groups it started when rho-flow is SIGKILLed (${NAMES[kind]})`, async () => {
      // The parent starts a child that itself leaves a grandchild in its group, prints both pids, and
      // waits; we SIGKILL the parent: the helper sees its channel close and kills the whole group.
      const code = `
        import { startChild } from ${SPAWNER};
        startChild({ file: '/bin/sh', args: ['-c', 'sleep 60 & echo $$ $!; wait'], cwd: '/', env: {}, extraPipes: false }, {
          spawned() {}, error(e) { console.error(e); }, exit() {}, close() {},
          data(_fd, chunk) { process.stdout.write(chunk); },
        });
        setInterval(() => {}, 1000);
      `;
      const child = execFile(process.execPath, nodeArgs(code), {
        timeout: 20_000,
        env: { ...process.env, RHO_FLOW_SPAWNER: kind },
      });
      const pids = await new Promise<number[]>((resolve, reject) => {
        let out = '';
        child.stdout?.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('\n')) resolve(out.trim().split(/\s+/).map(Number));
        });
        child.on('exit', () => {
          reject(new Error(`exited early: ${out}`));
        });
      });
      expect(pids).toHaveLength(2);
      for (const pid of pids) expect(alive(pid)).toBe(true);
      child.kill('SIGKILL');
      const deadline = Date.now() + 5_000;
      while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(pids.filter(alive)).toEqual([]);
    });
  }
});
