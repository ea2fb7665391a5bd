import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  describeCounts,
  printDiagnosticsGithub,
  printDiagnosticsText,
} from '../../../src/cli/diagnostics-output.js';
import type { CliIo } from '../../../src/cli/io.js';
import type { Diagnostic } from '../../../src/workflow/diagnostic.js';
import { BufferSink } from '../../helpers/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rho-flow-test-'));
  await fs.writeFile(path.join(dir, 'a.yaml'), 'name: a\n\tsteps: x\nmodel: "gpt-5"\n');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function io(color = false): CliIo & { stdout: BufferSink; stderr: BufferSink } {
  return {
    stdout: new BufferSink(),
    stderr: new BufferSink(),
    env: {},
    cwd: dir,
    color: { stdout: color, stderr: color },
  };
}

const d = (
  file: string,
  line: number,
  col: number,
  message: string,
  extra: Partial<Diagnostic> = {},
): Diagnostic => ({
  severity: 'error',
  path: 'x',
  message,
  location: { file, start: { line, col } },
  ...extra,
});

describe('printDiagnosticsText', () => {
  test('sorted; caret under the column; a range is underlined; tabs kept for alignment', () => {
    const out = io();
    printDiagnosticsText(
      [
        d('a.yaml', 3, 8, 'range', {
          location: { file: 'a.yaml', start: { line: 3, col: 8 }, end: { line: 3, col: 15 } },
        }),
        d('a.yaml', 2, 2, 'tab'),
      ],
      out,
      'stdout',
      { excerpts: true },
    );
    expect(out.stdout.text).toBe(
      [
        'a.yaml:2:2: error: x: tab',
        ' 2 | \tsteps: x',
        '   | \t^',
        'a.yaml:3:8: error: x: range',
        ' 3 | model: "gpt-5"',
        '   |        ^~~~~~~',
        '',
      ].join('\n'),
    );
  });

  test('no excerpt for unreadable files or lines out of range, and none unless asked', () => {
    const out = io();
    printDiagnosticsText([d('<command line>', 1, 1, 'bad --var'), d('a.yaml', 99, 1, 'far')], out, 'stderr', {
      excerpts: true,
    });
    expect(out.stderr.text).toBe('<command line>:1:1: error: x: bad --var\na.yaml:99:1: error: x: far\n');
    const plain = io();
    printDiagnosticsText([d('a.yaml', 1, 1, 'm')], plain, 'stdout');
    expect(plain.stdout.text).toBe('a.yaml:1:1: error: x: m\n');
  });

  test('colour: bold location, red error, yellow warning; the plain text stays the same', () => {
    const out = io(true);
    printDiagnosticsText(
      [d('a.yaml', 1, 1, 'e'), d('a.yaml', 2, 1, 'w', { severity: 'warning', path: '' })],
      out,
      'stdout',
    );
    expect(out.stdout.text).toBe(
      '\u001b[1ma.yaml:1:1:\u001b[22m \u001b[31merror:\u001b[39m x: e\n' +
        '\u001b[1ma.yaml:2:1:\u001b[22m \u001b[33mwarning:\u001b[39m w\n',
    );
    // eslint-disable-next-line no-control-regex
    expect(out.stdout.text.replace(/\u001b\[\d+m/g, '')).toBe(
      'a.yaml:1:1: error: x: e\na.yaml:2:1: warning: w\n',
    );
  });
});

describe('printDiagnosticsGithub', () => {
  test('escapes data and properties; warnings annotated separately; no notice when under the cap', () => {
    const out = io();
    printDiagnosticsGithub(
      [d('a,b.yaml', 1, 2, '50% done\nnext'), d('a.yaml', 3, 4, 'w', { severity: 'warning' })],
      out,
    );
    expect(out.stdout.text.split('\n')).toEqual([
      'a,b.yaml:1:2: error: x: 50% done',
      'next',
      'a.yaml:3:4: warning: x: w',
      '::error file=a%2Cb.yaml,line=1,col=2::x: 50%25 done%0Anext',
      '::warning file=a.yaml,line=3,col=4::x: w',
      '',
    ]);
  });

  test('the cap counts errors and warnings separately', () => {
    const out = io();
    const ds = [
      ...Array.from({ length: 12 }, (_, i) => d('e.yaml', i + 1, 1, 'e')),
      ...Array.from({ length: 11 }, (_, i) => d('w.yaml', i + 1, 1, 'w', { severity: 'warning' })),
    ];
    printDiagnosticsGithub(ds, out);
    const lines = out.stdout.text.trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('::error '))).toHaveLength(10);
    expect(lines.filter((l) => l.startsWith('::warning '))).toHaveLength(10);
    expect(lines.at(-1)).toBe(
      '::notice::2 errors and 1 warning not annotated (GitHub shows at most 10 per type); see the log above',
    );
  });
});

test('describeCounts', () => {
  expect(describeCounts([])).toBe('no problems');
  expect(describeCounts([d('a', 1, 1, 'x')])).toBe('1 error');
  expect(
    describeCounts([d('a', 1, 1, 'x'), d('a', 1, 1, 'x'), d('a', 1, 1, 'y', { severity: 'warning' })]),
  ).toBe('2 errors and 1 warning');
});
