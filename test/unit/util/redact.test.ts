import { describe, expect, it } from 'vitest';
import { Redactor } from '../../../src/util/redact.js';

describe('Redactor', () => {
  const secret = 'sk-test-1234567890abcdef';
  const r = new Redactor([secret, 'abc']);

  it('masks the exact value, URL-encoded and base64 forms', () => {
    expect(r.redact(`token=${secret}!`)).toBe('token=***!');
    const weird = new Redactor(['p@ss word/+&=']);
    expect(weird.redact(`q=${encodeURIComponent('p@ss word/+&=')}`)).toBe('q=***');
    expect(r.redact(Buffer.from(secret).toString('base64'))).toBe('***');
  });

  it('masks the value inside a longer base64 stream at every alignment', () => {
    for (const prefix of ['', 'a', 'ab', 'abc', 'abcd']) {
      const encoded = Buffer.from(`${prefix}Authorization: ${secret} trailing`).toString('base64');
      const masked = r.redact(encoded);
      expect(masked).toContain('***');
      // the bulk of the value's encoding is gone
      expect(masked.length).toBeLessThan(encoded.length - 10);
    }
  });

  it('does not mask values shorter than 4 characters, and reports them', () => {
    expect(r.redact('abc abc')).toBe('abc abc');
    expect(r.shortValues).toEqual(['abc']);
  });

  it('redacts deep values and keys', () => {
    expect(r.redactValue({ a: [secret, { [secret]: `x${secret}` }], n: 1 })).toEqual({
      a: ['***', { '***': 'x***' }],
      n: 1,
    });
  });

  it('masks each line of a multi-line secret', () => {
    const multi = new Redactor(['line-one-secret\nline-two-secret']);
    expect(multi.redact('got line-two-secret here')).toBe('got *** here');
  });
});
