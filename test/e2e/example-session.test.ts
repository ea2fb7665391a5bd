/**
 * The README's library example (examples/session.js) runs as written against
 * the built package, with the real `openai` package talking to the fake
 * chat-completions server and a real local sandbox.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runBin, REPO_ROOT } from '../helpers/cli.js';
import { startFakeOpenAI, reply } from '../helpers/fake-openai-server.js';
import { spawn } from 'node:child_process';

function runNode(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('examples/session.js', () => {
  it('runs two prompts in one sandbox and downloads the file the agent wrote', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-example-test-'));
    const fib = 'a, b = 0, 1\nfor _ in range(10):\n    print(a)\n    a, b = b, a + b\n';
    const fib2 =
      'a, b = 0, 1\nout = []\nfor _ in range(10):\n    out.append(str(a))\n    a, b = b, a + b\nprint(",".join(out))\n';
    await using server = await startFakeOpenAI({
      replies: [
        reply.toolCalls([{ name: 'write', arguments: { path: 'fib.py', content: fib } }]),
        reply.toolCalls([{ name: 'bash', arguments: { command: 'python3 fib.py | tail -1' } }]),
        reply.text('fib.py prints 0 … 34'),
        reply.toolCalls([{ name: 'write', arguments: { path: 'fib.py', content: fib2 } }]),
        reply.text('now on one line'),
      ],
    });
    try {
      const built = await runBin(['--version']);
      expect(built.code).toBe(0);
      const r = await runNode('examples/session.js', {
        OPENAI_API_KEY: 'test',
        OPENAI_BASE_URL: server.url,
        TMPDIR: tmp,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('1> fib.py prints 0 … 34');
      expect(r.stdout).toContain('2> now on one line');
      expect(r.stdout).toContain('print(",".join(out))');
      // The second prompt saw the first conversation (history kept in the session).
      const last = server.requests[4]?.body as { messages: Array<{ role: string; content: string | null }> };
      expect(last.messages.filter((m) => m.role === 'user')).toHaveLength(2);
      // The bash tool really ran python in the sandbox.
      expect(JSON.stringify(server.requests[2]?.body)).toContain('34');
      // The session deleted its sandbox.
      const left = await fs.readdir(path.join(tmp, 'rho-flow')).catch(() => [] as string[]);
      expect(left).toEqual([]);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });
});
