/**
 * The command registry. Each entry loads its module lazily, so
 * `rho-flow --version` and `--help` never import the loader, `yaml`, `ajv`
 * or an SDK. To add a command: write `commands/<name>.ts` exporting a
 * `Command`, and add one line here.
 */
import type { Command } from '../command.js';

export interface CommandEntry {
  name: string;
  /** Shown in `rho-flow --help`; must match the command's own `summary`. */
  summary: string;
  load(): Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'run', summary: 'run workflows', load: async () => (await import('./run.js')).runCommand },
  {
    name: 'validate',
    summary: 'check workflow files and their job plans',
    load: async () => (await import('./validate.js')).validateCommand,
  },
  {
    name: 'list',
    summary: 'show the expanded job plan',
    load: async () => (await import('./list.js')).listCommand,
  },
  {
    name: 'schema',
    summary: 'print the JSON Schema of workflow or profile files',
    load: async () => (await import('./schema.js')).schemaCommand,
  },
  {
    name: 'merge',
    summary: 'combine shard run directories into one run',
    load: async () => (await import('./merge.js')).mergeCommand,
  },
  {
    name: 'cleanup',
    summary: 'remove sandboxes and workspaces left behind by dead runs',
    load: async () => (await import('./cleanup.js')).cleanupCommand,
  },
  {
    name: 'init',
    summary: 'create a starter workflow file',
    load: async () => (await import('./init.js')).initCommand,
  },
];

/** The registry entry for `name`, if any. */
export function findCommand(name: string): CommandEntry | undefined {
  return COMMANDS.find((c) => c.name === name);
}
