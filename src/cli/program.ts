/**
 * The program: global flags, `--help`/`--version`, and dispatch to a command.
 * `runCli` is what `main.ts` calls with the real process; tests call it
 * in-process with their own `CliIo`. It never throws and never exits: it
 * returns the exit code.
 */
import { didYouMean } from '../util/did-you-mean.js';
import { formatCommandHelp, formatOptions, GLOBAL_OPTIONS } from './command.js';
import { COMMANDS, findCommand } from './commands/index.js';
import { EXIT_CODES_HELP, ExitCode, UsageError, reportError } from './exit-code.js';
import { println, wantsColor, type CliIo, type ColorFlag } from './io.js';
import { version } from './version.js';

/** The program-level `--help` text. */
export function programHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  return [
    `rho-flow ${version()}: declarative AI-agent workflows in sandboxes, at batch scale`,
    '',
    'Usage: rho-flow <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Global options:',
    formatOptions({
      ...GLOBAL_OPTIONS,
      version: { type: 'boolean', short: 'v', description: 'print the version' },
    }),
    '',
    "Run 'rho-flow <command> --help' for the options of a command.",
    '',
    EXIT_CODES_HELP,
    '',
  ].join('\n');
}

/** Removes the flags every command accepts from `argv` (up to `--`). */
function extractGlobals(argv: readonly string[]): { rest: string[]; color: ColorFlag; help: boolean } {
  const rest: string[] = [];
  let color: ColorFlag;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--color') color = true;
    else if (a === '--no-color') color = false;
    else if (a === '--help' || a === '-h') help = true;
    else rest.push(a);
  }
  return { rest, color, help };
}

function unknownCommand(name: string): UsageError {
  if (/\.ya?ml$/i.test(name) || name.includes('*')) {
    return new UsageError(`unknown command '${name}' (did you mean 'rho-flow run ${name}'?)`);
  }
  const guess = didYouMean(
    name,
    COMMANDS.map((c) => c.name),
  );
  return new UsageError(`unknown command '${name}'${guess ? ` (did you mean '${guess}'?)` : ''}`);
}

/**
 * Runs the CLI with `argv` (without `node` and the script path). Colour for
 * each stream is decided here (see `wantsColor`) and passed on in `io.color`.
 */
export async function runCli(argv: readonly string[], baseIo: CliIo): Promise<number> {
  const { rest, color, help } = extractGlobals(argv);
  const io: CliIo = {
    ...baseIo,
    color: {
      stdout: wantsColor(color, baseIo.env, baseIo.stdout),
      stderr: wantsColor(color, baseIo.env, baseIo.stderr),
    },
  };
  try {
    const [first, ...tail] = rest;
    if (first === undefined || first === '--') {
      if (help) {
        io.stdout.write(programHelp());
        return ExitCode.OK;
      }
      io.stderr.write(programHelp());
      return ExitCode.INVALID;
    }
    if (first === '--version' || first === '-v') {
      println(io.stdout, version());
      return ExitCode.OK;
    }
    if (first === 'help') {
      const topic = tail[0];
      if (topic === undefined) {
        io.stdout.write(programHelp());
        return ExitCode.OK;
      }
      const entry = findCommand(topic);
      if (!entry) throw unknownCommand(topic);
      io.stdout.write(formatCommandHelp(await entry.load()));
      return ExitCode.OK;
    }
    if (first.startsWith('-')) {
      const guess = didYouMean(first, ['--help', '--version', '--color', '--no-color']);
      throw new UsageError(
        `unknown option '${first}'${guess ? ` (did you mean '${guess}'?)` : ''}; a command comes first: rho-flow <command> [options]`,
      );
    }
    const entry = findCommand(first);
    if (!entry) throw unknownCommand(first);
    const command = await entry.load();
    if (help) {
      io.stdout.write(formatCommandHelp(command));
      return ExitCode.OK;
    }
    return await command.run(tail, io);
  } catch (e) {
    return reportError(e, io);
  }
}
