import type { RunEvent } from '../events.js';
import { errorMessage } from '../errors.js';

/**
 * Wraps an event listener so that a listener that throws (a reporter bug)
 * cannot change the run — in particular cannot skip a teardown that follows
 * an event. The first failure is reported once as a process warning.
 */
export function safeListener(listener: ((event: RunEvent) => void) | undefined): (event: RunEvent) => void {
  if (!listener) return () => undefined;
  let reported = false;
  return (event) => {
    try {
      listener(event);
    } catch (e) {
      if (!reported) {
        reported = true;
        process.emitWarning(`rho-flow: an event listener failed (the run goes on): ${errorMessage(e)}`);
      }
    }
  };
}
