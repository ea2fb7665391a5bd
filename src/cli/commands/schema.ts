import { readFile } from 'node:fs/promises';
import type { Command } from '../command.js';
import { expectPositionals, parseCommandArgs } from '../command.js';
import { ExitCode, UsageError } from '../exit-code.js';
import { packagePath } from '../version.js';

const KINDS = ['workflow', 'profile'] as const;

/** Absolute path of a shipped schema (`schemas/<kind>.schema.json`). */
export function schemaPath(kind: (typeof KINDS)[number]): string {
  return packagePath(`schemas/${kind}.schema.json`);
}

/** `rho-flow schema`: prints a shipped JSON Schema, byte for byte. */
export const schemaCommand: Command = {
  name: 'schema',
  summary: 'print the JSON Schema of workflow or profile files',
  usage: 'schema [workflow|profile]',
  description: [
    'Prints the draft-07 JSON Schema (default: workflow) to stdout, e.g. for editors without',
    'the `# yaml-language-server: $schema=...` modeline or for other tools.',
  ].join('\n'),
  options: {},
  examples: ['rho-flow schema > workflow.schema.json', 'rho-flow schema profile'],
  async run(argv, io) {
    const args = parseCommandArgs(schemaCommand, argv);
    const [kind = 'workflow'] = expectPositionals(args, schemaCommand.name, {
      min: 0,
      max: 1,
      what: 'schema name',
    });
    if (!(KINDS as readonly string[]).includes(kind)) {
      throw new UsageError(`unknown schema '${kind}' (choose ${KINDS.join(' or ')})`, schemaCommand.name);
    }
    io.stdout.write(await readFile(schemaPath(kind as (typeof KINDS)[number]), 'utf8'));
    return ExitCode.OK;
  },
};
