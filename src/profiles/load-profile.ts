/**
 * rho-agent profile files (YAML) → normalized `Profile`, validated against
 * `schemas/profile.schema.json`, with diagnostics positioned inside the
 * profile file itself.
 *
 * Missing keys take rho-agent's defaults (restricted shell, no file writes,
 * approval `dangerous`), so a file means the same thing to both tools. Since
 * rho-flow refuses calls that need approval, a profile whose approval mode is
 * not `none` gets a warning saying which calls will be refused.
 */
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { didYouMeanSuffix } from '../util/did-you-mean.js';
import type { Diagnostic } from '../workflow/diagnostic.js';
import { isRec, strings } from '../workflow/guards.js';
import { parseYaml } from '../workflow/parse.js';
import { TOOL_NAMES, type Profile } from '../workflow/types.js';
import { validateWithSchema } from '../workflow/validate.js';
import { formatPath, offsetAt, positionOf, type DocPath } from '../workflow/yaml-locate.js';

/** rho-agent's `DEFAULT_DANGEROUS_PATTERNS`, used when a file does not list its own. */
export const DEFAULT_DANGEROUS_PATTERNS: readonly string[] = Object.freeze([
  'rm -rf',
  'rm -r',
  'DROP TABLE',
  'DROP DATABASE',
  'TRUNCATE',
  'DELETE FROM',
  '> /dev/',
  ':(){ :|:& };:',
  'mkfs',
  'dd if=',
]);

/** rho-agent's dangerous tools, mapped to rho-flow's tool names (`granular` without `required_tools`). */
export const DEFAULT_REQUIRED_TOOLS: readonly string[] = Object.freeze(['bash', 'write', 'edit', 'run_code']);

const DEFAULT_SHELL_TIMEOUT_S = 120;

export interface ProfileLoadResult {
  /** Present when the file has no errors. */
  profile?: Profile;
  diagnostics: Diagnostic[];
  /** The file's bytes (for workflow hashes); absent when it could not be read. */
  bytes?: Buffer;
  /** True when the file does not exist (the caller reports it where the path was written). */
  notFound?: boolean;
}

/**
 * Parses and validates profile YAML text. `file` is the display path used in
 * diagnostics, `absPath` becomes `Profile.source`.
 */
export function parseProfile(
  text: string,
  file: string,
  absPath: string,
): { profile?: Profile; diagnostics: Diagnostic[] } {
  const parsed = parseYaml(text, file, { what: 'a profile file' });
  const diagnostics = [...parsed.diagnostics];
  if (parsed.data === undefined) return { diagnostics };
  diagnostics.push(...validateWithSchema('profile', parsed));
  if (diagnostics.some((d) => d.severity === 'error') || !isRec(parsed.data)) return { diagnostics };

  const at = (path: DocPath, message: string, key = false): Diagnostic => ({
    severity: 'warning',
    path: formatPath(path),
    message,
    location: {
      file,
      start: positionOf(parsed.lineCounter, offsetAt(parsed.doc, path, key ? 'key' : 'value')),
    },
  });

  const d = parsed.data;
  const shell = isRec(d.shell) ? d.shell : {};
  const fileWrite = isRec(d.file_write) ? d.file_write : {};
  const approval = isRec(d.approval) ? d.approval : {};
  const mode = (
    typeof approval.mode === 'string' ? approval.mode : 'dangerous'
  ) as Profile['approval']['mode'];
  const requiredTools = strings(approval.required_tools) ?? [...DEFAULT_REQUIRED_TOOLS];
  const fw = fileWrite.mode === false || fileWrite.mode === undefined ? 'off' : fileWrite.mode;

  const profile: Profile = {
    name: typeof d.profile === 'string' ? d.profile : basename(absPath, extname(absPath)),
    ...(typeof d.description === 'string' ? { description: d.description } : {}),
    shell: shell.mode === 'unrestricted' ? 'unrestricted' : 'restricted',
    fileWrite: fw as Profile['fileWrite'],
    approval: {
      mode,
      requiredTools,
      dangerousPatterns: strings(approval.dangerous_patterns) ?? [...DEFAULT_DANGEROUS_PATTERNS],
    },
    shellTimeoutS: typeof d.shell_timeout === 'number' ? d.shell_timeout : DEFAULT_SHELL_TIMEOUT_S,
    ...(typeof d.shell_working_dir === 'string' ? { shellWorkingDir: d.shell_working_dir } : {}),
    bashOnly: d.bash_only === true,
    source: absPath,
  };

  if (mode !== 'none') {
    const refused =
      mode === 'all'
        ? 'every tool call'
        : mode === 'dangerous'
          ? 'calls of bash, write, edit and run_code'
          : `calls of ${requiredTools.join(', ') || 'no tool'}`;
    const explicit = typeof approval.mode === 'string';
    diagnostics.push(
      at(
        explicit ? ['approval', 'mode'] : [],
        `approval mode '${mode}'${explicit ? '' : " (rho-agent's default)"}: rho-flow runs unattended, so ${refused} will be refused; set approval.mode to 'none' to let the agent act within its shell and file-write limits`,
      ),
    );
  }
  (strings(approval.required_tools) ?? []).forEach((tool, i) => {
    if (!(TOOL_NAMES as readonly string[]).includes(tool)) {
      diagnostics.push(
        at(
          ['approval', 'required_tools', i],
          `'${tool}' is not a rho-flow tool${didYouMeanSuffix(tool, TOOL_NAMES)} (tools: ${TOOL_NAMES.join(', ')})`,
        ),
      );
    }
  });
  return { profile, diagnostics };
}

/** Reads and parses a profile file. Never throws. */
export async function loadProfileFile(absPath: string, file: string): Promise<ProfileLoadResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(absPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { diagnostics: [], notFound: true };
    return {
      diagnostics: [
        {
          severity: 'error',
          path: '',
          message: `cannot read the profile file: ${(e as Error).message}`,
          location: { file, start: { line: 1, col: 1 } },
        },
      ],
    };
  }
  return { ...parseProfile(bytes.toString('utf8'), file, absPath), bytes };
}
