/**
 * The wait a server asked for before a retry, in milliseconds, from response
 * headers of any shape (fetch `Headers`, axios `AxiosHeaders`, Node's
 * `IncomingHttpHeaders`, plain records; values may be arrays or numbers).
 * Reads `retry-after-ms` (OpenAI's, milliseconds) first, then `Retry-After`
 * as delta-seconds or an HTTP date (a date in the past gives 0). `undefined`
 * when the server asked for nothing usable.
 */
export function parseRetryAfter(headers: unknown, now: number = Date.now()): number | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  const get = (key: string): string | undefined => {
    const h = headers as { get?: unknown } & Record<string, unknown>;
    let v: unknown;
    if (typeof h.get === 'function') v = (h.get as (k: string) => unknown).call(h, key);
    if (v === undefined || v === null) {
      for (const [k, value] of Object.entries(h)) if (k.toLowerCase() === key) v = value;
    }
    if (Array.isArray(v)) v = v[0];
    return typeof v === 'string' || typeof v === 'number' ? String(v).trim() : undefined;
  };
  const ms = get('retry-after-ms');
  if (ms !== undefined && ms !== '') {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const ra = get('retry-after');
  if (ra === undefined || ra === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(ra)) return Number(ra) * 1000;
  if (/^[+-]?\d+(\.\d+)?$/.test(ra)) return undefined; // a negative delta is garbage
  const date = Date.parse(ra);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
