import type { Command } from '../command.js';
import { expectPositionals, parseCommandArgs } from '../command.js';
import { ExitCode, UsageError } from '../exit-code.js';
import { println, styles } from '../io.js';
import { parseDuration } from '../../workflow/duration.js';
import { BACKENDS, type BackendName } from '../../workflow/types.js';
import { isValidRunId } from '../../engine/run-id.js';
import type { CleanupReport } from '../../sandbox/sandbox.js';

/**
 * `rho-flow cleanup`: removes what dead runs left behind (product.md §6.1).
 * Never touches a run whose owner process is still alive on this host.
 */
export const cleanupCommand: Command = {
  name: 'cleanup',
  summary: 'remove sandboxes and workspaces left behind by dead runs',
  usage: 'cleanup [--run-id <id>] [--older-than <dur>] [--backend local|daytona] [--dry-run]',
  description: [
    'Finds sandboxes rho-flow created (local: workspaces under $TMPDIR/rho-flow; daytona: sandboxes',
    'labelled rho-flow.managed=true) whose owner process is gone, and deletes them. Sandboxes of a',
    'run whose owner is still alive on this host are never touched. `rho-flow run` does the local',
    'sweep by itself at start; use this after a crash, or in CI after_script / if: always() steps.',
  ].join('\n'),
  options: {
    'run-id': { type: 'string', value: 'id', description: 'only this run' },
    'older-than': {
      type: 'string',
      value: 'dur',
      description: 'only sandboxes older than this (e.g. 2h)',
    },
    backend: {
      type: 'string',
      value: BACKENDS.join('|'),
      description: 'which backend to sweep',
      default: 'local',
      env: 'RHO_FLOW_BACKEND',
    },
    'dry-run': { type: 'boolean', description: 'print what would be removed; remove nothing' },
  },
  examples: [
    'rho-flow cleanup --dry-run',
    'rho-flow cleanup --backend daytona --older-than 2h',
    'rho-flow cleanup --backend daytona --run-id "$CI_JOB_ID"',
  ],
  async run(argv, io) {
    const args = parseCommandArgs(cleanupCommand, argv);
    expectPositionals(args, cleanupCommand.name, { min: 0, max: 0, what: '' });
    const runId = args.string('run-id');
    if (runId !== undefined && !isValidRunId(runId)) {
      throw new UsageError(`invalid --run-id '${runId}'`, cleanupCommand.name);
    }
    const olderRaw = args.string('older-than');
    const olderThanMs = olderRaw === undefined ? undefined : parseDuration(olderRaw);
    if (olderRaw !== undefined && olderThanMs === undefined) {
      throw new UsageError(
        `invalid --older-than '${olderRaw}' (use a unit: 90s, 30m, 2h)`,
        cleanupCommand.name,
      );
    }
    const backendRaw = args.string('backend') ?? io.env.RHO_FLOW_BACKEND ?? 'local';
    if (!(BACKENDS as readonly string[]).includes(backendRaw)) {
      throw new UsageError(
        `unknown backend '${backendRaw}' (choose ${BACKENDS.join(' or ')})`,
        cleanupCommand.name,
      );
    }
    const dryRun = args.flag('dry-run');
    const { loadBackend } = await import('../../sandbox/registry.js');
    const backend = await loadBackend(backendRaw as BackendName, {
      isolation: 'auto',
      env: io.env,
      warn: (m) => println(io.stderr, `warning: ${m}`),
    });
    let report: CleanupReport;
    try {
      if (backendRaw === 'daytona') await backend.preflight();
      report = await backend.cleanup({
        ...(runId !== undefined ? { runId } : {}),
        ...(olderThanMs !== undefined ? { olderThanMs } : {}),
        dryRun,
        ...(io.signal ? { signal: io.signal } : {}),
      });
    } finally {
      await backend.close();
    }
    const s = styles(io, 'stdout');
    const verb = dryRun ? 'would remove' : 'removed';
    for (const r of report.removed) {
      println(io.stdout, `${verb} ${r.id}${r.runId ? ` (run ${r.runId})` : ''}: ${r.reason}`);
    }
    for (const k of report.kept) {
      println(io.stdout, s.dim(`kept ${k.id}${k.runId ? ` (run ${k.runId})` : ''}: ${k.reason}`));
    }
    for (const f of report.failed) println(io.stderr, s.red(`failed ${f.id}: ${f.error}`));
    println(
      io.stderr,
      `${backendRaw}: ${report.removed.length} ${verb}, ${report.kept.length} kept, ${report.failed.length} failed${dryRun ? ' (dry run)' : ''}`,
    );
    return report.failed.length > 0 ? ExitCode.INFRA : ExitCode.OK;
  },
};
