/**
 * A stand-in rho-flow process for teardown tests: creates a local sandbox,
 * starts `sleep <duration>` in it, prints `{"id": <workspace>}` and waits to
 * be killed. Run through `local-ts-loader.js`.
 *
 * argv: <TMPDIR> <run-id> <sleep duration> [auto|none]  (none: no bwrap; the
 * command also leaves `sleep 1<duration>` in a session of its own, out of the
 * process group that rho-flow kills)
 */
import { LocalBackend } from '../../src/sandbox/local.js';

const [tmp, runId, duration, mode] = process.argv.slice(2);
if (tmp === undefined || runId === undefined || duration === undefined)
  throw new Error('usage: <TMPDIR> <run-id> <sleep>');
const backend = new LocalBackend({
  isolation: 'auto',
  warn: () => undefined,
  env: {
    TMPDIR: tmp,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...(mode === 'none' ? { RHO_FLOW_BWRAP: 'none' } : {}),
  },
});
const sandbox = await backend.create({
  runId,
  jobId: 'owner-child',
  jobSlug: 'owner-child',
  attempt: 1,
  workingDir: '/work',
  network: 'off',
  env: {},
});
const command =
  mode === 'none' ? `sleep ${duration} & setsid sleep 1${duration} & wait` : `sleep ${duration}`;
void sandbox.exec(command).catch(() => undefined);
process.stdout.write(`${JSON.stringify({ id: sandbox.id })}\n`);
setInterval(() => undefined, 60_000);
