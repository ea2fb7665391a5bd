/**
 * The agent session library API — rho-agent's Python `Agent` / `Session`, in
 * TypeScript:
 *
 * ```ts
 * const agent = createAgent({ profile: 'developer', model: { name: 'gpt-5-mini' } });
 * await using session = await agent.openSession();   // owns one sandbox
 * const r1 = await session.run('Create hello.py that prints hi, and run it');
 * const r2 = await session.run('Now make it print bye');   // same conversation, same sandbox
 * await session.sandbox.download('/work/hello.py', './out');
 * // leaving the block deletes the sandbox and closes the backend
 * ```
 *
 * An `Agent` is a reusable, stateless definition; each `openSession()`
 * creates a fresh sandbox under a fresh run id. A session keeps the
 * conversation across `run()` calls (one at a time) and tracks usage.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { BackendName, ModelPricing, Profile, ToolName } from '../workflow/types.js';
import type { Sandbox, SandboxBackend, SandboxSpec } from '../sandbox/sandbox.js';
import type { RunEvent } from '../events.js';
import { loadBackend } from '../sandbox/registry.js';
import { BUILTIN_PROFILES, DEFAULT_PROFILE, isBuiltinProfileName } from '../profiles/builtin.js';
import { loadProfileFile } from '../profiles/load-profile.js';
import { UserError } from '../errors.js';
import { Redactor } from '../util/redact.js';
import { addUsage, ZERO_USAGE, type ChatMessage, type Model, type Usage } from './model.js';
import { OpenAIModel } from './openai-model.js';
import { defaultSystemPrompt } from './system-prompt.js';
import { runConversationStep, stepToolNames } from './prompt-step.js';
import { NULL_TRANSCRIPT, type TranscriptSink } from './transcript.js';

/** Default model name when neither the config nor `OPENAI_MODEL` names one. */
export const DEFAULT_MODEL_NAME = 'gpt-5-mini';
/** Default `maxTurns` of one `run()`. */
export const DEFAULT_SESSION_MAX_TURNS = 50;

/** An OpenAI-compatible endpoint. Unset fields come from `OPENAI_MODEL`, `OPENAI_BASE_URL`, `OPENAI_API_KEY`. */
export interface AgentModelConfig {
  name?: string;
  baseUrl?: string;
  apiKey?: string;
  temperature?: number;
  maxOutputTokens?: number;
  pricing?: ModelPricing;
}

export interface AgentConfig {
  /** Default: the built-in system prompt (working dir, tools, unattended). */
  systemPrompt?: string;
  /** A `Profile`, a built-in name (`readonly` — the default —, `developer`, `developer-bash-only`, `unrestricted`) or a profile YAML path. */
  profile?: Profile | string;
  /** A `Model` (then `modelName` names it) or an endpoint config. */
  model?: Model | AgentModelConfig;
  /** The model name sent with requests when `model` is a `Model` instance. */
  modelName?: string;
  /** Default `local`. */
  backend?: BackendName;
  /** Overrides of the sandbox spec (`workingDir` default `/work`, `network` default `off`, `env`, `image`, …). */
  sandbox?: Partial<SandboxSpec>;
  /** Narrow the tool set (the profile still decides). */
  tools?: readonly ToolName[];
  /** Per `run()`. Default {@link DEFAULT_SESSION_MAX_TURNS}. */
  maxTurns?: number;
  /** Receives the transcript events of every run (redacted with `secrets`). */
  transcript?: TranscriptSink;
  /** Values masked in the transcript and event summaries. */
  secrets?: readonly string[];
  onEvent?: (event: RunEvent) => void;
  /** `strict`: refuse to run unjailed when bwrap is missing. Default `auto`. */
  isolation?: 'auto' | 'strict';
  /** One-line backend warnings. Default: `process.emitWarning`. */
  warn?: (message: string) => void;
  /** Host environment for credentials and defaults. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** What one `session.run()` returns. */
export interface SessionRunResult {
  /** The agent's final answer. */
  text: string;
  /** Model calls made by this run. */
  turns: number;
  /** Tokens of this run. */
  usage: Usage;
  costUsd?: number;
}

export interface SessionRunOptions {
  signal?: AbortSignal;
  maxTurns?: number;
}

interface ResolvedModel {
  model: Model;
  name: string;
  temperature?: number | undefined;
  maxOutputTokens?: number | undefined;
  pricing?: ModelPricing | undefined;
}

/** A reusable agent definition. Open as many sessions as you like. */
export class Agent {
  readonly config: Readonly<AgentConfig>;

  constructor(config: AgentConfig = {}) {
    this.config = { ...config };
  }

  /**
   * Creates the session's sandbox (a fresh run id) and returns the session.
   * Throws `UserError` for bad configuration (unknown profile, no API key)
   * before anything is created; `SandboxError` when the backend fails.
   */
  async openSession(options: { signal?: AbortSignal } = {}): Promise<AgentSession> {
    const env = this.config.env ?? process.env;
    const profile = await resolveProfile(this.config.profile);
    const model = resolveModel(this.config, env);
    const backend = await loadBackend(this.config.backend ?? 'local', {
      isolation: this.config.isolation ?? 'auto',
      warn: this.config.warn ?? ((m) => process.emitWarning(m, 'RhoFlowWarning')),
      env,
    });
    try {
      await backend.preflight();
      const runId = newSessionRunId();
      const spec: SandboxSpec = {
        runId,
        jobId: runId,
        jobSlug: 'session',
        attempt: 1,
        workingDir: '/work',
        network: 'off',
        env: {},
        ...this.config.sandbox,
      };
      const sandbox = await backend.create(spec, options.signal ? { signal: options.signal } : {});
      return new AgentSession({ config: this.config, profile, model, backend, sandbox, runId });
    } catch (e) {
      await backend.close();
      throw e;
    }
  }
}

/** Shorthand for `new Agent(config)`. */
export function createAgent(config: AgentConfig = {}): Agent {
  return new Agent(config);
}

/**
 * One conversation in one sandbox. Dispose it (`await using`, or `close()`)
 * to delete the sandbox; disposing while a run is in flight aborts the run.
 */
export class AgentSession implements AsyncDisposable {
  /** The run id the sandbox is labelled with. */
  readonly runId: string;
  /** The session's sandbox, for direct file transfer (`upload`, `download`, `readFile`, …). */
  readonly sandbox: Sandbox;
  readonly profile: Profile;
  readonly #config: Readonly<AgentConfig>;
  readonly #model: ResolvedModel;
  readonly #backend: SandboxBackend;
  readonly #messages: ChatMessage[] = [];
  readonly #closing = new AbortController();
  readonly #redact: (text: string) => string;
  #usage: Usage = { ...ZERO_USAGE };
  #costUsd: number | undefined;
  #runs = 0;
  #running = false;
  #closed: Promise<void> | undefined;

  /** @internal Use `Agent.openSession()`. */
  constructor(init: {
    config: Readonly<AgentConfig>;
    profile: Profile;
    model: ResolvedModel;
    backend: SandboxBackend;
    sandbox: Sandbox;
    runId: string;
  }) {
    this.#config = init.config;
    this.profile = init.profile;
    this.#model = init.model;
    this.#backend = init.backend;
    this.sandbox = init.sandbox;
    this.runId = init.runId;
    const redactor = new Redactor(init.config.secrets ?? []);
    this.#redact = (text) => redactor.redact(text);
  }

  /** The conversation so far (system prompt, user prompts, assistant turns, tool results). */
  get messages(): readonly ChatMessage[] {
    return this.#messages;
  }

  /** Tokens used by all runs of this session (including failed ones). */
  get usage(): Usage {
    return this.#usage;
  }

  /** USD of all runs, when the model has pricing. */
  get costUsd(): number | undefined {
    return this.#costUsd;
  }

  /** `run()` calls started. */
  get runCount(): number {
    return this.#runs;
  }

  /**
   * Sends `prompt` as the next user message and runs the agent to its final
   * answer. Fails like a prompt step (`ModelError`, `MaxTurnsExceededError`,
   * `SandboxError`, the abort reason); the conversation stays usable after a
   * failure. One run at a time.
   */
  async run(prompt: string, options: SessionRunOptions = {}): Promise<SessionRunResult> {
    if (this.#closed) throw new UserError('the session is closed');
    if (this.#running)
      throw new UserError('a session runs one prompt at a time; await the previous run() first');
    this.#running = true;
    const stepId = `run-${++this.#runs}`;
    const names = stepToolNames(this.profile, this.#config.tools);
    const from = this.#messages.length;
    if (from === 0) {
      const system =
        this.#config.systemPrompt ??
        defaultSystemPrompt({ workingDir: this.sandbox.workingDir, tools: names, profile: this.profile });
      this.#messages.push({ role: 'system', content: system });
    }
    this.#messages.push({ role: 'user', content: prompt });
    let counted: Usage = { ...ZERO_USAGE };
    let countedCost: number | undefined;
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    try {
      const result = await runConversationStep(
        {
          jobId: this.runId,
          stepId,
          sandbox: this.sandbox,
          model: this.#model.model,
          modelName: this.#model.name,
          temperature: this.#model.temperature,
          maxOutputTokens: this.#model.maxOutputTokens,
          pricing: this.#model.pricing,
          profile: this.profile,
          tools: this.#config.tools,
          maxTurns: options.maxTurns ?? this.#config.maxTurns ?? DEFAULT_SESSION_MAX_TURNS,
          signal,
          transcript: this.#config.transcript ?? NULL_TRANSCRIPT,
          redact: this.#redact,
          onEvent: this.#config.onEvent,
          onProgress: (p) => {
            counted = p.usage;
            countedCost = p.costUsd;
          },
        },
        this.#messages,
        from,
      );
      return {
        text: result.output,
        turns: result.turns,
        usage: result.usage,
        ...(result.costUsd !== undefined ? { costUsd: result.costUsd } : {}),
      };
    } finally {
      this.#usage = addUsage(this.#usage, counted);
      if (countedCost !== undefined) this.#costUsd = (this.#costUsd ?? 0) + countedCost;
      this.#running = false;
    }
  }

  /** Deletes the sandbox and closes the backend. Idempotent; aborts a run in flight. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort(new UserError('the session was closed'));
      try {
        await this.sandbox.dispose();
      } finally {
        await this.#backend.close();
      }
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function resolveProfile(profile: Profile | string | undefined): Promise<Profile> {
  if (profile === undefined) return BUILTIN_PROFILES[DEFAULT_PROFILE];
  if (typeof profile !== 'string') return profile;
  if (isBuiltinProfileName(profile)) return BUILTIN_PROFILES[profile];
  if (!/[/\\]|\.ya?ml$/i.test(profile)) {
    throw new UserError(
      `unknown profile '${profile}': use readonly, developer, developer-bash-only, unrestricted, or a path to a profile YAML file`,
    );
  }
  const abs = path.resolve(profile);
  const loaded = await loadProfileFile(abs, profile);
  if (loaded.notFound) throw new UserError(`profile file not found: ${profile}`);
  if (!loaded.profile) {
    const first = loaded.diagnostics.find((d) => d.severity === 'error') ?? loaded.diagnostics[0];
    throw new UserError(`invalid profile file ${profile}${first ? `: ${first.message}` : ''}`);
  }
  return loaded.profile;
}

function isModel(m: Model | AgentModelConfig): m is Model {
  return typeof (m as Partial<Model>).getResponse === 'function';
}

function resolveModel(config: AgentConfig, env: Readonly<Record<string, string | undefined>>): ResolvedModel {
  const defaultName = env.OPENAI_MODEL || DEFAULT_MODEL_NAME;
  const m = config.model ?? {};
  if (isModel(m)) return { model: m, name: config.modelName ?? defaultName };
  const baseUrl = m.baseUrl ?? (env.OPENAI_BASE_URL || undefined);
  const apiKey = m.apiKey ?? (env.OPENAI_API_KEY || undefined);
  if (apiKey === undefined && baseUrl === undefined) {
    throw new UserError(
      'no model API key: set OPENAI_API_KEY, or pass model: { apiKey } (or a baseUrl for a keyless local server)',
    );
  }
  return {
    // Keyless local servers (Ollama, vLLM) accept any bearer token.
    model: new OpenAIModel({ apiKey: apiKey ?? 'no-key', baseUrl }),
    name: m.name ?? defaultName,
    temperature: m.temperature,
    maxOutputTokens: m.maxOutputTokens,
    pricing: m.pricing,
  };
}

/** `session-<time>-<random>`: unique, sortable, filesystem- and label-safe. */
function newSessionRunId(): string {
  return `session-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
