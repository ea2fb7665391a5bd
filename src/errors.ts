/**
 * Error classes. Expected failures are typed with a closed `code` union so the
 * CLI can map them to exit codes in one place (see `cli/exit-code.ts`).
 */

/** Base of every error rho-flow raises on purpose. */
export class RhoFlowError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input or usage: the user can fix it. Maps to exit code 2. */
export class UserError extends RhoFlowError {}

/** A bug in rho-flow. */
export class InternalError extends RhoFlowError {}

/** Closed set of sandbox failure codes. */
export type SandboxErrorCode =
  | 'unavailable' // backend missing (no bwrap under strict isolation, SDK not installed)
  | 'auth' // credentials missing or refused
  | 'create-failed'
  | 'rate-limited'
  | 'exec-failed' // the exec API failed (not: the command exited non-zero)
  | 'transfer-failed'
  | 'not-found'
  | 'path-escape' // a path resolved outside the sandbox workspace
  | 'delete-failed'
  | 'gone'; // the sandbox disappeared under us

/**
 * An infrastructure fault of a sandbox backend. `retryable` says whether the
 * same operation may be tried again; a job that ends on one of these has
 * status `error`, never `failed`.
 */
export class SandboxError extends RhoFlowError {
  readonly code: SandboxErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;
  constructor(
    code: SandboxErrorCode,
    message: string,
    options: ErrorOptions & { retryable?: boolean; details?: Record<string, unknown> } = {},
  ) {
    super(message, options);
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/** Closed set of model failure codes. */
export type ModelErrorCode =
  'auth' | 'rate-limited' | 'server' | 'connection' | 'timeout' | 'bad-request' | 'replay-miss';

/** The model API failed (after retries). A job that ends on one has status `error`. */
export class ModelError extends RhoFlowError {
  readonly code: ModelErrorCode;
  readonly status: number | undefined;
  constructor(code: ModelErrorCode, message: string, options: ErrorOptions & { status?: number } = {}) {
    super(message, options);
    this.code = code;
    this.status = options.status;
  }
}

/** The agent used all of its turns without a final answer. The step fails. */
export class MaxTurnsExceededError extends RhoFlowError {
  readonly maxTurns: number;
  constructor(maxTurns: number) {
    super(`the agent did not finish within max-turns (${maxTurns})`);
    this.maxTurns = maxTurns;
  }
}

/** The job's token budget (`max-tokens`) was used up. The step fails. */
export class TokenBudgetExceededError extends RhoFlowError {
  readonly budget: number;
  readonly used: number;
  constructor(budget: number, used: number) {
    super(`token budget exceeded: used ${used} of max-tokens ${budget}`);
    this.budget = budget;
    this.used = used;
  }
}

/** True when the error is an infrastructure fault (job status `error`). */
export function isInfrastructureError(err: unknown): err is SandboxError | ModelError {
  return err instanceof SandboxError || err instanceof ModelError;
}

/** A value-or-diagnostics result for expected failures. */
export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const err = <E>(error: E): { ok: false; error: E } => ({ ok: false, error });

/** Message of any thrown value, for logs and results. */
export function errorMessage(e: unknown): string {
  if (e instanceof AggregateError) return [e.message, ...e.errors.map(errorMessage)].join('; ');
  if (e instanceof Error) return e.message;
  return String(e);
}
