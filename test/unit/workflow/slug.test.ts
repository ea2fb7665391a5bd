import { describe, expect, test } from 'vitest';
import { MAX_SLUG_LENGTH, assignSlugs, shortHash, slugify } from '../../../src/workflow/slug.js';

const SAFE = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

function expectSafe(slug: string): void {
  expect(slug).toMatch(SAFE);
  expect(slug.length).toBeLessThanOrEqual(MAX_SLUG_LENGTH);
  expect(slug).not.toBe('.');
  expect(slug).not.toBe('..');
}

describe('slugify', () => {
  test('safe ids stay as they are', () => {
    expect(slugify('hello')).toBe('hello');
    expect(slugify('my.workflow_v2-x')).toBe('my.workflow_v2-x');
  });

  test('structural characters become single underscores, none at the end, no hash', () => {
    expect(slugify('fix-failing-tests[task=flaky-test]#2')).toBe('fix-failing-tests_task_flaky-test_2');
    expect(slugify('wf[a=1,b=x]')).toBe('wf_a_1_b_x');
  });

  test('any other replaced character adds a hash of the full id', () => {
    const h = (id: string): string => shortHash(id);
    expect(slugify('wf[path=a/b]')).toBe(`wf_path_a_b-${h('wf[path=a/b]')}`);
    expect(slugify('wf[msg=hello world]')).toBe(`wf_msg_hello_world-${h('wf[msg=hello world]')}`);
    expect(slugify('wf[lang=日本語]')).toBe(`wf_lang-${h('wf[lang=日本語]')}`);
    expect(slugify('wf[e=café]')).toBe(`wf_e_caf-${h('wf[e=café]')}`);
    expect(shortHash('x')).toMatch(/^[0-9a-f]{8}$/);
  });

  test('/ and .. can never form a path', () => {
    for (const id of [
      '..',
      '.',
      '../../etc/passwd',
      'wf[x=../..]',
      '/abs/path',
      'a/../b',
      '.hidden',
      '-rf',
    ]) {
      const slug = slugify(id);
      expectSafe(slug);
      expect(slug).not.toContain('/');
      expect(slug.startsWith('.')).toBe(false);
      expect(slug.startsWith('-')).toBe(false);
    }
    expect(slugify('..')).toBe(`__-${shortHash('..')}`);
  });

  test('empty and all-unsafe ids still give a safe slug', () => {
    expect(slugify('')).toBe(`job-${shortHash('')}`);
    expectSafe(slugify('   '));
    expectSafe(slugify('日本'));
    expectSafe(slugify('-'.repeat(300)));
  });

  test('long ids are shortened to the limit with a hash, deterministically', () => {
    const long = `wf[task=${'x'.repeat(500)}]`;
    const slug = slugify(long);
    expectSafe(slug);
    expect(slug).toHaveLength(MAX_SLUG_LENGTH);
    expect(slug.endsWith(`-${shortHash(long)}`)).toBe(true);
    expect(slugify(long)).toBe(slug);
    // two long ids with the same prefix differ
    expect(slugify(`${long}#2`)).not.toBe(slug);
    // exactly at the limit and safe: kept as is
    expect(slugify('a'.repeat(MAX_SLUG_LENGTH))).toBe('a'.repeat(MAX_SLUG_LENGTH));
    expect(slugify('a'.repeat(MAX_SLUG_LENGTH + 1))).toHaveLength(MAX_SLUG_LENGTH);
  });

  test('the shortened part never ends in a separator before the hash', () => {
    const id = 'a'.repeat(90) + '-----' + 'b'.repeat(50);
    expect(slugify(id)).toMatch(/^a{90}-[0-9a-f]{8}$/);
  });

  test('ids that differ only in replaced characters get different slugs', () => {
    const ids = ['wf[x=a b]', 'wf[x=a/b]', 'wf[x=a:b]', 'wf[x=a_b]', 'wf[x=a,b]', 'wf[x=a=b]'];
    const slugs = assignSlugs(ids);
    expect(new Set(slugs).size).toBe(ids.length);
  });
});

describe('assignSlugs', () => {
  test('unique slugs stay as slugify made them', () => {
    expect(assignSlugs(['a', 'b[x=1]'])).toEqual(['a', 'b_x_1']);
  });

  test('structural look-alikes get a hash so they differ', () => {
    const ids = ['a[b]', 'a#b', 'a_b'];
    const slugs = assignSlugs(ids);
    expect(new Set(slugs).size).toBe(3);
    expect(slugs[0]).toBe(`a_b-${shortHash('a[b]')}`);
    expect(slugs[1]).toBe(`a_b-${shortHash('a#b')}`);
    expect(slugs[2]).toBe(`a_b-${shortHash('a_b')}`);
    for (const s of slugs) expectSafe(s);
  });

  test('slugs are unique ignoring case (macOS and Windows filesystems)', () => {
    const slugs = assignSlugs(['wf[os=Linux]', 'wf[os=linux]']);
    expect(slugs[0]!.toLowerCase()).not.toBe(slugs[1]!.toLowerCase());
  });

  test('identical ids still get distinct slugs, numbered in order', () => {
    const [a, b, c] = assignSlugs(['same', 'same', 'same']);
    expect(a).toBe(`same-${shortHash('same')}`);
    expect(b).toBe(`same-${shortHash('same')}-2`);
    expect(c).toBe(`same-${shortHash('same')}-3`);
  });

  test('collision suffixes respect the length limit', () => {
    const long = 'z'.repeat(300);
    for (const s of assignSlugs([long, long, `${long}[a]`])) expectSafe(s);
  });

  test('deterministic for the same list', () => {
    const ids = Array.from({ length: 50 }, (_, i) => `wf[i=${i % 7} ${i % 3}]`);
    expect(assignSlugs(ids)).toEqual(assignSlugs(ids));
  });
});
