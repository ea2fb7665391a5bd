/**
 * Runs every teardown to the end, even when some fail. Resolves when all have
 * settled; rejects with the only error, or an `AggregateError` of all errors.
 * `onError` sees each failure as it happens (for logging).
 */
export async function disposeAll(
  tasks: Iterable<() => Promise<unknown>>,
  onError?: (err: unknown) => void,
): Promise<void> {
  const results = await Promise.allSettled([...tasks].map((t) => t()));
  const errors: unknown[] = [];
  for (const r of results) {
    if (r.status === 'rejected') {
      errors.push(r.reason);
      onError?.(r.reason);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} teardowns failed`);
}
