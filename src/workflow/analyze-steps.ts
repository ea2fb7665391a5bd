/**
 * Semantic analysis of `steps`, `finally` and `artifacts`: step ids (defaults,
 * duplicates), which steps each expression may reference, prompt files and
 * their variables, per-step profiles and models, and the `if` condition
 * (always stored as one expression, as GitHub Actions reads a bare `if:`).
 * @internal
 */
import { dirname, posix, resolve } from 'node:path';
import { Template } from '../expr/template.js';
import { didYouMeanSuffix } from '../util/did-you-mean.js';
import type { Diagnostic } from './diagnostic.js';
import { formatDuration, parseDuration } from './duration.js';
import { FileScope, LoadContext, shiftedOrigin } from './file-context.js';
import { isRec, num, str, strings, type Rec } from './guards.js';
import { rootShape, STEP_CONTEXTS, type ContextInfo, type StepScope } from './contexts.js';
import {
  TOOL_NAMES,
  type ArtifactSpec,
  type ModelSettings,
  type Profile,
  type PromptFile,
  type PromptStep,
  type Step,
  type ToolName,
} from './types.js';
import { formatPath, type DocPath } from './yaml-locate.js';

/** Keys that only make sense on a prompt step. */
const PROMPT_ONLY = ['max-turns', 'tools', 'model', 'profile', 'system', 'cassette'] as const;
const DEFAULT_MAX_TURNS = 40;
const NAME_MAX = 60;

/** What the step analyzer needs from the workflow-level analysis. */
export interface StepsInput {
  scope: FileScope;
  context: LoadContext;
  absPath: string;
  info: ContextInfo;
  /** Sandbox working dir, to resolve relative step working dirs. */
  workingDir: string;
  jobTimeoutMs: number;
  /** Model settings of a `model:` value (shared with the workflow level). */
  model: (path: DocPath, value: unknown) => ModelSettings | undefined;
  /** Resolves a `profile:` value (shared with the workflow level). */
  profile: (path: DocPath, value: unknown) => Promise<Profile | undefined>;
  /** Diagnostics of referenced files and whether any of them is broken. */
  referenced: { diagnostics: Diagnostic[]; broken: boolean; bytes: Array<{ order: string; bytes: Buffer }> };
  /** The workflow-level profile, for tool warnings. */
  workflowProfile: Profile;
}

export interface StepsOutput {
  steps: Step[];
  finally: Step[];
  artifacts: ArtifactSpec[];
}

function firstLine(text: string): string {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  const s = line ?? '';
  return s.length > NAME_MAX ? `${s.slice(0, NAME_MAX - 1)}…` : s;
}

/** Step ids of both lists, with defaults; duplicates reported. */
function collectIds(
  input: StepsInput,
  lists: ReadonlyArray<readonly [string, unknown[]]>,
): Map<string, string[]> {
  const { scope } = input;
  const seen = new Map<string, { path: DocPath; explicit: boolean }>();
  const out = new Map<string, string[]>();
  for (const [list, items] of lists) {
    const ids: string[] = [];
    items.forEach((raw, i) => {
      const explicit = isRec(raw) ? str(raw.id) : undefined;
      const id = explicit ?? `${list === 'steps' ? 'step' : 'finally'}-${i + 1}`;
      ids.push(id);
      const path: DocPath = explicit !== undefined ? [list, i, 'id'] : [list, i];
      const first = seen.get(id);
      if (first) {
        const line = scope.position(first.path).line;
        const what = first.explicit ? 'used by' : 'the default id of';
        const target = first.explicit ? first.path.slice(0, -1) : first.path;
        scope.error(path, `duplicate step id '${id}' (also ${what} ${formatPath(target)} at line ${line})`);
      } else seen.set(id, { path, explicit: explicit !== undefined });
    });
    out.set(list, ids);
  }
  return out;
}

/** Parses an `if:` value as one expression: `failure()` and `${{ failure() }}` mean the same. */
function condition(
  input: StepsInput,
  path: DocPath,
  value: unknown,
  shape: ReturnType<typeof rootShape>,
): Template | undefined {
  const { scope } = input;
  if (typeof value === 'boolean') return Template.parse(`\${{ ${String(value)} }}`);
  const text = str(value);
  if (text === undefined) return undefined;
  if (!text.includes('${{')) {
    if (text.trim() === '') {
      scope.error(path, 'the condition is empty');
      return undefined;
    }
    // `${{ ` is 4 characters: shift offsets back so positions land in the source text.
    return scope.template(path, `\${{ ${text} }}`, shape, -4);
  }
  const t = scope.template(path, text, shape);
  if (!t || t.isSingleExpression) return t;
  // Surrounding whitespace (quoted or block scalars) does not make it text.
  const lead = text.length - text.trimStart().length;
  const trimmed = Template.parse(text.trim(), shiftedOrigin(t.origin ?? scope.origin(path), lead));
  if (trimmed.isSingleExpression) return trimmed;
  scope.error(
    path,
    "a condition is one expression: write it without '${{ }}' (e.g. if: steps.x.outcome == 'failure') or wrap all of it in one '${{ }}'",
  );
  return undefined;
}

function warnSecretsInPrompt(scope: FileScope, path: DocPath, t: Template | undefined): void {
  if (!t) return;
  for (const ref of t.references()) {
    if (ref.path[0] === 'secrets') {
      scope.warn(
        path,
        `the prompt uses secrets.${ref.path[1] ?? ''}: its value is sent to the model provider (it is masked in rho-flow's own output only)`,
      );
      return;
    }
  }
}

function warnTools(scope: FileScope, path: DocPath, tools: readonly ToolName[], profile: Profile): void {
  tools.forEach((tool, i) => {
    let why: string | undefined;
    if (profile.bashOnly && tool !== 'bash') why = 'it offers only bash (bash_only)';
    else if ((tool === 'write' || tool === 'edit') && profile.fileWrite === 'off')
      why = 'its file_write is off';
    else if (tool === 'run_code' && profile.shell === 'restricted') why = 'its shell is restricted';
    if (why) scope.warn([...path, i], `'${tool}' is not available under profile '${profile.name}': ${why}`);
  });
}

async function promptStep(
  input: StepsInput,
  path: DocPath,
  raw: Rec,
  shape: ReturnType<typeof rootShape>,
): Promise<{ prompt?: Template; promptFile?: PromptFile; promptVars: Record<string, Template> }> {
  const { scope, context } = input;
  const dir = dirname(input.absPath);
  const out: { prompt?: Template; promptFile?: PromptFile; promptVars: Record<string, Template> } = {
    promptVars: {},
  };
  const p = raw.prompt;
  if (typeof p === 'string') {
    out.prompt = scope.template([...path, 'prompt'], p, shape);
    warnSecretsInPrompt(scope, [...path, 'prompt'], out.prompt);
  } else if (isRec(p)) {
    const vars = isRec(p.vars) ? p.vars : {};
    for (const [name, v] of Object.entries(vars)) {
      const vp = [...path, 'prompt', 'vars', name];
      const text =
        typeof v === 'string'
          ? v
          : typeof v === 'number' || typeof v === 'boolean'
            ? scope.sourceText(vp, v)
            : undefined;
      if (text === undefined) continue;
      const t = scope.template(vp, text, shape);
      if (t) out.promptVars[name] = t;
      warnSecretsInPrompt(scope, vp, t);
    }
    const file = str(p.file);
    if (file !== undefined) {
      const filePath = [...path, 'prompt', 'file'];
      const abs = resolve(dir, file);
      const shown = context.display(abs);
      const loaded = await context.promptFile(abs);
      if (loaded.notFound) scope.error(filePath, `prompt file not found: ${shown}`);
      input.referenced.diagnostics.push(...context.firstTime(abs, loaded.diagnostics));
      if (loaded.diagnostics.some((d) => d.severity === 'error')) input.referenced.broken = true;
      if (loaded.bytes) input.referenced.bytes.push({ order: `prompt:${abs}`, bytes: loaded.bytes });
      const pf = loaded.promptFile;
      if (pf) {
        out.promptFile = pf;
        const declared = Object.keys(pf.variables);
        for (const [name, decl] of Object.entries(pf.variables)) {
          if (decl.required && decl.default === undefined && !(name in vars)) {
            const at = loaded.variablePositions[name];
            scope.error(
              isRec(p.vars) ? [...path, 'prompt', 'vars'] : filePath,
              `${shown} requires variable '${name}'${at ? ` (declared at line ${at.line})` : ''}: give it under prompt.vars`,
              isRec(p.vars) ? 'key' : 'value',
            );
          }
        }
        for (const name of Object.keys(vars)) {
          if (!declared.includes(name)) {
            scope.warn(
              [...path, 'prompt', 'vars', name],
              `'${name}' is not a variable of ${shown}${didYouMeanSuffix(name, declared)}${declared.length > 0 ? ` (variables: ${declared.join(', ')})` : ''}`,
              'key',
            );
          }
        }
        if (pf.initialPrompt === undefined) {
          scope.error(
            filePath,
            `${shown} has no initial_prompt (the first user message): add initial_prompt to its frontmatter, or write the prompt inline (prompt: "...")`,
          );
        }
      }
    }
  }
  return out;
}

/** Analyzes one step; `undefined` when it is not even a run or prompt step (the schema said why). */
async function analyzeStep(
  input: StepsInput,
  list: 'steps' | 'finally',
  i: number,
  raw: unknown,
  id: string,
  stepScope: StepScope,
): Promise<Step | undefined> {
  const { scope, info } = input;
  const path: DocPath = [list, i];
  if (!isRec(raw)) return undefined;
  const isRun = 'run' in raw;
  const isPrompt = 'prompt' in raw;
  if (isRun === isPrompt) return undefined;
  const shape = rootShape(STEP_CONTEXTS, info, 'a step', stepScope);

  const env: Record<string, Template> = {};
  if (isRec(raw.env)) {
    for (const [k, v] of Object.entries(raw.env)) {
      const vp = [...path, 'env', k];
      const text =
        typeof v === 'string'
          ? v
          : typeof v === 'number' || typeof v === 'boolean'
            ? scope.sourceText(vp, v)
            : undefined;
      if (text === undefined) continue;
      const t = scope.template(vp, text, shape);
      if (t) env[k] = t;
    }
  }
  const timeoutMs = typeof raw.timeout === 'string' ? parseDuration(raw.timeout) : undefined;
  if (timeoutMs !== undefined && timeoutMs > input.jobTimeoutMs) {
    scope.warn(
      [...path, 'timeout'],
      `the step timeout (${formatDuration(timeoutMs)}) is longer than the job timeout (${formatDuration(input.jobTimeoutMs)}); the job timeout wins`,
    );
  }
  let workingDir: string | undefined;
  const wd = str(raw['working-dir']);
  if (wd !== undefined) {
    if (wd.includes('${{'))
      scope.error(
        [...path, 'working-dir'],
        "working-dir cannot use '${{ }}'; use an absolute path or one relative to sandbox.working-dir",
      );
    else workingDir = posix.isAbsolute(wd) ? posix.normalize(wd) : posix.join(input.workingDir, wd);
  }
  const cond = raw.if === undefined ? undefined : condition(input, [...path, 'if'], raw.if, shape);
  const explicit = str(raw.id);
  const base = {
    id,
    idExplicit: explicit !== undefined,
    continueOnError: raw['continue-on-error'] === true,
    env,
    loc: scope.ref(path),
    ...(cond ? { if: cond } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(workingDir !== undefined ? { workingDir } : {}),
  };

  if (isRun) {
    for (const key of PROMPT_ONLY) {
      if (key in raw)
        scope.error([...path, key], `'${key}' only applies to prompt steps (this is a run step)`, 'key');
    }
    const text = str(raw.run) ?? '';
    const run = scope.template([...path, 'run'], text, shape) ?? Template.literal(text);
    return { kind: 'run', ...base, name: str(raw.name) ?? explicit ?? firstLine(text), run };
  }

  const prompt = await promptStep(input, path, raw, shape);
  const system =
    str(raw.system) === undefined
      ? undefined
      : scope.template([...path, 'system'], str(raw.system) ?? '', shape);
  warnSecretsInPrompt(scope, [...path, 'system'], system);
  const tools = strings(raw.tools)?.filter((t): t is ToolName =>
    (TOOL_NAMES as readonly string[]).includes(t),
  );
  const model = raw.model === undefined ? undefined : input.model([...path, 'model'], raw.model);
  const profile =
    raw.profile === undefined ? undefined : await input.profile([...path, 'profile'], raw.profile);
  if (tools) warnTools(scope, [...path, 'tools'], tools, profile ?? input.workflowProfile);
  let cassette: string | undefined;
  const c = str(raw.cassette);
  if (c !== undefined) {
    cassette = resolve(dirname(input.absPath), c);
    if ((await input.context.pathKind(cassette)) === undefined) {
      scope.warn(
        [...path, 'cassette'],
        `cassette not found: ${input.context.display(cassette)} (the step calls the model unless --replay answers it)`,
      );
    }
  }
  const promptText = typeof raw.prompt === 'string' ? raw.prompt : '';
  const defaultName =
    promptText !== ''
      ? firstLine(promptText)
      : prompt.promptFile
        ? posix.basename(prompt.promptFile.path)
        : '';
  const step: PromptStep = {
    kind: 'prompt',
    ...base,
    name: str(raw.name) ?? explicit ?? defaultName,
    ...(prompt.prompt ? { prompt: prompt.prompt } : {}),
    ...(prompt.promptFile ? { promptFile: prompt.promptFile } : {}),
    promptVars: prompt.promptVars,
    ...(system ? { system } : {}),
    maxTurns: num(raw['max-turns']) ?? DEFAULT_MAX_TURNS,
    ...(tools ? { tools } : {}),
    ...(model ? { model } : {}),
    ...(profile ? { profile } : {}),
    ...(cassette !== undefined ? { cassette } : {}),
  };
  return step;
}

function analyzeArtifacts(input: StepsInput, raw: unknown, scope: StepScope): ArtifactSpec[] {
  const out: ArtifactSpec[] = [];
  if (!Array.isArray(raw)) return out;
  const shape = rootShape(STEP_CONTEXTS, input.info, 'artifacts', scope);
  raw.forEach((a: unknown, i) => {
    if (!isRec(a)) return;
    const path: DocPath = ['artifacts', i];
    const p = str(a.path);
    const t = p === undefined ? undefined : input.scope.template([...path, 'path'], p, shape);
    let to = str(a.to) ?? '';
    const segments = to.split(/[\\/]/);
    if (posix.isAbsolute(to) || /^[A-Za-z]:/.test(to) || to.startsWith('\\') || segments.includes('..')) {
      input.scope.error(
        [...path, 'to'],
        "must be a relative path inside the job's artifacts folder: no leading '/', no '..'",
      );
      return;
    }
    to = to.replace(/^(\.\/)+/, '');
    const when = str(a.when);
    const ifNone = str(a['if-no-files-found']);
    if (!t) return;
    out.push({
      path: t,
      to,
      when: when === 'on-success' || when === 'on-failure' ? when : 'always',
      ifNoFilesFound: ifNone === 'error' || ifNone === 'ignore' ? ifNone : 'warn',
      loc: input.scope.ref(path),
    });
  });
  return out;
}

/** Analyzes `steps`, `finally` and `artifacts` of the workflow data `d`. */
export async function analyzeSteps(input: StepsInput, d: Rec): Promise<StepsOutput> {
  const main = Array.isArray(d.steps) ? (d.steps as unknown[]) : [];
  const fin = Array.isArray(d.finally) ? (d.finally as unknown[]) : [];
  const ids = collectIds(input, [
    ['steps', main],
    ['finally', fin],
  ]);
  const mainIds = ids.get('steps') ?? [];
  const finIds = ids.get('finally') ?? [];

  const steps: Step[] = [];
  for (let i = 0; i < main.length; i++) {
    const scope: StepScope = {
      visible: mainIds.slice(0, i),
      later: [...mainIds.slice(i), ...finIds],
      laterMessage: (id) =>
        id === mainIds[i]
          ? `a step cannot use its own output ('${id}')`
          : finIds.includes(id)
            ? `step '${id}' is a finally step; it runs after this one`
            : `step '${id}' runs after this one`,
    };
    const s = await analyzeStep(input, 'steps', i, main[i], mainIds[i] ?? `step-${i + 1}`, scope);
    if (s) steps.push(s);
  }
  const finallySteps: Step[] = [];
  for (let j = 0; j < fin.length; j++) {
    const scope: StepScope = {
      visible: [...mainIds, ...finIds.slice(0, j)],
      later: finIds.slice(j),
      laterMessage: (id) =>
        id === finIds[j] ? `a step cannot use its own output ('${id}')` : `step '${id}' runs after this one`,
    };
    const s = await analyzeStep(input, 'finally', j, fin[j], finIds[j] ?? `finally-${j + 1}`, scope);
    if (s) finallySteps.push(s);
  }
  const artifacts = analyzeArtifacts(input, d.artifacts, { visible: [...mainIds, ...finIds], later: [] });
  return { steps, finally: finallySteps, artifacts };
}
