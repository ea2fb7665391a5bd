/**
 * The permission policy (product.md §3): which tools a profile offers, and
 * whether one tool call may go to the sandbox. Pure functions, no I/O; the
 * agent loop calls `checkToolCall` before every tool runs, on every backend.
 *
 * Order of the gate for one call: known tool → offered by the profile (and
 * the step's `tools:`) → approval (refused: rho-flow is unattended) →
 * restricted shell → `dangerous_patterns` → sensitive paths under
 * `create-only`. Overwrites under `create-only` need the file system, so the
 * `write` tool refuses them itself (stat + create-only write).
 *
 * Approval follows rho-agent's `requires_tool_approval`:
 * `all` → every tool; `dangerous` → the tools that change things (bash,
 * write, edit, and run_code, which rho-agent does not have); `granular` →
 * the tools in `approval.required_tools`; `none` → nothing.
 * `dangerous_patterns` follow rho-agent's `is_pattern_dangerous`:
 * case-insensitive substrings (not regexes) of the bash command or the
 * run_code source. rho-agent treats a match as "needs approval", so here it
 * refuses under every approval mode except `none`, which in rho-agent means
 * "no approval is ever asked for".
 */
import { unreachable } from '../util/unreachable.js';
import { TOOL_NAMES, type Profile, type ToolName } from '../workflow/types.js';
import { checkRestrictedCommand, type Decision } from './restricted-shell.js';
import { sensitivePathReason } from './sensitive-paths.js';

export type { Decision } from './restricted-shell.js';
export { checkRestrictedCommand } from './restricted-shell.js';
export { isSensitivePath, sensitivePathReason } from './sensitive-paths.js';

/** Tools that need approval under `approval: dangerous`. */
export const DANGEROUS_TOOLS: readonly ToolName[] = ['bash', 'write', 'edit', 'run_code'];

const APPROVAL_REFUSAL = 'requires approval; not available in an unattended run';

/**
 * The tools offered to the model under `profile`, narrowed by a step's
 * `tools:` list, in the canonical order (bash, read, write, edit, glob, grep,
 * list, run_code). `file_write: off` removes write and edit; `create-only`
 * removes edit (it only changes existing files); `bash_only` keeps only bash;
 * run_code needs an unrestricted shell. Tools that need approval stay
 * offered (calls to them are refused with an explanation, as in rho-agent,
 * where approval does not change the tool set). Narrowing never adds a tool.
 */
export function offeredTools(profile: Profile, narrowed?: readonly ToolName[]): ToolName[] {
  return TOOL_NAMES.filter(
    (t) => unavailableReason(profile, t) === undefined && (narrowed?.includes(t) ?? true),
  );
}

/** Why the profile does not offer `tool`, or undefined when it does. */
function unavailableReason(profile: Profile, tool: ToolName): string | undefined {
  const p = `the profile '${profile.name}'`;
  if (profile.bashOnly && tool !== 'bash') return `${p} offers only the bash tool (bash_only)`;
  if ((tool === 'write' || tool === 'edit') && profile.fileWrite === 'off') {
    return `${p} does not allow writing files (file_write: off)`;
  }
  if (tool === 'edit' && profile.fileWrite === 'create-only') {
    return `${p} only allows creating new files (file_write: create-only), and edit changes existing files; use write to create a new one`;
  }
  if (tool === 'run_code' && profile.shell !== 'unrestricted') {
    return `run_code needs an unrestricted shell and ${p} has a restricted one`;
  }
  return undefined;
}

/** True when `tool` needs approval under `profile` (rho-agent's `requires_tool_approval`). */
export function requiresApproval(profile: Profile, tool: string): boolean {
  switch (profile.approval.mode) {
    case 'none':
      return false;
    case 'all':
      return true;
    case 'dangerous':
      return (DANGEROUS_TOOLS as readonly string[]).includes(tool);
    case 'granular':
      return profile.approval.requiredTools.includes(tool);
    default:
      throw new Error(`Unknown approval mode: ${unreachable(profile.approval.mode)}`);
  }
}

/**
 * The dangerous pattern `text` contains (case-insensitive substring, as
 * rho-agent matches them), or undefined. Empty patterns never match.
 */
export function matchDangerousPattern(profile: Profile, text: string): string | undefined {
  const lower = text.toLowerCase();
  return profile.approval.dangerousPatterns.find((p) => p !== '' && lower.includes(p.toLowerCase()));
}

/**
 * The full gate for one tool call, before it reaches the sandbox. Pure; never
 * throws. `args` are the call's (already JSON-parsed) arguments; `narrowed`
 * is the step's `tools:` list, if any. A refusal's `reason` is a sentence for
 * the model (the caller may prefix it with "Refused: ").
 */
export function checkToolCall(
  profile: Profile,
  tool: string,
  args: Record<string, unknown>,
  narrowed?: readonly ToolName[],
): Decision {
  try {
    return gate(profile, tool, args, narrowed);
  } catch (e) {
    // A malformed profile or a bug must never turn into "allowed".
    return { allowed: false, reason: `the permission policy could not check this call (${String(e)})` };
  }
}

function gate(
  profile: Profile,
  tool: string,
  args: Record<string, unknown>,
  narrowed: readonly ToolName[] | undefined,
): Decision {
  if (!isToolName(tool)) {
    return { allowed: false, reason: `'${tool}' is not a tool; the tools are ${TOOL_NAMES.join(', ')}` };
  }
  const unavailable = unavailableReason(profile, tool);
  if (unavailable !== undefined)
    return { allowed: false, reason: `'${tool}' is not available: ${unavailable}` };
  if (narrowed !== undefined && !narrowed.includes(tool)) {
    return {
      allowed: false,
      reason: `'${tool}' is not enabled for this step (tools: ${narrowed.join(', ') || 'none'})`,
    };
  }
  if (requiresApproval(profile, tool)) {
    return {
      allowed: false,
      reason: `'${tool}' ${APPROVAL_REFUSAL} (profile '${profile.name}', approval: ${profile.approval.mode})`,
    };
  }
  if (tool === 'bash' || tool === 'run_code') {
    const key = tool === 'bash' ? 'command' : 'code';
    const text = args[key];
    if (typeof text !== 'string')
      return { allowed: false, reason: `${tool} needs a string '${key}' argument` };
    if (tool === 'bash' && profile.shell === 'restricted') {
      const d = checkRestrictedCommand(text);
      if (!d.allowed) {
        return {
          allowed: false,
          reason: `the restricted shell of profile '${profile.name}' refused the command: ${d.reason}`,
        };
      }
    }
    if (profile.approval.mode !== 'none') {
      const pattern = matchDangerousPattern(profile, text);
      if (pattern !== undefined) {
        return {
          allowed: false,
          reason: `the ${key} contains the dangerous pattern '${pattern}', which ${APPROVAL_REFUSAL}`,
        };
      }
    }
  }
  if (tool === 'write' && profile.fileWrite === 'create-only') {
    const path = args.path;
    if (typeof path !== 'string') return { allowed: false, reason: "write needs a string 'path' argument" };
    const why = sensitivePathReason(path);
    if (why !== undefined) {
      return {
        allowed: false,
        reason: `creating ${path} is not allowed under file_write: create-only: it is a sensitive path (${why})`,
      };
    }
  }
  return { allowed: true };
}

function isToolName(name: string): name is ToolName {
  return (TOOL_NAMES as readonly string[]).includes(name);
}
