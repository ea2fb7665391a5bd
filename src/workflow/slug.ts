/**
 * Filesystem-safe slugs of job ids (product.md §5): a job's slug names its
 * folder under `jobs/` and its local workspace, so it must be safe on every
 * filesystem and unique within a run.
 *
 * A slug:
 * - uses only `[A-Za-z0-9._-]`;
 * - never starts with `.` or `-`, and is never `.` or `..`;
 * - is at most {@link MAX_SLUG_LENGTH} characters;
 * - is a pure function of the id (plus, for collisions, of the other ids in
 *   the run), so the same plan always gives the same slugs.
 *
 * Structural id characters (`[ ] = , #`) become `_`. Any other replaced
 * character (spaces, `/`, unicode, quotes …) or a shortened id could make two
 * ids share a slug, so those slugs end in `-` + 8 hex digits of the id's
 * sha256.
 */
import { createHash } from 'node:crypto';

export const MAX_SLUG_LENGTH = 100;

const HASH_LENGTH = 8;
const SAFE = /[A-Za-z0-9._-]/;
/** Characters that job ids use for structure (`name[k=v,k2=v2]#3`). */
const STRUCTURAL = new Set(['[', ']', '=', ',', '#']);

/** First 8 hex digits of the sha256 of `text`. */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, HASH_LENGTH);
}

/** Cut to leave room for `-<hash>`, without a dangling separator (and never empty). */
function shorten(slug: string): string {
  const cut = slug.slice(0, MAX_SLUG_LENGTH - HASH_LENGTH - 1).replace(/[._-]+$/, '');
  return cut === '' ? 'job' : cut;
}

/**
 * The slug of one id, on its own. Two different ids can only get the same
 * result here when both consist of safe and structural characters and differ
 * only in which structural character or which run of them they use (e.g.
 * `a[b]` and `a#b`); {@link assignSlugs} resolves those within a run.
 */
export function slugify(id: string): string {
  let out = '';
  let lossy = false;
  let pendingGap = false;
  for (const ch of id) {
    if (SAFE.test(ch)) {
      if (pendingGap) out += '_';
      pendingGap = false;
      out += ch;
      continue;
    }
    // A run of replaced characters becomes one `_` (and none at the end).
    pendingGap = true;
    if (!STRUCTURAL.has(ch)) lossy = true;
  }
  // No leading `.` or `-` (hidden files, options); this also rules out `.` and `..`.
  const lead = /^[.-]+/.exec(out);
  if (lead) {
    out = '_'.repeat(lead[0].length) + out.slice(lead[0].length);
    lossy = true;
  }
  if (out === '') {
    out = 'job';
    lossy = true;
  }
  if (out.length > MAX_SLUG_LENGTH || (lossy && out.length > MAX_SLUG_LENGTH - HASH_LENGTH - 1)) {
    out = shorten(out);
    lossy = true;
  }
  return lossy ? `${out}-${shortHash(id)}` : out;
}

/**
 * Slugs for every id of a run, in the same order. Slugs are unique even on
 * case-insensitive filesystems: ids whose slugs would clash get the hash
 * suffix, and (should even that clash, e.g. for duplicate ids) a `-2`, `-3` …
 * counter in order of appearance.
 */
export function assignSlugs(ids: readonly string[]): string[] {
  const slugs = ids.map(slugify);
  const byKey = new Map<string, number[]>();
  slugs.forEach((slug, i) => {
    const key = slug.toLowerCase();
    const list = byKey.get(key);
    if (list) list.push(i);
    else byKey.set(key, [i]);
  });
  for (const indexes of byKey.values()) {
    if (indexes.length < 2) continue;
    for (const i of indexes) {
      const slug = slugs[i] ?? '';
      const id = ids[i] ?? '';
      const hash = shortHash(id);
      if (slug.endsWith(`-${hash}`)) continue;
      slugs[i] = `${shorten(slug)}-${hash}`;
    }
  }
  // Last resort: identical ids (or a hash collision) get a counter.
  const seen = new Set<string>();
  slugs.forEach((slug, i) => {
    let candidate = slug;
    for (let n = 2; seen.has(candidate.toLowerCase()); n++) {
      const suffix = `-${n}`;
      candidate = slug.slice(0, MAX_SLUG_LENGTH - suffix.length) + suffix;
    }
    seen.add(candidate.toLowerCase());
    slugs[i] = candidate;
  });
  return slugs;
}
