/**
 * rho-agent prompt files: Markdown with optional YAML frontmatter
 * (`description`, `variables`, `initial_prompt`). The body is the system
 * prompt; `initial_prompt` is the first user message; both may hold Jinja-style
 * `{{ name }}` placeholders filled from the step's `prompt.vars` and the
 * variables' defaults.
 *
 * Parsing follows rho-agent's loader (frontmatter between `---` lines at the
 * start of the stripped text; body stripped; variables in full form
 * `{required, default}` or short form `name: default`). The engine renders
 * `{{ name }}` placeholders only (engine/render-prompt-file.ts) — other Jinja
 * syntax is reported here as a warning.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, isScalar } from 'yaml';
import { didYouMeanSuffix } from '../util/did-you-mean.js';
import type { Diagnostic, Position } from './diagnostic.js';
import { isRec, type Rec } from './guards.js';
import { parseYaml } from './parse.js';
import type { PromptFile } from './types.js';
import { formatPath, nodeAt, offsetAt, positionOf, scalarOrigin, type DocPath } from './yaml-locate.js';

/** A `{{ name }}` placeholder found in the body or `initial_prompt`, with where it is. */
export interface Placeholder {
  name: string;
  position: Position;
}

export interface PromptFileLoad {
  /** Present when the file has no errors. */
  promptFile?: PromptFile;
  diagnostics: Diagnostic[];
  /** Placeholders of the body and `initial_prompt`, in file order. */
  placeholders: Placeholder[];
  bytes?: Buffer;
  notFound?: boolean;
  /** Position of each declared variable's key (for messages that point into the file). */
  variablePositions: Readonly<Record<string, Position>>;
}

const FRONTMATTER_KEYS = ['description', 'variables', 'initial_prompt'];
const PLACEHOLDER = /\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}/g;
const OTHER_JINJA = /\{%|\{#|\{\{(?!-?\s*[A-Za-z_][A-Za-z0-9_]*\s*-?\}\})/;

function scalarString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/**
 * Parses prompt-file text. `file` is the display path for diagnostics,
 * `absPath` is stored in `PromptFile.path`. Never throws.
 */
export function parsePromptFile(text: string, absPath: string, file: string): PromptFileLoad {
  const diagnostics: Diagnostic[] = [];
  const placeholders: Placeholder[] = [];
  const variablePositions: Record<string, Position> = {};
  const lc = new LineCounter();
  lc.addNewLine(0);
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lc.addNewLine(i + 1);
  const posAt = (offset: number): Position => positionOf(lc, offset);
  const problem = (
    severity: Diagnostic['severity'],
    path: string,
    message: string,
    start: Position,
  ): void => {
    diagnostics.push({ severity, path, message, location: { file, start } });
  };

  // Like rho-agent: frontmatter only when the stripped text starts with `---` and a closing `---` line follows.
  const lead = text.length - text.trimStart().length;
  let bodyStart = lead;
  let frontmatter: Rec = {};
  let fmParsed: ReturnType<typeof parseYaml> | undefined;
  if (text.startsWith('---', lead)) {
    const firstBreak = text.indexOf('\n', lead);
    const close = firstBreak < 0 ? null : /^[ \t]*---[ \t]*\r?$/m.exec(text.slice(firstBreak + 1));
    if (firstBreak >= 0 && close) {
      const fmStart = firstBreak + 1;
      const fmEnd = fmStart + close.index;
      // Blank out everything but the frontmatter so YAML positions are file positions.
      const padded = text.slice(0, fmStart).replace(/[^\n]/g, ' ') + text.slice(fmStart, fmEnd);
      fmParsed = parseYaml(padded, file, { what: 'prompt-file frontmatter' });
      diagnostics.push(...fmParsed.diagnostics);
      const data = fmParsed.data;
      if (data !== undefined && data !== null && !isRec(data)) {
        problem('error', '', 'the frontmatter must be a YAML mapping', posAt(fmStart));
      } else if (isRec(data)) frontmatter = data;
      const afterClose = text.indexOf('\n', fmEnd);
      bodyStart = afterClose < 0 ? text.length : afterClose + 1;
    } else {
      problem(
        'warning',
        '',
        "the frontmatter has no closing '---' line, so the whole file is the prompt body",
        posAt(lead),
      );
    }
  }

  const fmPos = (path: DocPath, key = false): Position =>
    fmParsed
      ? positionOf(fmParsed.lineCounter, offsetAt(fmParsed.doc, path, key ? 'key' : 'value'))
      : posAt(lead);

  for (const key of Object.keys(frontmatter)) {
    if (!FRONTMATTER_KEYS.includes(key)) {
      problem(
        'warning',
        formatPath([key]),
        `unknown frontmatter key '${key}'${didYouMeanSuffix(key, FRONTMATTER_KEYS)} (rho-agent reads: ${FRONTMATTER_KEYS.join(', ')})`,
        fmPos([key], true),
      );
    }
  }

  let description: string | undefined;
  if (frontmatter.description !== undefined && frontmatter.description !== null) {
    description = scalarString(frontmatter.description);
    if (description === undefined)
      problem('error', 'description', 'must be a string', fmPos(['description']));
  }

  const variables: Record<string, { required: boolean; default?: string }> = {};
  const rawVars = frontmatter.variables;
  if (rawVars !== undefined && rawVars !== null && !isRec(rawVars)) {
    problem(
      'error',
      'variables',
      'must be a mapping of variable name to settings or default value',
      fmPos(['variables']),
    );
  } else if (isRec(rawVars)) {
    for (const [name, config] of Object.entries(rawVars)) {
      const path = ['variables', name];
      variablePositions[name] = fmPos(path, true);
      if (isRec(config)) {
        for (const k of Object.keys(config)) {
          if (k !== 'required' && k !== 'default') {
            problem(
              'error',
              formatPath([...path, k]),
              `unknown key '${k}'${didYouMeanSuffix(k, ['required', 'default'])} (allowed: required, default)`,
              fmPos([...path, k], true),
            );
          }
        }
        if (config.required !== undefined && typeof config.required !== 'boolean') {
          problem(
            'error',
            formatPath([...path, 'required']),
            'must be true or false',
            fmPos([...path, 'required']),
          );
        }
        const def =
          config.default === undefined || config.default === null ? undefined : scalarString(config.default);
        if (config.default !== undefined && config.default !== null && def === undefined) {
          problem(
            'error',
            formatPath([...path, 'default']),
            'must be a string, number or boolean',
            fmPos([...path, 'default']),
          );
        }
        variables[name] = {
          required: config.required === true,
          ...(def !== undefined ? { default: def } : {}),
        };
      } else if (config === null || config === undefined) {
        variables[name] = { required: false };
      } else {
        const def = scalarString(config);
        if (def === undefined)
          problem('error', formatPath(path), 'must be a default value or { required, default }', fmPos(path));
        variables[name] = { required: false, ...(def !== undefined ? { default: def } : {}) };
      }
    }
  }

  let initialPrompt: string | undefined;
  if (frontmatter.initial_prompt !== undefined && frontmatter.initial_prompt !== null) {
    initialPrompt = scalarString(frontmatter.initial_prompt);
    if (initialPrompt === undefined)
      problem('error', 'initial_prompt', 'must be a string', fmPos(['initial_prompt']));
  }

  // Body: stripped like rho-agent; positions of placeholders are file positions.
  const rawBody = text.slice(bodyStart);
  const body = rawBody.trim();
  const bodyOffset = bodyStart + (rawBody.length - rawBody.trimStart().length);
  if (body === '') {
    problem(
      'error',
      '',
      'the prompt file has no body (the system prompt)',
      posAt(Math.min(bodyStart, text.length)),
    );
  }
  const scan = (s: string, toPos: (o: number) => Position): void => {
    for (const m of s.matchAll(PLACEHOLDER))
      placeholders.push({ name: m[1] ?? '', position: toPos(m.index) });
    const other = OTHER_JINJA.exec(s);
    if (other) {
      problem(
        'warning',
        '',
        'only {{ name }} placeholders are rendered; other Jinja syntax (blocks, filters, comments) is left as written',
        toPos(other.index),
      );
    }
  };
  if (initialPrompt !== undefined && fmParsed) {
    const { node } = nodeAt(fmParsed.doc, ['initial_prompt']);
    if (isScalar(node)) {
      const origin = scalarOrigin(file, fmParsed.text, fmParsed.lineCounter, node);
      scan(initialPrompt, (o) => origin.locate(o));
    }
  }
  scan(body, (o) => posAt(bodyOffset + o));

  for (const p of placeholders) {
    if (!Object.prototype.hasOwnProperty.call(variables, p.name)) {
      problem(
        'warning',
        '',
        `placeholder '{{ ${p.name} }}' is not a declared variable${didYouMeanSuffix(p.name, Object.keys(variables))}; declare it under 'variables' (it is left as written unless the step passes a value)`,
        p.position,
      );
    }
  }

  const hasErrors = diagnostics.some((d) => d.severity === 'error');
  return {
    ...(hasErrors
      ? {}
      : {
          promptFile: {
            path: absPath,
            ...(description !== undefined ? { description } : {}),
            variables,
            body,
            ...(initialPrompt !== undefined ? { initialPrompt } : {}),
          },
        }),
    diagnostics,
    placeholders,
    variablePositions,
  };
}

/** Reads and parses a prompt file. Never throws; a missing file sets `notFound`. */
export async function loadPromptFile(absPath: string, file: string): Promise<PromptFileLoad> {
  let bytes: Buffer;
  try {
    bytes = await readFile(absPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return { diagnostics: [], placeholders: [], notFound: true, variablePositions: {} };
    return {
      diagnostics: [
        {
          severity: 'error',
          path: '',
          message: `cannot read the prompt file: ${(e as Error).message}`,
          location: { file, start: { line: 1, col: 1 } },
        },
      ],
      placeholders: [],
      variablePositions: {},
    };
  }
  return { ...parsePromptFile(bytes.toString('utf8'), absPath, file), bytes };
}
