/**
 * The fast removal of a local workspace (`removeWorkspaceLayout`): a few
 * syscalls when only the backend's own layout is left, and a clean refusal
 * (for the recursive fallback) when anything else is there.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  OWNER_FILE,
  TMP_DIR,
  WORK_DIR,
  readOwnerMarkerSync,
  removeIfEmptySync,
  removeWorkspaceLayout,
} from '../../../src/sandbox/local-cleanup.js';
import { LocalRig } from '../../helpers/local-rig.js';

let tmp: string;
let slug: string;

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  slug = path.join(tmp, 'run', 'job');
  mkdirSync(path.join(slug, WORK_DIR), { recursive: true });
  writeFileSync(path.join(slug, OWNER_FILE), '{}');
});

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('removeWorkspaceLayout', () => {
  it('removes a workspace holding only its layout', () => {
    mkdirSync(path.join(slug, TMP_DIR));
    expect(removeWorkspaceLayout(slug)).toBe(true);
    expect(existsSync(slug)).toBe(false);
    expect(removeWorkspaceLayout(slug)).toBe(true); // already gone
  });

  it('refuses, touching nothing, when work/ has content', () => {
    writeFileSync(path.join(slug, WORK_DIR, 'keep.txt'), 'x');
    expect(removeWorkspaceLayout(slug)).toBe(false);
    expect(readdirSync(slug).sort()).toEqual([OWNER_FILE, WORK_DIR]);
    expect(readdirSync(path.join(slug, WORK_DIR))).toEqual(['keep.txt']);
  });

  it('refuses when something else lies next to the layout', () => {
    writeFileSync(path.join(slug, 'extra'), 'x');
    expect(removeWorkspaceLayout(slug)).toBe(false);
    expect(readdirSync(slug)).toEqual(['extra']);
  });

  it('never follows a symlink in place of work/', () => {
    const outside = path.join(tmp, 'outside');
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'precious'), 'x');
    const other = path.join(tmp, 'run', 'job2');
    mkdirSync(other);
    symlinkSync(outside, path.join(other, WORK_DIR));
    expect(removeWorkspaceLayout(other)).toBe(false);
    expect(readdirSync(outside)).toEqual(['precious']);
  });

  it('removeIfEmptySync leaves a non-empty directory and ignores a missing one', () => {
    removeIfEmptySync(path.join(tmp, 'run'));
    expect(existsSync(slug)).toBe(true);
    removeIfEmptySync(path.join(tmp, 'nothing'));
  });

  it('readOwnerMarkerSync reads a marker and is undefined for a missing or corrupt one', () => {
    expect(readOwnerMarkerSync(slug)).toBeUndefined(); // '{}' is not a usable marker
    writeFileSync(
      path.join(slug, OWNER_FILE),
      JSON.stringify({ pid: 1, host: 'h', runId: 'r', createdAt: new Date(0).toISOString(), nonce: 'n' }),
    );
    expect(readOwnerMarkerSync(slug)).toMatchObject({ pid: 1, nonce: 'n' });
    expect(readOwnerMarkerSync(path.join(tmp, 'nothing'))).toBeUndefined();
  });
});

describe('a local sandbox is removed by dispose', () => {
  it('whether its work dir is empty or not, and the run dir with the last one', async () => {
    await using rig = await LocalRig.create({ isolation: 'strict' });
    const empty = await rig.sandbox();
    const full = await rig.sandbox();
    await full.exec('mkdir -p a/b && echo x > a/b/c && ln -s / root-link');
    await full.exec('true', { runStep: true });
    const runDir = path.dirname(empty.id);
    await empty.dispose();
    expect(existsSync(empty.id)).toBe(false);
    expect(existsSync(runDir)).toBe(true);
    await full.dispose();
    expect(existsSync(full.id)).toBe(false);
    expect(existsSync(runDir)).toBe(false);
  });
});
