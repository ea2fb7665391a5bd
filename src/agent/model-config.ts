/**
 * Which model, endpoint and key a prompt step uses, the preflight that
 * reports missing credentials before any sandbox exists, and the
 * `ModelProvider` the engine asks for each step's `Model` (live, recording or
 * replaying).
 *
 * Precedence (documented for the README):
 * - model name: `--model` > the step's `model` > the workflow's `model` >
 *   `OPENAI_MODEL` > `gpt-5-mini`. `--model` overrides the files, as product.md
 *   §4 says; blank values count as unset.
 * - other settings (`base-url`, `temperature`, `max-output-tokens`,
 *   `pricing`): the step's value, else the workflow's, field by field.
 * - base URL: that `base-url` > `OPENAI_BASE_URL` > the SDK default
 *   (`https://api.openai.com/v1`).
 * - API key: `OPENAI_API_KEY`. A loopback base URL (localhost, 127.0.0.0/8,
 *   ::1 — a local Ollama or vLLM) may run without one: rho-flow then sends the
 *   placeholder {@link NO_KEY_PLACEHOLDER}. Any other endpoint without a key is
 *   a preflight error, unless the step is replayed (`--replay` or `cassette:`).
 * - a step's `cassette:` wins over `--replay` and `--record`: that step
 *   always replays from its cassette.
 */
import { statSync } from 'node:fs';
import type { Model } from './model.js';
import { OpenAIModel, type ModelRetryEvent } from './openai-model.js';
import { RecordingModel } from './recording-model.js';
import { ReplayModel } from './replay-model.js';
import type { BackoffPolicy } from './retry.js';
import { UserError } from '../errors.js';
import type { ModelProvider, ResolvedStepModel } from '../engine/engine-options.js';
import type { Job, ModelSettings, PromptStep, Step, Workflow } from '../workflow/types.js';
import type { Redactor } from '../util/redact.js';
import { slugify } from '../workflow/slug.js';

/** Model used when nothing names one. */
export const DEFAULT_MODEL = 'gpt-5-mini';
/** The SDK's default endpoint (used in messages only; the SDK applies it itself). */
export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';
/** Bearer token sent to a keyless loopback server. */
export const NO_KEY_PLACEHOLDER = 'no-key';

/** The host environment (injectable for tests). */
export type Env = Readonly<Record<string, string | undefined>>;

function present(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === '' ? undefined : t;
}

/** `--model` > step > workflow > `OPENAI_MODEL` > {@link DEFAULT_MODEL}; blank values are skipped. */
export function resolveModelName(input: {
  override?: string | undefined;
  step?: string | undefined;
  workflow?: string | undefined;
  env?: Env | undefined;
}): string {
  return (
    present(input.override) ??
    present(input.step) ??
    present(input.workflow) ??
    present(input.env?.['OPENAI_MODEL']) ??
    DEFAULT_MODEL
  );
}

/** The step's settings over the workflow's, field by field (`name` is left as the templates are). */
export function mergeModelSettings(workflow: ModelSettings, step: ModelSettings | undefined): ModelSettings {
  if (!step) return workflow;
  const merged: ModelSettings = { ...workflow };
  for (const [k, v] of Object.entries(step) as Array<[keyof ModelSettings, unknown]>) {
    if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  }
  return merged;
}

/** `base-url` (step, then workflow) > `OPENAI_BASE_URL` > `undefined` (the SDK default). */
export function resolveBaseUrl(settings: ModelSettings, env: Env = process.env): string | undefined {
  return present(settings.baseUrl) ?? present(env['OPENAI_BASE_URL']);
}

/** True for a loopback endpoint (localhost, *.localhost, 127.0.0.0/8, ::1), which may run without a key. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return (
    host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
  );
}

/** Where a step's requests go and with which key. `apiKey` is undefined when one is needed but not set. */
export interface Endpoint {
  baseUrl: string | undefined;
  apiKey: string | undefined;
}

/** The endpoint for merged settings: key from `OPENAI_API_KEY`, or the placeholder for a loopback URL. */
export function resolveEndpoint(settings: ModelSettings, env: Env = process.env): Endpoint {
  const baseUrl = resolveBaseUrl(settings, env);
  const key = present(env['OPENAI_API_KEY']);
  return {
    baseUrl,
    apiKey: key ?? (baseUrl !== undefined && isLoopbackUrl(baseUrl) ? NO_KEY_PLACEHOLDER : undefined),
  };
}

/** `problem` when `url` is not an http(s) URL, else `undefined`. */
function urlProblem(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? undefined : `must be an http(s) URL`;
  } catch {
    return 'is not a valid URL';
  }
}

function isPrompt(step: Step): step is PromptStep {
  return step.kind === 'prompt';
}

function where(step: Step): string {
  return `${step.loc.file}:${step.loc.line}`;
}

export interface PreflightOptions {
  /** Every (workflow, step) that may run; run steps are ignored. Duplicates are fine. */
  steps: Iterable<{ workflow: Workflow; step: Step }>;
  env?: Env | undefined;
  /** `--replay <dir>` */
  replayDir?: string | undefined;
  /** `--record <dir>` */
  recordDir?: string | undefined;
}

/**
 * Checks, before any sandbox is created, that every prompt step can reach a
 * model: an API key where one is needed (not when replaying), valid base URLs,
 * existing cassettes and replay directory, a usable record directory. Returns
 * every problem found (empty when all is well); never throws for bad input.
 */
export function preflightModels(options: PreflightOptions): UserError[] {
  const env = options.env ?? process.env;
  const errors: UserError[] = [];
  const { replayDir, recordDir } = options;
  if (replayDir !== undefined && recordDir !== undefined) {
    errors.push(new UserError('--record and --replay cannot be used together'));
  }
  if (replayDir !== undefined && kindOf(replayDir) !== 'dir') {
    errors.push(new UserError(`--replay ${replayDir}: no such directory`));
  }
  if (recordDir !== undefined && kindOf(recordDir) === 'file') {
    errors.push(new UserError(`--record ${recordDir}: exists and is not a directory`));
  }
  const envUrl = present(env['OPENAI_BASE_URL']);
  const envUrlProblem = envUrl === undefined ? undefined : urlProblem(envUrl);
  if (envUrl !== undefined && envUrlProblem !== undefined) {
    errors.push(new UserError(`OPENAI_BASE_URL '${envUrl}' ${envUrlProblem}`));
  }

  const seen = new Set<string>();
  const needKey: PromptStep[] = [];
  for (const { workflow, step } of options.steps) {
    if (!isPrompt(step)) continue;
    const id = `${workflow.absPath}\0${step.id}`;
    if (seen.has(id)) continue;
    seen.add(id);
    if (step.cassette !== undefined) {
      if (kindOf(step.cassette) === undefined) {
        errors.push(
          new UserError(
            `cassette ${step.cassette} (prompt step '${step.id}' in ${where(step)}) does not exist`,
          ),
        );
      }
      continue;
    }
    const settings = mergeModelSettings(workflow.model, step.model);
    const ownUrl = present(settings.baseUrl);
    const problem = ownUrl === undefined ? undefined : urlProblem(ownUrl);
    if (ownUrl !== undefined && problem !== undefined) {
      errors.push(
        new UserError(`model base-url '${ownUrl}' (prompt step '${step.id}' in ${where(step)}) ${problem}`),
      );
      continue;
    }
    if (replayDir !== undefined) continue;
    if (resolveEndpoint(settings, env).apiKey === undefined) needKey.push(step);
  }
  const [first, ...rest] = needKey;
  if (first) {
    const more =
      rest.length === 0 ? '' : ` and ${rest.length} more prompt step${rest.length === 1 ? '' : 's'}`;
    errors.push(
      new UserError(
        `OPENAI_API_KEY is not set (needed by prompt step '${first.id}' in ${where(first)}${more}); ` +
          'set it, or use --replay <dir> to run from recorded responses',
      ),
    );
  }
  return errors;
}

function kindOf(p: string): 'file' | 'dir' | undefined {
  try {
    return statSync(p).isDirectory() ? 'dir' : 'file';
  } catch {
    return undefined;
  }
}

export interface DefaultModelProviderOptions {
  env?: Env | undefined;
  /** `--replay <dir>`: every step without its own cassette replays from here. */
  replayDir?: string | undefined;
  /** `--record <dir>`: every live step is recorded here. */
  recordDir?: string | undefined;
  /** Masks secrets in recorded cassettes. */
  redactor?: Redactor | undefined;
  /** Per-request timeout of live models (default 10 min). */
  requestTimeoutMs?: number | undefined;
  /** Backoff of live models (default 5 attempts). */
  retry?: Partial<BackoffPolicy> | undefined;
  /** Called before each retry of a live model call (for logs and transcripts). */
  onRetry?: ((event: ModelRetryEvent) => void) | undefined;
}

/**
 * The engine's `ModelProvider`: for each (job, prompt step) the `Model` to
 * talk to — a step cassette's replay, `--replay`'s, or a live `OpenAIModel`
 * (wrapped in a recorder under `--record`) — plus the resolved name and
 * settings. Models are shared: one live model per endpoint, one replay model
 * per cassette path. Cassette files are named after the job slugs the engine
 * passes in.
 */
export class DefaultModelProvider implements ModelProvider {
  readonly #options: DefaultModelProviderOptions;
  readonly #env: Env;
  readonly #slugs = new Map<string, string>();
  readonly #live = new Map<string, Model>();
  readonly #replays = new Map<string, Model>();
  readonly #slugOf = (jobId: string): string => this.#slugs.get(jobId) ?? slugify(jobId);

  constructor(options: DefaultModelProviderOptions = {}) {
    this.#options = options;
    this.#env = options.env ?? process.env;
  }

  /**
   * `modelName` is what the engine evaluated (`--model`, else the step's or
   * workflow's `name`); blank means "not named" and falls back to
   * `OPENAI_MODEL`, then {@link DEFAULT_MODEL}. Throws `UserError` when a live
   * step has no API key (preflight reports that earlier).
   */
  forStep(job: Job, step: PromptStep, modelName: string): ResolvedStepModel {
    this.#slugs.set(job.id, job.slug);
    const settings = mergeModelSettings(job.workflow.model, step.model);
    const resolved: ResolvedStepModel = {
      model: this.#modelFor(step, settings),
      name: resolveModelName({ step: modelName, env: this.#env }),
    };
    if (settings.temperature !== undefined) resolved.temperature = settings.temperature;
    if (settings.maxOutputTokens !== undefined) resolved.maxOutputTokens = settings.maxOutputTokens;
    if (settings.pricing !== undefined) resolved.pricing = settings.pricing;
    return resolved;
  }

  #modelFor(step: PromptStep, settings: ModelSettings): Model {
    const o = this.#options;
    if (step.cassette !== undefined) return this.#replay(step.cassette, { path: step.cassette });
    if (o.replayDir !== undefined) return this.#replay(o.replayDir, { dir: o.replayDir });
    const endpoint = resolveEndpoint(settings, this.#env);
    if (endpoint.apiKey === undefined) {
      throw new UserError(
        `OPENAI_API_KEY is not set (needed by prompt step '${step.id}' in ${where(step)}); ` +
          'set it, or use --replay <dir> to run from recorded responses',
      );
    }
    const key = `${endpoint.baseUrl ?? ''}\0${endpoint.apiKey}`;
    let model = this.#live.get(key);
    if (!model) {
      model = new OpenAIModel({
        apiKey: endpoint.apiKey,
        baseUrl: endpoint.baseUrl,
        timeoutMs: o.requestTimeoutMs,
        retry: o.retry,
        onRetry: o.onRetry,
      });
      if (o.recordDir !== undefined) {
        model = new RecordingModel({
          inner: model,
          dir: o.recordDir,
          redactor: o.redactor,
          slugOf: this.#slugOf,
        });
      }
      this.#live.set(key, model);
    }
    return model;
  }

  #replay(key: string, where: { path: string } | { dir: string }): Model {
    let model = this.#replays.get(key);
    if (!model) {
      model = new ReplayModel({ ...where, slugOf: this.#slugOf });
      this.#replays.set(key, model);
    }
    return model;
  }
}
