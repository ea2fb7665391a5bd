import type { Command } from '../command.js';
import { expectPositionals, parseCommandArgs } from '../command.js';
import { describeCounts, printDiagnosticsGithub, printDiagnosticsText } from '../diagnostics-output.js';
import { ExitCode, UsageError } from '../exit-code.js';
import { println, styles } from '../io.js';
import { loadInput, parseVarFlags, VAR_OPTIONS } from '../workflow-input.js';

const FORMATS = ['text', 'github', 'json'] as const;
type Format = (typeof FORMATS)[number];

/** `rho-flow validate`: every problem of every file (and of its job plan) in one pass. */
export const validateCommand: Command = {
  name: 'validate',
  summary: 'check workflow files and their job plans',
  usage: 'validate <files|dirs|globs...> [options]',
  description: [
    'Loads every file, checks it against the schema and the semantic rules, expands its jobs and',
    'evaluates every per-job value known before a run (sandbox image/env, model names, upload',
    'paths). All problems are reported in one pass, as file:LINE:COL: error: path: message.',
    'Directories stand for their *.yaml and *.yml files.',
  ].join('\n'),
  options: {
    format: {
      type: 'string',
      value: FORMATS.join('|'),
      default: 'text',
      description:
        'text (with source excerpts), github (adds ::error annotations), json (one document on stdout)',
    },
    ...VAR_OPTIONS,
  },
  examples: [
    'rho-flow validate workflows/',
    "rho-flow validate 'flows/**/*.yaml' --format github",
    'rho-flow validate eval.yaml --var suite=e2e --format json',
  ],
  async run(argv, io) {
    const args = parseCommandArgs(validateCommand, argv);
    const patterns = expectPositionals(args, validateCommand.name, {
      min: 1,
      what: 'workflow files to validate',
    });
    const format = (args.string('format') ?? 'text') as Format;
    if (!FORMATS.includes(format)) {
      throw new UsageError(
        `--format must be one of ${FORMATS.join(', ')}, got '${format}'`,
        validateCommand.name,
      );
    }
    const vars = parseVarFlags(args, validateCommand.name);
    const varsFile = args.string('vars-file');
    const input = await loadInput(patterns, {
      vars,
      cwd: io.cwd,
      ...(varsFile !== undefined ? { varsFile } : {}),
    });
    const valid = !input.diagnostics.some((d) => d.severity === 'error');
    const jobs = input.plan?.jobs.length ?? 0;

    if (format === 'json') {
      const byFile = input.files.map((file) => {
        const own = input.diagnostics.filter((d) => d.location.file === file);
        const wf = input.workflows.find((w) => w.file === file);
        return {
          file,
          valid: !own.some((d) => d.severity === 'error'),
          ...(wf ? { workflow: wf.name, jobs: input.jobs.filter((j) => j.workflow === wf).length } : {}),
          errors: own.filter((d) => d.severity === 'error').length,
          warnings: own.filter((d) => d.severity === 'warning').length,
        };
      });
      println(
        io.stdout,
        JSON.stringify({ valid, jobs, files: byFile, diagnostics: input.diagnostics }, null, 2),
      );
      return valid ? ExitCode.OK : ExitCode.INVALID;
    }

    if (format === 'github') printDiagnosticsGithub(input.diagnostics, io);
    else printDiagnosticsText(input.diagnostics, io, 'stdout', { excerpts: true });

    const s = styles(io, 'stderr');
    const nFiles = input.workflows.length;
    if (valid) {
      const warnings = input.diagnostics.length > 0 ? ` (${describeCounts(input.diagnostics)})` : '';
      println(
        io.stderr,
        s.green(
          `${nFiles} workflow file${nFiles === 1 ? '' : 's'} valid, ${jobs} job${jobs === 1 ? '' : 's'}${warnings}`,
        ),
      );
      return ExitCode.OK;
    }
    const bad = new Set(input.diagnostics.filter((d) => d.severity === 'error').map((d) => d.location.file))
      .size;
    println(io.stderr, s.red(`${describeCounts(input.diagnostics)} in ${bad} file${bad === 1 ? '' : 's'}`));
    return ExitCode.INVALID;
  },
};
