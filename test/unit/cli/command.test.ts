import { describe, expect, test } from 'vitest';
import {
  expectPositionals,
  formatCommandHelp,
  formatOptions,
  parseCommandArgs,
  type Command,
} from '../../../src/cli/command.js';
import { UsageError } from '../../../src/cli/exit-code.js';

const cmd: Command = {
  name: 'demo',
  summary: 'a demo command',
  usage: 'demo <files...> [options]',
  description: 'Longer text.',
  options: {
    format: { type: 'string', value: 'text|json', default: 'text', description: 'output format' },
    var: { type: 'string', multiple: true, value: 'k=v', description: 'a var' },
    json: { type: 'boolean', description: 'json output' },
    jobs: { type: 'string', short: 'j', value: 'n', env: 'DEMO_JOBS', description: 'parallelism' },
    resume: {
      type: 'string',
      value: 'run-id',
      optionalValue: (next) => /^[a-z0-9-]+$/.test(next),
      description: 'resume a run',
    },
  },
  examples: ['rho-flow demo x.yaml'],
  run: () => Promise.resolve(0),
};

function usageError(argv: string[]): UsageError {
  try {
    parseCommandArgs(cmd, argv);
  } catch (e) {
    if (e instanceof UsageError) return e;
    throw e;
  }
  throw new Error(`expected a UsageError for ${argv.join(' ')}`);
}

describe('parseCommandArgs', () => {
  test('strings, repeatable strings, booleans, shorts and positionals', () => {
    const a = parseCommandArgs(cmd, [
      'a.yaml',
      '--format',
      'json',
      '--var',
      'x=1',
      '--var=y=2',
      '-j',
      '3',
      '--json',
      'b.yaml',
    ]);
    expect(a.positionals).toEqual(['a.yaml', 'b.yaml']);
    expect(a.string('format')).toBe('json');
    expect(a.strings('var')).toEqual(['x=1', 'y=2']);
    expect(a.string('jobs')).toBe('3');
    expect(a.flag('json')).toBe(true);
    expect(a.has('resume')).toBe(false);
    expect(a.strings('format')).toEqual(['json']);
  });

  test('a repeated single option keeps the last value', () => {
    expect(parseCommandArgs(cmd, ['--format', 'a', '--format=b']).string('format')).toBe('b');
  });

  test('everything after -- is positional', () => {
    const a = parseCommandArgs(cmd, ['--json', '--', '--format', '-j']);
    expect(a.positionals).toEqual(['--format', '-j']);
    expect(a.has('format')).toBe(false);
  });

  test('unknown options: did-you-mean for long and short names', () => {
    expect(usageError(['--fromat', 'x']).message).toBe(
      "unknown option '--fromat' for 'rho-flow demo' (did you mean '--format'?)",
    );
    expect(usageError(['--zzzzzz']).message).toBe("unknown option '--zzzzzz' for 'rho-flow demo'");
    expect(usageError(['-J', '2']).message).toBe(
      "unknown option '-J' for 'rho-flow demo' (did you mean '-j'?)",
    );
    expect(usageError(['--fromat']).command).toBe('demo');
  });

  test('a string option needs a value, and not another option', () => {
    expect(usageError(['--format']).message).toBe("option '--format' needs a value (text|json)");
    expect(usageError(['--format', '--json']).message).toBe(
      "option '--format' needs a value (text|json), got the option '--json'",
    );
    expect(usageError(['-j']).message).toBe("option '-j' needs a value (n)");
  });

  test('an inline value may start with a dash', () => {
    expect(parseCommandArgs(cmd, ['--var=-x=1']).strings('var')).toEqual(['-x=1']);
  });

  test('a boolean option takes no value', () => {
    expect(usageError(['--json=yes']).message).toBe("option '--json' does not take a value");
  });

  test('optional values: taken only when the next argument looks like one', () => {
    expect(parseCommandArgs(cmd, ['--resume']).string('resume')).toBe('');
    expect(parseCommandArgs(cmd, ['--resume', 'run-1', 'a.yaml']).string('resume')).toBe('run-1');
    const files = parseCommandArgs(cmd, ['--resume', 'flows/a.yaml']);
    expect(files.string('resume')).toBe('');
    expect(files.positionals).toEqual(['flows/a.yaml']);
    expect(parseCommandArgs(cmd, ['--resume=abc']).string('resume')).toBe('abc');
    expect(parseCommandArgs(cmd, ['--resume', '--json']).flag('json')).toBe(true);
  });

  test('expectPositionals checks the count', () => {
    const a = parseCommandArgs(cmd, ['x', 'y']);
    expect(expectPositionals(a, 'demo', { min: 1, what: 'files' })).toEqual(['x', 'y']);
    expect(() => expectPositionals(parseCommandArgs(cmd, []), 'demo', { min: 1, what: 'files' })).toThrow(
      'missing files',
    );
    expect(() => expectPositionals(a, 'demo', { min: 0, max: 1, what: 'a name' })).toThrow(
      "unexpected argument 'y'",
    );
  });
});

describe('help text', () => {
  test('options with placeholders, defaults, env and repeatable notes', () => {
    const text = formatOptions(cmd.options);
    expect(text).toContain('      --format <text|json>');
    expect(text).toContain('output format (default: text)');
    expect(text).toContain('a var (repeatable)');
    expect(text).toContain('  -j, --jobs <n>');
    expect(text).toContain('parallelism (env: DEMO_JOBS)');
    expect(text).toContain('      --resume [run-id]');
  });

  test('command help: usage, summary, description, options incl. global ones, examples, exit codes', () => {
    const help = formatCommandHelp(cmd);
    expect(
      help.startsWith('Usage: rho-flow demo <files...> [options]\n\na demo command\n\nLonger text.\n'),
    ).toBe(true);
    expect(help).toContain('--no-color');
    expect(help).toContain('-h, --help');
    expect(help).toContain('Examples:\n  rho-flow demo x.yaml');
    expect(help).toMatch(/Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*\n {2}3 .*\n {2}130 .*\n {2}143 /);
  });
});
