/**
 * The four built-in permission profiles (product.md §3), in the normalized
 * `Profile` shape.
 *
 * Deliberate deviation from rho-agent: there, `readonly` and
 * `developer-bash-only` ask for approval of "dangerous" tools and `developer`
 * of database tools. rho-flow runs unattended and *refuses* every tool call
 * that needs approval (it never executes it), so with rho-agent's settings
 * the built-ins would be unusable (a `readonly` agent could not even run
 * `ls`). The built-ins therefore all use `approval: none` and rely on the
 * shell mode and file-write mode for their limits; a custom profile file can
 * still ask for approval (and so refuse) whatever it likes.
 */
import type { Profile } from '../workflow/types.js';

export type BuiltinProfileName = 'readonly' | 'developer' | 'developer-bash-only' | 'unrestricted';

/** Profile used when neither the workflow nor the step names one. */
export const DEFAULT_PROFILE: BuiltinProfileName = 'readonly';

const NO_APPROVAL: Profile['approval'] = Object.freeze({
  mode: 'none',
  requiredTools: Object.freeze([]),
  dangerousPatterns: Object.freeze([]),
});

/** Shell tool timeout (seconds) of the built-ins; `unrestricted` allows longer builds. */
const SHELL_TIMEOUT_S = 120;
const UNRESTRICTED_SHELL_TIMEOUT_S = 300;

/** The built-in profiles by name. Frozen: share them freely. */
export const BUILTIN_PROFILES: Readonly<Record<BuiltinProfileName, Profile>> = Object.freeze({
  readonly: Object.freeze<Profile>({
    name: 'readonly',
    description: 'Read-only research: restricted shell (allowlisted read-only commands), no file writes',
    shell: 'restricted',
    fileWrite: 'off',
    approval: NO_APPROVAL,
    shellTimeoutS: SHELL_TIMEOUT_S,
    bashOnly: false,
    source: 'builtin',
  }),
  developer: Object.freeze<Profile>({
    name: 'developer',
    description: 'Development: unrestricted shell and full file editing',
    shell: 'unrestricted',
    fileWrite: 'full',
    approval: NO_APPROVAL,
    shellTimeoutS: SHELL_TIMEOUT_S,
    bashOnly: false,
    source: 'builtin',
  }),
  'developer-bash-only': Object.freeze<Profile>({
    name: 'developer-bash-only',
    description: 'Unrestricted shell as the only tool; no write/edit tools',
    shell: 'unrestricted',
    fileWrite: 'off',
    approval: NO_APPROVAL,
    shellTimeoutS: SHELL_TIMEOUT_S,
    bashOnly: true,
    source: 'builtin',
  }),
  unrestricted: Object.freeze<Profile>({
    name: 'unrestricted',
    description: 'Full access for sandboxed, autonomous agents',
    shell: 'unrestricted',
    fileWrite: 'full',
    approval: NO_APPROVAL,
    shellTimeoutS: UNRESTRICTED_SHELL_TIMEOUT_S,
    bashOnly: false,
    source: 'builtin',
  }),
});

/** Names of the built-in profiles, in documentation order. */
export const BUILTIN_PROFILE_NAMES = Object.keys(BUILTIN_PROFILES) as readonly BuiltinProfileName[];

/** True when `name` is one of the built-in profile names. */
export function isBuiltinProfileName(name: string): name is BuiltinProfileName {
  return Object.prototype.hasOwnProperty.call(BUILTIN_PROFILES, name);
}
