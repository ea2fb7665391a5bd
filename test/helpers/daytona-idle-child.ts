/**
 * A process that uses the Daytona backend and then just stops doing anything:
 * it disposes its sandbox but never closes the backend, and must exit on its
 * own (nothing of the SDK, on either thread, may hold the event loop).
 *
 *   CHILD_ENV='{"DAYTONA_API_KEY":…,"DAYTONA_API_URL":…}' \
 *     node --import ./test/helpers/local-ts-loader.js test/helpers/daytona-idle-child.ts
 */
import { DaytonaBackend } from '../../src/sandbox/daytona.js';
import { FAST_DAYTONA, daytonaSpec } from './fake-daytona/backend.js';

const backend = new DaytonaBackend({
  isolation: 'auto',
  warn: (m) => console.error('warn:', m),
  env: JSON.parse(process.env.CHILD_ENV ?? '{}') as Record<string, string>,
  daytona: FAST_DAYTONA,
});
await backend.preflight();
const sandbox = await backend.create(daytonaSpec({ jobSlug: 'idle-child' }));
const r = await sandbox.exec('echo from-child');
await sandbox.writeFile('f.txt', 'x');
await sandbox.readFile('f.txt');
await sandbox.dispose();
console.log(`${r.stdout.trim()} done`);
