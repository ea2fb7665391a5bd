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
/** Runs of characters outside the slug alphabet. */
const UNSAFE_RUN = /[^A-Za-z0-9._-]+/g;
/** A character that is neither safe nor one of the structural id characters (`[ ] = , #`). */
const LOSSY_CHAR = /[^A-Za-z0-9._\-[\]=,#]/;
const SAFE_LAST = /[A-Za-z0-9._-]$/;

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
  // A run of replaced characters becomes one `_` (and none at the end).
  let out = id.replace(UNSAFE_RUN, '_');
  if (id !== '' && !SAFE_LAST.test(id)) out = out.slice(0, -1);
  let lossy = LOSSY_CHAR.test(id);
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
  let clashes = false;
  for (let i = 0; i < slugs.length; i++) {
    const key = (slugs[i] ?? '').toLowerCase();
    const list = byKey.get(key);
    if (list) {
      list.push(i);
      clashes = true;
    } else byKey.set(key, [i]);
  }
  // The common case: every slug is already unique.
  if (!clashes) return slugs;
  for (const indexes of byKey.values()) {
    if (indexes.length < 2) continue;
    for (const i of indexes) {
      const slug = slugs[i] ?? '';
      const hash = shortHash(ids[i] ?? '');
      if (!slug.endsWith(`-${hash}`)) slugs[i] = `${shorten(slug)}-${hash}`;
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
