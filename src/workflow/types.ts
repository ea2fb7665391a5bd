/**
 * The validated, normalized workflow model the engine runs. Produced by
 * `loadWorkflow` (workflow/load.ts) from a YAML file; every field here has
 * already passed the schema and the semantic checks. Strings that may hold
 * `${{ }}` are `Template`s; durations are milliseconds.
 */
import type { Template } from '../expr/template.js';
import type { ExprValue } from '../expr/evaluate.js';

export type BackendName = 'local' | 'daytona';
export const BACKENDS: readonly BackendName[] = ['local', 'daytona'];

/** A position in a workflow file, for runtime messages and annotations. */
export interface SourceRef {
  file: string;
  line: number;
  col: number;
}

export interface Resources {
  /** cores */
  cpu?: number;
  /** GiB */
  memory?: number;
  /** GiB */
  disk?: number;
  gpu?: number;
}

export interface WorkflowSandbox {
  /** Backend named in the file (default `local`); `--backend`/`RHO_FLOW_BACKEND` override it at run time. */
  backend: BackendName;
  image?: Template;
  snapshot?: Template;
  resources?: Resources;
  /** Absolute path inside the sandbox (default `/work`). */
  workingDir: string;
  network: 'on' | 'off';
  /** Values are stringified from the YAML source text (so `3.10` stays `"3.10"`). */
  env: Readonly<Record<string, Template>>;
  /** Daytona dead-man's switch: auto-stop after this much inactivity (default 30m). */
  autoStopMs?: number;
  /** Daytona: auto-delete this long after stop (default 60m). */
  autoDeleteMs?: number;
}

export interface ModelPricing {
  /** USD per million input tokens */
  input: number;
  /** USD per million output tokens */
  output: number;
  /** USD per million cached input tokens (defaults to `input`) */
  cachedInput?: number;
}

export interface ModelSettings {
  /** May use vars/matrix/item/repeat, e.g. `${{ matrix.model }}`; evaluated per job. */
  name?: Template;
  baseUrl?: string;
  temperature?: number;
  maxOutputTokens?: number;
  pricing?: ModelPricing;
}

/** A rho-agent permission profile, normalized (product.md §3). */
export interface Profile {
  name: string;
  description?: string;
  shell: 'restricted' | 'unrestricted';
  fileWrite: 'off' | 'create-only' | 'full';
  approval: {
    mode: 'all' | 'dangerous' | 'granular' | 'none';
    requiredTools: readonly string[];
    dangerousPatterns: readonly string[];
  };
  /** Default timeout of the bash tool, seconds. */
  shellTimeoutS: number;
  shellWorkingDir?: string;
  bashOnly: boolean;
  /** `builtin` or the absolute path of the profile file. */
  source: string;
}

export interface UploadSpec {
  /**
   * Local path. Literal sources are already resolved to an absolute path and
   * checked to exist at load time; a templated source (`./repos/${{ item.repo }}`)
   * is evaluated per job and resolved against the workflow file's directory,
   * and its existence is checked when the plan is built (before any sandbox).
   */
  from: Template;
  /** Path inside the sandbox (absolute after evaluation; relative = under the working dir). */
  to: Template;
  exclude: readonly string[];
  loc: SourceRef;
}

export type ArtifactWhen = 'always' | 'on-success' | 'on-failure';

export interface ArtifactSpec {
  /** File, directory or glob inside the sandbox (relative paths are relative to the working dir). */
  path: Template;
  /** Destination relative to the job's `artifacts/` folder (validated: no `..`, not absolute). `''` = the folder itself. */
  to: string;
  when: ArtifactWhen;
  ifNoFilesFound: 'warn' | 'error' | 'ignore';
  loc: SourceRef;
}

export type ToolName = 'bash' | 'read' | 'write' | 'edit' | 'glob' | 'grep' | 'list' | 'run_code';
export const TOOL_NAMES: readonly ToolName[] = [
  'bash',
  'read',
  'write',
  'edit',
  'glob',
  'grep',
  'list',
  'run_code',
];

interface StepBase {
  /** Explicit `id`, or `step-<n>` (1-based position; `finally-<n>` in `finally`). */
  id: string;
  idExplicit: boolean;
  /** Display name: `name`, else the id when explicit, else the first line of the command / prompt. */
  name: string;
  if?: Template;
  timeoutMs?: number;
  continueOnError: boolean;
  /** Extra env for this step (on top of the sandbox env). */
  env: Readonly<Record<string, Template>>;
  /** Absolute path inside the sandbox; default the sandbox working dir. */
  workingDir?: string;
  loc: SourceRef;
}

export interface RunStep extends StepBase {
  kind: 'run';
  run: Template;
}

/** A rho-agent prompt file (Markdown + YAML frontmatter), loaded at validation time. */
export interface PromptFile {
  /** Absolute path. */
  path: string;
  description?: string;
  /** Declared variables: required flag and default. */
  variables: Readonly<Record<string, { required: boolean; default?: string }>>;
  /** Markdown body: the system prompt (rendered with `{{ var }}`). */
  body: string;
  /** `initial_prompt` from the frontmatter: the first user message (rendered). */
  initialPrompt?: string;
}

export interface PromptStep extends StepBase {
  kind: 'prompt';
  /** Inline prompt text (the user message). Absent when `promptFile` provides `initial_prompt`. */
  prompt?: Template;
  promptFile?: PromptFile;
  /** Values for the prompt file's `{{ var }}` variables (templates evaluated per job). */
  promptVars: Readonly<Record<string, Template>>;
  /** System prompt override (inline); else the prompt file body; else the workflow's; else built-in. */
  system?: Template;
  maxTurns: number;
  /** Narrowed tool set; undefined = what the profile allows. */
  tools?: readonly ToolName[];
  model?: ModelSettings;
  /** Profile override for this step. */
  profile?: Profile;
  /** Cassette file or directory to replay this step's model calls from (absolute). */
  cassette?: string;
}

export type Step = RunStep | PromptStep;

export type RetryOn = 'error' | 'timed-out' | 'failed';

export interface MatrixSpec {
  /** Axis name → values, in file order. */
  axes: ReadonlyArray<readonly [string, readonly ExprValue[]]>;
  include: ReadonlyArray<Readonly<Record<string, ExprValue>>>;
  exclude: ReadonlyArray<Readonly<Record<string, ExprValue>>>;
  /** Where `strategy.matrix` is in the workflow file (for expansion diagnostics). */
  loc?: SourceRef;
}

export interface Strategy {
  matrix?: MatrixSpec;
  dataset?: {
    /** Absolute path of the JSONL file. */
    file: string;
    items: ReadonlyArray<Readonly<Record<string, ExprValue>>>;
    /** 1-based line of each item in the JSONL file (parallel to `items`); default: index + 1. */
    lines?: readonly number[];
    /** Where `strategy.dataset` is in the workflow file. */
    loc?: SourceRef;
  };
  /** ≥ 1 (default 1). */
  repeat: number;
  maxParallel?: number;
}

export interface Workflow {
  /** Path as the user gave it (relative to cwd when possible); used in messages. */
  file: string;
  /** Absolute path of the file. */
  absPath: string;
  /** sha256 (hex) of the file's bytes plus every file it references (dataset, prompt files, profile). */
  hash: string;
  name: string;
  description?: string;
  sandbox: WorkflowSandbox;
  /** Whole-job timeout (default 60m). */
  timeoutMs: number;
  profile: Profile;
  model: ModelSettings;
  /** Workflow-level system prompt for prompt steps. */
  system?: Template;
  /** Per-job token budget across all prompt steps. */
  maxTokens?: number;
  uploads: readonly UploadSpec[];
  /** After `--var` / `--vars-file` overrides. */
  vars: Readonly<Record<string, ExprValue>>;
  /** Secret name → host environment variable it is read from. */
  secrets: Readonly<Record<string, { fromEnv: string }>>;
  strategy: Strategy;
  steps: readonly Step[];
  finally: readonly Step[];
  artifacts: readonly ArtifactSpec[];
  retry?: { limit: number; on: readonly RetryOn[] };
  loc: SourceRef;
}

/** One expanded unit of work: a workflow with one set of matrix/item/repeat values. */
export interface Job {
  /** Deterministic id: `name[k=v,…]#n` (product.md §5). */
  id: string;
  /** Filesystem-safe, unique-within-run slug of the id. */
  slug: string;
  workflow: Workflow;
  /** 0-based position in the whole run's plan. */
  index: number;
  matrix?: Readonly<Record<string, ExprValue>>;
  item?: Readonly<Record<string, ExprValue>>;
  /** 1-based line of the dataset item. */
  itemLine?: number;
  repeat?: { index: number; total: number };
}
