/**
 * `--record <dir>`: a `Model` that forwards every call to a real model and
 * saves each response as a cassette turn (format in `cassette.ts`), one file
 * per (job, step) at `<dir>/<job-slug>/<step-id>.json`.
 *
 * The file is rewritten atomically after every turn (temp file + rename,
 * flushed) before the response is handed back, so a crash or kill keeps every
 * turn the agent has already acted on. Every turn passes through the
 * `Redactor` first: secret values never reach the disk. The response returned
 * to the caller is the original, unredacted one.
 */
import type { Model, ModelRequest, ModelResponse } from './model.js';
import {
  CASSETTE_VERSION,
  cassettePath,
  serializeCassette,
  turnFromExchange,
  writeFileAtomic,
  type Cassette,
} from './cassette.js';
import { UserError } from '../errors.js';
import type { Redactor } from '../util/redact.js';
import { slugify } from '../workflow/slug.js';

export interface RecordingModelOptions {
  /** The model that really answers (usually an `OpenAIModel`). */
  inner: Model;
  /** Cassette directory; created on first write. */
  dir: string;
  /** Masks secrets in everything written. */
  redactor?: Redactor | undefined;
  /** Job id → the job's folder slug. Default `slugify` (what the plan uses for ids that do not collide). */
  slugOf?: ((jobId: string) => string) | undefined;
}

interface StepRecording {
  cassette: Cassette;
  /** Writes to one file are chained so they land in turn order. */
  writing: Promise<void>;
}

export class RecordingModel implements Model {
  readonly #options: RecordingModelOptions;
  readonly #steps = new Map<string, StepRecording>();

  constructor(options: RecordingModelOptions) {
    this.#options = options;
  }

  /** The file a (job, step) is recorded to. */
  fileFor(jobId: string, stepId: string): string {
    return cassettePath(this.#options.dir, (this.#options.slugOf ?? slugify)(jobId), stepId);
  }

  /**
   * Asks the inner model, records the turn, then resolves with the inner
   * model's response. Failures of the inner model pass through unrecorded.
   * A failed write rejects with `UserError` (the recording the user asked for
   * could not be made).
   */
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    const response = await this.#options.inner.getResponse(request);
    const { jobId, stepId, turn } = request.meta;
    const file = this.fileFor(jobId, stepId);
    let rec = this.#steps.get(file);
    if (!rec) {
      rec = {
        cassette: { version: CASSETTE_VERSION, job: jobId, step: stepId, model: request.model, turns: [] },
        writing: Promise.resolve(),
      };
      this.#steps.set(file, rec);
    }
    // A turn number at or below what we hold means the step started over (a
    // retried job attempt): drop the stale tail so turns[n-1] answers turn n.
    if (turn >= 1 && turn <= rec.cassette.turns.length) rec.cassette.turns.length = turn - 1;
    if (turn === 1) rec.cassette.model = request.model;
    const stored = turnFromExchange(request, response);
    rec.cassette.turns.push(this.#options.redactor ? this.#options.redactor.redactValue(stored) : stored);
    const text = serializeCassette(rec.cassette);
    const write = rec.writing.then(() => writeFileAtomic(file, text));
    rec.writing = write.catch(() => undefined);
    try {
      await write;
    } catch (e) {
      throw new UserError(`cannot write cassette ${file}: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
      });
    }
    return response;
  }
}
