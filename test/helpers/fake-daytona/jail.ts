/**
 * Runs a `process/execute` command for real, as the Daytona daemon does
 * (newest daemons: the command line is fed to bash on stdin, in its own
 * process group, stdout+stderr combined; on timeout the group is killed and
 * the answer is 408).
 *
 * Path mapping: each fake sandbox is a host directory `root` standing in for
 * the sandbox's `/`. Commands run in a bubblewrap jail where `root` is bound
 * read-write at `/` and the host's `/usr`, `/etc`, `/opt` (and the `/bin`,
 * `/lib*` symlinks) are mounted read-only on top, so a realistic command like
 * `cd /work && tar -xf /tmp/x.tar` sees exactly what the file endpoints see
 * (they translate every sandbox path `P` to `root/P`). No PID namespace:
 * pids are shared across commands of a sandbox, as in a real sandbox, so a
 * second command can kill the first one's process group. It is a test
 * double of the daemon, not a security boundary.
 *
 * Every process of a sandbox carries `FAKE_DAYTONA_SANDBOX=<id>` in its
 * environment, which is how the fake finds and kills them on delete/close.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';

const SYSTEM_DIRS = ['usr', 'etc', 'opt'];
const MAYBE_LINKS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

let bwrapChecked: boolean | undefined;

/** Throws unless bubblewrap works here (the fake needs it for path mapping). */
export function assertBwrap(): void {
  if (bwrapChecked === undefined) {
    const r = spawnSync('bwrap', ['--ro-bind', '/', '/', '--dev', '/dev', 'true'], { stdio: 'ignore' });
    bwrapChecked = r.status === 0;
  }
  if (!bwrapChecked) {
    throw new Error(
      'the fake Daytona server runs commands in bubblewrap (bwrap), which is missing or not usable here',
    );
  }
}

function systemMounts(root: string, hidden: readonly string[]): string[] {
  const args: string[] = [];
  for (const d of SYSTEM_DIRS) if (existsSync(`/${d}`)) args.push('--ro-bind', `/${d}`, `/${d}`);
  for (const d of MAYBE_LINKS) {
    const p = `/${d}`;
    if (!existsSync(p)) continue;
    const st = lstatSync(p);
    // bwrap creates the link inside `root` (which is bound rw), so it exists from the second command on.
    if (st.isSymbolicLink()) {
      if (!existsSync(`${root}${p}`) && !isLink(`${root}${p}`)) args.push('--symlink', readlinkSync(p), p);
    } else if (st.isDirectory()) args.push('--ro-bind', p, p);
  }
  for (const cmd of hidden) {
    for (const dir of ['/usr/local/bin', '/usr/bin', '/usr/sbin', '/usr/local/sbin', '/opt/bin']) {
      if (existsSync(`${dir}/${cmd}`)) args.push('--ro-bind', '/dev/null', `${dir}/${cmd}`);
    }
  }
  return args;
}

export interface JailExecRequest {
  command: string;
  /** Absolute sandbox path. */
  cwd: string;
  env: Record<string, string>;
  /** Seconds; 0/undefined = no limit. */
  timeout?: number;
}

/**
 * How older daemons (≤ v0.190) read the command line: split on spaces, quotes
 * group but do not nest or escape, no shell. Kept to prove our command
 * encoding means the same under both daemon generations.
 */
export function parseDaemonArgv(command: string): string[] {
  const args: string[] = [];
  let current = '';
  let quote = '';
  for (const ch of command) {
    if ((ch === '"' || ch === "'") && (quote === '' || quote === ch)) {
      quote = quote === '' ? ch : '';
    } else if (ch === ' ' && quote === '') {
      if (current) args.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (current) args.push(current);
  return args;
}

export type JailExecResult = { timedOut: false; exitCode: number; output: string } | { timedOut: true };

/** Runs `req.command` in the jail of sandbox `id` rooted at `root`. */
export function jailExec(
  id: string,
  root: string,
  req: JailExecRequest,
  options: { hidden: readonly string[]; networkOff: boolean; argv: boolean },
): { result: Promise<JailExecResult>; kill: () => void } {
  const args = [
    '--bind',
    root,
    '/',
    ...systemMounts(root, options.hidden),
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--die-with-parent',
    ...(options.networkOff ? ['--unshare-net'] : []),
    '--chdir',
    req.cwd,
    ...(options.argv ? ['--', ...parseDaemonArgv(req.command)] : ['bash']),
  ];
  const child = spawn('bwrap', args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
    env: { ...req.env, FAKE_DAYTONA_SANDBOX: id },
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.on('data', (c: Buffer) => chunks.push(c));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.argv ? '' : req.command.endsWith('\n') ? req.command : `${req.command}\n`);
  const kill = (): void => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  let timedOut = false;
  const timer =
    req.timeout && req.timeout > 0
      ? setTimeout(() => {
          timedOut = true;
          kill();
        }, req.timeout * 1000)
      : undefined;
  const result = new Promise<JailExecResult>((resolve) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ timedOut: false, exitCode: -1, output: err.message });
    });
    // 'close' (not 'exit'): like Go's Wait, the answer waits for the output pipes to close.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) resolve({ timedOut: true });
      else
        resolve({
          timedOut: false,
          exitCode: code ?? (signal ? 128 + 9 : -1),
          output: Buffer.concat(chunks).toString('utf8'),
        });
    });
  });
  return { result, kill };
}

/** SIGKILLs every process whose environment marks it as belonging to sandbox `id`. */
export async function killSandboxProcesses(id: string): Promise<number> {
  const marker = `FAKE_DAYTONA_SANDBOX=${id}\0`;
  let killed = 0;
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = await fs.readFile(`/proc/${entry}/environ`, 'utf8');
    } catch {
      continue;
    }
    if (!environ.includes(marker)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}
