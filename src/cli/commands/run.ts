import type { Command } from '../command.js';
import { parseCommandArgs } from '../command.js';
import { describeCounts, printDiagnosticsText } from '../diagnostics-output.js';
import { ExitCode, UsageError } from '../exit-code.js';
import { println, styles, type CliIo } from '../io.js';
import { describePlan, jobToJson, printPlanTable } from '../plan-output.js';
import { parseRunOptions, RUN_OPTIONS, type RunCliOptions } from '../run-options.js';
import { loadInput } from '../workflow-input.js';
import { selectShard, type Plan } from '../../workflow/plan.js';

/** `--dry-run`: the plan (this shard's part of it), then nothing. */
async function printDryRun(options: RunCliOptions, plan: Plan, io: CliIo): Promise<number> {
  let jobs = options.shard ? selectShard(plan.jobs, options.shard) : plan.jobs;
  let resumed = '';
  if (options.resume) {
    // What `--resume` would run again, decided exactly as a real resume would.
    const { planResume, describeChange } = await import('../../engine/resume.js');
    const decision = await planResume({
      outputDir: options.outputDir,
      ...(options.resume.runId !== undefined ? { runId: options.resume.runId } : {}),
      jobs,
      ...(options.shard ? { shard: options.shard } : {}),
      ...(options.force ? { force: true } : {}),
    });
    for (const c of decision.changes) println(io.stderr, `changed: ${describeChange(c)}`);
    resumed = ` to run again in ${decision.runId} (${decision.kept} kept)`;
    jobs = decision.rerun;
  }
  if (options.reporter === 'json') {
    println(io.stdout, JSON.stringify(jobs.map(jobToJson), null, 2));
  } else {
    printPlanTable(jobs, io);
  }
  const shard = options.shard
    ? ` (shard ${options.shard.index}/${options.shard.total}: ${jobs.length} of ${plan.jobs.length} jobs)`
    : '';
  println(io.stderr, `dry run: ${describePlan(jobs)}${resumed}${shard}; nothing was created`);
  return ExitCode.OK;
}

/** `rho-flow run`: parse and check everything, then run (or, with `--dry-run`, print) the plan. */
export const runCommand: Command = {
  name: 'run',
  summary: 'run workflows',
  usage: 'run <files|dirs|globs...> [options]',
  description: [
    'Validates every file and expands its jobs first: any problem is reported and nothing starts',
    '(exit 2). Then runs the jobs, at most --concurrency sandboxes at a time, each in its own',
    'sandbox that is always torn down, and writes results to <output-dir>/<run-id>/.',
  ].join('\n'),
  options: RUN_OPTIONS,
  examples: [
    'rho-flow run workflows/*.yaml',
    'rho-flow run evals/swe-lite.yaml -j 32 --backend daytona',
    'rho-flow run flows/ --shard 2/4 --dry-run',
    'rho-flow run nightly.yaml -o out/ --resume',
  ],
  async run(argv, io) {
    const args = parseCommandArgs(runCommand, argv);
    const options = parseRunOptions(args, io);
    if (options.patterns.length === 0) throw new UsageError('missing workflow files to run', runCommand.name);
    const input = await loadInput(options.patterns, {
      vars: options.vars,
      cwd: io.cwd,
      ...(options.varsFile !== undefined ? { varsFile: options.varsFile } : {}),
      ...(options.runId !== undefined ? { runId: options.runId } : {}),
    });
    if (!input.plan) {
      printDiagnosticsText(input.diagnostics, io, 'stderr', { excerpts: true });
      println(
        io.stderr,
        styles(io, 'stderr').red(`${describeCounts(input.diagnostics)}: nothing was started`),
      );
      return ExitCode.INVALID;
    }
    printDiagnosticsText(input.diagnostics, io, 'stderr');
    if (options.dryRun) return await printDryRun(options, input.plan, io);
    const { executePlan } = await import('../run-exec.js');
    return executePlan({ options, plan: input.plan, io, argv: ['run', ...argv] });
  },
};
