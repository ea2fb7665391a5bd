/**
 * Process entry of the `rho-flow` binary (`bin/rho-flow.js` imports this
 * module): runs the CLI with the real process and sets `process.exitCode`.
 * The only place that knows about `process`; signal handling for `run`
 * belongs here too (the abort signal is threaded through `io.signal`).
 */
import { runCli } from './program.js';
import { processInterrupts } from './signals.js';

const controller = new AbortController();

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
  interrupts: processInterrupts(),
});
