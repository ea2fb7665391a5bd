/**
 * Cassettes: recorded model responses that `--replay` (or a step's
 * `cassette:`) answers from instead of the network (product.md §8).
 *
 * Layout. With `--record <dir>` / `--replay <dir>` there is one file per
 * (job, prompt step):
 *
 *     <dir>/<job-slug>/<step-id>.json
 *
 * where `<job-slug>` is the job's folder name under `jobs/` in the results.
 * A step's `cassette:` may name such a directory, or a single file that then
 * answers that step in every job.
 *
 * File format (version 1), meant to be read and hand-edited:
 *
 *     {
 *       "version": 1,
 *       "job": "hello[task=greet]",        // informational
 *       "step": "fix",                      // informational
 *       "model": "gpt-5-mini",              // informational: the model that was recorded
 *       "turns": [
 *         {
 *           "request": {                    // informational: what the model was answering
 *             "messages": 2,
 *             "lastMessage": { "role": "user", "content": "Say hello in hello.txt" }
 *           },
 *           "response": {
 *             "content": null,
 *             "toolCalls": [
 *               { "id": "call_1", "name": "write", "arguments": { "path": "hello.txt", "content": "hi\n" } }
 *             ],
 *             "usage": { "inputTokens": 812, "outputTokens": 40, "cachedInputTokens": 0 },
 *             "finishReason": "tool_calls"
 *           }
 *         },
 *         { "response": { "content": "Done: hello.txt says hi." } }
 *       ]
 *     }
 *
 * Turn n of a step (1-based, `RequestMeta.turn`) is answered by `turns[n-1]`;
 * requests are not compared, so a cassette keeps working when tool output
 * differs slightly between runs. When the run asks for a turn the cassette
 * does not have, the call fails with `ModelError('replay-miss')` naming the
 * job, step, turn and file.
 *
 * Hand-editing conveniences: only `version`, `turns` and each `response` are
 * required; `content` defaults to `null`; `toolCalls` to `[]`; a tool call's
 * `id` to `call_<turn>_<n>`; `arguments` may be a JSON object (sent to the
 * agent JSON-encoded) or a string (sent verbatim — the recorder keeps strings
 * that are not a JSON object, such as malformed arguments, as strings);
 * `usage` fields default to 0.
 *
 * Secrets: the recorder passes every turn through a `Redactor` before it
 * touches the disk, so a cassette never holds a secret value (it holds `***`).
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChatMessage, ModelRequest, ModelResponse, ToolCall, Usage } from './model.js';
import { UserError } from '../errors.js';
import { writeFileAtomic as writeAtomic } from '../results/atomic.js';

export const CASSETTE_VERSION = 1;

/** A tool call as stored; `arguments` as an object is a hand-editing convenience. */
export interface CassetteToolCall {
  id?: string;
  name: string;
  arguments: string | Record<string, unknown>;
}

export interface CassetteResponse {
  content?: string | null;
  toolCalls?: CassetteToolCall[];
  usage?: Partial<Usage>;
  finishReason?: string;
  model?: string;
}

export interface CassetteTurn {
  /** Informational only (never matched). */
  request?: { messages?: number; lastMessage?: unknown };
  response: CassetteResponse;
}

export interface Cassette {
  version: typeof CASSETTE_VERSION;
  job?: string;
  step?: string;
  model?: string;
  turns: CassetteTurn[];
}

/** Longest message text kept in `request.lastMessage` (it is there for humans, not for matching). */
const MAX_SHOWN_CHARS = 2000;

/** A step id as a file name (step ids are `[A-Za-z_][A-Za-z0-9_-]*` already; anything else is replaced). */
export function stepFileName(stepId: string): string {
  const safe = stepId.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[.-]/, '_');
  return `${safe === '' ? 'step' : safe}.json`;
}

/** `<dir>/<job-slug>/<step-id>.json` */
export function cassettePath(dir: string, jobSlug: string, stepId: string): string {
  return path.join(dir, jobSlug, stepFileName(stepId));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks a parsed cassette; every problem is reported with its JSON path. Throws `UserError`. */
export function parseCassette(text: string, file: string): Cassette {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`cassette ${file} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  const problems: string[] = [];
  const bad = (where: string, what: string): void => {
    problems.push(`${where}: ${what}`);
  };
  if (!isRecord(raw))
    throw new UserError(`cassette ${file}: expected a JSON object with "version" and "turns"`);
  if (raw['version'] !== CASSETTE_VERSION) {
    bad(
      'version',
      `must be ${CASSETTE_VERSION} (got ${raw['version'] === undefined ? 'nothing' : JSON.stringify(raw['version'])})`,
    );
  }
  for (const key of ['job', 'step', 'model'] as const) {
    if (raw[key] !== undefined && typeof raw[key] !== 'string') bad(key, 'must be a string');
  }
  const turns = raw['turns'];
  if (!Array.isArray(turns)) bad('turns', 'must be an array');
  else {
    turns.forEach((turn: unknown, i) => {
      const at = `turns[${i}]`;
      if (!isRecord(turn)) return bad(at, 'must be an object with a "response"');
      if (turn['request'] !== undefined && !isRecord(turn['request']))
        bad(`${at}.request`, 'must be an object');
      const r = turn['response'];
      if (!isRecord(r)) return bad(`${at}.response`, 'must be an object');
      if (r['content'] !== undefined && r['content'] !== null && typeof r['content'] !== 'string') {
        bad(`${at}.response.content`, 'must be a string or null');
      }
      for (const key of ['finishReason', 'model'] as const) {
        if (r[key] !== undefined && typeof r[key] !== 'string')
          bad(`${at}.response.${key}`, 'must be a string');
      }
      const calls = r['toolCalls'];
      if (calls !== undefined) {
        if (!Array.isArray(calls)) bad(`${at}.response.toolCalls`, 'must be an array');
        else {
          calls.forEach((c: unknown, j) => {
            const cat = `${at}.response.toolCalls[${j}]`;
            if (!isRecord(c)) return bad(cat, 'must be an object with "name" and "arguments"');
            if (typeof c['name'] !== 'string') bad(`${cat}.name`, 'must be a string');
            if (c['id'] !== undefined && typeof c['id'] !== 'string') bad(`${cat}.id`, 'must be a string');
            if (
              c['arguments'] !== undefined &&
              typeof c['arguments'] !== 'string' &&
              !isRecord(c['arguments'])
            ) {
              bad(`${cat}.arguments`, 'must be a string or an object');
            }
          });
        }
      }
      const usage = r['usage'];
      if (usage !== undefined) {
        if (!isRecord(usage)) bad(`${at}.response.usage`, 'must be an object');
        else {
          for (const [k, v] of Object.entries(usage)) {
            if (!['inputTokens', 'outputTokens', 'cachedInputTokens'].includes(k)) {
              bad(
                `${at}.response.usage.${k}`,
                'unknown field (inputTokens, outputTokens, cachedInputTokens)',
              );
            } else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
              bad(`${at}.response.usage.${k}`, 'must be a number ≥ 0');
            }
          }
        }
      }
    });
  }
  if (problems.length > 0) throw new UserError(`cassette ${file} is invalid:\n  ${problems.join('\n  ')}`);
  return raw as unknown as Cassette;
}

/** Reads and checks a cassette; `undefined` when the file does not exist. Throws `UserError` when it is unreadable or invalid. */
export async function readCassette(file: string): Promise<Cassette | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read cassette ${file}: ${(e as Error).message}`, { cause: e });
  }
  return parseCassette(text, file);
}

/** The `ModelResponse` a stored turn stands for (defaults filled in). `turn` is 1-based. */
export function responseFromTurn(turn: CassetteTurn, turnNumber: number): ModelResponse {
  const r = turn.response;
  const toolCalls: ToolCall[] = (r.toolCalls ?? []).map((c, i) => ({
    id: c.id ?? `call_${turnNumber}_${i + 1}`,
    name: c.name,
    arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments),
  }));
  const response: ModelResponse = {
    content: r.content ?? null,
    toolCalls,
    usage: {
      inputTokens: r.usage?.inputTokens ?? 0,
      outputTokens: r.usage?.outputTokens ?? 0,
      cachedInputTokens: r.usage?.cachedInputTokens ?? 0,
    },
  };
  if (r.finishReason !== undefined) response.finishReason = r.finishReason;
  if (r.model !== undefined) response.model = r.model;
  return response;
}

/** Arguments as stored: a JSON object when the text is one (readable), else the text verbatim. */
function storedArguments(text: string): string | Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed)) return parsed;
  } catch {
    // malformed arguments are kept verbatim so a replay reproduces them
  }
  return text;
}

function shown(text: string): string {
  return text.length <= MAX_SHOWN_CHARS
    ? text
    : `${text.slice(0, MAX_SHOWN_CHARS)}… [${text.length - MAX_SHOWN_CHARS} more chars]`;
}

function summarizeMessage(m: ChatMessage): Record<string, unknown> {
  switch (m.role) {
    case 'tool':
      return { role: m.role, toolCallId: m.toolCallId, content: shown(m.content) };
    case 'assistant':
      return {
        role: m.role,
        content: m.content === null ? null : shown(m.content),
        ...(m.toolCalls?.length ? { toolCalls: m.toolCalls.map((c) => ({ id: c.id, name: c.name })) } : {}),
      };
    default:
      return { role: m.role, content: shown(m.content) };
  }
}

/** One recorded exchange as a cassette turn (not yet redacted). */
export function turnFromExchange(request: ModelRequest, response: ModelResponse): CassetteTurn {
  const last = request.messages.at(-1);
  const stored: CassetteResponse = {
    content: response.content,
    toolCalls: response.toolCalls.map((c) => ({
      id: c.id,
      name: c.name,
      arguments: storedArguments(c.arguments),
    })),
    usage: { ...response.usage },
  };
  if (response.finishReason !== undefined) stored.finishReason = response.finishReason;
  if (response.model !== undefined) stored.model = response.model;
  return {
    request: { messages: request.messages.length, ...(last ? { lastMessage: summarizeMessage(last) } : {}) },
    response: stored,
  };
}

/** Pretty JSON with a trailing newline (diff- and editor-friendly). */
export function serializeCassette(cassette: Cassette): string {
  return `${JSON.stringify(cassette, null, 2)}\n`;
}

/**
 * Writes `text` to `file` atomically (temp file, flushed, renamed over the
 * target), creating the directory first. A crash leaves either the old or the
 * new content, never a torn file.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeAtomic(file, text);
}
