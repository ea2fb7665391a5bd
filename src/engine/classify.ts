import {
  type SandboxErrorCode,
  MaxTurnsExceededError,
  ModelError,
  SandboxError,
  TokenBudgetExceededError,
  UserError,
  errorMessage,
} from '../errors.js';
import type { ErrorInfo, JobStatus, StepStatus } from '../results/types.js';
import { AbortReason, isAbortError } from '../util/abort.js';
import { isRetryableCode } from '../agent/openai-model.js';

/**
 * Sandbox faults worth a fresh sandbox even when the backend gave up on the
 * operation itself (its own retries are exhausted): capacity comes back,
 * broken sandboxes get replaced. Other codes follow the error's `retryable`
 * (auth, unusable working dirs, images that do not build are not retried).
 */
const JOB_RETRYABLE_SANDBOX_CODES: readonly SandboxErrorCode[] = [
  'rate-limited',
  'exec-failed',
  'transfer-failed',
  'gone',
];

/**
 * Maps what ended a step or job to a status (product.md §5): sandbox and
 * model API faults are infrastructure (`error`, retried, never counted as
 * failures); agent limits are `failed`; our own aborts carry their kind.
 */
export function classifyError(err: unknown): { status: StepStatus & JobStatus; error: ErrorInfo } {
  if (err instanceof AbortReason) {
    switch (err.kind) {
      case 'step-timeout':
      case 'job-timeout':
        return { status: 'timed-out', error: { kind: 'step', code: err.kind, message: err.message } };
      case 'cancelled':
      case 'teardown':
        return { status: 'cancelled', error: { kind: 'step', code: 'cancelled', message: err.message } };
    }
  }
  if (err instanceof SandboxError) {
    // A fresh sandbox may well succeed where this one failed, unless the
    // backend knows better (auth, an image that does not build).
    const retryable = err.retryable || JOB_RETRYABLE_SANDBOX_CODES.includes(err.code);
    return { status: 'error', error: { kind: 'sandbox', code: err.code, message: err.message, retryable } };
  }
  if (err instanceof ModelError) {
    const retryable = isRetryableCode(err.code);
    return { status: 'error', error: { kind: 'model', code: err.code, message: err.message, retryable } };
  }
  if (err instanceof MaxTurnsExceededError) {
    return { status: 'failed', error: { kind: 'step', code: 'max-turns', message: err.message } };
  }
  if (err instanceof TokenBudgetExceededError) {
    return { status: 'failed', error: { kind: 'step', code: 'max-tokens', message: err.message } };
  }
  if (err instanceof UserError) {
    // e.g. an expression that fails at run time (fromJSON of a step's output)
    return { status: 'failed', error: { kind: 'user', message: err.message } };
  }
  if (isAbortError(err)) {
    return { status: 'cancelled', error: { kind: 'step', code: 'cancelled', message: errorMessage(err) } };
  }
  return {
    status: 'error',
    error: { kind: 'internal', message: `internal error: ${errorMessage(err)}` },
  };
}
