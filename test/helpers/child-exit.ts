/**
 * Watching a child node process to its exit: its output, its exit code, and
 * how long after it printed a given word it exited (tests that a process
 * which is done lets the event loop go).
 */
import type { ChildProcess } from 'node:child_process';

export interface ChildExit {
  stdout: string;
  stderr: string;
  code: number | null;
  /** ms from the first time `word` appeared on stdout to the exit (Infinity when it never did). */
  exitedAfterWordMs: number;
}

/** Waits for `child` (spawned with piped stdout/stderr) to exit; SIGKILLs it after `timeoutMs`. */
export function watchChildExit(child: ChildProcess, word: string, timeoutMs = 20_000): Promise<ChildExit> {
  let stdout = '';
  let stderr = '';
  let wordAt = 0;
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString();
    if (wordAt === 0 && stdout.includes(word)) wordAt = Date.now();
  });
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ stdout, stderr, code, exitedAfterWordMs: wordAt === 0 ? Infinity : Date.now() - wordAt });
    });
  });
}
