/**
 * Drives the CLI in tests, two ways:
 * - `runBin(args, options)`: spawns the real `node bin/rho-flow.js …` (needs
 *   `npm run build`), with its own cwd/env, and collects stdout, stderr and
 *   the exit code. The child is killed if it outlives `timeoutMs`.
 * - `runInProcess(argv, options)`: calls `runCli` with in-memory streams
 *   (fast; for option parsing and output formatting).
 * Colour is off unless the test asks for it (`NO_COLOR=1`, no `FORCE_COLOR`),
 * so output can be compared as plain text.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/program.js';
import type { CliIo, TextSink } from '../../src/cli/io.js';

/** Absolute path of the repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Absolute path of `bin/rho-flow.js`. */
export const BIN = fileURLToPath(new URL('../../bin/rho-flow.js', import.meta.url));

export interface CliResult {
  /** Exit code; `null` when the process was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunBinOptions {
  cwd?: string;
  /** Merged over the test process's env; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Extra `node` flags before the script (e.g. `--import`). */
  nodeArgs?: string[];
  /** Written to the child's stdin, which is then closed. */
  input?: string;
  /** Kill (SIGKILL) after this long; default 20 s. */
  timeoutMs?: number;
}

/** The environment for a child: the test's env without colour variables, plus `overrides`. */
export function childEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const merged: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: '1',
    FORCE_COLOR: undefined,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined));
}

/** Spawns `node [nodeArgs] bin/rho-flow.js args…` and resolves when it exits. */
export function runBin(args: readonly string[], options: RunBinOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: childEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A `TextSink` that keeps what is written. */
export class BufferSink implements TextSink {
  text = '';
  readonly isTTY: boolean;
  constructor(isTTY = false) {
    this.isTTY = isTTY;
  }
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

export interface InProcessOptions {
  cwd?: string;
  /** The whole environment the CLI sees (default: `{}`). */
  env?: Record<string, string | undefined>;
  /** Pretend the streams are terminals. */
  tty?: boolean;
}

/** Runs `runCli` in this process with buffer streams. */
export async function runInProcess(
  argv: readonly string[],
  options: InProcessOptions = {},
): Promise<CliResult> {
  const stdout = new BufferSink(options.tty);
  const stderr = new BufferSink(options.tty);
  const io: CliIo = { stdout, stderr, env: options.env ?? {}, cwd: options.cwd ?? REPO_ROOT };
  const code = await runCli(argv, io);
  return { code, signal: null, stdout: stdout.text, stderr: stderr.text };
}
