import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { COMMANDS } from '../../../src/cli/commands/index.js';
import { RUN_OPTIONS } from '../../../src/cli/run-options.js';
import { programHelp } from '../../../src/cli/program.js';
import { runInProcess } from '../../helpers/cli.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

describe('program', () => {
  test('--version and -v print the package version', async () => {
    for (const flag of ['--version', '-v']) {
      expect(await runInProcess([flag])).toEqual({
        code: 0,
        signal: null,
        stdout: `${pkg.version}\n`,
        stderr: '',
      });
    }
  });

  test('--help lists every command and the exit codes', async () => {
    const r = await runInProcess(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(programHelp());
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`\\n  ${c.name} +${c.summary}\\n`));
    expect(r.stdout).toContain('Exit codes:');
    expect(r.stdout).toContain('130  interrupted by SIGINT');
  });

  test('no arguments: help on stderr, exit 2', async () => {
    const r = await runInProcess([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(programHelp());
  });

  test('help <command> and <command> --help / -h print the command help', async () => {
    for (const c of COMMANDS) {
      const command = await c.load();
      expect(command.summary).toBe(c.summary);
      const a = await runInProcess(['help', c.name]);
      const b = await runInProcess([c.name, '--help']);
      const h = await runInProcess([c.name, 'x', '-h']);
      expect(a.code).toBe(0);
      expect(a.stdout).toContain(`Usage: rho-flow ${command.usage}`);
      expect(b).toEqual(a);
      expect(h).toEqual(a);
      expect(a.stdout).toContain('Exit codes:');
      for (const name of Object.keys(command.options)) expect(a.stdout).toContain(`--${name}`);
    }
  });

  test('run --help documents every run flag, with defaults and environment variables', async () => {
    const r = await runInProcess(['run', '--help']);
    for (const name of Object.keys(RUN_OPTIONS)) expect(r.stdout).toContain(`--${name}`);
    expect(r.stdout).toContain('-j, --concurrency <n>');
    expect(r.stdout).toContain('default: 4; env: RHO_FLOW_CONCURRENCY');
    expect(r.stdout).toContain('--resume [run-id]');
    expect(r.stdout).toContain('env: RHO_FLOW_ISOLATION');
    expect(r.stdout).toContain('env: RHO_FLOW_BACKEND');
  });

  test('unknown commands: did-you-mean, or a hint to use run for a file', async () => {
    expect(await runInProcess(['valdate', 'x.yaml'])).toMatchObject({
      code: 2,
      stdout: '',
      stderr:
        "rho-flow: error: unknown command 'valdate' (did you mean 'validate'?)\nRun 'rho-flow --help' for usage.\n",
    });
    expect((await runInProcess(['flows/a.yaml'])).stderr).toContain(
      "unknown command 'flows/a.yaml' (did you mean 'rho-flow run flows/a.yaml'?)",
    );
    expect((await runInProcess(['frobnicate'])).stderr).toContain("unknown command 'frobnicate'\n");
    expect((await runInProcess(['help', 'lst'])).stderr).toContain("(did you mean 'list'?)");
  });

  test('an unknown option before the command', async () => {
    const r = await runInProcess(['--verison']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--verison' (did you mean '--version'?)");
  });

  test('unknown command options exit 2 with did-you-mean and a pointer to the command help', async () => {
    const r = await runInProcess(['validate', 'x.yaml', '--fromat', 'json']);
    expect(r).toMatchObject({
      code: 2,
      stderr:
        "rho-flow: error: unknown option '--fromat' for 'rho-flow validate' (did you mean '--format'?)\nRun 'rho-flow validate --help' for usage.\n",
    });
  });

  test('--color and --no-color are accepted anywhere and decide colour', async () => {
    const colored = await runInProcess(['valdate', '--color']);
    expect(colored.stderr).toContain('\u001b[31mrho-flow: error:\u001b[39m');
    const plain = await runInProcess(['valdate', '--no-color'], { env: { FORCE_COLOR: '1' }, tty: true });
    expect(plain.stderr).not.toContain('\u001b[');
    const tty = await runInProcess(['valdate'], { tty: true });
    expect(tty.stderr).toContain('\u001b[');
    const noColor = await runInProcess(['valdate'], { tty: true, env: { NO_COLOR: '1' } });
    expect(noColor.stderr).not.toContain('\u001b[');
  });

  test('options after -- are not treated as global flags', async () => {
    const r = await runInProcess(['schema', '--', '--help']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown schema '--help'");
  });
});

describe('schema', () => {
  test('prints the workflow schema by default, byte for byte', async () => {
    const r = await runInProcess(['schema']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      readFileSync(new URL('../../../schemas/workflow.schema.json', import.meta.url), 'utf8'),
    );
  });

  test('prints the profile schema', async () => {
    const r = await runInProcess(['schema', 'profile']);
    expect(r.stdout).toBe(
      readFileSync(new URL('../../../schemas/profile.schema.json', import.meta.url), 'utf8'),
    );
  });

  test('unknown schema names and extra arguments exit 2', async () => {
    expect(await runInProcess(['schema', 'workflw'])).toMatchObject({ code: 2 });
    expect((await runInProcess(['schema', 'workflow', 'profile'])).stderr).toContain(
      "unexpected argument 'profile'",
    );
  });
});
