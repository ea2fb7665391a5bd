/**
 * Process entry of the `rho-flow` binary (`bin/rho-flow.js` imports this
 * module): runs the CLI with the real process and sets `process.exitCode`.
 * The only place that knows about `process`; signal handling for `run`
 * belongs here too (the abort signal is threaded through `io.signal`).
 */
import { version } from './version.js';

const argv = process.argv.slice(2);

// `rho-flow --version` is on the startup budget (≤ 150 ms, issue 7): it needs
// package.json only, so it skips loading the program and its modules
// (~20 ms of module loading on a 2-core machine). Same output as `runCli`.
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  process.stdout.write(`${version()}\n`);
} else {
  const [{ runCli }, { processInterrupts }] = await Promise.all([
    import('./program.js'),
    import('./signals.js'),
  ]);
  const controller = new AbortController();
  process.exitCode = await runCli(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
    interrupts: processInterrupts(),
  });
}
