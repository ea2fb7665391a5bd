import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { DaytonaBackend, readDaytonaConfig } from '../../../src/sandbox/daytona.js';
import { loadBackend } from '../../../src/sandbox/registry.js';
import { LABELS, ownerId } from '../../../src/sandbox/daytona-cleanup.js';
import { sandboxName } from '../../../src/sandbox/daytona-create.js';
import { sdkImportError } from '../../../src/sandbox/daytona-client.js';
import { watchChildExit } from '../../helpers/child-exit.js';
import { startFakeDaytona, type FakeDaytona } from '../../helpers/fake-daytona/index.js';
import { daytonaEnv, daytonaRig, daytonaSpec } from '../../helpers/fake-daytona/backend.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('configuration and preflight', () => {
  const base = { isolation: 'auto' as const, warn: () => undefined };

  test('a missing DAYTONA_API_KEY is a UserError before anything runs', async () => {
    const backend = new DaytonaBackend({ ...base, env: {} });
    const err = await backend.preflight().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain('DAYTONA_API_KEY');
    await expect(backend.create(daytonaSpec())).rejects.toBeInstanceOf(UserError);
    await backend.close();
  });

  test('bad sandbox defaults are UserErrors; good ones are converted (memory MB → GiB)', () => {
    expect(() => readDaytonaConfig({ DAYTONA_API_KEY: 'k', DAYTONA_SANDBOX_CPU: 'two' })).toThrow(UserError);
    expect(() => readDaytonaConfig({ DAYTONA_API_KEY: 'k', DAYTONA_SANDBOX_MEMORY: '-1' })).toThrow(
      UserError,
    );
    expect(() => readDaytonaConfig({ DAYTONA_API_KEY: 'k', DAYTONA_API_URL: 'not a url' })).toThrow(
      UserError,
    );
    expect(
      readDaytonaConfig({
        DAYTONA_API_KEY: 'k',
        DAYTONA_SANDBOX_IMAGE: 'python:3.13',
        DAYTONA_SANDBOX_CPU: '2',
        DAYTONA_SANDBOX_MEMORY: '3000',
        DAYTONA_SANDBOX_DISK: '20',
        DAYTONA_TARGET: 'eu',
      }),
    ).toEqual({
      apiKey: 'k',
      apiUrl: 'https://app.daytona.io/api',
      target: 'eu',
      defaults: { image: 'python:3.13', cpu: 2, memory: 3, disk: 20 },
    });
    expect(readDaytonaConfig({ DAYTONA_API_KEY: 'k' }).defaults).toEqual({ image: 'ubuntu:latest' });
  });

  test('a missing SDK package is a UserError saying what to install', () => {
    const missing = Object.assign(new Error("Cannot find package '@daytonaio/sdk'"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const err = sdkImportError(missing);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain('npm install @daytonaio/sdk');
    const other = new Error('syntax error in the SDK');
    expect(sdkImportError(other)).toBe(other);
  });

  test('the registry loads the backend lazily by name', async () => {
    const backend = await loadBackend('daytona', { ...base, env: { DAYTONA_API_KEY: 'k' } });
    expect(backend).toBeInstanceOf(DaytonaBackend);
    await backend.preflight();
    await backend.close();
  });
});

describe('against the fake Daytona server', () => {
  let fake: FakeDaytona;
  beforeAll(async () => {
    fake = await startFakeDaytona();
  });
  afterAll(async () => {
    expect(fake.live()).toEqual([]);
    await fake.close();
  });

  test('labels, resources, env, intervals and network are what the server receives', async () => {
    await using rig = daytonaRig(fake, {
      env: {
        DAYTONA_SANDBOX_IMAGE: 'python:3.13',
        DAYTONA_SANDBOX_CPU: '2',
        DAYTONA_SANDBOX_MEMORY: '3000',
        DAYTONA_SANDBOX_DISK: '20',
        DAYTONA_TARGET: 'eu',
      },
    });
    const spec = daytonaSpec({
      resources: { cpu: 4 },
      env: { FOO: 'bar', API_TOKEN: 'secret-value' },
      labels: { team: 'ml' },
      autoStopMinutes: 45,
      autoDeleteMinutes: 120,
    });
    const before = Date.now();
    const sandbox = await rig.backend.create(spec);
    const record = fake.sandboxes.find((s) => s.id === sandbox.id)!;
    expect(record.createBody).toMatchObject({
      name: sandboxName(spec.runId, spec.jobSlug, spec.attempt),
      buildInfo: { dockerfileContent: 'FROM python:3.13\n' },
      cpu: 4,
      memory: 3,
      disk: 20,
      target: 'eu',
      env: { FOO: 'bar', API_TOKEN: 'secret-value' },
      autoStopInterval: 45,
      autoDeleteInterval: 120,
      networkBlockAll: true,
    });
    expect(record.labels).toMatchObject({
      team: 'ml',
      [LABELS.managed]: 'true',
      [LABELS.runId]: spec.runId,
      [LABELS.owner]: ownerId(),
    });
    expect(record.labels[LABELS.jobId]).toMatch(/^fix-tests_task=flaky__1-[0-9a-f]{8}$/);
    expect(Date.parse(record.labels[LABELS.createdAt]!)).toBeGreaterThanOrEqual(before - 1000);
    // The sandbox env reaches commands.
    expect((await sandbox.exec('echo $API_TOKEN')).stdout).toBe('secret-value\n');
    await sandbox.dispose();
  });

  test('defaults: ubuntu:latest, 30/60 minute intervals, network on → networkBlockAll false; snapshots carry no image', async () => {
    await using rig = daytonaRig(fake);
    const fromImage = await rig.backend.create(daytonaSpec({ network: 'on', jobSlug: 'defaults' }));
    const fromSnapshot = await rig.backend.create(daytonaSpec({ snapshot: 'my-snap', jobSlug: 'snap' }));
    const img = fake.sandboxes.find((s) => s.id === fromImage.id)!.createBody;
    const snap = fake.sandboxes.find((s) => s.id === fromSnapshot.id)!.createBody;
    expect(img).toMatchObject({
      buildInfo: { dockerfileContent: 'FROM ubuntu:latest\n' },
      autoStopInterval: 30,
      autoDeleteInterval: 60,
      networkBlockAll: false,
    });
    expect(img.cpu).toBeUndefined();
    expect(snap).toMatchObject({ snapshot: 'my-snap', autoStopInterval: 30, autoDeleteInterval: 60 });
    expect(snap.buildInfo).toBeUndefined();
    expect(snap.cpu).toBeUndefined();
    await Promise.all([fromImage.dispose(), fromSnapshot.dispose()]);
  });

  test('create → exec → upload dir → download dir and glob → dispose', async () => {
    await using rig = daytonaRig(fake);
    const src = path.join(tmp, 'project');
    await fs.mkdir(path.join(src, 'tests'), { recursive: true });
    await fs.writeFile(path.join(src, 'app.py'), 'print("hi")\n');
    await fs.writeFile(path.join(src, 'tests/test_app.py'), 'assert True\n');

    const sandbox = await rig.backend.create(daytonaSpec({ jobSlug: 'e2e' }));
    expect(sandbox.backend).toBe('daytona');
    expect(sandbox.workingDir).toBe('/work');
    const up = await sandbox.upload(src, '/work/repo');
    expect(up).toMatchObject({ files: 2, requests: 2 });
    const run = await sandbox.exec(
      'mkdir -p out && cat repo/app.py > out/log.txt && echo done > out/status && ls repo',
    );
    expect(run).toMatchObject({ exitCode: 0, stdout: 'app.py\ntests\n' });

    const dirDest = path.join(tmp, 'dl-dir');
    const dir = await sandbox.download('out', dirDest);
    expect(dir.written).toEqual(['out/log.txt', 'out/status']);
    expect(dir.requests).toBe(2); // pack, download; the archive goes with the next script or the sandbox
    expect(await fs.readFile(path.join(dirDest, 'out/log.txt'), 'utf8')).toBe('print("hi")\n');
    // The archive stays in the scratch dir until the next helper script removes it.
    const archives = async (): Promise<string[]> =>
      (await sandbox.list('/tmp/.rho-flow')).map((f) => f.name).filter((n) => n.startsWith('down-'));
    expect(await archives()).toHaveLength(1);
    await sandbox.exec('true');
    expect(await archives()).toEqual([]);

    const globDest = path.join(tmp, 'dl-glob');
    const glob = await sandbox.download('repo/**/*.py', globDest);
    expect(glob.written).toEqual(['app.py', 'tests/test_app.py']);

    await sandbox.dispose();
    expect(fake.live().map((s) => s.id)).not.toContain(sandbox.id);
  });

  test('a working dir that cannot be created fails the create clearly and deletes the sandbox', async () => {
    await using rig = daytonaRig(fake);
    const err = await rig.backend
      .create(daytonaSpec({ workingDir: '/usr/rho-flow-work', jobSlug: 'bad-wd' }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'create-failed', retryable: false });
    expect((err as Error).message).toContain('/usr/rho-flow-work');
    expect((err as Error).message).toContain('Read-only file system');
    expect(fake.live()).toEqual([]);
  });

  test('a toolbox that answers 502 right after start is retried by the setup probe', async () => {
    await using rig = daytonaRig(fake);
    await rig.backend.preflight();
    const fault = fake.inject({ endpoint: 'exec', times: 2, status: 502, message: 'Bad Gateway' });
    const sandbox = await rig.backend.create(daytonaSpec({ jobSlug: 'probe-retry' }));
    expect(fault.hits).toBe(2);
    expect(sandbox.tools.has('tar')).toBe(true);
    await sandbox.dispose();
  });

  test('creations are paced by the token bucket, separately from concurrency', async () => {
    await using rig = daytonaRig(fake, { tuning: { createsPerMinute: 600, createBurst: 1 } }); // one per 100 ms
    await rig.backend.preflight();
    const first = fake.requests.length;
    const sandboxes = await Promise.all(
      [1, 2, 3, 4].map((i) => rig.backend.create(daytonaSpec({ jobSlug: `paced-${i}` }))),
    );
    const creates = fake.requests.slice(first).filter((r) => r.endpoint === 'create');
    expect(creates).toHaveLength(4);
    // Tokens come every 100 ms: four creates span at least ~300 ms (minus network jitter).
    expect(creates[3]!.at - creates[0]!.at).toBeGreaterThanOrEqual(250);
    await Promise.all(sandboxes.map((s) => s.dispose()));
  });
});

describe('older daemons', () => {
  test('commands mean the same when the daemon splits the line itself (no shell)', async () => {
    await using fake = await startFakeDaytona({ execMode: 'argv' });
    await using rig = daytonaRig(fake);
    const sandbox = await rig.backend.create(daytonaSpec());
    // The mode is real: a raw shell line is not interpreted by such a daemon.
    const raw = await fetch(`${fake.origin}/toolbox/${sandbox.id}/process/execute`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo a && echo b' }),
    });
    expect(((await raw.json()) as { result: string }).result).toBe('a && echo b\n');

    const r = await sandbox.exec(`printf '%s|' "a b" 'c"d' "$(echo e)"; echo; echo err >&2; exit 3`, {
      env: { X: "y'z" },
    });
    expect(r).toMatchObject({ exitCode: 3, stdout: 'a b|c"d|e|\n', stderr: 'err\n' });
    expect((await sandbox.exec('sleep 30', { timeoutMs: 300 })).timedOut).toBe(true);
    const src = path.join(tmp, 'argv-src');
    await fs.mkdir(src, { recursive: true });
    await fs.writeFile(path.join(src, 'f.txt'), 'f');
    await sandbox.upload(src, 'in');
    const dl = await sandbox.download('in', path.join(tmp, 'argv-dl'));
    expect(dl.written).toEqual(['in/f.txt']);
    await sandbox.dispose();
    expect(fake.live()).toEqual([]);
  });
});

/** Transpiles `entry` and every relative module it imports into `outDir` (same layout). */
async function transpileClosure(entry: string, outDir: string): Promise<void> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await fs.readFile(file, 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
      fileName: file,
    }).outputText;
    const target = path.join(outDir, path.relative(repoRoot, file)).replace(/\.ts$/, '.js');
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, out);
    for (const m of out.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)\.js'/g)) {
      queue.push(path.resolve(path.dirname(file), `${m[1]!}.ts`));
    }
  }
}

describe('process lifetime', () => {
  test('a process that used the backend exits promptly after close()', async () => {
    await using fake = await startFakeDaytona();
    const dir = await fs.mkdtemp(path.join(tmp, 'child-'));
    await transpileClosure(path.join(repoRoot, 'src/sandbox/daytona.ts'), dir);
    await fs.symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
    const script = path.join(dir, 'child.mjs');
    await fs.writeFile(
      script,
      `import { DaytonaBackend } from './src/sandbox/daytona.js';
const backend = new DaytonaBackend({ isolation: 'auto', warn: (m) => console.error('warn:', m), env: JSON.parse(process.env.CHILD_ENV) });
const sandbox = await backend.create(${JSON.stringify(daytonaSpec({ jobSlug: 'child' }))});
const r = await sandbox.exec('echo from-child');
console.log(r.stdout.trim());
await sandbox.dispose();
await backend.close();
console.log('closed');
`,
    );
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, CHILD_ENV: JSON.stringify(daytonaEnv(fake)) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r = await watchChildExit(child, 'closed');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('from-child\nclosed\n');
    expect(r.code).toBe(0);
    expect(r.exitedAfterWordMs).toBeLessThan(3_000);
    expect(fake.sandboxes).toHaveLength(1);
    expect(fake.live()).toEqual([]);
    // No socket.io upgrade was ever attempted (polling mode).
    expect(fake.requests.some((r) => r.url.includes('socket.io'))).toBe(false);
  });
});
