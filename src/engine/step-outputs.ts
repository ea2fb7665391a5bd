import { randomBytes } from 'node:crypto';

/**
 * How a `run` step reports outputs: like GitHub's `$GITHUB_OUTPUT`, the step
 * appends `name=value` lines (or `name<<DELIM … DELIM` blocks) to the file
 * named by `$RHO_FLOW_OUTPUT`; `parseStepOutputs` reads them.
 *
 * The built-in backends run a step themselves (`ExecOptions.runStep`): one
 * `bash -eo pipefail -c` with the outputs file made and read back by the
 * backend (local: a host file bound into the jail; Daytona: a scratch file
 * printed by its exec wrapper). The trailer helpers below are the portable
 * way for a backend that cannot do that: `wrapRunScript` runs the script in a
 * second bash and prints the outputs file behind a random marker line, and
 * `OutputTrailerSplitter` / `splitTrailer` take it off stdout again.
 */

/** Single-quotes `s` for bash. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A fresh marker; the user script cannot predict it. */
export function newTrailerMarker(): string {
  return `::rho-flow-outputs-${randomBytes(12).toString('hex')}::`;
}

/**
 * Wraps a run step's script: runs it with `bash -eo pipefail -c` (product.md
 * §2), then prints the marker and the outputs file, and exits with the
 * script's exit code.
 *
 * Besides the script's own `bash`, the wrapper starts one process (`rm`):
 * the outputs file is created and read with bash builtins (an exclusive
 * create under `noclobber` instead of `mktemp`, `$(<file)` instead of `cat`),
 * which saves two process starts per run step (issue 7, target 1).
 */
export function wrapRunScript(script: string, marker: string): string {
  return [
    // A fresh name; `set -C` makes `>` an exclusive create (O_EXCL), so an existing file or link is never reused.
    `__rf_out=; set -C`,
    `for __rf_i in 1 2 3 4 5; do __rf_f="\${TMPDIR:-/tmp}/rho-flow-output.$$.$RANDOM$RANDOM"; if { : > "$__rf_f"; } 2>/dev/null; then __rf_out=$__rf_f; break; fi; done`,
    `set +C; [ -n "$__rf_out" ] || exit 97`,
    `export RHO_FLOW_OUTPUT="$__rf_out"`,
    `bash -eo pipefail -c ${shellQuote(script)}`,
    `__rf_rc=$?`,
    `printf '\\n%s\\n' ${shellQuote(marker)}`,
    // Outputs are `k=v` lines: trailing newlines do not matter, NUL bytes are dropped quietly.
    `{ printf '%s' "$(<"$__rf_out")"; } 2>/dev/null`,
    `rm -f -- "$__rf_out"`,
    `exit $__rf_rc`,
  ].join('\n');
}

/**
 * Streams stdout through, holding back just enough to recognise the marker;
 * everything after `\n<marker>\n` is the outputs file and is not passed on.
 */
export class OutputTrailerSplitter {
  readonly #needle: string;
  #pending = '';
  #trailer: string | undefined;
  readonly #emit: (text: string) => void;

  constructor(marker: string, emit: (text: string) => void) {
    this.#needle = `\n${marker}\n`;
    this.#emit = emit;
  }

  push(chunk: string): void {
    if (this.#trailer !== undefined) {
      this.#trailer += chunk;
      return;
    }
    const text = this.#pending + chunk;
    const at = text.indexOf(this.#needle);
    if (at >= 0) {
      if (at > 0) this.#emit(text.slice(0, at));
      this.#trailer = text.slice(at + this.#needle.length);
      this.#pending = '';
      return;
    }
    // Keep a tail that could be the start of the needle.
    const keep = Math.min(text.length, this.#needle.length - 1);
    const safe = text.length - keep;
    if (safe > 0) this.#emit(text.slice(0, safe));
    this.#pending = text.slice(safe);
  }

  /** Flushes held-back text (when no marker came, e.g. the step was killed). */
  end(): void {
    if (this.#trailer === undefined && this.#pending !== '') this.#emit(this.#pending);
    this.#pending = '';
  }

  /** The outputs file's text, or undefined when the marker never came. */
  get trailer(): string | undefined {
    return this.#trailer;
  }
}

/** Splits a complete stdout into the user's part and the outputs trailer. */
export function splitTrailer(
  stdout: string,
  marker: string,
): { stdout: string; trailer: string | undefined } {
  const needle = `\n${marker}\n`;
  const at = stdout.lastIndexOf(needle);
  if (at < 0) return { stdout, trailer: undefined };
  return { stdout: stdout.slice(0, at), trailer: stdout.slice(at + needle.length) };
}

/**
 * Parses the `$RHO_FLOW_OUTPUT` format: `name=value` lines and
 * `name<<DELIM` … `DELIM` blocks. Later values win. Malformed lines are
 * reported, not fatal.
 */
export function parseStepOutputs(text: string): { outputs: Record<string, string>; problems: string[] } {
  const outputs: Record<string, string> = {};
  const problems: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    if (line === '') continue;
    const heredoc = /^([A-Za-z_][A-Za-z0-9_-]*)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name = '', delim = ''] = heredoc;
      const body: string[] = [];
      let closed = false;
      for (i++; i < lines.length; i++) {
        const l = (lines[i] ?? '').replace(/\r$/, '');
        if (l === delim) {
          closed = true;
          break;
        }
        body.push(l);
      }
      if (!closed) problems.push(`output '${name}': missing closing delimiter '${delim}'`);
      outputs[name] = body.join('\n');
      continue;
    }
    const eq = line.indexOf('=');
    const name = eq > 0 ? line.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) {
      problems.push(`ignored malformed output line: ${line.slice(0, 80)}`);
      continue;
    }
    outputs[name] = line.slice(eq + 1);
  }
  return { outputs, problems };
}
