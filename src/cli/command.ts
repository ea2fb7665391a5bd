/**
 * The shape of a CLI command, its option parsing and its `--help` text.
 * A command is a small object; adding one means writing
 * `commands/<name>.ts` and one line in `commands/index.ts`.
 */
import { parseArgs } from 'node:util';
import { didYouMean } from '../util/did-you-mean.js';
import { EXIT_CODES_HELP, UsageError } from './exit-code.js';
import type { CliIo } from './io.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given several times; the values are collected in order. */
  multiple?: boolean;
  /**
   * The value may be left out (`--resume` or `--resume <id>`). A following
   * argument is taken as the value only when it looks like one (see
   * `optionalValue` below), so `--resume flows/*.yaml` still works.
   */
  optionalValue?: (next: string) => boolean;
  /** Value placeholder in help, e.g. `<n>` or `local|daytona`. */
  value?: string;
  description: string;
  /** Default shown in help. */
  default?: string;
  /** Environment variable that provides the default, shown in help. */
  env?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface Command {
  readonly name: string;
  /** One line, for the program's command list. */
  readonly summary: string;
  /** Usage after `rho-flow `, e.g. `validate <files|globs...> [options]`. */
  readonly usage: string;
  /** Paragraphs for `--help` below the usage line. */
  readonly description?: string;
  readonly options: OptionSpecs;
  readonly examples?: readonly string[];
  /** Runs the command; `argv` excludes the command name and the global flags. Returns the exit code. */
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

/** Parsed arguments, with typed accessors. */
export class ParsedArgs {
  readonly positionals: readonly string[];
  readonly #values: Readonly<Record<string, string | boolean | Array<string | boolean> | undefined>>;

  constructor(values: ParsedArgs['values'], positionals: readonly string[]) {
    this.#values = values;
    this.positionals = positionals;
  }

  get values(): Readonly<Record<string, string | boolean | Array<string | boolean> | undefined>> {
    return this.#values;
  }

  /** The value of a string option (the last one when repeated). */
  string(name: string): string | undefined {
    const v = this.#values[name];
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    return typeof last === 'string' ? last : undefined;
  }

  /** Every value of a repeatable string option, in order. */
  strings(name: string): string[] {
    const v = this.#values[name];
    const all = Array.isArray(v) ? v : v === undefined ? [] : [v];
    return all.filter((x): x is string => typeof x === 'string');
  }

  /** Whether a boolean option was given. */
  flag(name: string): boolean {
    return this.#values[name] === true;
  }

  /** Whether the option appeared at all. */
  has(name: string): boolean {
    return this.#values[name] !== undefined;
  }
}

function displayName(name: string, spec: OptionSpec | undefined, raw?: string): string {
  if (raw?.startsWith('-') && !raw.startsWith('--')) return raw;
  return spec ? `--${name}` : (raw ?? `--${name}`);
}

/**
 * Parses `argv` against the command's options (strictly: unknown options,
 * missing values and values for flags are `UsageError`s with a did-you-mean).
 * `--` ends the options.
 */
export function parseCommandArgs(
  command: Pick<Command, 'name' | 'options'>,
  argv: readonly string[],
): ParsedArgs {
  const specs = command.options;
  // Rewrite optional-value options to their inline form, so parseArgs never swallows a file name.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') {
      args.push(...argv.slice(i));
      break;
    }
    const spec = a.startsWith('--') ? specs[a.slice(2)] : undefined;
    if (spec?.optionalValue) {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('-') && spec.optionalValue(next)) {
        args.push(`${a}=${next}`);
        i++;
      } else args.push(`${a}=`);
      continue;
    }
    args.push(a);
  }

  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      multiple: spec.multiple ?? false,
    };
  }
  const { values, positionals, tokens } = parseArgs({
    args,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });

  const longNames = Object.keys(specs).map((n) => `--${n}`);
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = specs[token.name];
    const shown = displayName(token.name, spec, token.rawName);
    if (!spec) {
      const shorts = Object.values(specs).flatMap((s) => (s.short ? [`-${s.short}`] : []));
      const guess = didYouMean(
        token.rawName,
        token.rawName.startsWith('--') ? longNames : [...shorts, ...longNames],
      );
      throw new UsageError(
        `unknown option '${token.rawName}' for 'rho-flow ${command.name}'${guess ? ` (did you mean '${guess}'?)` : ''}`,
        command.name,
      );
    }
    if (spec.type === 'boolean') {
      if (token.inlineValue) throw new UsageError(`option '${shown}' does not take a value`, command.name);
      continue;
    }
    if (spec.optionalValue) continue;
    if (token.value === undefined) {
      throw new UsageError(
        `option '${shown}' needs a value${spec.value ? ` (${spec.value})` : ''}`,
        command.name,
      );
    }
    if (!token.inlineValue && token.value.startsWith('-') && token.value.length > 1) {
      throw new UsageError(
        `option '${shown}' needs a value${spec.value ? ` (${spec.value})` : ''}, got the option '${token.value}'`,
        command.name,
      );
    }
  }
  return new ParsedArgs(values, positionals);
}

/** Options every command accepts (handled by `runCli`), for help texts. */
export const GLOBAL_OPTIONS: OptionSpecs = {
  color: {
    type: 'boolean',
    description: 'force coloured output (default: auto; honours FORCE_COLOR, NO_COLOR)',
  },
  'no-color': { type: 'boolean', description: 'disable coloured output' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

/** The option table of a help text. */
export function formatOptions(specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const value =
      spec.type === 'string'
        ? spec.optionalValue
          ? ` [${spec.value ?? 'value'}]`
          : ` <${spec.value ?? 'value'}>`
        : '';
    const left = `  ${short}--${name}${value}`;
    const notes: string[] = [];
    if (spec.multiple) notes.push('repeatable');
    if (spec.default !== undefined) notes.push(`default: ${spec.default}`);
    if (spec.env) notes.push(`env: ${spec.env}`);
    const right = spec.description + (notes.length > 0 ? ` (${notes.join('; ')})` : '');
    return [left, right] as const;
  });
  const width = Math.min(38, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows
    .map(([l, r]) => (l.length + 2 > width ? `${l}\n${' '.repeat(width)}${r}` : l.padEnd(width) + r))
    .join('\n');
}

/** The full `--help` text of a command. */
export function formatCommandHelp(command: Command): string {
  const parts = [`Usage: rho-flow ${command.usage}`, '', command.summary];
  if (command.description) parts.push('', command.description);
  parts.push('', 'Options:', formatOptions({ ...command.options, ...GLOBAL_OPTIONS }));
  if (command.examples && command.examples.length > 0) {
    parts.push('', 'Examples:', ...command.examples.map((e) => `  ${e}`));
  }
  parts.push('', EXIT_CODES_HELP);
  return parts.join('\n') + '\n';
}

/** Checks the number of positional arguments. */
export function expectPositionals(
  args: ParsedArgs,
  command: string,
  range: { min: number; max?: number; what: string },
): readonly string[] {
  const n = args.positionals.length;
  if (n < range.min) throw new UsageError(`missing ${range.what}`, command);
  if (range.max !== undefined && n > range.max) {
    throw new UsageError(`unexpected argument '${args.positionals[range.max] ?? ''}'`, command);
  }
  return args.positionals;
}
