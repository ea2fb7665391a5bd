/**
 * Exit codes, decided in one place (product.md §4). Commands return a code;
 * anything they throw is mapped here by `exitCodeFor` and printed by
 * `reportError`. Library code never calls `process.exit`.
 */
import { ModelError, SandboxError, UserError, errorMessage } from '../errors.js';
import { AbortReason } from '../util/abort.js';
import { println, styles, type CliIo } from './io.js';

export const ExitCode = {
  /** Every job passed (or `--min-pass-rate` was met); a command succeeded. */
  OK: 0,
  /** A job failed or timed out (also: an unexpected internal error). */
  FAILED: 1,
  /** Invalid input or usage: nothing was started. */
  INVALID: 2,
  /** A job ended in an infrastructure error (sandbox or model API) after retries. */
  INFRA: 3,
  /** Interrupted by SIGINT (after teardown). */
  SIGINT: 130,
  /** Interrupted by SIGTERM (after teardown). */
  SIGTERM: 143,
} as const;

/** The exit-code table every `--help` prints. */
export const EXIT_CODES_HELP = `Exit codes:
  0    every job passed (or --min-pass-rate was met); the command succeeded
  1    a job failed or timed out
  2    invalid input or usage: nothing was started
  3    a job ended in an infrastructure error (sandbox or model API) after retries
  130  interrupted by SIGINT (after teardown)
  143  interrupted by SIGTERM (after teardown)
  When several apply: 130/143 > 3 > 1 > 0.`;

/**
 * A command-line usage problem (unknown command or option, bad flag value).
 * `command` names the command whose `--help` the message points to.
 */
export class UsageError extends UserError {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

/** Maps a thrown value to the process exit code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UserError) return ExitCode.INVALID;
  if (err instanceof SandboxError || err instanceof ModelError) return ExitCode.INFRA;
  if (err instanceof AbortReason && err.kind === 'cancelled') return ExitCode.SIGINT;
  return ExitCode.FAILED;
}

/** Exit code for an interruption by `signal` (128 + signal number). */
export function exitCodeForSignal(signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP'): number {
  return signal === 'SIGINT' ? ExitCode.SIGINT : signal === 'SIGTERM' ? ExitCode.SIGTERM : 129;
}

/** Prints a thrown value for the user on stderr and returns its exit code. */
export function reportError(err: unknown, io: CliIo): number {
  const s = styles(io, 'stderr');
  const code = exitCodeFor(err);
  if (err instanceof UsageError) {
    println(io.stderr, `${s.red('rho-flow: error:')} ${err.message}`);
    const help = err.command ? `rho-flow ${err.command} --help` : 'rho-flow --help';
    println(io.stderr, `Run '${help}' for usage.`);
  } else if (err instanceof UserError || err instanceof SandboxError || err instanceof ModelError) {
    println(io.stderr, `${s.red('rho-flow: error:')} ${errorMessage(err)}`);
  } else if (err instanceof AbortReason) {
    println(io.stderr, `rho-flow: ${err.message}`);
  } else {
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    println(
      io.stderr,
      `${s.red('rho-flow: internal error')} (a bug in rho-flow; please report it):\n${detail}`,
    );
  }
  return code;
}
