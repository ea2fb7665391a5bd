/**
 * Test rig for the local backend: a private TMPDIR, a `LocalBackend` rooted
 * in it, unique job slugs, and teardown of every sandbox it made plus the
 * temp dir (`await using rig = await LocalRig.create()`).
 */
import { randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalBackend } from '../../src/sandbox/local.js';
import type { LocalSandbox } from '../../src/sandbox/local-sandbox.js';
import type { BackendOptions, SandboxSpec } from '../../src/sandbox/sandbox.js';

let counter = 0;

export class LocalRig implements AsyncDisposable {
  readonly tmp: string;
  readonly backend: LocalBackend;
  readonly warnings: string[];
  readonly runId: string;
  readonly #sandboxes: LocalSandbox[] = [];

  private constructor(tmp: string, backend: LocalBackend, warnings: string[]) {
    this.tmp = tmp;
    this.backend = backend;
    this.warnings = warnings;
    this.runId = `test-run-${process.pid}-${++counter}`;
  }

  /** `env` is added to `{ TMPDIR: <private dir>, PATH }`. */
  static async create(
    options: { isolation?: BackendOptions['isolation']; env?: Record<string, string> } = {},
  ): Promise<LocalRig> {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
    const warnings: string[] = [];
    const backend = new LocalBackend({
      isolation: options.isolation ?? 'auto',
      warn: (m) => warnings.push(m),
      env: { TMPDIR: tmp, PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    });
    return new LocalRig(tmp, backend, warnings);
  }

  spec(overrides: Partial<SandboxSpec> = {}): SandboxSpec {
    const n = ++counter;
    return {
      runId: this.runId,
      jobId: `job-${n}`,
      jobSlug: `job-${n}`,
      attempt: 1,
      workingDir: '/work',
      network: 'off',
      env: {},
      ...overrides,
    };
  }

  async sandbox(overrides: Partial<SandboxSpec> = {}): Promise<LocalSandbox> {
    const sb = await this.backend.create(this.spec(overrides));
    this.#sandboxes.push(sb);
    return sb;
  }

  /** A directory outside every workspace (for escape targets and download destinations). */
  async dir(name: string): Promise<string> {
    const d = path.join(this.tmp, name);
    await fs.mkdir(d, { recursive: true });
    return d;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.allSettled(this.#sandboxes.map((s) => s.dispose()));
    await this.backend.close();
    await fs.rm(this.tmp, { recursive: true, force: true });
  }
}

/** pids of host processes whose command line contains `marker` (excluding this process). */
export async function processesWith(marker: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = (await fs.readFile(`/proc/${name}/cmdline`)).toString('utf8').replace(/\0/g, ' ');
      if (cmd.includes(marker)) pids.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Polls `check` every 25 ms until it returns true or `timeoutMs` passes; returns the last verdict. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A unique `sleep` duration to find a command's processes in `/proc` (e.g. `sleep 600.123456789`). */
export function uniqueSleep(): string {
  return `600.${String(++counter).padStart(4, '0')}${String(randomInt(1e9)).padStart(9, '0')}`;
}
