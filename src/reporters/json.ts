/**
 * `--reporter json`: one JSON object per line on stdout — the `RunEvent`
 * itself plus a `time` field (ISO 8601) — and nothing else on stdout. The
 * final console summary goes to stderr. Strings are redacted before
 * serializing, so a secret cannot hide behind JSON escaping.
 */
import type { RunEvent } from '../events.js';
import type { Redactor } from '../util/redact.js';
import { palette, shouldUseColor } from './colors.js';
import { renderFinalSummary } from './final-summary.js';
import { LineBatcher, lineWriter, runDirOf, type Reporter, type ReporterOptions } from './reporter.js';

/** JSON lines reporter: see the module comment. */
export class JsonReporter implements Reporter {
  /** Events as JSON lines (already redacted: no second pass). */
  readonly #stdout: LineBatcher;
  readonly #err: (line: string) => void;
  readonly #redactor: Redactor | undefined;
  readonly #now: () => number;
  readonly #color: boolean;
  #closed = false;

  constructor(options: ReporterOptions) {
    this.#stdout = new LineBatcher(options.stdout, undefined);
    this.#err = lineWriter(options.stderr, options.redactor);
    this.#redactor = options.redactor;
    this.#now = options.now ?? Date.now;
    this.#color = shouldUseColor({
      env: options.env,
      stream: options.stderr,
      ...(options.color !== undefined ? { flag: options.color } : {}),
    });
  }

  onEvent(e: RunEvent): void {
    if (this.#closed) return;
    const record = { ...e, time: new Date(this.#now()).toISOString() };
    const safe = this.#redactor ? this.#redactor.redactValue(record) : record;
    this.#stdout.line(JSON.stringify(safe));
    if (e.type === 'run') this.#stdout.flush();
    if (e.type === 'run' && e.reason === 'finished') {
      const lines = renderFinalSummary(e.summary, {
        runDir: runDirOf(e, e.summary.runId),
        palette: palette(this.#color),
        ...(e.junitPath !== undefined ? { junitPath: e.junitPath } : {}),
      });
      for (const line of lines) this.#err(line);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#stdout.flush();
    return Promise.resolve();
  }
}
