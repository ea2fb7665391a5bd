/**
 * A canned toolbox that answers the requests rho-flow's Daytona backend makes
 * the way a healthy sandbox would, from memory (`FakeDaytonaOptions.simulate`).
 * For benchmarks: with it, the fake costs next to nothing per request, so the
 * time a batch takes is the injected latency plus rho-flow's own work.
 *
 * - the create-time probe finds `tar` and `gzip`;
 * - a command run through the exec wrapper (`daytona-exec.ts`) exits 0 and
 *   prints `stdout` (stderr empty);
 * - the script that packs a download exits 0 and prints the archive's size
 *   the way the real one does (`rho-flow-archive-bytes:N` last);
 * - every other helper script (unpack an upload, chmod…) exits 0 silently;
 * - a download of a packed archive (`…/down-*.tar[.gz]`) returns an archive
 *   of `artifacts` (paths relative to the packed directory, `./`-prefixed as
 *   the pack script makes them).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { execScriptOf } from './cli.js';
import type { SimulatedToolbox } from './types.js';

export interface RhoFlowSimulationOptions {
  /** Files inside every packed download: relative path → content. Default `{ 'out.txt': 'hello\n' }`. */
  artifacts?: Readonly<Record<string, string>>;
  /** What a wrapped command prints on stdout (default `''`). */
  stdout?: string;
}

/** Builds the tar and tar.gz of `files` (synchronously; once per simulation). */
function archives(files: Readonly<Record<string, string>>): { tar: Buffer; tgz: Buffer } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rho-flow-fake-archive-'));
  try {
    const names = Object.keys(files).map((rel) => `./${rel}`);
    for (const [rel, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, 'src', rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, 'src', rel), content);
    }
    const out: Record<'tar' | 'tgz', Buffer> = { tar: Buffer.alloc(0), tgz: Buffer.alloc(0) };
    for (const kind of ['tar', 'tgz'] as const) {
      const file = path.join(dir, `a.${kind}`);
      tar.c({ cwd: path.join(dir, 'src'), file, gzip: kind === 'tgz', portable: true, sync: true }, names);
      out[kind] = fs.readFileSync(file);
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The canned toolbox for rho-flow's Daytona backend (see the module comment). */
export function rhoFlowSimulation(options: RhoFlowSimulationOptions = {}): SimulatedToolbox {
  const packed = archives(options.artifacts ?? { 'out.txt': 'hello\n' });
  const stdout = options.stdout ?? '';
  return {
    exec(command) {
      const script = execScriptOf({ command });
      if (script.includes('for t in tar gzip')) return { exitCode: 0, output: 'tar\ngzip\n' };
      const wrapped = /@@RF:([0-9a-f]+):E@@/.exec(script);
      if (wrapped) {
        const id = wrapped[1] ?? '';
        const size = Buffer.byteLength(stdout);
        return {
          exitCode: 0,
          output: `${stdout}\n@@RF:${id}:E@@\n\n@@RF:${id}:X@@ 0 0 ${size} 0\n`,
        };
      }
      const pack = /tar -c(z?)f '[^']*\/down-/.exec(script);
      if (pack) {
        const size = (pack[1] ? packed.tgz : packed.tar).length;
        return { exitCode: 0, output: `\nrho-flow-archive-bytes:${size}\n` };
      }
      return { exitCode: 0, output: '' };
    },
    file(p) {
      if (/\/down-[^/]*\.tar\.gz$/.test(p)) return packed.tgz;
      if (/\/down-[^/]*\.tar$/.test(p)) return packed.tar;
      return undefined;
    },
  };
}
