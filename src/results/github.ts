/**
 * GitHub Actions output (ci-conventions.md §4.3), used when
 * `GITHUB_ACTIONS=true`: a Markdown summary appended to
 * `$GITHUB_STEP_SUMMARY` (kept under the 1 MiB per-step limit) and `::error`
 * annotations pointing at the workflow file for jobs that did not pass (at
 * most 10, then one `::notice::` with the count left out). The environment
 * is always passed in, never read from `process.env`.
 */
import { appendFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobStatus, RunSummary } from './types.js';
import type { Redactor } from '../util/redact.js';
import { escapeGithubData, escapeGithubProperty } from '../workflow/diagnostic.js';
import {
  firstLine,
  formatDuration,
  formatInt,
  formatPercent,
  formatUsage,
  type SummaryJob,
} from './summary.js';
import type { LineLocator } from './run-writer.js';

/** GitHub refuses step summaries over 1 MiB; stay well below. */
export const STEP_SUMMARY_BUDGET_BYTES = 900 * 1024;
/** GitHub shows at most 10 annotations per type per step. */
export const MAX_ANNOTATIONS = 10;

/** True when running as a GitHub Actions step. */
export function isGitHubActions(env: Readonly<Record<string, string | undefined>>): boolean {
  return env.GITHUB_ACTIONS === 'true';
}

const NOT_PASSED: ReadonlySet<JobStatus> = new Set(['failed', 'timed-out', 'error']);

const STATUS_LABEL: Record<JobStatus, string> = {
  passed: '✅ passed',
  failed: '❌ failed',
  'timed-out': '⏱️ timed out',
  error: '💥 error',
  cancelled: '⏹️ cancelled',
  skipped: '⏭️ skipped',
};

/** Text safe inside a Markdown table cell: one line, pipes escaped, HTML inert. */
export function mdCell(text: string): string {
  return text
    .replace(/\r?\n|\r/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|');
}

/**
 * Inline code (job ids, paths). Code spans show entities literally, so only
 * what would break the table is escaped: newlines and `|` (GFM strips the
 * backslash of `\|` inside code spans in tables). Backticks inside get a
 * longer fence.
 */
function mdCode(text: string): string {
  const fence = text.includes('`') ? '``' : '`';
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text.replace(/\r?\n|\r/g, ' ').replace(/\|/g, '\\|')}${pad}${fence}`;
}

export interface StepSummaryOptions {
  summary: RunSummary;
  /** The run directory, as shown to the user (e.g. `rho-flow-results/<run-id>`). */
  runDir: string;
  /** The JUnit file, as shown to the user. */
  junitPath?: string;
  /** Bytes available (default `STEP_SUMMARY_BUDGET_BYTES`). */
  budgetBytes?: number;
}

/**
 * The Markdown step summary: verdict, counts, pass rate (and pass@k), a
 * table of jobs that did not pass with their first error line, token
 * totals and where the results are. Rows stop, with a note, before the
 * budget is exceeded; the footer always fits.
 */
export function renderStepSummary(options: StepSummaryOptions): string {
  const { summary } = options;
  const budget = options.budgetBytes ?? STEP_SUMMARY_BUDGET_BYTES;
  const c = summary.counts;
  const total = c.passed + c.failed + c.timedOut + c.error + c.cancelled + c.skipped;
  const bad = summary.jobs.filter((j) => NOT_PASSED.has(j.status));
  const head: string[] = [];
  head.push(`## rho-flow run ${mdCode(summary.runId)}`, '');
  const verdict =
    summary.interrupted !== undefined
      ? `⏹️ **Interrupted by ${summary.interrupted}**`
      : bad.length === 0 && c.cancelled === 0
        ? `✅ **All ${formatInt(total - c.skipped)} jobs passed**`
        : `❌ **${formatInt(total - c.passed - c.skipped)} of ${formatInt(total - c.skipped)} jobs did not pass**`;
  const verdicts = c.passed + c.failed + c.timedOut;
  head.push(
    `${verdict} · pass rate **${formatPercent(summary.passRate)}** (${formatInt(c.passed)}/${formatInt(verdicts)}) · ${formatDuration(summary.durationMs)} · exit code ${summary.exitCode}`,
    '',
    '| passed | failed | timed out | error | cancelled | skipped |',
    '|---:|---:|---:|---:|---:|---:|',
    `| ${c.passed} | ${c.failed} | ${c.timedOut} | ${c.error} | ${c.cancelled} | ${c.skipped} |`,
    '',
  );
  if (summary.passAtK) {
    const p = summary.passAtK;
    const k = p.k === null ? 'k' : String(p.k);
    head.push(
      `**pass@k** over ${formatInt(p.groups)} repeat group${p.groups === 1 ? '' : 's'}: pass@1 **${formatPercent(p.passAt1)}** · pass@${k} **${formatPercent(p.anyPass)}**`,
      '',
    );
  }
  const foot: string[] = [];
  const usage = summary.usage;
  if (usage.inputTokens + usage.outputTokens > 0 || summary.costUsd !== undefined) {
    foot.push(`**Tokens:** ${formatUsage(usage, summary.costUsd)}`, '');
  }
  const where = [`**Results:** ${mdCode(options.runDir)}`];
  if (options.junitPath !== undefined) where.push(`JUnit ${mdCode(options.junitPath)}`);
  foot.push(`${where.join(' · ')} — per-job logs in ${mdCode('jobs/<job>/log.txt')}`, '');

  const headText = head.join('\n') + '\n';
  const footText = foot.join('\n') + '\n';
  let size = Buffer.byteLength(headText) + Buffer.byteLength(footText);
  if (size > budget) return '';
  const rows: string[] = [];
  if (bad.length > 0) {
    const tableHead = [
      '### Jobs that did not pass',
      '',
      '| job | workflow | status | duration | first error line |',
      '|---|---|---|---:|---|',
    ];
    const tableHeadText = tableHead.join('\n') + '\n';
    const noteReserve = 200;
    if (size + Buffer.byteLength(tableHeadText) + noteReserve <= budget) {
      rows.push(...tableHead);
      size += Buffer.byteLength(tableHeadText);
      let shown = 0;
      for (const j of bad) {
        const row = `| ${mdCode(j.id)} | ${mdCell(j.workflow)} | ${STATUS_LABEL[j.status]} | ${formatDuration(j.durationMs)} | ${mdCell(firstLine(j.error, 300))} |`;
        const bytes = Buffer.byteLength(row) + 1;
        if (size + bytes + noteReserve > budget) break;
        rows.push(row);
        size += bytes;
        shown++;
      }
      rows.push('');
      if (shown < bad.length) {
        rows.push(
          `_${formatInt(bad.length - shown)} more jobs that did not pass are not listed (GitHub limits the step summary to 1 MiB); see ${mdCode('summary.json')}._`,
          '',
        );
      }
    }
  }
  return headText + (rows.length > 0 ? rows.join('\n') + '\n' : '') + footText;
}

/** One workflow command line. Properties are escaped, and so is the message. */
export function workflowCommand(
  command: 'error' | 'warning' | 'notice',
  message: string,
  properties: Record<string, string | number | undefined> = {},
): string {
  const props = Object.entries(properties)
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${escapeGithubProperty(String(v))}`);
  return `::${command}${props.length > 0 ? ' ' + props.join(',') : ''}::${escapeGithubData(message)}`;
}

function annotationFor(job: SummaryJob, locate: LineLocator | undefined): string {
  const line = locate?.(job.workflow, job.failedStep) ?? 1;
  const what =
    job.status === 'error' ? 'infrastructure error' : job.status === 'timed-out' ? 'timed out' : 'failed';
  const title = `rho-flow: ${job.id} ${what}`;
  const where = job.slug !== undefined ? `\nlog: jobs/${job.slug}/log.txt` : '';
  const error = firstLine(job.error, 1000) || `job ${job.status}`;
  const step =
    job.failedStep !== undefined &&
    !error.includes(`step ${job.failedStep}`) &&
    !error.includes(`step '${job.failedStep}'`)
      ? ` (step ${job.failedStep})`
      : '';
  const message = `${error}${step}${where}`;
  return workflowCommand('error', message, { file: job.file, line, title });
}

/**
 * `::error` lines for failed / timed-out / errored jobs (at most
 * `MAX_ANNOTATIONS`), then one `::notice::` with how many were left out.
 */
export function renderAnnotations(
  summary: Pick<RunSummary, 'jobs'>,
  options: { locate?: LineLocator; summaryPath?: string } = {},
): string[] {
  const bad = summary.jobs.filter((j) => NOT_PASSED.has(j.status));
  const lines = bad.slice(0, MAX_ANNOTATIONS).map((j) => annotationFor(j, options.locate));
  const rest = bad.length - MAX_ANNOTATIONS;
  if (rest > 0) {
    const see = options.summaryPath !== undefined ? `; see ${options.summaryPath}` : '';
    lines.push(
      workflowCommand(
        'notice',
        `${rest} more job${rest === 1 ? '' : 's'} did not pass and ${rest === 1 ? 'is' : 'are'} not annotated${see}`,
      ),
    );
  }
  return lines;
}

export interface PublishGitHubOptions {
  summary: RunSummary;
  env: Readonly<Record<string, string | undefined>>;
  /** Run directory as shown to the user. */
  runDir: string;
  junitPath?: string;
  locate?: LineLocator;
  /** Where annotations go: stdout normally (stderr with `--reporter json`, which owns stdout). */
  write: (line: string) => void;
  redactor?: Redactor;
}

/**
 * Under `GITHUB_ACTIONS=true`: appends the step summary to
 * `$GITHUB_STEP_SUMMARY` (when set; accounting for what the step already
 * wrote there) and writes the annotations. A no-op elsewhere. Resolves to
 * whether anything was published.
 */
export async function publishGitHub(options: PublishGitHubOptions): Promise<boolean> {
  if (!isGitHubActions(options.env)) return false;
  const redact = (s: string): string => (options.redactor ? options.redactor.redact(s) : s);
  // Redact the inputs too: escaping (`%0A`, `\|`) could split a secret the output pass would miss.
  const summary = options.redactor ? options.redactor.redactValue(options.summary) : options.summary;
  const file = options.env.GITHUB_STEP_SUMMARY;
  if (file !== undefined && file !== '') {
    const existing = await stat(file).then(
      (s) => s.size,
      () => 0,
    );
    const markdown = renderStepSummary({
      summary,
      runDir: options.runDir,
      ...(options.junitPath !== undefined ? { junitPath: options.junitPath } : {}),
      budgetBytes: Math.max(0, STEP_SUMMARY_BUDGET_BYTES - existing),
    });
    if (markdown !== '') await appendFile(file, redact(markdown));
  }
  for (const line of renderAnnotations(summary, {
    ...(options.locate ? { locate: options.locate } : {}),
    summaryPath: join(options.runDir, 'summary.json'),
  })) {
    options.write(redact(line) + '\n');
  }
  return true;
}
