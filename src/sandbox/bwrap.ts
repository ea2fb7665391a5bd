/**
 * bubblewrap (`bwrap`) detection and argument building for the local
 * backend's jails (product.md §1).
 *
 * A jail sees: the host userland read-only (`/usr`, `/etc` with secrets
 * masked, `/opt`, and `/bin`, `/lib*`, `/sbin` as symlinks or read-only binds,
 * mirroring the host), a fresh `/proc` and `/dev`, a tmpfs `/tmp`, and the
 * job's workspace at its working dir. Nothing else: no `/root`, `/home`, the
 * project checkout, `$TMPDIR` or other workspaces. Environment variables are
 * passed through `--args <fd>` rather than argv, so secrets never show up in
 * the host's world-readable `/proc/<pid>/cmdline`.
 */
import { execFile } from 'node:child_process';
import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SandboxError } from '../errors.js';
import { findOnPath, isExecutable } from '../util/find-executable.js';

/** Hostname inside every jail. */
export const JAIL_HOSTNAME = 'rho-flow';
/** PATH given to commands unless the workflow sets one. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The fd on which bwrap reports `{"child-pid"}` / `{"exit-code"}` (`--json-status-fd`). */
export const STATUS_FD = 3;
/** The fd from which bwrap reads the NUL-separated `--clearenv --setenv …` arguments (`--args`). */
export const ARGS_FD = 4;
/**
 * Where a run step's `$RHO_FLOW_OUTPUT` file appears inside a jail: a host
 * file bound there (`JailSpec.outputFile`), so the host reads it back after
 * the command without a second process in the jail. Outside `/tmp`, so a
 * step that empties `/tmp` does not trip over the mount point.
 */
export const JAIL_OUTPUT_PATH = '/run/rho-flow/output';

/** Host directories bound read-only when they exist. */
const RO_DIRS = ['/usr', '/etc', '/opt'];
/** Top-level entries that are symlinks into `/usr` on merged-/usr hosts and directories elsewhere. */
const ROOT_LINKS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
/** Files under `/etc` hidden behind `/dev/null` (credentials, private keys). */
const MASKED_FILES = [
  '/etc/shadow',
  '/etc/shadow-',
  '/etc/gshadow',
  '/etc/gshadow-',
  '/etc/security/opasswd',
  '/etc/krb5.keytab',
];
/** Directories under `/etc` hidden behind an empty tmpfs. */
const MASKED_DIRS = ['/etc/ssl/private', '/etc/credstore', '/etc/credstore.encrypted'];
/** Paths a working dir may not be at or under: they are part of the jail's own layout. */
const RESERVED = [
  '/usr',
  '/etc',
  '/opt',
  '/proc',
  '/dev',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
];

/**
 * Locates the bwrap binary. `RHO_FLOW_BWRAP` in `env` overrides the search:
 * a path uses that binary, `''`/`none`/`off` pretends bwrap is missing.
 * Otherwise `bwrap` is searched on `env.PATH`.
 */
export function findBwrap(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const override = env.RHO_FLOW_BWRAP;
  if (override !== undefined) {
    if (override === '' || override === 'none' || override === 'off') return undefined;
    return isExecutable(override) ? override : undefined;
  }
  return findOnPath('bwrap', env.PATH);
}

let cachedLayout: readonly string[] | undefined;

/**
 * bwrap arguments reproducing the host userland read-only, with secrets
 * masked. Detects symlink-vs-directory for `/bin`, `/lib*`, `/sbin` so it
 * works on merged and non-merged `/usr` hosts alike. Computed once.
 */
export function hostLayoutArgs(): readonly string[] {
  if (cachedLayout) return cachedLayout;
  const args: string[] = [];
  for (const dir of RO_DIRS) if (isDir(dir)) args.push('--ro-bind', dir, dir);
  for (const entry of ROOT_LINKS) {
    let st;
    try {
      st = lstatSync(entry);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(entry), entry);
    else if (st.isDirectory()) args.push('--ro-bind', entry, entry);
  }
  for (const file of [...MASKED_FILES, ...sshHostKeys()])
    if (existsNoFollow(file)) args.push('--ro-bind', '/dev/null', file);
  for (const dir of MASKED_DIRS) if (isDir(dir)) args.push('--tmpfs', dir);
  cachedLayout = args;
  return args;
}

function sshHostKeys(): string[] {
  try {
    return readdirSync('/etc/ssh')
      .filter((n) => /^ssh_host_.*_key$/.test(n))
      .map((n) => `/etc/ssh/${n}`);
  } catch {
    return [];
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function existsNoFollow(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks that `workingDir` can be a jail's working dir: absolute, normalized,
 * not `/`, not inside the bound host userland. Throws `SandboxError('create-failed')`.
 */
export function validateWorkingDir(workingDir: string): void {
  const bad = (why: string): SandboxError =>
    new SandboxError(
      'create-failed',
      `working-dir ${JSON.stringify(workingDir)} cannot be used by the local backend: ${why}`,
    );
  if (!path.posix.isAbsolute(workingDir)) throw bad('it must be an absolute path');
  const dir = workingDir.replace(/\/+$/, '');
  if (dir === '') throw bad('it cannot be /');
  if (path.posix.normalize(dir) !== dir || dir.includes('\0')) throw bad('it must be a normalized path');
  for (const r of RESERVED) {
    if (dir === r || dir.startsWith(`${r}/`)) throw bad(`${r} is part of the jail's own layout`);
  }
  // A workspace there would receive (or hide) the mount point of the run steps' outputs file.
  const outputDir = path.posix.dirname(JAIL_OUTPUT_PATH);
  if (outputDir === dir || outputDir.startsWith(`${dir}/`) || dir.startsWith(`${outputDir}/`))
    throw bad(`${outputDir} is part of the jail's own layout`);
}

/** What one jailed command gets. */
export interface JailSpec {
  /** Host directory bound at `workingDir`. */
  workspace: string;
  workingDir: string;
  /** Absolute path inside the jail. */
  cwd: string;
  network: 'on' | 'off';
  /** Bind the workspace read-only. */
  readOnly: boolean;
  /** A host file to bind read-write at `JAIL_OUTPUT_PATH` (a run step's outputs file). */
  outputFile?: string;
}

/**
 * The bwrap options for one command (everything before the command itself).
 * The environment is read from `fds.args` (default `ARGS_FD`; see
 * `envArgsData`) and the status is written to `fds.status` (default
 * `STATUS_FD`; `null` for none).
 */
export function bwrapArgs(spec: JailSpec, fds: { args?: number; status?: number | null } = {}): string[] {
  const args = ['--unshare-all'];
  if (spec.network === 'on') args.push('--share-net');
  args.push('--die-with-parent', '--new-session', '--cap-drop', 'ALL', '--hostname', JAIL_HOSTNAME);
  args.push('--args', String(fds.args ?? ARGS_FD));
  args.push(...hostLayoutArgs());
  // With network on, DNS may need the systemd-resolved stub that /etc/resolv.conf points into.
  if (spec.network === 'on') args.push('--ro-bind-try', '/run/systemd/resolve', '/run/systemd/resolve');
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  args.push(spec.readOnly ? '--ro-bind' : '--bind', spec.workspace, spec.workingDir);
  if (spec.outputFile !== undefined) args.push('--bind', spec.outputFile, JAIL_OUTPUT_PATH);
  args.push('--chdir', spec.cwd);
  const status = fds.status === undefined ? STATUS_FD : fds.status;
  if (status !== null) args.push('--json-status-fd', String(status));
  args.push('--');
  return args;
}

/** NUL-separated `--clearenv --setenv K V …` for bwrap's `--args` fd. */
export function envArgsData(env: Readonly<Record<string, string>>): Buffer {
  const parts = ['--clearenv'];
  for (const [k, v] of Object.entries(env)) parts.push('--setenv', k, v);
  return Buffer.from(parts.map((p) => `${p}\0`).join(''));
}

/**
 * The environment of a command: defaults (`PATH`, `HOME` = working dir,
 * `TMPDIR`, `LANG`), overridden by the sandbox env, then the exec env.
 * Throws `SandboxError('exec-failed')` on a name or value that cannot be an
 * environment variable.
 */
export function commandEnv(
  defaults: { home: string; tmpdir: string },
  ...layers: Array<Readonly<Record<string, string>> | undefined>
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOME: defaults.home,
    TMPDIR: defaults.tmpdir,
    LANG: 'C.UTF-8',
  };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [k, v] of Object.entries(layer)) {
      if (k === '' || k.includes('=') || k.includes('\0') || v.includes('\0')) {
        throw new SandboxError('exec-failed', `invalid environment variable ${JSON.stringify(k)}`);
      }
      env[k] = v;
    }
  }
  return env;
}

/**
 * Runs a trivial command in a real jail to prove bwrap works here (it may
 * exist yet be unable to create namespaces, e.g. in some containers).
 * Resolves to `undefined` on success, or bwrap's error text.
 */
export async function probeBwrap(bin: string): Promise<string | undefined> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-probe-'));
  try {
    // The probe feeds the env arguments on stdin (fd 0) and needs no status fd.
    const args = bwrapArgs(
      { workspace: dir, workingDir: '/work', cwd: '/work', network: 'off', readOnly: false },
      { args: 0, status: null },
    );
    return await new Promise<string | undefined>((resolve) => {
      const child = execFile(
        bin,
        [...args, 'true'],
        { timeout: 10_000, env: {} },
        (error, _stdout, stderr) => {
          resolve(error ? (stderr.trim() || error.message).split('\n')[0] : undefined);
        },
      );
      child.stdin?.on('error', () => undefined); // EPIPE when bwrap fails before reading its arguments
      child.stdin?.end(envArgsData({ PATH: DEFAULT_PATH }));
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
