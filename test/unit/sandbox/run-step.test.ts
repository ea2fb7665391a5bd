/**
 * `ExecOptions.runStep` on every backend: the command runs as a workflow run
 * step (product.md §2) — one `bash -eo pipefail -c`, its own exit code and
 * streams, `$RHO_FLOW_OUTPUT` read back as `ExecResult.outputs`.
 */
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../../src/sandbox/sandbox.js';
import type { LocalSandbox } from '../../../src/sandbox/local-sandbox.js';
import { LocalRig } from '../../helpers/local-rig.js';
import { startFakeDaytona, type FakeDaytona } from '../../helpers/fake-daytona/index.js';
import { daytonaRig, daytonaSpec, type DaytonaRig } from '../../helpers/fake-daytona/backend.js';

interface Target {
  name: string;
  open(): Promise<Sandbox>;
  close(): Promise<void>;
}

function localTarget(name: string, env: Record<string, string> = {}): Target {
  let rig: LocalRig | undefined;
  return {
    name,
    async open() {
      rig = await LocalRig.create({ env });
      return rig.sandbox();
    },
    async close() {
      await rig?.[Symbol.asyncDispose]();
    },
  };
}

function daytonaTarget(): Target {
  let fake: FakeDaytona | undefined;
  let rig: DaytonaRig | undefined;
  return {
    name: 'daytona (fake)',
    async open() {
      fake = await startFakeDaytona();
      rig = daytonaRig(fake);
      return rig.backend.create(daytonaSpec());
    },
    async close() {
      await rig?.[Symbol.asyncDispose]();
      await fake?.close();
    },
  };
}

describe.each([
  localTarget('local (bwrap)'),
  localTarget('local (unjailed)', { RHO_FLOW_BWRAP: 'none' }),
  daytonaTarget(),
])('run steps on $name', (target) => {
  let sb: Sandbox;

  beforeAll(async () => {
    sb = await target.open();
  });

  afterAll(async () => {
    await sb.dispose();
    await target.close();
  });

  it('is a single bash -c with errexit and pipefail', async () => {
    const shell = await sb.exec('echo "$0 $BASH_SUBSHELL $LINENO $-"', { runStep: true });
    expect(shell.exitCode).toBe(0);
    const [zero, subshell, line, flags] = shell.stdout.trim().split(' ');
    expect([zero, subshell, line]).toEqual(['bash', '0', '1']);
    expect(flags).toContain('e');
    expect((await sb.exec('set -o | grep pipefail', { runStep: true })).stdout).toMatch(/pipefail\s+on/);

    const errexit = await sb.exec('echo one\nfalse\necho two', { runStep: true });
    expect(errexit).toMatchObject({ exitCode: 1, stdout: 'one\n', timedOut: false });
    const pipefail = await sb.exec('false | cat\necho unreachable', { runStep: true });
    expect(pipefail.exitCode).toBe(1);
    expect(pipefail.stdout).toBe('');
    // Without runStep, exec stays a plain `bash -c`.
    expect((await sb.exec('false; echo still')).stdout).toBe('still\n');
  });

  it('returns what the step appended to $RHO_FLOW_OUTPUT, with its own exit code and streams', async () => {
    const r = await sb.exec(
      [
        `case x in x) echo "it's (ok)";; esac`,
        'echo warn >&2',
        'echo "answer=42" >> "$RHO_FLOW_OUTPUT"',
        `printf 'multi<<EOF\\nline 1\\nline 2\\nEOF\\n' >> "$RHO_FLOW_OUTPUT"`,
        'exit 3',
      ].join('\n'),
      { runStep: true },
    );
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe("it's (ok)\n");
    expect(r.stderr).toBe('warn\n');
    expect(r.outputs).toBe('answer=42\nmulti<<EOF\nline 1\nline 2\nEOF\n');
  });

  it('gives every step a fresh, empty outputs file', async () => {
    const first = await sb.exec('test ! -s "$RHO_FLOW_OUTPUT" && echo a=1 > "$RHO_FLOW_OUTPUT"', {
      runStep: true,
    });
    expect(first).toMatchObject({ exitCode: 0, outputs: 'a=1\n' });
    const second = await sb.exec('cat "$RHO_FLOW_OUTPUT"; echo b=2 >> "$RHO_FLOW_OUTPUT"', {
      runStep: true,
    });
    expect(second).toMatchObject({ exitCode: 0, stdout: '', outputs: 'b=2\n' });
    expect((await sb.exec('echo "[$RHO_FLOW_OUTPUT]"')).stdout).toBe('[]\n');
  });

  it('returns no outputs when the step timed out', async () => {
    const r = await sb.exec('echo late=1 >> "$RHO_FLOW_OUTPUT"; sleep 30', { runStep: true, timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.outputs).toBeUndefined();
  });
});

describe('run steps on the local backend', () => {
  let rig: LocalRig;
  let sb: LocalSandbox;

  beforeAll(async () => {
    rig = await LocalRig.create({ isolation: 'strict' });
    sb = await rig.sandbox();
  });

  afterAll(async () => {
    await rig[Symbol.asyncDispose]();
  });

  it('leaves no outputs file behind, even when the step empties /tmp or fails', async () => {
    expect(
      (await sb.exec('rm -rf /tmp/* /tmp/.[!.]*; echo k=v >> "$RHO_FLOW_OUTPUT"', { runStep: true })).outputs,
    ).toBe('k=v\n');
    expect((await sb.exec('echo x=1 >> "$RHO_FLOW_OUTPUT"; exit 9', { runStep: true })).outputs).toBe(
      'x=1\n',
    );
    await sb.exec('sleep 30', { runStep: true, timeoutMs: 300 });
    expect(readdirSync(sb.id).sort()).toEqual(['work']);
  });

  it('caps what it reads back at maxOutputBytes', async () => {
    const r = await sb.exec('head -c 5000 /dev/zero | tr "\\0" a >> "$RHO_FLOW_OUTPUT"', {
      runStep: true,
      maxOutputBytes: 100,
    });
    expect(r.outputs).toBe('a'.repeat(100));
  });
});
