/**
 * The real binary (`node bin/rho-flow.js`, built by `npm test`): version,
 * help, usage errors, and what `--version` does not load.
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { REPO_ROOT, runBin } from '../helpers/cli.js';

const pkg = JSON.parse(await fs.readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
};

let dir: string;
let register: string;

/** Packages `--version` must not import (startup cost; SDKs only at the edge). */
const HEAVY = ['@daytonaio/sdk', 'openai', 'listr2', 'ajv', 'yaml'];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  // A module.register() resolve hook that logs every resolved URL to a file.
  await fs.writeFile(
    path.join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
let log;
export async function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(log, result.url + '\\n');
  return result;
}
`,
  );
  register = path.join(dir, 'register.mjs');
  await fs.writeFile(
    register,
    `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)}, import.meta.url, { data: { log: process.env.RHO_FLOW_TEST_IMPORT_LOG } });
`,
  );
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Runs the bin with the import-logging hook; returns the result and the resolved URLs. */
async function traced(args: string[], name: string): Promise<{ code: number | null; urls: string[] }> {
  const log = path.join(dir, `${name}.log`);
  const r = await runBin(args, { nodeArgs: ['--import', register], env: { RHO_FLOW_TEST_IMPORT_LOG: log } });
  const urls = (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
  return { code: r.code, urls };
}

/** Packages whose code each chunk of the bundle holds (written by scripts/bundle.js). */
const CHUNKS = JSON.parse(readFileSync(path.join(REPO_ROOT, 'dist/bundle/chunks.json'), 'utf8')) as Record<
  string,
  string[]
>;

/** Whether `pkgName` was loaded: from node_modules, or as part of a chunk of the bundle. */
const loaded = (urls: readonly string[], pkgName: string): boolean =>
  urls.some(
    (u) =>
      u.includes(`/node_modules/${pkgName}/`) ||
      (u.includes('/dist/bundle/') && (CHUNKS[path.basename(u)] ?? []).includes(pkgName)),
  );

describe('startup', () => {
  test('--version imports none of the heavy packages', async () => {
    const { code, urls } = await traced(['--version'], 'version');
    expect(code).toBe(0);
    // The hook really saw the CLI load…
    expect(urls.some((u) => u.endsWith('/dist/bundle/main.js'))).toBe(true);
    // …and nothing heavy.
    for (const name of HEAVY) expect(loaded(urls, name), name).toBe(false);
  });

  test('--help and a command help do not import them either', async () => {
    for (const args of [['--help'], ['run', '--help'], ['validate', '--help']]) {
      const { code, urls } = await traced(args, args.join('_'));
      expect(code).toBe(0);
      for (const name of HEAVY) expect(loaded(urls, name), `${args.join(' ')}: ${name}`).toBe(false);
    }
  });

  test('the hook does see them when a command needs them (validate loads yaml and ajv)', async () => {
    const { urls } = await traced(['validate', path.join(dir, 'none.yaml')], 'validate');
    expect(loaded(urls, 'yaml')).toBe(true);
    expect(loaded(urls, 'ajv')).toBe(true);
    expect(loaded(urls, 'openai')).toBe(false);
    expect(loaded(urls, '@daytonaio/sdk')).toBe(false);
  });
});

describe('version and help', () => {
  test('--version / -v', async () => {
    expect(await runBin(['--version'])).toMatchObject({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
    expect(await runBin(['-v'])).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  test('--help: commands and the exit-code table', async () => {
    const r = await runBin(['--help']);
    expect(r.code).toBe(0);
    for (const name of ['run', 'validate', 'list', 'schema', 'init'])
      expect(r.stdout).toMatch(new RegExp(`\\n  ${name} `));
    expect(r.stdout).toContain('Exit codes:\n  0    every job passed');
    expect(r.stdout).toContain('  143  interrupted by SIGTERM');
  });

  test.each([
    [
      'run',
      [
        '--concurrency <n>',
        '--dry-run',
        '--shard <i/n|auto>',
        '--resume [run-id]',
        '--record <dir>',
        '--isolation',
      ],
    ],
    ['validate', ['--format <text|github|json>', '--var <k=v>', '--vars-file <file>']],
    ['list', ['--json', '--var <k=v>']],
    ['schema', ['schema [workflow|profile]']],
    ['init', ['--force', 'init [name]']],
  ])('%s --help lists its flags and the exit codes', async (command, expected) => {
    const r = await runBin([command, '--help']);
    expect(r.code).toBe(0);
    for (const text of expected) expect(r.stdout).toContain(text);
    expect(r.stdout).toContain('Exit codes:');
    expect(r.stdout).toContain('--no-color');
  });
});

describe('usage errors exit 2', () => {
  test('unknown command with a suggestion', async () => {
    const r = await runBin(['lst', 'workflows/']);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toBe(
      "rho-flow: error: unknown command 'lst' (did you mean 'list'?)\nRun 'rho-flow --help' for usage.\n",
    );
  });

  test('unknown flag with a suggestion', async () => {
    const r = await runBin(['run', 'x.yaml', '--dry-rn']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "rho-flow: error: unknown option '--dry-rn' for 'rho-flow run' (did you mean '--dry-run'?)\nRun 'rho-flow run --help' for usage.\n",
    );
  });

  test('bad flag values', async () => {
    const r = await runBin(['run', 'x.yaml', '--backend', 'docker']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--backend must be one of local, daytona, got 'docker'");
    const env = await runBin(['run', 'x.yaml', '--dry-run'], { env: { RHO_FLOW_CONCURRENCY: 'zero' } });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain("RHO_FLOW_CONCURRENCY must be a whole number ≥ 1, got 'zero'");
  });

  test('no command: the help on stderr', async () => {
    const r = await runBin([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: rho-flow <command> [options]');
  });

  test('FORCE_COLOR colours the error, NO_COLOR (the helper default) does not', async () => {
    const colored = await runBin(['lsit'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(colored.stderr).toContain('\u001b[31m');
    expect((await runBin(['lsit'])).stderr).not.toContain('\u001b[');
  });
});
