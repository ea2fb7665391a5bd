/**
 * The tool contract: a name, a description and JSON Schema parameters sent to
 * the model, and `run(args, ctx)` that acts only through the `Sandbox`
 * interface. A tool *failure* (file not found, no unique match, command
 * refused) is a result the model reads, never an exception; only
 * infrastructure faults and aborts escape a tool (see {@link toolErrorToText}).
 */
import path from 'node:path';
import type { Sandbox } from '../../sandbox/sandbox.js';
import type { Profile, ToolName } from '../../workflow/types.js';
import { SandboxError } from '../../errors.js';
import { isAbortError } from '../../util/abort.js';

/** What a tool may touch while it runs. */
export interface ToolContext {
  sandbox: Sandbox;
  /** Aborts the tool (the step timed out or the run was cancelled). */
  signal: AbortSignal;
  profile: Profile;
}

/** How a tool call ended, as the model and the transcript see it. */
export type ToolStatus = 'ok' | 'error' | 'refused';

export interface ToolOutput {
  /** The text returned to the model as the `tool` message. */
  output: string;
  status: ToolStatus;
}

export const ok = (output: string): ToolOutput => ({ output, status: 'ok' });
export const fail = (output: string): ToolOutput => ({ output, status: 'error' });
export const refuse = (output: string): ToolOutput => ({ output, status: 'refused' });

/** One parameter of a tool, in the subset of JSON Schema our tools use. */
export interface ParamSchema {
  type: 'string' | 'integer' | 'boolean';
  description: string;
  enum?: readonly string[];
  minimum?: number;
  maximum?: number;
}

/** The JSON Schema of a tool's arguments object. */
export interface ToolParameters {
  type: 'object';
  properties: Readonly<Record<string, ParamSchema>>;
  required: readonly string[];
}

/** What a description may depend on: bash describes itself differently under a restricted shell. */
export interface DescribeContext {
  profile: Profile;
  workingDir: string;
}

/** A tool with typed arguments. `A` is what {@link validateArgs} guarantees after checking `parameters`. */
export interface Tool<A> {
  readonly name: ToolName;
  readonly parameters: ToolParameters;
  description(ctx: DescribeContext): string;
  run(args: A, ctx: ToolContext): Promise<ToolOutput>;
}

/** A tool whose argument type has been erased, for registries. */
export interface AnyTool {
  readonly name: ToolName;
  readonly parameters: ToolParameters;
  description(ctx: DescribeContext): string;
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutput>;
}

/**
 * Erases a tool's argument type. Safe because the loop only calls `run` with
 * arguments that passed `validateArgs(tool.parameters, …)`, and each tool's
 * `A` mirrors its `parameters`.
 */
export function defineTool<A>(tool: Tool<A>): AnyTool {
  return tool as unknown as AnyTool;
}

/**
 * Checks model-produced arguments against a tool's schema. Lenient where
 * models commonly slip and the intent is unambiguous: `null` for an optional
 * parameter means "absent", `"5"` is accepted for an integer and `"true"` for
 * a boolean; unknown properties are ignored. Returns every problem at once so
 * the model can fix its call in one retry.
 */
export function validateArgs(
  params: ToolParameters,
  raw: unknown,
): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, error: `arguments must be a JSON object, got ${describeType(raw)}` };
  }
  const input = raw as Record<string, unknown>;
  const value: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, schema] of Object.entries(params.properties)) {
    const v = input[name];
    if (v === undefined || v === null) {
      if (params.required.includes(name)) problems.push(`'${name}' is required (${schema.type})`);
      continue;
    }
    const coerced = coerce(v, schema);
    if (coerced === undefined) {
      problems.push(
        `'${name}' must be ${schema.type === 'integer' ? 'an integer' : `a ${schema.type}`}, got ${describeType(v)}`,
      );
      continue;
    }
    if (schema.enum && !schema.enum.includes(coerced as string)) {
      problems.push(`'${name}' must be one of ${schema.enum.map((e) => `'${e}'`).join(', ')}`);
      continue;
    }
    if (typeof coerced === 'number') {
      if (schema.minimum !== undefined && coerced < schema.minimum) {
        problems.push(`'${name}' must be ≥ ${schema.minimum}`);
        continue;
      }
      if (schema.maximum !== undefined && coerced > schema.maximum) {
        problems.push(`'${name}' must be ≤ ${schema.maximum}`);
        continue;
      }
    }
    value[name] = coerced;
  }
  if (problems.length > 0) return { ok: false, error: problems.join('; ') };
  return { ok: true, value };
}

function coerce(v: unknown, schema: ParamSchema): string | number | boolean | undefined {
  switch (schema.type) {
    case 'string':
      return typeof v === 'string' ? v : undefined;
    case 'integer': {
      const n = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
      return typeof n === 'number' && Number.isInteger(n) ? n : undefined;
    }
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (v === 'true') return true;
      if (v === 'false') return false;
      return undefined;
  }
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  return `a ${typeof v}`;
}

/**
 * Maps an error thrown inside a tool to the text returned to the model, or
 * `undefined` when the error must propagate and end the step: aborts (step
 * timeout, cancellation) and sandbox infrastructure faults (`gone`,
 * `exec-failed`, …). `not-found` and `path-escape` are the agent's own
 * mistakes and go back to it; so does anything else a tool throws (a bug in
 * a tool should not kill a long agent run, and the transcript keeps the text).
 */
export function toolErrorToText(err: unknown): string | undefined {
  if (isAbortError(err)) return undefined;
  if (err instanceof SandboxError) {
    switch (err.code) {
      case 'not-found':
        return `Error: not found: ${err.message}`;
      case 'path-escape':
        return `Error: path is outside the sandbox: ${err.message}`;
      default:
        return undefined;
    }
  }
  if (err instanceof Error) return `Error: ${err.message}`;
  return `Error: ${String(err)}`;
}

/** True for the sandbox errors a tool reports to the model instead of propagating. */
export function isAgentFacingSandboxError(err: unknown): err is SandboxError {
  return err instanceof SandboxError && (err.code === 'not-found' || err.code === 'path-escape');
}

/** Absolute form of a sandbox path, for messages (relative paths are relative to the working dir). */
export function sandboxPath(sandbox: Sandbox, p: string): string {
  return path.posix.resolve(sandbox.workingDir, p);
}

/** Quotes a string for a POSIX shell: one single-quoted word, whatever it contains. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
