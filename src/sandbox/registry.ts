import type { BackendName } from '../workflow/types.js';
import type { BackendOptions, SandboxBackend } from './sandbox.js';
import { unreachable } from '../util/unreachable.js';

/**
 * Returns the backend for `name`, importing its module lazily so that, e.g.,
 * `@daytonaio/sdk` is only loaded when a Daytona job actually runs.
 */
export async function loadBackend(name: BackendName, options: BackendOptions): Promise<SandboxBackend> {
  switch (name) {
    case 'local': {
      const { LocalBackend } = await import('./local.js');
      return new LocalBackend(options);
    }
    case 'daytona': {
      const { DaytonaBackend } = await import('./daytona.js');
      return new DaytonaBackend(options);
    }
    default:
      throw new Error(`Unknown backend: ${unreachable(name)}`);
  }
}
