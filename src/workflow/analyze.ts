/**
 * Semantic analysis: from schema-checked YAML data to the normalized
 * `Workflow` the engine runs, reporting everything a JSON Schema cannot see —
 * `${{ }}` contexts and step references, missing upload sources, dataset
 * files, prompt files and their variables, profiles, `image` + `snapshot`,
 * matrix excludes, artifact destinations. Runs even when the schema found
 * errors (it skips what is ill-typed), so one pass reports everything.
 */
import { dirname, posix, resolve } from 'node:path';
import type { ContextName } from '../expr/ast.js';
import type { Shape } from '../expr/check.js';
import type { ExprValue } from '../expr/evaluate.js';
import { Template } from '../expr/template.js';
import {
  BUILTIN_PROFILES,
  BUILTIN_PROFILE_NAMES,
  DEFAULT_PROFILE,
  isBuiltinProfileName,
} from '../profiles/builtin.js';
import { didYouMeanSuffix } from '../util/did-you-mean.js';
import { analyzeSteps, type StepsInput } from './analyze-steps.js';
import {
  rootShape,
  SANDBOX_CONTEXTS,
  SANDBOX_ENV_CONTEXTS,
  WORKFLOW_SYSTEM_CONTEXTS,
  type ContextInfo,
} from './contexts.js';
import { loadDataset } from './dataset.js';
import type { Diagnostic } from './diagnostic.js';
import { parseDuration } from './duration.js';
import { FileScope, LoadContext } from './file-context.js';
import { isRec, num, str, strings, type Rec } from './guards.js';
import type { ParsedYaml } from './parse.js';
import type {
  MatrixSpec,
  ModelSettings,
  Profile,
  RetryOn,
  Strategy,
  UploadSpec,
  Workflow,
  WorkflowSandbox,
} from './types.js';
import type { DocPath } from './yaml-locate.js';

const MINUTE = 60_000;
const DEFAULT_TIMEOUT_MS = 60 * MINUTE;
const DEFAULT_AUTO_STOP_MS = 30 * MINUTE;
const DEFAULT_AUTO_DELETE_MS = 60 * MINUTE;
const DEFAULT_WORKING_DIR = '/work';

export interface AnalyzeInput {
  parsed: ParsedYaml;
  absPath: string;
  context: LoadContext;
  /** `--vars-file` then `--var` values, applied over `vars:`. */
  overrides: Readonly<Record<string, ExprValue>>;
}

export interface AnalyzeResult {
  /** Present unless the file or a file it references has errors. */
  workflow?: Omit<Workflow, 'hash'>;
  /** Problems of the workflow file itself. */
  diagnostics: Diagnostic[];
  /** Problems of referenced files (profile, prompt, dataset), each file reported once per load. */
  referencedDiagnostics: Diagnostic[];
  /** Bytes of referenced files in a fixed order (dataset, profiles, prompt files), for the hash. */
  referencedBytes: Buffer[];
}

function looksLikePath(s: string): boolean {
  return s.includes('/') || s.startsWith('.') || /\.ya?ml$/i.test(s);
}

class Analyzer {
  readonly scope: FileScope;
  readonly input: AnalyzeInput;
  readonly dir: string;
  readonly referenced: StepsInput['referenced'] = { diagnostics: [], broken: false, bytes: [] };
  info: ContextInfo = { vars: [], matrix: undefined, item: undefined, env: [], secrets: [] };

  constructor(input: AnalyzeInput) {
    this.input = input;
    this.scope = new FileScope(input.parsed);
    this.dir = dirname(input.absPath);
  }

  get context(): LoadContext {
    return this.input.context;
  }

  readonly #shapes = new Map<string, Shape>();

  /** The root shape of a non-step field (built once per analysis; `info` is final by then). */
  shape(allowed: readonly ContextName[], where: string): Shape {
    let s = this.#shapes.get(where);
    if (!s) {
      s = rootShape(allowed, this.info, where);
      this.#shapes.set(where, s);
    }
    return s;
  }

  async profile(path: DocPath, value: unknown): Promise<Profile | undefined> {
    const name = str(value);
    if (name === undefined || name === '') return undefined;
    if (isBuiltinProfileName(name)) return BUILTIN_PROFILES[name];
    if (!looksLikePath(name)) {
      this.scope.error(
        path,
        `unknown profile '${name}'${didYouMeanSuffix(name, BUILTIN_PROFILE_NAMES)}: use ${BUILTIN_PROFILE_NAMES.join(', ')} or the path of a profile file (e.g. ./profile.yaml)`,
      );
      return undefined;
    }
    const abs = resolve(this.dir, name);
    const loaded = await this.context.profile(abs);
    if (loaded.notFound) {
      this.scope.error(path, `profile file not found: ${this.context.display(abs)}`);
      return undefined;
    }
    this.referenced.diagnostics.push(...this.context.firstTime(abs, loaded.diagnostics));
    if (loaded.diagnostics.some((d) => d.severity === 'error')) this.referenced.broken = true;
    if (loaded.bytes) this.referenced.bytes.push({ order: `profile:${abs}`, bytes: loaded.bytes });
    return loaded.profile;
  }

  model(path: DocPath, value: unknown): ModelSettings | undefined {
    const shape = this.shape(SANDBOX_CONTEXTS, 'a model name');
    if (typeof value === 'string') {
      const name = this.scope.template(path, value, shape);
      return name ? { name } : {};
    }
    if (!isRec(value)) return undefined;
    const out: ModelSettings = {};
    const name = str(value.name);
    if (name !== undefined) {
      const t = this.scope.template([...path, 'name'], name, shape);
      if (t) out.name = t;
    }
    const baseUrl = str(value['base-url']);
    if (baseUrl !== undefined) out.baseUrl = baseUrl;
    const temperature = num(value.temperature);
    if (temperature !== undefined) out.temperature = temperature;
    const maxOut = num(value['max-output-tokens']);
    if (maxOut !== undefined) out.maxOutputTokens = maxOut;
    const pricing = value.pricing;
    if (isRec(pricing)) {
      const input = num(pricing.input);
      const output = num(pricing.output);
      const cached = num(pricing['cached-input']);
      if (input !== undefined && output !== undefined) {
        out.pricing = { input, output, ...(cached !== undefined ? { cachedInput: cached } : {}) };
      }
    }
    return out;
  }

  /** An env map: values as templates, numbers and booleans taken as written. */
  env(path: DocPath, value: unknown, shape: Shape): Record<string, Template> {
    const out: Record<string, Template> = {};
    if (!isRec(value)) return out;
    for (const [k, v] of Object.entries(value)) {
      const vp = [...path, k];
      const text =
        typeof v === 'string'
          ? v
          : typeof v === 'number' || typeof v === 'boolean'
            ? this.scope.sourceText(vp, v)
            : undefined;
      if (text === undefined) continue;
      const t = this.scope.template(vp, text, shape);
      if (t) out[k] = t;
    }
    return out;
  }

  async strategy(d: Rec): Promise<Strategy> {
    const st = isRec(d.strategy) ? d.strategy : {};
    const out: Strategy = { repeat: 1 };
    const repeat = num(st.repeat);
    if (repeat !== undefined && Number.isInteger(repeat) && repeat >= 1) out.repeat = repeat;
    const maxParallel = num(st['max-parallel']);
    if (maxParallel !== undefined && Number.isInteger(maxParallel) && maxParallel >= 1)
      out.maxParallel = maxParallel;

    if (isRec(st.matrix)) {
      const m = st.matrix;
      const path: DocPath = ['strategy', 'matrix'];
      const axes: Array<readonly [string, readonly ExprValue[]]> = [];
      for (const [k, v] of Object.entries(m)) {
        if (k !== 'include' && k !== 'exclude' && Array.isArray(v)) axes.push([k, v as ExprValue[]]);
      }
      const entries = (v: unknown): Array<Record<string, ExprValue>> =>
        Array.isArray(v) ? v.filter((e): e is Record<string, ExprValue> => isRec(e)) : [];
      const include = entries(m.include);
      const exclude = entries(m.exclude);
      const axisNames = axes.map(([k]) => k);
      const definesAxes = Object.keys(m).some((k) => k !== 'include' && k !== 'exclude');
      if (!definesAxes && include.length === 0) {
        this.scope.error(path, 'the matrix has no axes: add one (e.g. task: [a, b]) or an include list');
      }
      if (Array.isArray(m.exclude)) {
        m.exclude.forEach((e: unknown, i) => {
          if (!isRec(e)) return;
          for (const k of Object.keys(e)) {
            if (!axisNames.includes(k) && definesAxes) {
              this.scope.error(
                [...path, 'exclude', i, k],
                `'${k}' is not a matrix axis${didYouMeanSuffix(k, axisNames)} (axes: ${axisNames.join(', ')})`,
                'key',
              );
            }
          }
        });
      }
      const spec: MatrixSpec = { axes, include, exclude, loc: this.scope.ref(path) };
      out.matrix = spec;
      this.info = {
        ...this.info,
        matrix: [...new Set([...axisNames, ...include.flatMap((e) => Object.keys(e))])],
      };
    }

    const ds = str(st.dataset);
    if (ds !== undefined) {
      const path: DocPath = ['strategy', 'dataset'];
      const abs = resolve(this.dir, ds);
      const shown = this.context.display(abs);
      const loaded = await loadDataset(abs, shown);
      const readable = !loaded.notFound && !loaded.diagnostics.some((x) => x.severity === 'error');
      this.info = { ...this.info, item: readable ? loaded.keys : 'unknown' };
      if (loaded.notFound) this.scope.error(path, `dataset not found: ${shown}`);
      else if ((await this.context.pathKind(abs)) === 'dir')
        this.scope.error(path, `the dataset must be a JSONL file, not a directory: ${shown}`);
      else {
        this.referenced.diagnostics.push(...this.context.firstTime(abs, loaded.diagnostics));
        if (loaded.diagnostics.some((x) => x.severity === 'error')) this.referenced.broken = true;
        else if (loaded.items.length === 0) this.scope.error(path, `the dataset has no items: ${shown}`);
        if (loaded.bytes) this.referenced.bytes.push({ order: 'dataset', bytes: loaded.bytes });
        out.dataset = { file: abs, items: loaded.items, lines: loaded.lines, loc: this.scope.ref(path) };
      }
    }
    return out;
  }

  sandbox(d: Rec): WorkflowSandbox {
    const sb = isRec(d.sandbox) ? d.sandbox : {};
    const shape = this.shape(SANDBOX_CONTEXTS, 'sandbox settings');
    const image =
      str(sb.image) === undefined
        ? undefined
        : this.scope.template(['sandbox', 'image'], str(sb.image) ?? '', shape);
    const snapshot =
      str(sb.snapshot) === undefined
        ? undefined
        : this.scope.template(['sandbox', 'snapshot'], str(sb.snapshot) ?? '', shape);
    if (sb.image !== undefined && sb.snapshot !== undefined) {
      this.scope.error(['sandbox', 'snapshot'], "set either 'image' or 'snapshot', not both", 'key');
    }
    let workingDir = DEFAULT_WORKING_DIR;
    const wd = str(sb['working-dir']);
    if (wd !== undefined && wd.includes('${{')) {
      this.scope.error(['sandbox', 'working-dir'], "working-dir cannot use '${{ }}'");
    } else if (wd !== undefined && wd.startsWith('/')) workingDir = posix.normalize(wd);
    const resources: NonNullable<WorkflowSandbox['resources']> = {};
    if (isRec(sb.resources)) {
      for (const k of ['cpu', 'memory', 'disk', 'gpu'] as const) {
        const v = num(sb.resources[k]);
        if (v !== undefined) resources[k] = v;
      }
    }
    const env = this.env(['sandbox', 'env'], sb.env, this.shape(SANDBOX_ENV_CONTEXTS, 'sandbox.env'));
    const autoStop = typeof sb['auto-stop'] === 'string' ? parseDuration(sb['auto-stop']) : undefined;
    const autoDelete = typeof sb['auto-delete'] === 'string' ? parseDuration(sb['auto-delete']) : undefined;
    return {
      backend: sb.backend === 'daytona' ? 'daytona' : 'local',
      ...(image ? { image } : {}),
      ...(snapshot ? { snapshot } : {}),
      ...(Object.keys(resources).length > 0 ? { resources } : {}),
      workingDir,
      network: sb.network === 'on' || sb.network === true ? 'on' : 'off',
      env,
      autoStopMs: autoStop ?? DEFAULT_AUTO_STOP_MS,
      autoDeleteMs: autoDelete ?? DEFAULT_AUTO_DELETE_MS,
    };
  }

  /** A local upload source: literal ones are resolved and must exist now; templated ones are checked per job. */
  async uploadFrom(path: DocPath, text: string, delta: number): Promise<Template | undefined> {
    const t = this.scope.template(path, text, this.shape(SANDBOX_CONTEXTS, 'uploads'), delta);
    if (!t) return undefined;
    if (!t.isLiteral) return t;
    const literal = t.evaluate({ contexts: {} });
    if (literal.trim() === '') {
      this.scope.error(path, 'the upload source is empty');
      return undefined;
    }
    const abs = resolve(this.dir, literal);
    if ((await this.context.pathKind(abs)) === undefined) {
      this.scope.error(path, `upload source not found: ${this.context.display(abs)}`);
      return undefined;
    }
    return Template.literal(abs);
  }

  async uploads(d: Rec): Promise<UploadSpec[]> {
    const out: UploadSpec[] = [];
    if (!Array.isArray(d.uploads)) return out;
    const shape = this.shape(SANDBOX_CONTEXTS, 'uploads');
    for (let i = 0; i < d.uploads.length; i++) {
      const u: unknown = d.uploads[i];
      const path: DocPath = ['uploads', i];
      let from: Template | undefined;
      let to: Template | undefined;
      let exclude: string[] = [];
      if (typeof u === 'string') {
        // Split at the last ':' followed by '/': the target is absolute in the short form.
        const k = u.lastIndexOf(':/');
        if (k < 0) continue;
        if (k === 0) {
          this.scope.error(path, 'the upload source is empty: write "FROM:/absolute/TO"');
          continue;
        }
        from = await this.uploadFrom(path, u.slice(0, k), 0);
        to = this.scope.template(path, u.slice(k + 1), shape, k + 1);
      } else if (isRec(u)) {
        const f = str(u.from);
        const t = str(u.to);
        if (f !== undefined) from = await this.uploadFrom([...path, 'from'], f, 0);
        if (t !== undefined) to = this.scope.template([...path, 'to'], t, shape);
        exclude = strings(u.exclude) ?? [];
      }
      if (from && to) out.push({ from, to, exclude, loc: this.scope.ref(path) });
    }
    return out;
  }

  secrets(d: Rec): Record<string, { fromEnv: string }> {
    const out: Record<string, { fromEnv: string }> = {};
    if (Array.isArray(d.secrets)) {
      for (const n of d.secrets) if (typeof n === 'string') out[n] = { fromEnv: n };
    } else if (isRec(d.secrets)) {
      for (const [k, v] of Object.entries(d.secrets)) {
        const from = isRec(v) ? str(v['from-env']) : undefined;
        if (from !== undefined) out[k] = { fromEnv: from };
      }
    }
    return out;
  }

  retry(d: Rec): Workflow['retry'] {
    if (!isRec(d.retry)) return undefined;
    const limit = num(d.retry.limit);
    if (limit === undefined) return undefined;
    const on = (strings(d.retry.on) ?? ['error']).filter(
      (s): s is RetryOn => s === 'error' || s === 'timed-out' || s === 'failed',
    );
    return { limit, on };
  }

  async run(): Promise<AnalyzeResult> {
    const { parsed, absPath, overrides } = this.input;
    const d = isRec(parsed.data) ? parsed.data : {};

    const declared = isRec(d.vars) ? (d.vars as Record<string, ExprValue>) : {};
    const vars: Record<string, ExprValue> = { ...declared, ...overrides };
    const secrets = this.secrets(d);
    const envKeys = isRec(d.sandbox) && isRec(d.sandbox.env) ? Object.keys(d.sandbox.env) : [];
    this.info = { ...this.info, vars: Object.keys(vars), secrets: Object.keys(secrets), env: envKeys };

    const strategy = await this.strategy(d);
    const sandbox = this.sandbox(d);
    const timeoutMs =
      (typeof d.timeout === 'string' ? parseDuration(d.timeout) : undefined) ?? DEFAULT_TIMEOUT_MS;
    const profile = (await this.profile(['profile'], d.profile)) ?? BUILTIN_PROFILES[DEFAULT_PROFILE];
    const model = (d.model === undefined ? undefined : this.model(['model'], d.model)) ?? {};
    const sys = str(d.system);
    const system =
      sys === undefined
        ? undefined
        : this.scope.template(
            ['system'],
            sys,
            this.shape(WORKFLOW_SYSTEM_CONTEXTS, 'the workflow system prompt'),
          );
    const uploads = await this.uploads(d);
    const stepsOut = await analyzeSteps(
      {
        scope: this.scope,
        context: this.context,
        absPath,
        info: this.info,
        workingDir: sandbox.workingDir,
        jobTimeoutMs: timeoutMs,
        model: (p, v) => this.model(p, v),
        profile: (p, v) => this.profile(p, v),
        referenced: this.referenced,
        workflowProfile: profile,
      },
      d,
    );
    const maxTokens = num(d['max-tokens']);
    const retry = this.retry(d);

    // Fixed hash order: dataset, then profiles and prompt files in the order first referenced.
    const ordered = [
      ...this.referenced.bytes.filter((b) => b.order === 'dataset'),
      ...this.referenced.bytes.filter((b) => b.order !== 'dataset'),
    ];
    const seen = new Set<string>();
    const referencedBytes = ordered
      .filter((b) => !seen.has(b.order) && seen.add(b.order))
      .map((b) => b.bytes);

    const result: AnalyzeResult = {
      diagnostics: this.scope.diagnostics,
      referencedDiagnostics: this.referenced.diagnostics,
      referencedBytes,
    };
    if (this.scope.hasErrors || this.referenced.broken) return result;
    result.workflow = {
      file: parsed.file,
      absPath,
      name: str(d.name) ?? '',
      ...(str(d.description) !== undefined ? { description: str(d.description) } : {}),
      sandbox,
      timeoutMs,
      profile,
      model,
      ...(system ? { system } : {}),
      ...(maxTokens !== undefined ? { maxTokens } : {}),
      uploads,
      vars,
      secrets,
      strategy,
      steps: stepsOut.steps,
      finally: stepsOut.finally,
      artifacts: stepsOut.artifacts,
      ...(retry ? { retry } : {}),
      loc: this.scope.ref([]),
    };
    return result;
  }
}

/**
 * Analyzes one parsed workflow file. Never throws for bad input. The caller
 * adds `hash` (it owns the file's bytes) and decides validity together with
 * the schema diagnostics.
 */
export function analyzeWorkflow(input: AnalyzeInput): Promise<AnalyzeResult> {
  return new Analyzer(input).run();
}
