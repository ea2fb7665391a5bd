/**
 * The console summary every reporter prints when the run ends: counts, pass
 * rate (and pass@k when jobs repeat), the jobs that did not pass, the
 * slowest jobs, token totals and where the results are. The plain and tty
 * reporters print it to stdout; the json reporter to stderr (its stdout
 * carries only JSON events).
 */
import { join } from 'node:path';
import type { JobStatus, RunSummary } from '../results/types.js';
import {
  firstLine,
  formatDuration,
  formatInt,
  formatPercent,
  formatUsage,
  totalOf,
} from '../results/summary.js';
import { statusStyle, statusSymbol, type Palette } from './colors.js';

/** How many not-passed jobs and slowest jobs the summary lists. */
export const MAX_LISTED_FAILURES = 10;
export const SLOWEST_COUNT = 5;

export interface FinalSummaryOptions {
  /** `<output-dir>/<run-id>`. */
  runDir: string;
  /** Default `<runDir>/junit.xml`. */
  junitPath?: string;
  palette: Palette;
}

const LABEL: Record<JobStatus, string> = {
  passed: 'passed',
  failed: 'failed',
  'timed-out': 'timed out',
  error: 'error',
  cancelled: 'cancelled',
  skipped: 'skipped',
};

/** The summary as lines (no trailing newline on each). */
export function renderFinalSummary(summary: RunSummary, options: FinalSummaryOptions): string[] {
  const p = options.palette;
  const c = summary.counts;
  const lines: string[] = [];
  const total = totalOf(c);
  const how =
    summary.interrupted !== undefined ? p.yellow(`interrupted by ${summary.interrupted}`) : 'finished';
  lines.push('', p.bold(`rho-flow run ${summary.runId} ${how} in ${formatDuration(summary.durationMs)}`));

  const parts: Array<[JobStatus, number]> = [
    ['passed', c.passed],
    ['failed', c.failed],
    ['timed-out', c.timedOut],
    ['error', c.error],
    ['cancelled', c.cancelled],
    ['skipped', c.skipped],
  ];
  const shown = parts
    .filter(([s, n]) => n > 0 || s === 'passed' || s === 'failed')
    .map(([s, n]) => statusStyle(p, s)(`${statusSymbol(s)} ${formatInt(n)} ${LABEL[s]}`));
  lines.push(`  jobs      ${formatInt(total)} · ${shown.join(' · ')}`);
  const verdicts = c.passed + c.failed + c.timedOut;
  lines.push(
    `  pass rate ${p.bold(formatPercent(summary.passRate))} (${formatInt(c.passed)}/${formatInt(verdicts)})`,
  );
  if (summary.passAtK) {
    const k = summary.passAtK.k === null ? 'k' : String(summary.passAtK.k);
    lines.push(
      `  pass@k    ${formatInt(summary.passAtK.groups)} group${summary.passAtK.groups === 1 ? '' : 's'} · pass@1 ${formatPercent(summary.passAtK.passAt1)} · pass@${k} ${formatPercent(summary.passAtK.anyPass)}`,
    );
  }

  const bad = summary.jobs.filter((j) => j.status !== 'passed' && j.status !== 'skipped');
  if (bad.length > 0) {
    lines.push('  not passed:');
    for (const j of bad.slice(0, MAX_LISTED_FAILURES)) {
      const style = statusStyle(p, j.status);
      const err = firstLine(j.error, 160);
      lines.push(
        `    ${style(`${statusSymbol(j.status)} ${j.id}`)} ${LABEL[j.status]} ${p.dim(formatDuration(j.durationMs))}${err !== '' ? ` ${err}` : ''}`,
      );
    }
    if (bad.length > MAX_LISTED_FAILURES) {
      lines.push(p.dim(`    … ${formatInt(bad.length - MAX_LISTED_FAILURES)} more in summary.json`));
    }
  }

  const ran = summary.jobs.filter((j) => j.status !== 'skipped');
  if (ran.length > 1) {
    const slowest = [...ran]
      .sort((a, b) => b.durationMs - a.durationMs || a.id.localeCompare(b.id))
      .slice(0, SLOWEST_COUNT);
    lines.push('  slowest:');
    for (const j of slowest) lines.push(`    ${formatDuration(j.durationMs).padStart(7)}  ${j.id}`);
  }

  const u = summary.usage;
  if (u.inputTokens + u.outputTokens > 0 || summary.costUsd !== undefined) {
    lines.push(`  tokens    ${formatUsage(u, summary.costUsd)}`);
  }
  lines.push(`  results   ${options.runDir}`);
  lines.push(`  junit     ${options.junitPath ?? join(options.runDir, 'junit.xml')}`);
  return lines;
}
