/**
 * Shared by the `ci-*` end-to-end tests (issue 6): a fake model server that
 * counts prompt-step requests per job (the side effect that proves a job
 * ran), fault injection by job and attempt, and readers for the files a run
 * writes (results.jsonl, summary.json, JUnit through `junit2json`).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse, type TestSuites } from 'junit2json';
import { reply, startFakeOpenAI, type FakeOpenAIServer } from '../helpers/fake-openai-server.js';
import type { RunSummary } from '../../src/results/types.js';

/** The prompt every counted step sends: the fake reads the job id and attempt from it. */
export const COUNTED_PROMPT = 'JOB=${{ job.id }} ATTEMPT=${{ job.attempt }}';

export interface CountingModel extends AsyncDisposable {
  server: FakeOpenAIServer;
  /** Environment that points the CLI at the fake (no model-level retries). */
  env: Record<string, string>;
  /** Requests so far per job id. */
  counts(): Map<string, number>;
  /** Requests so far for one job. */
  count(jobId: string): number;
  /** Decides which requests get a 500 (default: none). */
  failWhen(predicate: (jobId: string, attempt: number) => boolean): void;
}

/**
 * A fake OpenAI server that answers every counted prompt with a short final
 * answer (no tool calls), or a 500 when the `failWhen` predicate says so.
 */
export async function startCountingModel(): Promise<CountingModel> {
  let fail: (jobId: string, attempt: number) => boolean = () => false;
  const server = await startFakeOpenAI({
    handler: (req) => {
      const body = req.body as { messages?: Array<{ role: string; content: unknown }> } | undefined;
      const user = body?.messages?.find((m) => m.role === 'user');
      const text = typeof user?.content === 'string' ? user.content : JSON.stringify(user?.content ?? '');
      const m = /JOB=(\S+) ATTEMPT=(\d+)/.exec(text);
      if (!m) return reply.error(400, `no JOB= marker in: ${text.slice(0, 80)}`);
      return fail(m[1] ?? '', Number(m[2])) ? reply.error(500, 'injected outage') : reply.text('done');
    },
  });
  const jobOf = (r: { body: unknown }): string | undefined => {
    const body = r.body as { messages?: Array<{ role: string; content: unknown }> } | undefined;
    const user = body?.messages?.find((m) => m.role === 'user');
    return typeof user?.content === 'string' ? /JOB=(\S+)/.exec(user.content)?.[1] : undefined;
  };
  const counts = (): Map<string, number> => {
    const map = new Map<string, number>();
    for (const r of server.requests) {
      const id = jobOf(r);
      if (id !== undefined) map.set(id, (map.get(id) ?? 0) + 1);
    }
    return map;
  };
  return {
    server,
    env: {
      OPENAI_BASE_URL: server.url,
      OPENAI_API_KEY: 'test',
      RHO_FLOW_MODEL_RETRIES: '0',
    },
    counts,
    count: (id) => counts().get(id) ?? 0,
    failWhen(predicate) {
      fail = predicate;
    },
    [Symbol.asyncDispose]: () => server.close(),
  };
}

export type Result = Record<string, unknown> & { id: string; status: string; attempts: number };

/** Every line of results.jsonl (a torn last line is skipped). */
export async function resultLines(runDir: string): Promise<Result[]> {
  const text = await fs.readFile(path.join(runDir, 'results.jsonl'), 'utf8').catch(() => '');
  const out: Result[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as Result);
    } catch {
      /* torn by a SIGKILL */
    }
  }
  return out;
}

/** The last result per job id. */
export async function lastResults(runDir: string): Promise<Map<string, Result>> {
  const map = new Map<string, Result>();
  for (const r of await resultLines(runDir)) map.set(r.id, r);
  return map;
}

export async function readSummaryFile(runDir: string): Promise<RunSummary> {
  return JSON.parse(await fs.readFile(path.join(runDir, 'summary.json'), 'utf8')) as RunSummary;
}

export async function readJsonFile<T>(file: string): Promise<T> {
  return JSON.parse(await fs.readFile(file, 'utf8')) as T;
}

/** A test case as CI sees it: suite, name, and which outcome element it has. */
export interface Case {
  suite: string;
  name: string;
  outcome: 'passed' | 'failure' | 'error' | 'skipped';
}

/** Parses a JUnit file with junit2json into its test cases, in file order. */
export async function junitCases(file: string): Promise<{ doc: TestSuites; cases: Case[] }> {
  const doc = (await parse(await fs.readFile(file, 'utf8'))) as TestSuites;
  const cases: Case[] = [];
  for (const suite of doc.testsuite ?? []) {
    for (const c of suite.testcase ?? []) {
      const outcome = c.failure ? 'failure' : c.error ? 'error' : c.skipped ? 'skipped' : 'passed';
      cases.push({ suite: suite.name ?? '', name: c.name ?? '', outcome });
    }
  }
  return { doc, cases };
}

/** `n` consecutive integers from 1, as a YAML flow list. */
export function oneTo(n: number): string {
  return `[${Array.from({ length: n }, (_, i) => i + 1).join(', ')}]`;
}
