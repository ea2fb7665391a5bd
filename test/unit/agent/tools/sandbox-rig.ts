/**
 * A real local (bubblewrap) sandbox for agent tests, plus profiles to run
 * tools under. Dispose it (`await using`, or `close()` in `afterAll`).
 */
import { randomBytes } from 'node:crypto';
import { loadBackend } from '../../../../src/sandbox/registry.js';
import type { Sandbox, SandboxSpec } from '../../../../src/sandbox/sandbox.js';
import type { Profile } from '../../../../src/workflow/types.js';
import { BUILTIN_PROFILES } from '../../../../src/profiles/builtin.js';
import type { ToolContext } from '../../../../src/agent/tools/tool.js';

export interface SandboxRig extends AsyncDisposable {
  sandbox: Sandbox;
  close(): Promise<void>;
}

/** Creates a jailed local sandbox (strict isolation: the test fails if bwrap does not work). */
export async function openSandbox(spec: Partial<SandboxSpec> = {}): Promise<SandboxRig> {
  const backend = await loadBackend('local', { isolation: 'strict', warn: () => undefined });
  await backend.preflight();
  const runId = `test-agent-${randomBytes(4).toString('hex')}`;
  const sandbox = await backend.create({
    runId,
    jobId: 'agent-test',
    jobSlug: 'agent-test',
    attempt: 1,
    workingDir: '/work',
    network: 'off',
    env: {},
    ...spec,
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      try {
        await sandbox.dispose();
      } finally {
        await backend.close();
      }
    })());
  return { sandbox, close, [Symbol.asyncDispose]: close };
}

export const PROFILES = {
  readonly: BUILTIN_PROFILES.readonly,
  developer: BUILTIN_PROFILES.developer,
  unrestricted: BUILTIN_PROFILES.unrestricted,
  bashOnly: BUILTIN_PROFILES['developer-bash-only'],
  createOnly: {
    ...BUILTIN_PROFILES.developer,
    name: 'create-only-test',
    fileWrite: 'create-only',
  } satisfies Profile,
};

/** A tool context on `sandbox` under `profile` (default developer), with a live signal. */
export function ctx(
  sandbox: Sandbox,
  profile: Profile = PROFILES.developer,
  signal?: AbortSignal,
): ToolContext {
  return { sandbox, profile, signal: signal ?? new AbortController().signal };
}
