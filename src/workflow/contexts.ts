/**
 * Which `${{ }}` contexts each workflow field may use, and their static shapes
 * (used by `checkTemplate` to report unknown contexts and properties with
 * their position). Mirrors what the engine provides at run time:
 *
 * - sandbox image/snapshot, uploads, model name: vars, matrix, item, repeat, job, run
 * - sandbox env: the same plus secrets
 * - workflow `system`: vars, matrix, item, repeat, env, secrets, job, run
 * - steps (run, prompt, prompt vars, system, env, if) and artifacts: all of
 *   the above plus `steps` — only steps that ran before.
 */
import { ANY, objectShape, type Shape } from '../expr/check.js';
import { CONTEXTS, type ContextName } from '../expr/ast.js';
import { didYouMeanSuffix } from '../util/did-you-mean.js';
import { unreachable } from '../util/unreachable.js';

/** What is statically known about one workflow's contexts. */
export interface ContextInfo {
  /** Declared `vars` keys plus `--var`/`--vars-file` keys. */
  vars: readonly string[];
  /** Matrix axes plus include keys; `undefined` when there is no `strategy.matrix`. */
  matrix: readonly string[] | undefined;
  /**
   * Union of the dataset lines' keys; `undefined` when there is no
   * `strategy.dataset`; `'unknown'` when the dataset could not be read (its
   * own error is reported; item references are then not checked).
   */
  item: readonly string[] | 'unknown' | undefined;
  /** Sandbox env keys. */
  env: readonly string[];
  secrets: readonly string[];
}

/** Which step ids a field can see, and which exist but run later. */
export interface StepScope {
  visible: readonly string[];
  later: readonly string[];
  /** Where the field is, for messages ("step 'x' runs after this one"). */
  laterMessage?: (id: string) => string;
}

export const SANDBOX_CONTEXTS: readonly ContextName[] = ['vars', 'matrix', 'item', 'repeat', 'job', 'run'];
export const SANDBOX_ENV_CONTEXTS: readonly ContextName[] = [...SANDBOX_CONTEXTS, 'secrets'];
export const WORKFLOW_SYSTEM_CONTEXTS: readonly ContextName[] = [...SANDBOX_ENV_CONTEXTS, 'env'];
export const STEP_CONTEXTS: readonly ContextName[] = [...WORKFLOW_SYSTEM_CONTEXTS, 'steps'];

const STEP_SHAPE: Shape = objectShape({
  output: ANY,
  outputs: objectShape({}, { open: true }),
  outcome: ANY,
  conclusion: ANY,
});

function keys(names: readonly string[], missing: (name: string) => string): Shape {
  return objectShape(Object.fromEntries(names.map((n) => [n, ANY])), { missing });
}

function contextShape(name: ContextName, info: ContextInfo, scope: StepScope | undefined): Shape {
  switch (name) {
    case 'vars':
      return keys(info.vars, (n) => `'${n}' is not declared under vars${didYouMeanSuffix(n, info.vars)}`);
    case 'matrix': {
      const m = info.matrix;
      if (m === undefined) return objectShape({}, { missing: () => 'no strategy.matrix is declared' });
      return keys(m, (n) => `'${n}' is not a matrix axis or include key${didYouMeanSuffix(n, m)}`);
    }
    case 'item': {
      const it = info.item;
      if (it === 'unknown') return ANY;
      if (it === undefined) return objectShape({}, { missing: () => 'no strategy.dataset is declared' });
      return keys(it, (n) => `no dataset line has a field '${n}'${didYouMeanSuffix(n, it)}`);
    }
    case 'repeat':
      return objectShape({ index: ANY, total: ANY });
    case 'env':
      return keys(
        info.env,
        (n) =>
          `'${n}' is not in sandbox.env${didYouMeanSuffix(n, info.env)} (a step's own env is in the shell: use $${n})`,
      );
    case 'secrets':
      return keys(
        info.secrets,
        (n) => `'${n}' is not declared under secrets${didYouMeanSuffix(n, info.secrets)}`,
      );
    case 'steps': {
      const visible = scope?.visible ?? [];
      const later = scope?.later ?? [];
      return objectShape(Object.fromEntries(visible.map((id) => [id, STEP_SHAPE])), {
        missing: (id) =>
          later.includes(id)
            ? (scope?.laterMessage?.(id) ?? `step '${id}' runs after this one`)
            : `no step with id '${id}'${
                didYouMeanSuffix(id, visible) ||
                (visible.length > 0
                  ? ` (steps before this one: ${visible.join(', ')})`
                  : ' (no step runs before this one)')
              }`,
      });
    }
    case 'job':
      return objectShape({ id: ANY, slug: ANY, index: ANY, attempt: ANY, workflow: ANY, file: ANY });
    case 'run':
      return objectShape({ id: ANY });
    default:
      throw new Error(`Unknown context: ${unreachable(name)}`);
  }
}

/**
 * The root shape for a field: only `allowed` contexts exist; another known
 * context name gets "not available here", anything else the default
 * "unknown context" message with a suggestion.
 */
export function rootShape(
  allowed: readonly ContextName[],
  info: ContextInfo,
  where: string,
  scope?: StepScope,
): Shape {
  const props = Object.fromEntries(allowed.map((n) => [n, contextShape(n, info, scope)]));
  return objectShape(props, {
    missing: (name) =>
      (CONTEXTS as readonly string[]).includes(name)
        ? `context '${name}' is not available in ${where} (available: ${allowed.join(', ')})`
        : undefined,
  });
}
