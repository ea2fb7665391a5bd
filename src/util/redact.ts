/**
 * Masks secret values in text before rho-flow writes it anywhere (product.md
 * §6.4): the exact value, its base64 forms and its URL-encoded form become
 * `***`. Values shorter than 4 characters are not masked (it would garble
 * logs); `shortValues` reports them so the caller can warn.
 */
export class Redactor {
  readonly #patterns: string[];
  readonly shortValues: readonly string[];

  constructor(secrets: Iterable<string>) {
    const forms = new Set<string>();
    const short: string[] = [];
    for (const value of secrets) {
      if (value.length === 0) continue;
      if (value.length < 4) {
        short.push(value);
        continue;
      }
      forms.add(value);
      forms.add(encodeURIComponent(value));
      for (const line of value.split(/\r?\n/)) if (line.length >= 4) forms.add(line);
      const b64 = Buffer.from(value).toString('base64');
      forms.add(b64);
      forms.add(b64.replace(/=+$/, ''));
      if (b64.length >= 10) forms.add(b64.slice(0, -4));
      // base64 of the value at each of the three byte alignments inside a longer stream
      for (const pad of [1, 2]) {
        const shifted = Buffer.from('\0'.repeat(pad) + value).toString('base64');
        const stable = shifted.slice(4, -4);
        if (stable.length >= 6) forms.add(stable);
      }
    }
    // Longest first so a value that contains another is masked whole.
    this.#patterns = [...forms].filter((f) => f.length >= 4).sort((a, b) => b.length - a.length);
    this.shortValues = short;
  }

  /** True when there is nothing to mask. */
  get empty(): boolean {
    return this.#patterns.length === 0;
  }

  /** `text` with every secret form replaced by `***`. */
  redact(text: string): string {
    let out = text;
    for (const p of this.#patterns) if (out.includes(p)) out = out.split(p).join('***');
    return out;
  }

  /** Deep-redacts every string inside a JSON-like value. */
  redactValue<T>(value: T): T {
    if (this.empty) return value;
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') return this.redact(v);
      if (Array.isArray(v)) return v.map(walk);
      if (v !== null && typeof v === 'object') {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [this.redact(k), walk(x)]));
      }
      return v;
    };
    return walk(value) as T;
  }
}
