import type { Command } from '../command.js';
import { expectPositionals, parseCommandArgs } from '../command.js';
import { describeCounts, printDiagnosticsText } from '../diagnostics-output.js';
import { ExitCode } from '../exit-code.js';
import { println, styles } from '../io.js';
import { describePlan, jobToJson, printPlanTable } from '../plan-output.js';
import { loadInput, parseVarFlags, VAR_OPTIONS } from '../workflow-input.js';

/** `rho-flow list`: the expanded job plan, without running anything. */
export const listCommand: Command = {
  name: 'list',
  summary: 'show the expanded job plan',
  usage: 'list <files|dirs|globs...> [options]',
  description: [
    'Expands matrix, dataset and repeat into jobs and prints them in run order: job id, workflow,',
    'file and the matrix / dataset item / repeat values, then the vars in effect (after --var and',
    '--vars-file). Invalid files are reported as by validate (exit 2).',
  ].join('\n'),
  options: {
    json: { type: 'boolean', description: 'print a JSON array of jobs instead of a table' },
    ...VAR_OPTIONS,
  },
  examples: ['rho-flow list workflows/', 'rho-flow list eval.yaml --var model=gpt-5 --json'],
  async run(argv, io) {
    const args = parseCommandArgs(listCommand, argv);
    const patterns = expectPositionals(args, listCommand.name, { min: 1, what: 'workflow files to list' });
    const vars = parseVarFlags(args, listCommand.name);
    const varsFile = args.string('vars-file');
    const input = await loadInput(patterns, {
      vars,
      cwd: io.cwd,
      ...(varsFile !== undefined ? { varsFile } : {}),
    });
    if (!input.plan) {
      printDiagnosticsText(input.diagnostics, io, 'stderr', { excerpts: true });
      println(io.stderr, styles(io, 'stderr').red(`${describeCounts(input.diagnostics)}: no plan`));
      return ExitCode.INVALID;
    }
    // Warnings do not block a plan, but should not go unseen.
    printDiagnosticsText(input.diagnostics, io, 'stderr');
    const { jobs } = input.plan;
    if (args.flag('json')) {
      println(io.stdout, JSON.stringify(jobs.map(jobToJson), null, 2));
      return ExitCode.OK;
    }
    printPlanTable(jobs, io);
    println(io.stderr, describePlan(jobs));
    return ExitCode.OK;
  },
};
