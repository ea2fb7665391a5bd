/**
 * The copy thread's program (see `copy-thread.ts`): it takes the batches of
 * an offer that the calling thread has not claimed yet, copies their files
 * with the same steps the calling thread uses (`local-copy.ts`), and answers
 * once it has gone through the offer. It only runs as a worker thread.
 */
import { parentPort } from 'node:worker_threads';
import { SandboxError } from '../errors.js';
import { copyContext, copyFileSteps, runStepsSync, type CopyContext } from './local-copy.js';
import type { BatchOutcome, OfferMessage, WireCopyError } from './copy-thread.js';

const contexts = new Map<number, CopyContext>();

function wire(e: unknown): WireCopyError {
  if (e instanceof SandboxError)
    return { message: e.message, sandbox: { code: e.code, retryable: e.retryable } };
  const err = e as { message?: unknown; code?: unknown };
  return {
    message: typeof err.message === 'string' ? err.message : String(e),
    ...(typeof err.code === 'string' ? { code: err.code } : {}),
  };
}

function run(m: OfferMessage): BatchOutcome[] {
  let ctx = contexts.get(m.umask);
  if (!ctx) {
    ctx = copyContext(m.umask);
    contexts.set(m.umask, ctx);
  }
  const outcomes: BatchOutcome[] = [];
  for (let i = 0; i < m.batches.length; i++) {
    // 0 = free; 1 = taken here; 2 = taken by the calling thread.
    if (Atomics.compareExchange(m.state, i, 0, 1) !== 0) continue;
    const b = m.batches[i];
    if (b === undefined) continue;
    const results: Array<number | string> = [];
    try {
      for (let k = 0; k < b.names.length; k++) {
        results.push(
          runStepsSync(copyFileSteps(b.srcDirFd, b.dstDirFd, b.names[k] ?? '', b.rels[k] ?? '', ctx)),
        );
      }
      outcomes.push({ i, results });
    } catch (e) {
      outcomes.push({ i, results, error: wire(e) });
      break; // the transfer fails: leave the rest to the calling thread's clean-up
    }
  }
  return outcomes;
}

parentPort?.on('message', (m: OfferMessage) => {
  parentPort?.postMessage({ id: m.id, outcomes: run(m) });
});
