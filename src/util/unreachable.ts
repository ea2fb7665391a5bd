/**
 * Exhaustiveness helper: call it in the `default` branch of a `switch` over a
 * closed union. It only type-checks when every member was handled.
 */
export function unreachable(value: never): string {
  return String(value);
}
