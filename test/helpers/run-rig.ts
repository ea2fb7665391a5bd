/**
 * A rig for end-to-end runs of the real CLI: a private directory holding the
 * workflow files, the output dir and a private TMPDIR (so the local backend's
 * workspaces can be counted), a background `rho-flow run` process that tests
 * can signal, and probes for live workspaces and leftover processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, childEnv, type CliResult } from './cli.js';

export class RunRig implements AsyncDisposable {
  readonly dir: string;
  readonly tmp: string;
  readonly out: string;
  /** A string unique to this rig, to find its processes in /proc. */
  readonly marker: string;
  readonly #children = new Set<ChildProcess>();

  private constructor(dir: string) {
    this.dir = dir;
    this.tmp = path.join(dir, 'tmp');
    this.out = path.join(dir, 'out');
    this.marker = `rfmark${randomBytes(5).toString('hex')}`;
  }

  static async create(): Promise<RunRig> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-e2e-'));
    const rig = new RunRig(dir);
    await fs.mkdir(rig.tmp);
    return rig;
  }

  /** A `sleep` whose command line is unique to this rig: `sleep 600.<digits>`. */
  sleep(seconds: number): string {
    const digits = parseInt(this.marker.slice(6, 12), 16) % 1_000_000;
    return `sleep ${seconds}.${String(digits).padStart(6, '0')}`;
  }

  async write(name: string, text: string): Promise<string> {
    const p = path.join(this.dir, name);
    await fs.mkdir(path.dirname(p), { recursive: true });
    await fs.writeFile(p, text);
    return p;
  }

  env(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
    return { TMPDIR: this.tmp, CI: '1', GITHUB_ACTIONS: undefined, ...extra };
  }

  /**
   * Starts `rho-flow <args>` in the background. `group`: in a process group
   * of its own (as a shell starts a foreground job), for `Running.killGroup`.
   */
  start(
    args: readonly string[],
    env: Record<string, string | undefined> = {},
    options: { group?: boolean } = {},
  ): Running {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: this.dir,
      env: childEnv(this.env(env)),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.group === true,
    });
    this.#children.add(child);
    return new Running(child, () => this.#children.delete(child));
  }

  /** Runs `rho-flow <args>` to completion. */
  async run(
    args: readonly string[],
    env: Record<string, string | undefined> = {},
    timeoutMs = 60_000,
  ): Promise<CliResult> {
    return this.start(args, env).result(timeoutMs);
  }

  /** Workspaces under `$TMPDIR/rho-flow/<run>/<slug>` right now (not the runs' `.owner-<pid>.json` markers). */
  workspaces(): string[] {
    return this.leftovers().filter((e) => !path.basename(e).startsWith('.') && !e.endsWith('/'));
  }

  /**
   * Everything under `$TMPDIR/rho-flow` right now: `<run>/<entry>` for each
   * entry of a run directory (workspaces, owner markers), `<run>/` for an
   * empty one. `[]` means the backend left nothing behind.
   */
  leftovers(): string[] {
    const root = path.join(this.tmp, 'rho-flow');
    const out: string[] = [];
    let runs: string[];
    try {
      runs = readdirSync(root);
    } catch {
      return out;
    }
    for (const r of runs) {
      try {
        const entries = readdirSync(path.join(root, r));
        if (entries.length === 0) out.push(`${r}/`);
        for (const s of entries) out.push(path.join(r, s));
      } catch {
        /* removed meanwhile */
      }
    }
    return out;
  }

  /** Pids of live processes whose command line contains `needle` (default: this rig's sleep). */
  processes(needle = this.sleep(0).split(' ')[1]!.slice(1)): number[] {
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
        if (cmd.includes(needle) && Number(entry) !== process.pid) pids.push(Number(entry));
      } catch {
        /* exited */
      }
    }
    return pids;
  }

  /**
   * Pids of this rig's `sleep` processes themselves (argv[0] is `sleep`): the
   * job's command is really running, so its sandbox is fully set up.
   */
  sleepers(): number[] {
    const suffix = this.sleep(0).split(' ')[1]!.slice(1);
    return this.processes(suffix).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\0');
      } catch {
        return false;
      }
    });
  }

  /** The single run directory under the output dir. */
  async runDir(): Promise<string> {
    const entries = await fs.readdir(this.out);
    if (entries.length !== 1) throw new Error(`expected one run dir, got ${entries.join(', ')}`);
    return path.join(this.out, entries[0]!);
  }

  async results(): Promise<Array<Record<string, unknown>>> {
    const text = await fs.readFile(path.join(await this.runDir(), 'results.jsonl'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // Jailed processes die with their parent; give them a moment before removing the dir.
    for (let i = 0; i < 50 && this.processes().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

export class Running {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly #exited: Promise<CliResult>;

  constructor(child: ChildProcess, onExit: () => void) {
    this.child = child;
    child.stdout?.setEncoding('utf8').on('data', (c: string) => (this.stdout += c));
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.#exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        onExit();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Signals the whole process group (what Ctrl-C in a terminal does); needs `start(…, { group: true })`. */
  killGroup(signal: NodeJS.Signals): void {
    if (this.child.pid !== undefined) process.kill(-this.child.pid, signal);
  }

  /** Resolves when the process exits; kills it (SIGKILL) after `timeoutMs`. */
  async result(timeoutMs = 60_000): Promise<CliResult> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Polls `predicate` every 25 ms until it is true or `timeoutMs` passes (then throws). */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
