import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../../src/workflow/diagnostic.js';
import { loadPromptFile, parsePromptFile } from '../../../src/workflow/prompt-file.js';

const parse = (text: string) => parsePromptFile(text, '/abs/p.md', 'p.md');
const lines = (text: string): string[] => parse(text).diagnostics.map(formatDiagnostic);

describe('parsePromptFile', () => {
  it('reads frontmatter (full and short variable forms) and the body', () => {
    const r = parse(
      [
        '---',
        'description: Investigate a failed job',
        'variables:',
        '  cluster:',
        '    required: true',
        '  log_path: { required: true, default: /var/log }',
        '  job_id:',
        '    default: unknown',
        '  retries: 3',
        '  empty:',
        'initial_prompt: Investigate job {{ job_id }} on {{ cluster }}.',
        '---',
        '',
        'You are debugging a failed job on {{ cluster }}.',
        '',
        'Log location: {{ log_path }}',
        '',
      ].join('\n'),
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.promptFile).toEqual({
      path: '/abs/p.md',
      description: 'Investigate a failed job',
      variables: {
        cluster: { required: true },
        log_path: { required: true, default: '/var/log' },
        job_id: { required: false, default: 'unknown' },
        retries: { required: false, default: '3' },
        empty: { required: false },
      },
      body: 'You are debugging a failed job on {{ cluster }}.\n\nLog location: {{ log_path }}',
      initialPrompt: 'Investigate job {{ job_id }} on {{ cluster }}.',
    });
    expect(r.variablePositions.log_path).toEqual({ line: 6, col: 3 });
    // Placeholders with file positions: initial_prompt first, then the body.
    expect(r.placeholders.map((p) => `${p.name}@${p.position.line}:${p.position.col}`)).toEqual([
      'job_id@11:33',
      'cluster@11:49',
      'cluster@14:35',
      'log_path@16:15',
    ]);
  });

  it('takes a file without frontmatter as all body', () => {
    const r = parse('\n\nJust a system prompt.\n');
    expect(r.promptFile).toEqual({ path: '/abs/p.md', variables: {}, body: 'Just a system prompt.' });
  });

  it('accepts blank lines before the frontmatter, with file positions', () => {
    expect(lines('\n\n---\nvariables: [a]\n---\nBody\n')).toEqual([
      'p.md:4:12: error: variables: must be a mapping of variable name to settings or default value',
    ]);
  });

  it('treats an unclosed frontmatter as body, with a warning', () => {
    const r = parse('---\ndescription: x\nBody\n');
    expect(r.promptFile?.body).toBe('---\ndescription: x\nBody');
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "p.md:1:1: warning: the frontmatter has no closing '---' line, so the whole file is the prompt body",
    ]);
  });

  it('reports YAML errors of the frontmatter at their file position', () => {
    expect(lines('---\ndescription: x\nvariables: { a: 1\n---\nBody\n')).toEqual([
      'p.md:4:1: error: flow map in block collection must be sufficiently indented and end with a }',
    ]);
  });

  it('reports a frontmatter that is not a mapping, bad fields and an empty body', () => {
    expect(lines('---\n- a\n---\nBody\n')).toEqual([
      'p.md:2:1: error: the frontmatter must be a YAML mapping',
    ]);
    expect(
      lines(
        '---\ndescription: [x]\nvariables:\n  a: { required: yes, defult: 1 }\n  b: [1]\ninitial_prompt: { x: 1 }\n---\n\n',
      ),
    ).toEqual([
      'p.md:2:14: error: description: must be a string',
      "p.md:4:23: error: variables.a.defult: unknown key 'defult' (did you mean 'default'?) (allowed: required, default)",
      'p.md:4:18: error: variables.a.required: must be true or false',
      'p.md:5:6: error: variables.b: must be a default value or { required, default }',
      'p.md:6:17: error: initial_prompt: must be a string',
      'p.md:8:1: error: the prompt file has no body (the system prompt)',
    ]);
    expect(parse('---\n- a\n---\nBody\n').promptFile).toBeUndefined();
  });

  it('warns about unknown keys, undeclared placeholders and Jinja it does not render', () => {
    expect(
      lines('---\ninitial-prompt: Go\nvariables: { task: x }\n---\nDo {{ tsk }} {% if x %}y{% endif %}\n'),
    ).toEqual([
      "p.md:2:1: warning: initial-prompt: unknown frontmatter key 'initial-prompt' (did you mean 'initial_prompt'?) (rho-agent reads: description, variables, initial_prompt)",
      'p.md:5:14: warning: only {{ name }} placeholders are rendered; other Jinja syntax (blocks, filters, comments) is left as written',
      "p.md:5:4: warning: placeholder '{{ tsk }}' is not a declared variable (did you mean 'task'?); declare it under 'variables' (it is left as written unless the step passes a value)",
    ]);
  });

  it('loads files and reports a missing one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rho-flow-test-'));
    try {
      const missing = await loadPromptFile(join(dir, 'nope.md'), 'nope.md');
      expect(missing.notFound).toBe(true);
      const isDir = await loadPromptFile(dir, 'dir');
      expect(isDir.diagnostics[0]?.message).toMatch(/^cannot read the prompt file: /);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
