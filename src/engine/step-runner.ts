import type { ExprContext, ExprValue } from '../expr/evaluate.js';
import { truthy } from '../expr/evaluate.js';
import type { Expr } from '../expr/ast.js';
import type { Template } from '../expr/template.js';
import { unreachable } from '../util/unreachable.js';
import type { Job, PromptStep, RunStep, Step } from '../workflow/types.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { StepResult, StepStatus } from '../results/types.js';
import type { EngineOptions, JobSinks } from './engine-options.js';
import { parseStepOutputs } from './step-outputs.js';
import { renderPromptFile } from './render-prompt-file.js';
import { classifyError } from './classify.js';
import { anySignal, timeoutSignal } from '../util/abort.js';
import { resolveModelName } from '../workflow/job-context.js';
import { ZERO_USAGE, addUsage, type Usage } from '../agent/model.js';
import path from 'node:path';

/** Output kept in memory / results per step. */
const MAX_OUTPUT_CHARS = 1024 * 1024;
const MAX_RESULT_OUTPUT_CHARS = 64 * 1024;

/** What a step's `${{ steps.<id> }}` context holds. */
export interface StepContextEntry {
  output: string;
  outputs: Record<string, string>;
  /** before continue-on-error: success | failure | cancelled | skipped */
  outcome: string;
  /** after continue-on-error */
  conclusion: string;
}

/** Mutable state of one job attempt that steps read and update. */
export interface JobState {
  job: Job;
  attempt: number;
  sandbox: Sandbox;
  sinks: JobSinks;
  /** Static contexts (vars, matrix, item, repeat, job, run, env) + secrets. */
  baseContexts: Record<string, ExprValue>;
  steps: Record<string, StepContextEntry>;
  /** A step without continue-on-error did not succeed. */
  failed: boolean;
  /** The run was cancelled or the job timed out. */
  aborted: boolean;
  usage: Usage;
  costUsd: number;
  /** Tokens left of the job's `max-tokens` budget. */
  tokensLeft: number | undefined;
}

function exprContext(state: JobState): ExprContext {
  return {
    contexts: { ...state.baseContexts, steps: state.steps as unknown as ExprValue },
    status: {
      success: () => !state.failed && !state.aborted,
      failure: () => state.failed,
      cancelled: () => state.aborted,
    },
  };
}

const STATUS_FUNCTIONS: ReadonlySet<string> = new Set(['success', 'failure', 'always', 'cancelled']);

function exprCallsStatus(e: Expr): boolean {
  switch (e.kind) {
    case 'literal':
    case 'ident':
      return false;
    case 'member':
      return exprCallsStatus(e.object);
    case 'index':
      return exprCallsStatus(e.object) || exprCallsStatus(e.index);
    case 'call':
      return STATUS_FUNCTIONS.has(e.callee) || e.args.some(exprCallsStatus);
    case 'unary':
      return exprCallsStatus(e.operand);
    case 'binary':
      return exprCallsStatus(e.left) || exprCallsStatus(e.right);
    default:
      throw new Error(`Unknown expression kind: ${unreachable(e)}`);
  }
}

/** Whether a condition calls success(), failure(), always() or cancelled() anywhere. */
export function callsStatusFunction(condition: Template): boolean {
  return condition.parts.some((p) => p.kind === 'expr' && exprCallsStatus(p.expr));
}

function outcomeOf(status: StepStatus): string {
  switch (status) {
    case 'passed':
      return 'success';
    case 'skipped':
      return 'skipped';
    case 'cancelled':
      return 'cancelled';
    case 'failed':
    case 'timed-out':
    case 'error':
      return 'failure';
  }
}

function cap(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}\n[… truncated ${text.length - max} characters]`;
}

function resolveDir(sandbox: Sandbox, dir: string | undefined): string | undefined {
  if (dir === undefined) return undefined;
  return path.posix.isAbsolute(dir) ? dir : path.posix.join(sandbox.workingDir, dir);
}

function evaluateEnv(step: Step, ctx: ExprContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, t] of Object.entries(step.env)) env[k] = t.evaluate(ctx);
  return env;
}

/**
 * Runs one step (its `if`, its timeout, its output capture) and records it in
 * `state`. Never throws for step-level problems: they become the step's
 * status. Throws only when the job must stop at once (never, currently: even
 * infrastructure errors are returned as status `error`).
 */
export async function runStep(
  step: Step,
  state: JobState,
  options: { engine: EngineOptions; signal: AbortSignal; isFinally: boolean },
): Promise<StepResult> {
  const { engine, signal, isFinally } = options;
  const started = Date.now();
  const base = {
    id: step.id,
    name: step.name,
    kind: step.kind,
    finally: isFinally,
    continueOnError: step.continueOnError,
  };
  const ctx = exprContext(state);

  let shouldRun: boolean;
  try {
    // Default condition: success() for main steps; finally steps always run.
    // As in GitHub Actions, a main step's `if:` without a status function
    // (success(), failure(), always(), cancelled()) means `success() && (…)`.
    const statusOk = isFinally || (!state.failed && !state.aborted);
    shouldRun = step.if
      ? (isFinally || callsStatusFunction(step.if) || statusOk) && truthy(step.if.evaluateValue(ctx))
      : statusOk;
    if (!isFinally && state.aborted) shouldRun = false;
  } catch (e) {
    const { error } = classifyError(e);
    return finish(state, step, { ...base, status: 'failed', durationMs: 0, error });
  }
  if (!shouldRun) {
    const status: StepStatus = state.aborted && !isFinally ? 'cancelled' : 'skipped';
    return finish(state, step, { ...base, status, durationMs: 0 });
  }

  engine.onEvent({
    type: 'step',
    reason: 'started',
    jobId: state.job.id,
    stepId: step.id,
    name: step.name,
    finally: isFinally,
  });
  state.sinks.log(
    `\n── ${isFinally ? 'finally' : 'step'} ${step.id}${step.name !== step.id ? ` (${step.name})` : ''} ──\n`,
  );
  // Prompt steps write their own, richer step-start/step-end transcript events.
  if (step.kind === 'run') {
    state.sinks.transcript({
      type: 'step-start',
      step: step.id,
      kind: step.kind,
      finally: isFinally,
      time: new Date().toISOString(),
    });
  }

  let result: StepResult;
  try {
    result =
      step.kind === 'run'
        ? await executeRun(step, state, ctx, signal, base)
        : await executePrompt(step, state, ctx, signal, engine, base);
  } catch (e) {
    const { status, error } = classifyError(e);
    result = { ...base, status, durationMs: Date.now() - started, error };
  }
  result.durationMs = Date.now() - started;
  state.sinks.log(
    `── ${step.id}: ${result.status}${result.exitCode !== undefined ? ` (exit ${result.exitCode})` : ''} in ${result.durationMs} ms ──\n`,
  );
  if (step.kind === 'run') {
    state.sinks.transcript({
      type: 'step-end',
      step: step.id,
      status: result.status,
      exitCode: result.exitCode,
      time: new Date().toISOString(),
    });
  } else {
    const answer = result.output ?? result.error?.message ?? '';
    state.sinks.log(
      `agent: ${result.turns ?? 0} turn(s); ${result.output !== undefined ? 'answer' : 'error'}: ${answer}\n`,
    );
  }
  return finish(state, step, result);
}

function finish(state: JobState, step: Step, result: StepResult): StepResult {
  const outcome = outcomeOf(result.status);
  const succeeded = result.status === 'passed' || result.status === 'skipped';
  state.steps[step.id] = {
    output: result.output ?? '',
    outputs: result.outputs ?? {},
    outcome,
    conclusion: !succeeded && step.continueOnError && result.status !== 'cancelled' ? 'success' : outcome,
  };
  if (!succeeded && result.status !== 'cancelled' && !step.continueOnError) state.failed = true;
  if (result.output !== undefined) result.output = cap(result.output, MAX_RESULT_OUTPUT_CHARS);
  return result;
}

async function executeRun(
  step: RunStep,
  state: JobState,
  ctx: ExprContext,
  signal: AbortSignal,
  base: Pick<StepResult, 'id' | 'name' | 'kind' | 'finally' | 'continueOnError'>,
): Promise<StepResult> {
  const script = step.run.evaluate(ctx);
  // The backend runs the script with `bash -eo pipefail -c` itself and hands back `$RHO_FLOW_OUTPUT`.
  const res = await state.sandbox.exec(script, {
    cwd: resolveDir(state.sandbox, step.workingDir),
    env: evaluateEnv(step, ctx),
    timeoutMs: step.timeoutMs,
    signal,
    maxOutputBytes: MAX_OUTPUT_CHARS * 2,
    runStep: true,
    onOutput: (chunk) => state.sinks.log(chunk),
  });
  const kept = res.stdout.replace(/\n+$/, '');
  // Outputs are `k=v` lines: NUL bytes are dropped quietly.
  const parsed =
    res.outputs === undefined
      ? { outputs: {}, problems: [] }
      : parseStepOutputs(res.outputs.replace(/\0/g, ''));
  for (const p of parsed.problems) state.sinks.log(`[rho-flow] ${p}\n`);
  if (res.timedOut) {
    return {
      ...base,
      status: 'timed-out',
      exitCode: res.exitCode,
      durationMs: res.durationMs,
      output: cap(kept, MAX_OUTPUT_CHARS),
      error: {
        kind: 'step',
        code: 'step-timeout',
        message: `step '${step.id}' timed out after ${step.timeoutMs ?? 0} ms`,
      },
    };
  }
  const ok = res.exitCode === 0;
  return {
    ...base,
    status: ok ? 'passed' : 'failed',
    exitCode: res.exitCode,
    durationMs: res.durationMs,
    output: cap(kept, MAX_OUTPUT_CHARS),
    outputs: parsed.outputs,
    ...(ok
      ? {}
      : {
          error: {
            kind: 'step' as const,
            code: 'exit-code',
            message: `step '${step.id}' exited with code ${res.exitCode}`,
          },
        }),
  };
}

async function executePrompt(
  step: PromptStep,
  state: JobState,
  ctx: ExprContext,
  signal: AbortSignal,
  engine: EngineOptions,
  base: Pick<StepResult, 'id' | 'name' | 'kind' | 'finally' | 'continueOnError'>,
): Promise<StepResult> {
  const wf = state.job.workflow;
  let userPrompt = step.prompt?.evaluate(ctx);
  let system = step.system?.evaluate(ctx);
  if (step.promptFile) {
    const vars: Record<string, string> = {};
    for (const [k, t] of Object.entries(step.promptVars)) vars[k] = t.evaluate(ctx);
    const rendered = renderPromptFile(step.promptFile, vars);
    system ??= rendered.system;
    userPrompt ??= rendered.initialPrompt;
  }
  system ??= wf.system?.evaluate(ctx);
  if (userPrompt === undefined || userPrompt.trim() === '') {
    return {
      ...base,
      status: 'failed',
      durationMs: 0,
      error: { kind: 'user', message: `prompt step '${step.id}' has an empty prompt` },
    };
  }
  const modelName =
    engine.modelOverride ??
    resolveModelName(step.model, state.baseContexts) ??
    resolveModelName(wf.model, state.baseContexts) ??
    '';
  const resolved = engine.models.forStep(state.job, step, modelName);
  const stepTimer = step.timeoutMs === undefined ? undefined : timeoutSignal(step.timeoutMs, 'step-timeout');
  // Usage so far, so that a step that fails mid-way still counts its tokens.
  let progress: { turns: number; usage: Usage; costUsd?: number } = { turns: 0, usage: ZERO_USAGE };
  try {
    // Loaded on the first prompt step: a run of shell steps never loads the agent loop, its
    // tools and the shell-command policy (~35 modules, ~40 ms of startup; issue 7).
    const { runPromptStep } = await import('../agent/prompt-step.js');
    const out = await runPromptStep({
      jobId: state.job.id,
      stepId: step.id,
      sandbox: state.sandbox,
      userPrompt,
      systemPrompt: system,
      model: resolved.model,
      modelName: resolved.name,
      temperature: resolved.temperature,
      maxOutputTokens: resolved.maxOutputTokens,
      pricing: resolved.pricing,
      profile: step.profile ?? wf.profile,
      tools: step.tools,
      maxTurns: step.maxTurns,
      tokenBudget: state.tokensLeft,
      signal: anySignal(signal, stepTimer?.signal),
      transcript: { write: (event: Record<string, unknown>) => state.sinks.transcript(event) },
      redact: (text: string) => engine.redactor.redact(text),
      onEvent: engine.onEvent,
      onProgress: (p) => {
        progress = p;
      },
    });
    progress = out;
    return {
      ...base,
      status: 'passed',
      durationMs: 0,
      output: cap(out.output, MAX_OUTPUT_CHARS),
      turns: out.turns,
      usage: out.usage,
      ...(out.costUsd !== undefined ? { costUsd: out.costUsd } : {}),
    };
  } catch (e) {
    const { status, error } = classifyError(e);
    return {
      ...base,
      status,
      durationMs: 0,
      error,
      turns: progress.turns,
      usage: progress.usage,
      ...(progress.costUsd !== undefined ? { costUsd: progress.costUsd } : {}),
    };
  } finally {
    state.usage = addUsage(state.usage, progress.usage);
    state.costUsd += progress.costUsd ?? 0;
    if (state.tokensLeft !== undefined) {
      state.tokensLeft -= progress.usage.inputTokens + progress.usage.outputTokens;
    }
    stepTimer?.clear();
  }
}
