/**
 * The local backend's on-disk layout: the fast removal of a workspace
 * (`removeWorkspaceLayout`: a few syscalls when only the backend's own layout
 * is left, a clean refusal for the recursive fallback when anything else is
 * there), and the run directory's owner marker — one per process, written
 * with its first workspace and removed with its last.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  TMP_DIR,
  WORK_DIR,
  readRunMarkers,
  removeWorkspaceLayout,
} from '../../../src/sandbox/local-cleanup.js';
import { ownerFileName } from '../../../src/sandbox/local-run-dir.js';
import { LocalRig } from '../../helpers/local-rig.js';

let tmp: string;
let slug: string;

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  slug = path.join(tmp, 'run', 'job');
  mkdirSync(path.join(slug, WORK_DIR), { recursive: true });
});

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('removeWorkspaceLayout', () => {
  it('removes a workspace holding only its layout', () => {
    expect(removeWorkspaceLayout(slug)).toBe(true);
    expect(existsSync(slug)).toBe(false);
    expect(removeWorkspaceLayout(slug)).toBe(true); // already gone
  });

  it("removes an unjailed workspace's tmp/ too, and only for an unjailed one", () => {
    mkdirSync(path.join(slug, TMP_DIR));
    expect(removeWorkspaceLayout(slug)).toBe(false);
    expect(readdirSync(slug)).toEqual([TMP_DIR]);
    expect(removeWorkspaceLayout(slug, true)).toBe(true);
    expect(existsSync(slug)).toBe(false);
  });

  it('refuses, touching nothing, when work/ has content', () => {
    writeFileSync(path.join(slug, WORK_DIR, 'keep.txt'), 'x');
    expect(removeWorkspaceLayout(slug)).toBe(false);
    expect(readdirSync(slug).sort()).toEqual([WORK_DIR]);
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

  it('readRunMarkers reads every usable .owner-<pid>.json of a run and skips the rest', async () => {
    const run = path.dirname(slug);
    const marker = (pid: number): string =>
      JSON.stringify({ pid, host: 'h', runId: 'r', createdAt: new Date(0).toISOString() });
    writeFileSync(path.join(run, ownerFileName(11)), marker(11));
    writeFileSync(path.join(run, ownerFileName(12)), marker(12));
    writeFileSync(path.join(run, ownerFileName(13)), '{not json');
    writeFileSync(path.join(run, 'owner.json'), marker(14)); // not a run marker's name
    mkdirSync(path.join(run, ownerFileName(15))); // not a file
    expect((await readRunMarkers(run)).map((m) => m.pid).sort()).toEqual([11, 12]);
    expect(await readRunMarkers(path.join(tmp, 'nothing'))).toEqual([]);
  });
});

describe('a local sandbox is removed by dispose', () => {
  it('whether its work dir is empty or not, and the run dir with its marker after the last one', async () => {
    await using rig = await LocalRig.create({ isolation: 'strict' });
    const empty = await rig.sandbox();
    const full = await rig.sandbox();
    await full.exec('mkdir -p a/b && echo x > a/b/c && ln -s / root-link');
    await full.exec('true', { runStep: true });
    const runDir = path.dirname(empty.id);
    // One marker for the run, none per workspace.
    expect(readdirSync(runDir).sort()).toEqual(
      [ownerFileName(), path.basename(empty.id), path.basename(full.id)].sort(),
    );
    expect(readdirSync(empty.id)).toEqual([WORK_DIR]);
    expect(JSON.parse(readFileSync(path.join(runDir, ownerFileName()), 'utf8'))).toMatchObject({
      runId: rig.runId,
      pid: process.pid,
    });
    await empty.dispose();
    expect(existsSync(empty.id)).toBe(false);
    expect(existsSync(path.join(runDir, ownerFileName()))).toBe(true);
    await full.dispose();
    expect(existsSync(full.id)).toBe(false);
    expect(existsSync(runDir)).toBe(false);
    // A new workspace of the same run marks the run again.
    const again = await rig.sandbox();
    expect(readdirSync(runDir).sort()).toEqual([ownerFileName(), path.basename(again.id)].sort());
    await again.dispose();
    expect(existsSync(runDir)).toBe(false);
  });

  it('keeps the marker while a workspace of the run is still held (a kept sandbox)', async () => {
    await using rig = await LocalRig.create({ isolation: 'strict' });
    const kept = await rig.sandbox(); // never disposed: --keep-sandboxes
    const gone = await rig.sandbox();
    await gone.dispose();
    const runDir = path.dirname(kept.id);
    expect(readdirSync(runDir).sort()).toEqual([ownerFileName(), path.basename(kept.id)].sort());
  });

  it('marks the run again when its directory, or the whole root, was removed behind its back', async () => {
    await using rig = await LocalRig.create({ isolation: 'strict' });
    const first = await rig.sandbox();
    const runDir = path.dirname(first.id);
    const root = path.dirname(runDir);
    await fs.rm(root, { recursive: true, force: true });
    const second = await rig.sandbox();
    expect(readdirSync(runDir).sort()).toEqual([ownerFileName(), path.basename(second.id)].sort());
    expect((await second.exec('echo ok')).stdout).toBe('ok\n');
    await fs.rm(runDir, { recursive: true, force: true });
    const third = await rig.sandbox();
    expect(readdirSync(runDir).sort()).toEqual([ownerFileName(), path.basename(third.id)].sort());
    for (const sb of [first, second, third]) await sb.dispose();
    expect(existsSync(runDir)).toBe(false);
  });

  it("a stale handle's dispose leaves a later attempt's workspace at the same path alone", async () => {
    await using rig = await LocalRig.create({ isolation: 'strict' });
    const first = await rig.sandbox({ jobSlug: 'again' });
    await first.writeFile('old.txt', 'x');
    const second = await rig.sandbox({ jobSlug: 'again' }); // replaces the leftover
    expect(second.id).toBe(first.id);
    await second.writeFile('new.txt', 'y');
    await first.dispose();
    expect((await second.readFile('new.txt')).toString()).toBe('y');
    expect(existsSync(path.join(path.dirname(second.id), ownerFileName()))).toBe(true);
    await second.dispose();
    expect(existsSync(path.dirname(second.id))).toBe(false);
  });
});
