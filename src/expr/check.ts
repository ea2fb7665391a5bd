import type { Template } from './template.js';
import { didYouMeanSuffix } from '../util/did-you-mean.js';

/**
 * The statically known shape of an expression context, used to report unknown
 * contexts and properties at validation time.
 * - `any`: anything below is accepted (e.g. a dataset item field's value).
 * - `object`: only `props` exist; `open` accepts any key (e.g. `steps.x.outputs`).
 *   `missing(name)` may return a custom message for an absent key.
 */
export type Shape =
  | { kind: 'any' }
  | {
      kind: 'object';
      props: Readonly<Record<string, Shape>>;
      open?: boolean;
      missing?: (name: string) => string | undefined;
    };

export const ANY: Shape = { kind: 'any' };

/** Shorthand for a closed object shape. */
export function objectShape(
  props: Readonly<Record<string, Shape>>,
  extra: { open?: boolean; missing?: (name: string) => string | undefined } = {},
): Shape {
  return { kind: 'object', props, ...extra };
}

/** One problem found by `checkTemplate`; `offset` is inside the template source. */
export interface TemplateProblem {
  offset: number;
  message: string;
}

/**
 * Checks every context reference of `template` against `root` (whose props are
 * the available contexts). Returns all problems, not just the first.
 */
export function checkTemplate(template: Template, root: Shape): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  for (const ref of template.references()) {
    let shape: Shape = root;
    for (let i = 0; i < ref.path.length; i++) {
      if (shape.kind === 'any') break;
      const name = ref.path[i] ?? '';
      const next = Object.prototype.hasOwnProperty.call(shape.props, name) ? shape.props[name] : undefined;
      if (next) {
        shape = next;
        continue;
      }
      if (shape.open) break;
      const offset = i === 0 ? ref.offset : (ref.segmentOffsets[i - 1] ?? ref.offset);
      const custom = shape.missing?.(name);
      const parent = ref.path.slice(0, i).join('.');
      const known = Object.keys(shape.props);
      const message =
        custom ??
        (i === 0
          ? `unknown context '${name}'${didYouMeanSuffix(name, known)} (available: ${known.join(', ') || 'none'})`
          : `'${parent}' has no property '${name}'${didYouMeanSuffix(name, known)}${
              known.length > 0 ? ` (known: ${known.join(', ')})` : ''
            }`);
      problems.push({ offset, message });
      break;
    }
  }
  return problems;
}
