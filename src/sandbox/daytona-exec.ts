/**
 * The bash wrapper every Daytona `exec` runs in (one toolbox request per
 * command), and the parsing of what it prints.
 *
 * Why a wrapper: the toolbox's `process/execute` merges stdout and stderr,
 * cannot stream, and only kills its own process group on timeout. So:
 * - the command runs as a background job under `set -m`, i.e. in its own
 *   process group, with stdout and stderr redirected to scratch files; the
 *   wrapper then prints stdout, a marker, stderr, a marker, the exit code and
 *   the sizes — stdout and stderr come back separated at no extra request,
 *   and a daemonised child holding the pipe cannot hang the request;
 * - a timeout is enforced *inside* the sandbox by a watchdog job that kills
 *   the command's whole process group (TERM, then KILL 5 s later) and leaves
 *   a marker, so `timedOut` is exact; the daemon's own `timeout` is set 15 s
 *   longer as a backstop (its 408 also means `timedOut`);
 * - the job's pid (= its process group id) goes to a scratch file so an abort
 *   can kill the group with a second, short command ({@link killScript}).
 * Only bash and coreutils (`base64`, `head`, `wc`) are needed in the image;
 * `timeout`/`setsid` are not used (not every image has them).
 */
import type { ExecOptions, ExecResult } from './sandbox.js';
import { SCRATCH_DIR, nonce, shq, type ScriptResult } from './daytona-transfer.js';

/** Default cap on stdout and stderr kept in a result (each). */
export const DEFAULT_MAX_OUTPUT = 10 * 1024 * 1024;
/** Exit code reported for a command killed by its timeout (as GNU `timeout`). */
export const TIMEOUT_EXIT = 124;
/** Longest command passed to `bash -c` as one argument (Linux caps one at 128 KiB). */
const MAX_INLINE_COMMAND = 64 * 1024;
/** How much longer than our own watchdog the daemon-side timeout is. */
const DAEMON_TIMEOUT_MARGIN_S = 15;
/** Daemon-side limit when the caller sets none (older daemons default to 6 minutes). */
export const NO_TIMEOUT_S = 24 * 3600;

export interface ExecWrapper {
  script: string;
  /** Marker id in the output. */
  id: string;
  /** Scratch path prefix of this command's files (for {@link killScript}). */
  scratch: string;
  /** `timeout` to send to the daemon, seconds. */
  daemonTimeoutS: number;
}

/** Builds the wrapper for `command`; `cwd` must already be absolute. */
export function execScript(
  command: string,
  options: Pick<ExecOptions, 'env' | 'stdin' | 'timeoutMs' | 'runStep'> & {
    cwd: string;
    maxOutputBytes: number;
  },
): ExecWrapper {
  const id = nonce();
  const scratch = `${SCRATCH_DIR}/${id}`;
  const max = options.maxOutputBytes;
  const timeoutMs = options.timeoutMs;
  const runStep = options.runStep === true;

  const lines = [`mkdir -p ${SCRATCH_DIR}`, `exec 2>/dev/null`];
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) lines.push(`export ${k}=${shq(v)}`);
  }
  // A run step's outputs file: a fresh scratch file, printed after the command, removed with the rest.
  if (runStep) lines.push(`: > ${scratch}.outputs`, `export RHO_FLOW_OUTPUT=${scratch}.outputs`);
  let input = '/dev/null';
  if (options.stdin !== undefined) {
    const b64 = Buffer.from(options.stdin).toString('base64');
    lines.push(`printf '%s' ${shq(b64)} | base64 -d > ${scratch}.in`);
    input = `${scratch}.in`;
  }
  const shell = runStep ? 'bash -eo pipefail' : 'bash';
  let run = `${shell} -c ${shq(command)}`;
  if (Buffer.byteLength(command) > MAX_INLINE_COMMAND) {
    // printf is a builtin, so the long string never becomes one argv entry.
    lines.push(`printf '%s' ${shq(command)} > ${scratch}.cmd`);
    run = `${shell} ${scratch}.cmd`;
  }
  lines.push(
    // An abort that overtook this request on its way here: do not start at all.
    `[ -e ${scratch}.abort ] && { rm -f ${scratch}.*; exit 0; }`,
    `set -m`,
    `( cd -- ${shq(options.cwd)} && exec ${run} ) <${input} >${scratch}.out 2>${scratch}.err &`,
    `p=$!`,
  );
  if (timeoutMs !== undefined) {
    const secs = (Math.max(1, timeoutMs) / 1000).toFixed(3);
    lines.push(
      `( sleep ${secs}; : > ${scratch}.to; kill -TERM -- -$p; sleep 5; kill -KILL -- -$p ) >/dev/null 2>&1 &`,
      `w=$!`,
    );
  }
  lines.push(
    `set +m`,
    `echo $p > ${scratch}.pid`,
    `wait $p; rc=$?`,
    ...(timeoutMs !== undefined ? [`kill -- -$w 2>/dev/null`] : []),
    `to=0; [ -e ${scratch}.to ] && to=1`,
    `os=$(wc -c < ${scratch}.out); es=$(wc -c < ${scratch}.err)`,
    `head -c ${max} ${scratch}.out; printf '\\n@@RF:${id}:E@@\\n'`,
    `head -c ${max} ${scratch}.err`,
    ...(runStep ? [`printf '\\n@@RF:${id}:O@@\\n'; head -c ${max} ${scratch}.outputs`] : []),
    `printf '\\n@@RF:${id}:X@@ %s %s %s %s\\n' "$rc" "$to" "$os" "$es"`,
    `rm -f ${scratch}.*`,
  );
  return {
    script: lines.join('\n'),
    id,
    scratch,
    daemonTimeoutS:
      timeoutMs === undefined ? NO_TIMEOUT_S : Math.ceil(timeoutMs / 1000) + DAEMON_TIMEOUT_MARGIN_S,
  };
}

function truncate(text: string, fullBytes: number, max: number): string {
  if (fullBytes <= max) return text;
  return `${text}\n[rho-flow: output truncated, ${fullBytes - max} of ${fullBytes} bytes dropped]`;
}

/** Splits what the wrapper printed into an `ExecResult`. */
export function parseExecOutput(r: ScriptResult, id: string, max: number, durationMs: number): ExecResult {
  const out = r.output;
  const eMark = `\n@@RF:${id}:E@@\n`;
  const xMark = `\n@@RF:${id}:X@@ `;
  const e = out.indexOf(eMark);
  const x = out.lastIndexOf(xMark);
  if (e < 0 || x < e) {
    // The wrapper itself did not run (no bash?): all we have is the combined output.
    return { exitCode: r.exitCode, stdout: out, stderr: '', timedOut: false, durationMs };
  }
  const [rc = '1', to = '0', os = '0', es = '0'] = out
    .slice(x + xMark.length)
    .trim()
    .split(/\s+/);
  const timedOut = to === '1';
  // A run step's outputs sit between stderr and the exit line, behind their own marker.
  const oMark = `\n@@RF:${id}:O@@\n`;
  const o = out.lastIndexOf(oMark, x);
  const errEnd = o > e ? o : x;
  const result: ExecResult = {
    exitCode: timedOut ? TIMEOUT_EXIT : Number(rc),
    stdout: truncate(out.slice(0, e), Number(os), max),
    stderr: truncate(out.slice(e + eMark.length, errEnd), Number(es), max),
    timedOut,
    durationMs,
  };
  if (o > e && !timedOut) result.outputs = out.slice(o + oMark.length, x);
  return result;
}

/**
 * Kills the process group of the command whose scratch prefix is `scratch`
 * (TERM, KILL after 2 s). Waits up to 2 s for the command to have started and,
 * in case it never does, leaves a marker that keeps it from starting later.
 */
export function killScript(scratch: string): string {
  return [
    `: > ${scratch}.abort`,
    `for i in 1 2 3 4 5 6 7 8 9 10; do [ -s ${scratch}.pid ] && break; sleep 0.2; done`,
    `p=$(cat ${scratch}.pid 2>/dev/null) || exit 0`,
    `[ -n "$p" ] || exit 0`,
    `kill -TERM -- -$p 2>/dev/null || exit 0`,
    `for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- -$p 2>/dev/null || exit 0; sleep 0.2; done`,
    `kill -KILL -- -$p 2>/dev/null; rm -f ${scratch}.abort; exit 0`,
  ].join('\n');
}
