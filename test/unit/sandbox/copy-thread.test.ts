/**
 * The copy thread of local transfers (src/sandbox/copy-thread.ts). It runs
 * `local-copier.js`, which exists only in the build (`dist/`; `npm test`
 * builds first), so each case runs in a node process that imports `dist/`.
 * Under vitest's TypeScript sources there is no copy thread and the calling
 * thread copies alone (local-transfer.test.ts covers that path).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/cli.js';

const DIST = path.join(REPO_ROOT, 'dist', 'sandbox');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'rho-flow-copy-thread-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Shared prelude: a tree maker, a tree digest and a local sandbox, all from dist/. */
const PRELUDE = `
  import fs from 'node:fs';
  import path from 'node:path';
  import { createHash } from 'node:crypto';
  const { LocalBackend } = await import(${JSON.stringify(path.join(DIST, 'local.js'))});
  const thread = await import(${JSON.stringify(path.join(DIST, 'copy-thread.js'))});
  const base = process.env.T;
  function makeTree(root, dirs, files) {
    for (let d = 0; d < dirs; d++) {
      const dir = path.join(root, 'd' + d, 'sub');
      fs.mkdirSync(dir, { recursive: true });
      for (let f = 0; f < files; f++) {
        const p = path.join(d % 2 ? dir : path.dirname(dir), 'f' + f + '.txt');
        fs.writeFileSync(p, 'file ' + d + '/' + f + '\\n'.repeat(1 + (f % 7)));
        fs.chmodSync(p, [0o644, 0o600, 0o755, 0o444][f % 4]);
      }
    }
    fs.chmodSync(path.join(root, 'd0', 'sub'), 0o555);
  }
  function digest(root) {
    const h = createHash('sha256');
    const walk = (dir, rel) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const p = path.join(dir, e.name);
        const st = fs.lstatSync(p);
        h.update(rel + e.name + ' ' + (st.mode & 0o7777).toString(8) + '\\n');
        if (e.isDirectory()) walk(p, rel + e.name + '/');
        else h.update(fs.readFileSync(p));
      }
    };
    walk(root, '');
    return h.digest('hex');
  }
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  // The thread's own loop has fds of its own: start it before counting.
  if (process.env.RHO_FLOW_COPY_THREAD !== 'off') thread.CopyThread.get();
  await new Promise((r) => setTimeout(r, 200));
  const backend = new LocalBackend({ isolation: 'auto', warn: () => {}, env: { TMPDIR: base, PATH: process.env.PATH } });
  const sb = await backend.create({ runId: 'ct', jobId: 'ct#' + process.pid, jobSlug: 'ct-' + process.pid, attempt: 1, workingDir: '/work', network: 'off', env: {} });
  const hostPath = (rel) => path.join(sb.id, 'work', rel);
  const out = (v) => { process.stdout.write(JSON.stringify(v)); };
`;

async function runCase(body: string, env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const code = `${PRELUDE}\ntry {\n${body}\n} finally { await sb.dispose(); await backend.close(); }`;
  const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code], {
    timeout: 60_000,
    env: { ...process.env, T: tmp, ...env },
  });
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('the copy thread', () => {
  it('shares an upload of many files and produces the same tree, modes included', async () => {
    const body = `
      const src = path.join(base, 'src-' + process.pid);
      makeTree(src, 24, 60);
      const before = fds();
      const stats = await sb.upload(src, '/work/tree');
      out({ same: digest(src) === digest(hostPath('tree')), files: stats.files, fdsLeaked: fds() - before, ...thread.copyThreadStats });
    `;
    const shared = await runCase(body);
    expect(shared).toMatchObject({ same: true, files: 24 * 60, fdsLeaked: 0 });
    expect(shared.offers).toBeGreaterThan(0);
    expect(shared.threadFiles).toBeGreaterThan(0);
    expect(shared.threadFiles).toBeLessThan(24 * 60);
    const alone = await runCase(body, { RHO_FLOW_COPY_THREAD: 'off' });
    expect(alone).toMatchObject({ same: true, files: 24 * 60, fdsLeaked: 0, offers: 0, threadFiles: 0 });
  });

  it('stops on abort: no fd left open, nothing written after the upload settled', async () => {
    const result = await runCase(`
      const src = path.join(base, 'src-' + process.pid);
      makeTree(src, 40, 100);
      const before = fds();
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('stop now')), 15);
      let error = '';
      try { await sb.upload(src, '/work/tree', { signal: ac.signal }); } catch (e) { error = e.message; }
      const count = () => { let n = 0; const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { n++; if (e.isDirectory()) walk(path.join(d, e.name)); } }; walk(hostPath('tree')); return n; };
      const n1 = count();
      await new Promise((r) => setTimeout(r, 300));
      out({ error, fdsLeaked: fds() - before, n1, n2: count(), total: 40 * 100, offers: thread.copyThreadStats.offers });
    `);
    expect(result.error).toBe('stop now');
    expect(result.fdsLeaked).toBe(0);
    expect(result.n2).toBe(result.n1);
    expect(result.n1).toBeLessThan(Number(result.total));
    expect(result.offers).toBeGreaterThan(0);
  });

  it("carries the thread's errors back: a directory in the way of a file fails the upload", async () => {
    const result = await runCase(`
      const src = path.join(base, 'src-' + process.pid);
      fs.mkdirSync(src);
      for (let f = 0; f < 64; f++) fs.writeFileSync(path.join(src, 'f' + f), 'x');
      // Direct: offer the batches and let only the thread take them.
      const dst = path.join(base, 'dst-' + process.pid);
      fs.mkdirSync(path.join(dst, 'f3'), { recursive: true });
      const s = fs.openSync(src, 'r'), d = fs.openSync(dst, 'r');
      const names = Array.from({ length: 8 }, (_, k) => 'f' + k);
      const offer = thread.CopyThread.get().offer([{ srcDirFd: s, dstDirFd: d, names, rels: names }], 0o022);
      await new Promise((r) => setTimeout(r, 500));
      const outcomes = await offer.settle();
      const err = outcomes[0]?.error && thread.fromWire(outcomes[0].error);
      fs.closeSync(s); fs.closeSync(d);
      // Through an upload: every name is taken by a directory, whoever copies it.
      await sb.exec('mkdir -p tree && for i in $(seq 0 63); do mkdir -p tree/f$i; done');
      let uploadError = '';
      try { await sb.upload(src, '/work/tree'); } catch (e) { uploadError = e.constructor.name + ': ' + e.message; }
      out({ copied: outcomes[0]?.results, error: err && err.constructor.name + ' ' + err.code + ': ' + err.message, uploadError });
    `);
    expect(result.copied).toEqual([1, 1, 1]);
    expect(result.error).toBe('SandboxError transfer-failed: f3: a directory is in the way of a file');
    expect(result.uploadError).toMatch(/^SandboxError: .*a directory is in the way of a file/);
  });
});
