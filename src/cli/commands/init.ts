import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from '../command.js';
import { expectPositionals, parseCommandArgs } from '../command.js';
import { ExitCode, UsageError } from '../exit-code.js';
import { println, styles } from '../io.js';
import { version } from '../version.js';
import { schemaPath } from './schema.js';

const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * What the `$schema` modeline of a new file in `dir` points at:
 * - a relative path to this installation's schema when `dir` belongs to the
 *   project it is installed in (`node_modules/rho-flow` below an ancestor of
 *   `dir`) or lies inside rho-flow's own source tree, so editors work offline
 *   and the schema matches the installed version;
 * - otherwise (global install, npx cache) the schema of this exact version
 *   on unpkg, since a path into a global directory would not travel with
 *   the file.
 */
export function schemaReference(dir: string, schemaFile = schemaPath('workflow')): string {
  const packageRoot = path.dirname(path.dirname(schemaFile));
  const parts = packageRoot.split(path.sep);
  const nm = parts.lastIndexOf('node_modules');
  const project = nm > 0 ? parts.slice(0, nm).join(path.sep) || path.sep : undefined;
  if (isInside(dir, packageRoot) || (project !== undefined && isInside(dir, project))) {
    const rel = path.relative(dir, schemaFile).split(path.sep).join('/');
    return rel.startsWith('.') ? rel : `./${rel}`;
  }
  return `https://unpkg.com/rho-flow@${version()}/schemas/workflow.schema.json`;
}

/** The starter workflow: validates clean, and shows the main features with comments. */
export function starterWorkflow(name: string, schemaRef: string): string {
  return `# yaml-language-server: $schema=${schemaRef}
# A rho-flow workflow: one sandbox per job, shell \`run\` steps and agent \`prompt\` steps.
#   check it:  rho-flow validate ${name}.rho-flow.yaml
#   run it:    rho-flow run ${name}.rho-flow.yaml
# Every key is described in the schema (hover in your editor, or: rho-flow schema).

name: ${name}                       # [A-Za-z0-9._-]+, unique across one run
description: A starter workflow - a shell step, an agent step, a check and an artifact.

sandbox:
  backend: local                  # local (bubblewrap jail on this machine) | daytona (cloud)
  working-dir: /work
  network: off                    # off | on
  env:
    GREETING: hello

timeout: 15m                      # the whole job, including setup and teardown
profile: developer                # readonly | developer | developer-bash-only | unrestricted | ./profile.yaml
model: gpt-5-mini                 # any OpenAI-compatible endpoint: OPENAI_API_KEY, OPENAI_BASE_URL

vars:
  topic: rainbows                 # override with --var topic=...

# strategy:                       # fan out into several jobs
#   matrix:
#     language: [python, javascript]
#   repeat: 2                     # \${{ repeat.index }} = 1..2

steps:
  - id: setup
    run: |
      mkdir -p out
      echo "$GREETING from $(uname -s)" > out/greeting.txt
  - id: write
    prompt: |
      Write a four-line poem about \${{ vars.topic }} into the file out/poem.txt.
    max-turns: 10
    timeout: 5m
  - id: check
    run: test -s out/poem.txt && wc -l < out/poem.txt

finally:                          # always runs, even after a failure or a timeout
  - run: ls -la out || true

artifacts:
  - path: /work/out               # copied to <output-dir>/<run-id>/jobs/<job>/artifacts/out/
    to: out/
    when: always
`;
}

/** `rho-flow init`: writes `<name>.rho-flow.yaml` in the current directory. */
export const initCommand: Command = {
  name: 'init',
  summary: 'create a starter workflow file',
  usage: 'init [name] [options]',
  description: [
    'Writes <name>.rho-flow.yaml (default name: workflow) in the current directory: a commented',
    'starter workflow whose first line is the `# yaml-language-server: $schema=...` modeline, so',
    'editors validate and complete it. The modeline points at the installed schema by a relative',
    'path when rho-flow is installed in this project, else at the schema of this version on unpkg.',
  ].join('\n'),
  options: {
    force: { type: 'boolean', description: 'overwrite an existing file' },
  },
  examples: ['rho-flow init', 'rho-flow init nightly-eval --force'],
  async run(argv, io) {
    const args = parseCommandArgs(initCommand, argv);
    const [name = 'workflow'] = expectPositionals(args, initCommand.name, {
      min: 0,
      max: 1,
      what: 'workflow name',
    });
    if (!NAME.test(name)) {
      throw new UsageError(
        `invalid workflow name '${name}': use letters, digits, '.', '_' and '-', not starting with '.' or '-'`,
        initCommand.name,
      );
    }
    const file = path.join(io.cwd, `${name}.rho-flow.yaml`);
    const shown = `${name}.rho-flow.yaml`;
    try {
      await writeFile(file, starterWorkflow(name, schemaReference(io.cwd)), {
        flag: args.flag('force') ? 'w' : 'wx',
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new UsageError(`${shown} already exists (use --force to overwrite it)`, initCommand.name);
      }
      throw new UsageError(`cannot write ${shown}: ${(e as Error).message}`, initCommand.name);
    }
    const s = styles(io, 'stdout');
    println(io.stdout, `${s.green('created')} ${shown}`);
    println(io.stdout, `next: rho-flow validate ${shown} && rho-flow run ${shown}`);
    return ExitCode.OK;
  },
};
