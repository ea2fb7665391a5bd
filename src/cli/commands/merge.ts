import path from 'node:path';
import type { Command } from '../command.js';
import { expectPositionals, parseCommandArgs } from '../command.js';
import { UsageError } from '../exit-code.js';
import { println, styles } from '../io.js';
import { isValidRunId } from '../../engine/run-id.js';
import { DEFAULT_OUTPUT_DIR } from '../run-options.js';
import { version } from '../version.js';

/** Duplicate job ids listed one per line before the rest are only counted. */
const MAX_LISTED_DUPLICATES = 20;

/**
 * `rho-flow merge`: combines run directories (the shards of one batch) into
 * one run with summary.json, junit.xml and results.jsonl, and exits with the
 * run exit code of the merged counts, so CI can gate on it.
 */
export const mergeCommand: Command = {
  name: 'merge',
  summary: 'combine shard run directories into one run',
  usage: 'merge <run-dirs...> [-o <dir>] [--run-id <id>] [--min-pass-rate <0..1>]',
  description: [
    'Reads the run directories (each with run.json and results.jsonl; a folder holding exactly one',
    'run works too) and writes a new run to <output-dir>/<run-id>/: results.jsonl with the last',
    'result per job id, summary.json, junit.xml (one testsuite per workflow, one testcase per job)',
    "and each job's log. A job id found in several runs is reported; the result that ended last",
    'wins. Planned jobs without any result are recorded as cancelled (exit 3). Under GitHub Actions',
    'the step summary and annotations are written too. The exit code is that of a run with the',
    'merged counts (--min-pass-rate applies).',
  ].join('\n'),
  options: {
    'output-dir': {
      type: 'string',
      short: 'o',
      value: 'dir',
      description: 'where the merged run goes',
      default: `./${DEFAULT_OUTPUT_DIR}`,
    },
    'run-id': {
      type: 'string',
      value: 'id',
      description: "the merged run's id (default: the inputs' shared run id, else a new one)",
    },
    'min-pass-rate': {
      type: 'string',
      value: '0..1',
      description: 'exit 0 when the merged pass rate reaches it, even with failures',
    },
  },
  examples: [
    'rho-flow merge shard-1/ shard-2/ shard-3/ -o merged',
    'rho-flow merge out/*/"$GITHUB_RUN_ID" -o merged --min-pass-rate 0.9',
  ],
  async run(argv, io) {
    const args = parseCommandArgs(mergeCommand, argv);
    const dirs = expectPositionals(args, mergeCommand.name, { min: 1, what: 'run directories to merge' });
    const runId = args.string('run-id');
    if (runId !== undefined && !isValidRunId(runId)) {
      throw new UsageError(
        `--run-id must be 1-128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit; got '${runId}'`,
        mergeCommand.name,
      );
    }
    const rateText = args.string('min-pass-rate');
    let minPassRate: number | undefined;
    if (rateText !== undefined) {
      minPassRate = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(rateText) ? Number(rateText) : NaN;
      if (!(minPassRate >= 0 && minPassRate <= 1)) {
        throw new UsageError(
          `--min-pass-rate must be a number from 0 to 1 (e.g. 0.9), got '${rateText}'`,
          mergeCommand.name,
        );
      }
    }
    const outText = args.string('output-dir');
    if (outText?.trim() === '') throw new UsageError('--output-dir needs a path', mergeCommand.name);

    const [{ mergeRuns }, { publishGitHub }, { renderFinalSummary }, { palette }] = await Promise.all([
      import('../../results/merge-runs.js'),
      import('../../results/github.js'),
      import('../../reporters/final-summary.js'),
      import('../../reporters/colors.js'),
    ]);
    const err = styles(io, 'stderr');
    const outcome = await mergeRuns({
      runDirs: dirs.map((d) => path.resolve(io.cwd, d)),
      outputDir: path.resolve(io.cwd, outText ?? DEFAULT_OUTPUT_DIR),
      ...(runId !== undefined ? { runId } : {}),
      ...(minPassRate !== undefined ? { minPassRate } : {}),
      argv: ['merge', ...argv],
      version: version(),
      env: io.env,
      onWarning: (m) => println(io.stderr, err.yellow(`warning: ${m}`)),
    });

    const shown = (p: string): string => {
      const rel = path.relative(io.cwd, p);
      return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
    };
    const conflicting = outcome.duplicates.filter((d) => d.conflicting).length;
    if (outcome.duplicates.length > 0) {
      println(
        io.stderr,
        err.yellow(
          `warning: ${outcome.duplicates.length} job id(s) have results in more than one run (${conflicting} with different statuses); the result that ended last is used`,
        ),
      );
      for (const d of outcome.duplicates.slice(0, MAX_LISTED_DUPLICATES)) {
        const sources = d.sources.map((s) => `${shown(s.runDir)} (${s.status})`).join(', ');
        println(
          io.stderr,
          `  ${d.conflicting ? 'conflict' : 'duplicate'}: ${d.id} in ${sources}; using ${shown(d.used)}`,
        );
      }
      if (outcome.duplicates.length > MAX_LISTED_DUPLICATES) {
        println(io.stderr, `  … ${outcome.duplicates.length - MAX_LISTED_DUPLICATES} more`);
      }
    }
    println(
      io.stderr,
      `merged ${outcome.inputs.length} run(s) (${outcome.inputs.map(shown).join(', ')}) into ${shown(outcome.runDir)}`,
    );
    const p = palette(io.color?.stdout ?? false);
    for (const line of renderFinalSummary(outcome.summary, {
      runDir: shown(outcome.runDir),
      junitPath: shown(outcome.junitPath),
      palette: p,
    })) {
      println(io.stdout, line);
    }
    await publishGitHub({
      summary: outcome.summary,
      env: io.env,
      runDir: shown(outcome.runDir),
      junitPath: shown(outcome.junitPath),
      locate: outcome.locate,
      write: (line) => io.stdout.write(line),
    });
    return outcome.exitCode;
  },
};
