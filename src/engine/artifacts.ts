import fs from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactSpec } from '../workflow/types.js';
import type { ArtifactResult, JobStatus } from '../results/types.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { ExprContext } from '../expr/evaluate.js';
import { SandboxError, errorMessage } from '../errors.js';
import { isAbortError } from '../util/abort.js';

/** True when an artifact with `when` should be collected for a job that ended `status`. */
export function artifactWanted(when: ArtifactSpec['when'], status: JobStatus): boolean {
  switch (when) {
    case 'always':
      return true;
    case 'on-success':
      return status === 'passed';
    case 'on-failure':
      return status !== 'passed';
  }
}

/**
 * The local destination of an artifact, or an error when `to` would leave the
 * job's artifacts folder (`..`, absolute, or a symlink already in the way).
 * The loader rejects such `to` values already; this is the runtime guard.
 */
export async function artifactDestination(artifactsDir: string, to: string): Promise<string> {
  if (path.isAbsolute(to) || to.split(/[\\/]/).includes('..')) {
    throw new Error(`artifact destination '${to}' is outside the job's artifacts folder`);
  }
  const root = path.resolve(artifactsDir);
  const dest = path.resolve(root, to);
  const rel = path.relative(root, dest);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new Error(`artifact destination '${to}' is outside the job's artifacts folder`);
  }
  // Refuse if any existing component between root and dest is a symlink.
  let cur = root;
  for (const part of rel === '' ? [] : rel.split(path.sep)) {
    cur = path.join(cur, part);
    const st = await fs.lstat(cur).catch(() => undefined);
    if (!st) break;
    if (st.isSymbolicLink()) throw new Error(`artifact destination '${to}' passes through a symlink`);
  }
  return dest;
}

export interface ArtifactOutcome {
  results: ArtifactResult[];
  /** A declared artifact with `if-no-files-found: error` had no files. */
  requiredMissing: string[];
  warnings: string[];
}

/**
 * Downloads the declared artifacts into `artifactsDir` and writes
 * `manifest.json` there (one entry per declared artifact). Collection never
 * throws: each artifact gets a status; the caller decides what a missing
 * required artifact means for the job. `onSandboxDone` is called once nothing
 * more will be read from the sandbox — as soon as the last download has
 * fetched its data (its local files may still be being written), or when
 * collection ends — so the caller can delete the sandbox meanwhile. Called once.
 */
export async function collectArtifacts(options: {
  specs: readonly ArtifactSpec[];
  sandbox: Sandbox | undefined;
  artifactsDir: string;
  jobStatus: JobStatus;
  ctx: ExprContext;
  signal: AbortSignal;
  onSandboxDone?: () => void;
}): Promise<ArtifactOutcome> {
  const { specs, sandbox, artifactsDir, jobStatus, ctx, signal } = options;
  const results: ArtifactResult[] = [];
  const requiredMissing: string[] = [];
  const warnings: string[] = [];
  let sandboxDone = false;
  const onSandboxDone = (): void => {
    if (sandboxDone) return;
    sandboxDone = true;
    options.onSandboxDone?.();
  };
  // First what each artifact is and where it goes, so the last download is known before the first starts.
  const downloads: Array<{ index: number; spec: ArtifactSpec; remote: string; dest: string }> = [];
  for (const spec of specs) {
    let remote = spec.path.source;
    const base = { to: spec.to, files: 0, bytes: 0 };
    try {
      remote = spec.path.evaluate(ctx);
    } catch (e) {
      results.push({ ...base, path: remote, status: 'error', message: errorMessage(e) });
      continue;
    }
    if (!artifactWanted(spec.when, jobStatus) || !sandbox) {
      results.push({
        ...base,
        path: remote,
        status: 'skipped',
        message: sandbox ? `when: ${spec.when}` : 'no sandbox (the job ended before one was created)',
      });
      continue;
    }
    try {
      const dest = await artifactDestination(artifactsDir, spec.to);
      downloads.push({ index: results.length, spec, remote, dest });
      results.push({ ...base, path: remote, status: 'error', message: 'not collected' });
    } catch (e) {
      results.push({ ...base, path: remote, status: 'refused', message: errorMessage(e) });
      warnings.push(`artifact ${remote}: ${errorMessage(e)}`);
    }
  }
  for (const [i, { index, spec, remote, dest }] of downloads.entries()) {
    const base = { to: spec.to, path: remote, files: 0, bytes: 0 };
    const onFetched = i === downloads.length - 1 ? onSandboxDone : undefined;
    try {
      // Sandbox.download makes `dest`. Checked above: a download is planned only with a sandbox.
      const got = await (sandbox as Sandbox).download(remote, dest, {
        signal,
        ...(onFetched ? { onFetched } : {}),
      });
      const message = got.skipped.length
        ? `skipped ${got.skipped.length} entr${got.skipped.length === 1 ? 'y' : 'ies'}: ${got.skipped
            .slice(0, 5)
            .map((s) => `${s.path} (${s.reason})`)
            .join(', ')}`
        : undefined;
      results[index] = {
        ...base,
        status: 'downloaded',
        files: got.files,
        bytes: got.bytes,
        ...(message ? { message } : {}),
      };
      if (message) warnings.push(`artifact ${remote}: ${message}`);
    } catch (e) {
      if (isAbortError(e) || signal.aborted) {
        results[index] = { ...base, status: 'error', message: 'cancelled' };
        continue;
      }
      if (e instanceof SandboxError && e.code === 'not-found') {
        results[index] = { ...base, status: 'not-found', message: `no files found at ${remote}` };
        if (spec.ifNoFilesFound === 'error') requiredMissing.push(remote);
        else if (spec.ifNoFilesFound === 'warn') warnings.push(`artifact ${remote}: no files found`);
        continue;
      }
      results[index] = { ...base, status: 'error', message: errorMessage(e) };
      warnings.push(`artifact ${remote}: ${errorMessage(e)}`);
    }
  }
  onSandboxDone();
  await fs.mkdir(artifactsDir, { recursive: true });
  await fs.writeFile(
    path.join(artifactsDir, 'manifest.json'),
    JSON.stringify({ artifacts: results }, null, 2) + '\n',
  );
  return { results, requiredMissing, warnings };
}
