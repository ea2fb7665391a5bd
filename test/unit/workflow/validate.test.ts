/** Schema errors as users see them: one clear message per problem, at the right place. */
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../src/workflow/diagnostic.js';
import { parseYaml } from '../../../src/workflow/parse.js';
import { validateWithSchema } from '../../../src/workflow/validate.js';

function check(yaml: string): string[] {
  const parsed = parseYaml(yaml, 'w.yaml');
  expect(parsed.diagnostics).toEqual([]);
  return validateWithSchema('workflow', parsed).map(formatDiagnostic);
}
const wf = (rest: string): string => `name: t\nsteps:\n  - run: echo\n${rest}`;

describe('validateWithSchema', () => {
  it('accepts a valid document', () => {
    expect(check(wf(''))).toEqual([]);
  });

  it('reports a string-or-mapping value by the branch its type picks', () => {
    expect(check(wf('model:\n  name: x\n  temprature: 1\n'))).toEqual([
      "w.yaml:6:3: error: model.temprature: unknown key 'temprature' (did you mean 'temperature'?)",
    ]);
    expect(check(wf('model: 4.1\n'))).toEqual([
      'w.yaml:4:8: error: model: must be a string or a mapping; YAML read 4.1 as a number: quote it: "4.1"',
    ]);
    expect(check(wf('model: [a]\n'))).toEqual(['w.yaml:4:8: error: model: must be a string or a mapping']);
  });

  it('reports the missing half of an upload, not a type dump', () => {
    expect(check(wf('uploads:\n  - from: ./x\n  - 42\n'))).toEqual([
      "w.yaml:5:5: error: uploads[0]: missing required key 'to'",
      'w.yaml:6:5: error: uploads[1]: must be a string or a mapping; YAML read 42 as a number: quote it: "42"',
    ]);
  });

  it('reports bad names at the key', () => {
    expect(check(wf('vars:\n  ok: 1\n  not.ok: 2\nsecrets: [GOOD, 9bad]\n'))).toEqual([
      "w.yaml:6:3: error: vars[\"not.ok\"]: invalid name 'not.ok': must start with a letter or '_' and contain only letters, digits and '_'",
      "w.yaml:7:17: error: secrets[1]: must start with a letter or '_' and contain only letters, digits and '_'",
    ]);
  });

  it('reports duplicates in a list at the repeated item', () => {
    expect(check('name: t\nsteps:\n  - prompt: x\n    tools: [read, grep, read]\n')).toEqual([
      "w.yaml:4:25: error: steps[0].tools[2]: 'read' is listed twice",
    ]);
  });

  it('says when a value is empty', () => {
    expect(check(wf('sandbox:\n  image:\n'))).toEqual([
      'w.yaml:5:3: error: sandbox.image: must be a string (the value is empty)',
    ]);
  });

  it('lists allowed keys when there is no close match, except at the crowded top level', () => {
    expect(check(wf('sandbox:\n  foo: 1\n'))).toEqual([
      "w.yaml:5:3: error: sandbox.foo: unknown key 'foo' (allowed: backend, image, snapshot, resources, working-dir, network, env, auto-stop, auto-delete)",
    ]);
    expect(check(wf('jobs: 1\n'))).toEqual(["w.yaml:4:1: error: jobs: unknown key 'jobs'"]);
    // `x-` keys are extension fields (for anchors).
    expect(check(wf('x-anything: { a: 1 }\n'))).toEqual([]);
  });

  it('reports all problems in one pass, each once', () => {
    expect(check('name: a b\ntimeout: 5\nsteps:\n  - {}\n  - run: x\n    timeout: 1\n')).toEqual([
      "w.yaml:1:7: error: name: may contain only letters, digits, '.', '_' and '-'",
      'w.yaml:2:10: error: timeout: a duration needs a unit: add one, e.g. "5s" or "5m"',
      "w.yaml:4:5: error: steps[0]: must have 'run' or 'prompt'",
      'w.yaml:6:14: error: steps[1].timeout: a duration needs a unit: add one, e.g. "1s" or "1m"',
    ]);
  });

  it('validates profile documents too', () => {
    const parsed = parseYaml('shell: restricted\n', 'p.yaml');
    expect(validateWithSchema('profile', parsed).map(formatDiagnostic)).toEqual([
      'p.yaml:1:8: error: shell: must be a mapping',
    ]);
  });
});

describe('parseYaml', () => {
  it('replaces every value that YAML read as a mapping because of {{', () => {
    const p = parseYaml('a: {{ x }}\nb:\n  - {{ y }}\nc: { d: {{ z }} }\n', 'f.yaml');
    expect(p.diagnostics.map(formatDiagnostic)).toEqual([
      `f.yaml:1:4: error: a: a value that starts with '{{' is read as a YAML mapping; quote it: "{{ x }}"`,
      `f.yaml:3:5: error: b[0]: a value that starts with '{{' is read as a YAML mapping; quote it: "{{ y }}"`,
      `f.yaml:4:9: error: c.d: a value that starts with '{{' is read as a YAML mapping; quote it: "{{ z }}"`,
    ]);
    expect(p.data).toEqual({ a: '{{ x }}', b: ['{{ y }}'], c: { d: '{{ z }}' } });
  });

  it('hints at quoting when {{ breaks the YAML itself', () => {
    const p = parseYaml('a: {{ x }} and more\n', 'f.yaml');
    expect(p.data).toBeUndefined();
    expect(p.diagnostics.map(formatDiagnostic)).toEqual([
      `f.yaml:1:12: error: unexpected scalar at node end; a value that starts with '{{' must be quoted: "{{ x }}"`,
    ]);
  });

  it("hints at quoting a value with ': '", () => {
    expect(parseYaml('run: echo a: b\n', 'f.yaml').diagnostics.map(formatDiagnostic)).toEqual([
      "f.yaml:1:6: error: nested mappings are not allowed in compact mappings; if a value contains ': ', quote it",
    ]);
  });

  it('rejects collection keys without printing a process warning', () => {
    const p = parseYaml('? [a, b]\n: 1\n', 'f.yaml');
    expect(p.data).toBeUndefined();
    expect(p.diagnostics.map(formatDiagnostic)).toEqual([
      'f.yaml:1:1: error: mapping keys must be plain strings',
    ]);
  });

  it('stops alias bombs', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]'];
    bomb.push(
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    );
    const p = parseYaml(`${bomb.join('\n')}\n`, 'f.yaml');
    expect(p.data).toBeUndefined();
    expect(p.diagnostics[0]?.message).toMatch(/^cannot read the YAML: .*alias/i);
  });

  it('keeps YAML 1.2 strings: off, no, yes stay strings', () => {
    expect(parseYaml('a: off\nb: no\nc: yes\nd: 010\n', 'f.yaml').data).toEqual({
      a: 'off',
      b: 'no',
      c: 'yes',
      d: 10,
    });
  });
});
