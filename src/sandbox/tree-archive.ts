/**
 * Packing a local tree for upload: a tar archive (modes, symlinks as links,
 * empty dirs; excluded paths, sockets, fifos and devices left out), gzipped
 * when that pays.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import * as tar from 'tar';
import { byName } from './safe-fs.js';
import type { PackedTree } from './upload-archives.js';

/** How much file content `worthCompressing` deflates to decide. */
const SAMPLE_BYTES = 1 << 20;
const SAMPLE_PER_FILE = 64 * 1024;

/**
 * Whether gzip pays for a tree: deflates (level 1) up to 1 MiB taken from
 * its first files (64 KiB each, excluded paths skipped) and says yes when
 * that shrinks it by more than 10 %. Media, archives and other compressed or
 * random data are sent as a plain tar: gzip would cost ~40 ms of CPU per MB
 * for nothing (issue 7, target 5). An empty or unreadable sample says yes.
 */
export async function worthCompressing(
  localDir: string,
  isExcluded: (rel: string) => boolean,
): Promise<boolean> {
  const chunks: Buffer[] = [];
  let sampled = 0;
  const dirs = [''];
  while (dirs.length > 0 && sampled < SAMPLE_BYTES) {
    const rel = dirs.shift() ?? '';
    let entries;
    try {
      entries = (await fs.readdir(path.join(localDir, rel), { withFileTypes: true })).sort((a, b) =>
        byName(a.name, b.name),
      );
    } catch {
      continue;
    }
    for (const e of entries) {
      if (sampled >= SAMPLE_BYTES) break;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (isExcluded(r)) continue;
      if (e.isDirectory()) dirs.push(r);
      else if (e.isFile()) {
        const fh = await fs
          .open(path.join(localDir, r), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW)
          .catch(() => undefined);
        if (!fh) continue;
        try {
          const buf = Buffer.alloc(Math.min(SAMPLE_PER_FILE, SAMPLE_BYTES - sampled));
          const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
          chunks.push(buf.subarray(0, bytesRead));
          sampled += bytesRead;
        } finally {
          await fh.close();
        }
      }
    }
  }
  if (sampled === 0) return true;
  const deflated = deflateRawSync(Buffer.concat(chunks), { level: 1 }).length;
  return deflated < sampled * 0.9;
}

/** Writes `localDir` (minus excluded paths, sockets, fifos and devices) as a tar archive. */
export async function packTree(
  localDir: string,
  archive: string,
  gzip: boolean,
  isExcluded: (rel: string) => boolean,
): Promise<PackedTree> {
  let files = 0;
  let bytes = 0;
  await tar.c(
    {
      cwd: localDir,
      file: archive,
      // Level 1: ~3x faster than the default 6 on source trees, for ~20 % more bytes.
      gzip: gzip ? { level: 1 } : false,
      portable: true,
      follow: false,
      filter: (p, s) => {
        const rel = p.replace(/^\.\/?/, '');
        if (rel !== '' && isExcluded(rel)) return false;
        if ('isFile' in s && s.isFile()) {
          files++;
          bytes += s.size;
        } else if ('isDirectory' in s && !s.isDirectory() && !s.isSymbolicLink()) {
          return false; // sockets, fifos, devices
        }
        return true;
      },
    },
    ['.'],
  );
  return { files, bytes };
}
