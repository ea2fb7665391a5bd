import { describe, expect, it } from 'vitest';
import { classifyError } from '../../../src/engine/classify.js';
import { AbortReason } from '../../../src/util/abort.js';
import {
  MaxTurnsExceededError,
  ModelError,
  SandboxError,
  TokenBudgetExceededError,
  UserError,
} from '../../../src/errors.js';

describe('classifyError', () => {
  it.each([
    [new AbortReason('step-timeout'), 'timed-out', 'step'],
    [new AbortReason('job-timeout'), 'timed-out', 'step'],
    [new AbortReason('cancelled'), 'cancelled', 'step'],
    [new AbortReason('teardown'), 'cancelled', 'step'],
    [new SandboxError('create-failed', 'x'), 'error', 'sandbox'],
    [new ModelError('server', 'x'), 'error', 'model'],
    [new MaxTurnsExceededError(3), 'failed', 'step'],
    [new TokenBudgetExceededError(10, 12), 'failed', 'step'],
    [new UserError('bad expression'), 'failed', 'user'],
    [new DOMException('aborted', 'AbortError'), 'cancelled', 'step'],
    [new TypeError('boom'), 'error', 'internal'],
  ] as const)('%s → %s', (err, status, kind) => {
    const c = classifyError(err);
    expect(c.status).toBe(status);
    expect(c.error.kind).toBe(kind);
  });

  it('infrastructure errors are never failures', () => {
    expect(classifyError(new SandboxError('rate-limited', 'x', { retryable: true })).status).toBe('error');
    expect(classifyError(new ModelError('rate-limited', 'x')).status).toBe('error');
  });
});

describe('retryable infrastructure errors', () => {
  it('marks deterministic model failures as not retryable', () => {
    expect(classifyError(new ModelError('replay-miss', 'x')).error.retryable).toBe(false);
    expect(classifyError(new ModelError('auth', 'x')).error.retryable).toBe(false);
    expect(classifyError(new ModelError('server', 'x')).error.retryable).toBe(true);
  });

  it('retries sandbox faults with a fresh sandbox unless they are about credentials or availability', () => {
    expect(classifyError(new SandboxError('create-failed', 'x', { retryable: true })).error.retryable).toBe(
      true,
    );
    expect(classifyError(new SandboxError('create-failed', 'bad working dir')).error.retryable).toBe(false);
    expect(classifyError(new SandboxError('path-escape', 'x')).error.retryable).toBe(false);
    expect(classifyError(new SandboxError('rate-limited', 'gave up')).error.retryable).toBe(true);
    expect(classifyError(new SandboxError('exec-failed', 'x')).error.retryable).toBe(true);
    expect(classifyError(new SandboxError('auth', 'x')).error.retryable).toBe(false);
    expect(classifyError(new SandboxError('unavailable', 'x')).error.retryable).toBe(false);
  });
});
