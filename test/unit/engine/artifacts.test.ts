import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { artifactDestination, artifactWanted } from '../../../src/engine/artifacts.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('artifactDestination', () => {
  it('resolves relative destinations inside the artifacts folder', async () => {
    const root = path.join(dir, 'artifacts');
    await expect(artifactDestination(root, '')).resolves.toBe(root);
    await expect(artifactDestination(root, 'diff/')).resolves.toBe(path.join(root, 'diff'));
    await expect(artifactDestination(root, 'a/b')).resolves.toBe(path.join(root, 'a', 'b'));
  });

  it.each(['../x', '../../etc', 'a/../../x', '/etc', '/tmp/x', 'a/..'])('refuses %s', async (to) => {
    await expect(artifactDestination(path.join(dir, 'artifacts'), to)).rejects.toThrow(/outside/);
  });

  it('refuses a destination that passes through a symlink', async () => {
    const root = path.join(dir, 'artifacts');
    await fs.mkdir(root, { recursive: true });
    await fs.symlink(os.tmpdir(), path.join(root, 'link'));
    await expect(artifactDestination(root, 'link/x')).rejects.toThrow(/symlink/);
  });
});

describe('artifactWanted', () => {
  it('follows when:', () => {
    expect(artifactWanted('always', 'failed')).toBe(true);
    expect(artifactWanted('on-success', 'passed')).toBe(true);
    expect(artifactWanted('on-success', 'failed')).toBe(false);
    expect(artifactWanted('on-failure', 'timed-out')).toBe(true);
    expect(artifactWanted('on-failure', 'passed')).toBe(false);
  });
});
