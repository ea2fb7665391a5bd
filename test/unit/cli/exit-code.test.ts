import { describe, expect, test } from 'vitest';
import {
  ExitCode,
  UsageError,
  exitCodeFor,
  exitCodeForSignal,
  reportError,
} from '../../../src/cli/exit-code.js';
import { InternalError, ModelError, SandboxError, UserError } from '../../../src/errors.js';
import { TemplateError } from '../../../src/expr/template.js';
import { AbortReason } from '../../../src/util/abort.js';
import { BufferSink } from '../../helpers/cli.js';

describe('exitCodeFor', () => {
  test.each<[string, unknown, number]>([
    ['UserError', new UserError('bad'), 2],
    ['UsageError', new UsageError('bad flag'), 2],
    ['TemplateError', new TemplateError('x', undefined, 0), 2],
    ['SandboxError', new SandboxError('create-failed', 'nope'), 3],
    ['ModelError', new ModelError('server', '500'), 3],
    ['cancelled', new AbortReason('cancelled'), 130],
    ['InternalError', new InternalError('bug'), 1],
    ['TypeError', new TypeError('x is undefined'), 1],
    ['a string', 'thrown string', 1],
  ])('%s → %d', (_name, err, code) => {
    expect(exitCodeFor(err)).toBe(code);
  });

  test('signals', () => {
    expect(exitCodeForSignal('SIGINT')).toBe(ExitCode.SIGINT);
    expect(exitCodeForSignal('SIGTERM')).toBe(ExitCode.SIGTERM);
    expect(exitCodeForSignal('SIGHUP')).toBe(129);
  });
});

describe('reportError', () => {
  function report(err: unknown): { code: number; text: string } {
    const stderr = new BufferSink();
    const code = reportError(err, { stdout: new BufferSink(), stderr, env: {}, cwd: '/' });
    return { code, text: stderr.text };
  }

  test('usage errors point at the right --help', () => {
    expect(report(new UsageError('unknown option', 'validate'))).toEqual({
      code: 2,
      text: "rho-flow: error: unknown option\nRun 'rho-flow validate --help' for usage.\n",
    });
    expect(report(new UsageError('unknown command')).text).toContain("Run 'rho-flow --help' for usage.");
  });

  test('user and infrastructure errors print their message', () => {
    expect(report(new UserError('vars file not found'))).toEqual({
      code: 2,
      text: 'rho-flow: error: vars file not found\n',
    });
    expect(report(new SandboxError('auth', 'DAYTONA_API_KEY is not set'))).toEqual({
      code: 3,
      text: 'rho-flow: error: DAYTONA_API_KEY is not set\n',
    });
  });

  test('anything else is reported as a bug with its stack', () => {
    const r = report(new TypeError('boom'));
    expect(r.code).toBe(1);
    expect(r.text).toMatch(
      /^rho-flow: internal error \(a bug in rho-flow; please report it\):\nTypeError: boom\n {4}at /,
    );
  });
});
