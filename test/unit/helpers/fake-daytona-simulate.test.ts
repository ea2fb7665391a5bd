/**
 * The fake Daytona server's simulated toolbox (benchmarks): the real backend
 * and SDK against canned answers, with nothing run or written by the fake.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startFakeDaytona } from '../../helpers/fake-daytona/index.js';
import { daytonaRig, daytonaSpec } from '../../helpers/fake-daytona/backend.js';
import { rhoFlowSimulation } from '../../helpers/fake-daytona/simulate.js';

let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

test('a simulated toolbox answers exec, upload and download from memory', async () => {
  await using fake = await startFakeDaytona({
    simulate: rhoFlowSimulation({ stdout: 'canned\n', artifacts: { 'out.txt': 'hello\n' } }),
  });
  await using rig = daytonaRig(fake);
  const sandbox = await rig.backend.create(daytonaSpec());
  const sb = fake.sandboxes[0]!;
  // Nothing on disk for the sandbox, and the probe found tar and gzip.
  expect(existsSync(sb.root)).toBe(false);
  expect([...sandbox.tools].sort()).toEqual(['gzip', 'tar']);

  // The command is never run: it "prints" the canned stdout and exits 0.
  const r = await sandbox.exec('echo real; exit 7');
  expect(r).toMatchObject({ exitCode: 0, stdout: 'canned\n', stderr: '', timedOut: false });

  const src = path.join(tmp, 'src');
  await fs.mkdir(path.join(src, 'd'), { recursive: true });
  await fs.writeFile(path.join(src, 'd', 'a.txt'), 'a');
  const up = await sandbox.upload(src, '/work/in');
  expect(up).toMatchObject({ files: 1, requests: 2 });
  expect(existsSync(fake.hostPath(sb, '/work/in/d/a.txt'))).toBe(false);

  const dest = path.join(tmp, 'dest');
  const down = await sandbox.download('/work/out.txt', dest);
  expect(down.written).toEqual(['out.txt']);
  expect(await fs.readFile(path.join(dest, 'out.txt'), 'utf8')).toBe('hello\n');

  await sandbox.dispose();
  expect(fake.live()).toEqual([]);
  expect(fake.count('exec', sb.id)).toBe(4); // probe, the command, unpack, pack
  expect(fake.count('upload', sb.id)).toBe(1);
  expect(fake.count('download', sb.id)).toBe(1);
});

test('a simulated download of an unknown path is a not-found part', async () => {
  await using fake = await startFakeDaytona({ simulate: rhoFlowSimulation() });
  await using rig = daytonaRig(fake);
  const sandbox = await rig.backend.create(daytonaSpec());
  await expect(sandbox.readFile('/work/nothing.txt')).rejects.toMatchObject({ code: 'not-found' });
  await sandbox.dispose();
});
