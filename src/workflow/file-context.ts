/**
 * Shared state of one load (display paths, memoized reads of profile and
 * prompt files) and the per-file helper the analyzer reports through.
 * @internal
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, relative } from 'node:path';
import { isScalar } from 'yaml';
import { Template, TemplateError, checkTemplate, type Shape, type TemplateOrigin } from '../expr/index.js';
import { loadProfileFile, type ProfileLoadResult } from '../profiles/load-profile.js';
import type { Diagnostic, Position, Severity } from './diagnostic.js';
import type { ParsedYaml } from './parse.js';
import { loadPromptFile, type PromptFileLoad } from './prompt-file.js';
import type { SourceRef } from './types.js';
import { formatPath, nodeAt, offsetAt, positionOf, scalarOrigin, type DocPath } from './yaml-locate.js';

/** State shared by every file of one `loadWorkflows` call. */
export class LoadContext {
  readonly cwd: string;
  readonly #profiles = new Map<string, Promise<ProfileLoadResult>>();
  readonly #prompts = new Map<string, Promise<PromptFileLoad>>();
  /** Diagnostics of referenced files already reported (a profile shared by ten workflows is reported once). */
  readonly #reported = new Set<string>();
  readonly #kinds = new Map<string, Promise<PathKind>>();

  constructor(cwd: string) {
    this.cwd = cwd;
  }

  /** Path as shown in messages: relative to cwd when inside it, else absolute. */
  display(abs: string): string {
    const rel = relative(this.cwd, abs);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
  }

  profile(abs: string): Promise<ProfileLoadResult> {
    let p = this.#profiles.get(abs);
    if (!p) {
      p = loadProfileFile(abs, this.display(abs));
      this.#profiles.set(abs, p);
    }
    return p;
  }

  promptFile(abs: string): Promise<PromptFileLoad> {
    let p = this.#prompts.get(abs);
    if (!p) {
      p = loadPromptFile(abs, this.display(abs));
      this.#prompts.set(abs, p);
    }
    return p;
  }

  /** {@link pathKind}, memoized for this load (200 workflows uploading the same directory stat it once). */
  pathKind(abs: string): Promise<PathKind> {
    let k = this.#kinds.get(abs);
    if (!k) {
      k = pathKind(abs);
      this.#kinds.set(abs, k);
    }
    return k;
  }

  /** Diagnostics of a referenced file, the first time only. */
  firstTime(abs: string, diagnostics: readonly Diagnostic[]): Diagnostic[] {
    if (this.#reported.has(abs)) return [];
    this.#reported.add(abs);
    return [...diagnostics];
  }
}

export type PathKind = 'file' | 'dir' | 'other' | undefined;

/** What kind of file system entry a path is, or `undefined` when it does not exist. */
export async function pathKind(abs: string): Promise<PathKind> {
  try {
    const s = await stat(abs);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return undefined;
  }
}

/** An origin that shifts offsets by `delta` before asking `inner` (for a template cut out of a longer value). */
export function shiftedOrigin(inner: TemplateOrigin, delta: number): TemplateOrigin {
  return { file: inner.file, locate: (offset) => inner.locate(offset + delta) };
}

/** Reports problems of one YAML file at positions derived from JSON paths. */
export class FileScope {
  readonly parsed: ParsedYaml;
  readonly diagnostics: Diagnostic[] = [];

  constructor(parsed: ParsedYaml) {
    this.parsed = parsed;
  }

  get file(): string {
    return this.parsed.file;
  }

  position(path: DocPath, at: 'key' | 'value' = 'value'): Position {
    return positionOf(this.parsed.lineCounter, offsetAt(this.parsed.doc, path, at));
  }

  ref(path: DocPath): SourceRef {
    const p = this.position(path);
    return { file: this.file, line: p.line, col: p.col };
  }

  report(severity: Severity, path: DocPath, message: string, at: 'key' | 'value' = 'value'): void {
    this.diagnostics.push({
      severity,
      path: formatPath(path),
      message,
      location: { file: this.file, start: this.position(path, at) },
    });
  }

  error(path: DocPath, message: string, at: 'key' | 'value' = 'value'): void {
    this.report('error', path, message, at);
  }

  warn(path: DocPath, message: string, at: 'key' | 'value' = 'value'): void {
    this.report('warning', path, message, at);
  }

  get hasErrors(): boolean {
    return this.diagnostics.some((d) => d.severity === 'error');
  }

  /** Maps offsets in the string value at `path` to file positions. */
  origin(path: DocPath): TemplateOrigin {
    const { node } = nodeAt(this.parsed.doc, path);
    if (isScalar(node) && node.range)
      return scalarOrigin(this.file, this.parsed.text, this.parsed.lineCounter, node);
    const start = this.position(path);
    return { file: this.file, locate: () => start };
  }

  /** The value as written in the source (`3.10` stays `3.10`), for numbers and booleans taken as strings. */
  sourceText(path: DocPath, value: unknown): string {
    const { node } = nodeAt(this.parsed.doc, path);
    if (isScalar(node) && node.type === 'PLAIN' && typeof node.source === 'string' && node.source !== '') {
      return node.source;
    }
    return String(value);
  }

  /**
   * Parses `text` (the value at `path`, or a part of it starting at `delta`)
   * as a template and checks its context references against `shape`. Every
   * problem is reported at its exact position; returns `undefined` on a syntax
   * error.
   */
  template(path: DocPath, text: string, shape: Shape, delta = 0): Template | undefined {
    const base = this.origin(path);
    const origin = delta === 0 ? base : shiftedOrigin(base, delta);
    let t: Template;
    try {
      t = Template.parse(text, origin);
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      this.diagnostics.push({
        severity: 'error',
        path: formatPath(path),
        message: e.reason,
        location: { file: this.file, start: e.position ?? this.position(path) },
      });
      return undefined;
    }
    for (const p of checkTemplate(t, shape)) {
      this.diagnostics.push({
        severity: 'error',
        path: formatPath(path),
        message: p.message,
        location: { file: this.file, start: origin.locate(p.offset) },
      });
    }
    return t;
  }
}
