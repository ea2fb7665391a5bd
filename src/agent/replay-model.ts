/**
 * `--replay <dir>` and a step's `cassette:`: a `Model` that answers from
 * recorded cassettes (format in `cassette.ts`) and never touches the network.
 *
 * Directory mode looks up `<dir>/<job-slug>/<step-id>.json`; file mode
 * answers every job's calls from one file; `{ path }` decides between the two
 * on first use (a step's `cassette:` may name either). Turn n is answered by
 * `turns[n-1]`. A missing file or turn is a `ModelError('replay-miss')` naming
 * the job, step, turn and the file it looked at; an invalid file is a
 * `UserError` listing its problems. Files are read once and cached.
 */
import { stat } from 'node:fs/promises';
import type { Model, ModelRequest, ModelResponse } from './model.js';
import { cassettePath, readCassette, responseFromTurn, type Cassette } from './cassette.js';
import { ModelError } from '../errors.js';
import { slugify } from '../workflow/slug.js';

export interface ReplayModelOptions {
  /** Cassette directory (`<dir>/<job-slug>/<step-id>.json`). */
  dir?: string | undefined;
  /** One cassette file that answers every job. */
  file?: string | undefined;
  /** A file or a directory, whichever exists (decided on first use; a missing path is treated as a directory). */
  path?: string | undefined;
  /** Job id → the job's folder slug (directory mode). Default `slugify`. */
  slugOf?: ((jobId: string) => string) | undefined;
}

export class ReplayModel implements Model {
  readonly #options: ReplayModelOptions;
  readonly #cache = new Map<string, Promise<Cassette | undefined>>();
  readonly #mode: Promise<{ kind: 'file' | 'dir'; path: string }>;

  /** Exactly one of `dir`, `file`, `path` must be given. */
  constructor(options: ReplayModelOptions) {
    const given = [options.dir, options.file, options.path].filter((x) => x !== undefined);
    if (given.length !== 1) throw new TypeError('ReplayModel needs exactly one of dir, file, path');
    this.#options = options;
    if (options.dir !== undefined) this.#mode = Promise.resolve({ kind: 'dir', path: options.dir });
    else if (options.file !== undefined) this.#mode = Promise.resolve({ kind: 'file', path: options.file });
    else {
      const p = options.path ?? '';
      this.#mode = stat(p).then(
        (s) => ({ kind: s.isDirectory() ? 'dir' : 'file', path: p }),
        () => ({ kind: 'dir', path: p }),
      );
    }
  }

  /** The file a (job, step) is answered from. */
  async fileFor(jobId: string, stepId: string): Promise<string> {
    const mode = await this.#mode;
    return mode.kind === 'file'
      ? mode.path
      : cassettePath(mode.path, (this.#options.slugOf ?? slugify)(jobId), stepId);
  }

  /**
   * The recorded response for `request.meta`'s job, step and turn. Rejects
   * with `ModelError('replay-miss')` when there is none, `UserError` when the
   * cassette is invalid, or the signal's reason when aborted.
   */
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    request.signal?.throwIfAborted();
    const { jobId, stepId, turn } = request.meta;
    const file = await this.fileFor(jobId, stepId);
    let loading = this.#cache.get(file);
    if (!loading) {
      loading = readCassette(file);
      this.#cache.set(file, loading);
    }
    const cassette = await loading;
    request.signal?.throwIfAborted();
    const where = `job '${jobId}', step '${stepId}', turn ${turn}`;
    if (!cassette) {
      throw new ModelError(
        'replay-miss',
        `no recorded model response for ${where}: cassette ${file} does not exist (record one with --record <dir>)`,
      );
    }
    const stored = cassette.turns[turn - 1];
    if (!stored) {
      const n = cassette.turns.length;
      throw new ModelError(
        'replay-miss',
        `no recorded model response for ${where}: cassette ${file} has ${n} turn${n === 1 ? '' : 's'} ` +
          '(the run asked for more than was recorded; re-record with --record <dir>)',
      );
    }
    return responseFromTurn(stored, turn);
  }
}
