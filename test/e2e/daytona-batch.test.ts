/**
 * Issue 5 acceptance, part 1: a 20-job batch at `-j 10` through the real CLI
 * on the `daytona` backend — the real `@daytonaio/sdk` against the fake
 * Daytona server (commands really run in bwrap jails), a prompt step whose
 * agent writes a file through the real `openai` package and the fake model
 * server, a directory upload, artifacts — asserted on the server side.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LABELS, labelValue } from '../../src/sandbox/daytona-cleanup.js';
import { sandboxName } from '../../src/sandbox/daytona-create.js';
import { startFakeDaytona } from '../helpers/fake-daytona/index.js';
import { daytonaCliEnv } from '../helpers/fake-daytona/cli.js';
import { reply, startFakeOpenAI } from '../helpers/fake-openai-server.js';
import { RunRig } from '../helpers/run-rig.js';

const JOBS = 20;
const SECRET = 's3cr3t-token-value-e2e';

interface WireMessage {
  role: string;
  content: string | null;
}

describe('rho-flow run --backend daytona: a 20-job batch at -j 10', () => {
  it('uploads, runs, prompts, downloads artifacts, labels everything and deletes every sandbox', async () => {
    await using fake = await startFakeDaytona({ latency: { create: 40, delete: 20 } });
    await using model = await startFakeOpenAI({
      // Turn 1: write a file through the `write` tool; turn 2 (after the tool result): answer.
      handler: (req) => {
        const messages = (req.body as { messages: WireMessage[] }).messages;
        const user = messages.find((m) => m.role === 'user')?.content ?? '';
        const n = /job (\d+)/.exec(user)?.[1] ?? '?';
        if (messages.some((m) => m.role === 'tool')) return reply.text(`wrote the note of job ${n}`);
        return reply.toolCalls([
          { name: 'write', arguments: { path: 'out/agent.txt', content: `agent note ${n}\n` } },
        ]);
      },
    });
    await using rig = await RunRig.create();
    await rig.write('repo/data.txt', 'data\n');
    await rig.write('repo/bin/tool.sh', '#!/bin/sh\necho tool-ran\n');
    await fs.chmod(path.join(rig.dir, 'repo/bin/tool.sh'), 0o755);
    await fs.symlink('data.txt', path.join(rig.dir, 'repo/link.txt'));
    await rig.write(
      'batch.yaml',
      `name: batch
sandbox:
  backend: daytona
  image: python:3.13
  resources: { cpu: 2, memory: 4, disk: 10 }
  network: off
  env: { GREETING: hello }
  auto-stop: 20m
  auto-delete: 45m
timeout: 2m
profile: developer
model: fake-model
uploads:
  - ./repo:/work/repo
secrets:
  API_TOKEN: { from-env: E2E_API_TOKEN }
strategy:
  matrix:
    n: [${Array.from({ length: JOBS }, (_, i) => i + 1).join(', ')}]
steps:
  - id: check
    run: |
      test "$(cat /work/repo/data.txt)" = data
      test "$(readlink /work/repo/link.txt)" = data.txt
      /work/repo/bin/tool.sh
      test "$GREETING" = hello
      test -n "$API_TOKEN"
      mkdir -p /work/out
      echo "job \${{ matrix.n }}" > /work/out/n.txt
      sleep 0.6
  - id: agent
    prompt: Write the note of job \${{ matrix.n }}.
    max-turns: 4
  - id: verify
    run: cat /work/out/agent.txt
artifacts:
  - path: /work/out
    to: collected/
`,
    );
    const runId = 'e2e-daytona-batch';
    const running = rig.start(
      ['run', 'batch.yaml', '-j', '10', '-o', 'out', '--run-id', runId, '--reporter', 'plain'],
      daytonaCliEnv(fake, {
        extra: { OPENAI_BASE_URL: model.url, OPENAI_API_KEY: 'test', E2E_API_TOKEN: SECRET },
      }),
    );
    const owner = `${os.hostname()}:${String(running.child.pid)}`;
    const startedAt = Date.now();
    const r = await running.result(90_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);

    // Results: every job passed, the agent's file came back as an artifact.
    const results = await rig.results();
    expect(results).toHaveLength(JOBS);
    expect(results.filter((x) => x.status !== 'passed')).toEqual([]);
    const runDir = await rig.runDir();
    for (const res of results) {
      const n = (res.matrix as { n: number }).n;
      const dir = path.join(runDir, 'jobs', res.slug as string, 'artifacts', 'collected', 'out');
      await expect(fs.readFile(path.join(dir, 'n.txt'), 'utf8')).resolves.toBe(`job ${n}\n`);
      await expect(fs.readFile(path.join(dir, 'agent.txt'), 'utf8')).resolves.toBe(`agent note ${n}\n`);
      const steps = res.steps as Array<{ id: string; status: string; output?: string }>;
      expect(steps.map((s) => [s.id, s.status])).toEqual([
        ['check', 'passed'],
        ['agent', 'passed'],
        ['verify', 'passed'],
      ]);
      expect(steps[1]?.output).toBe(`wrote the note of job ${n}`);
      expect(res.backend).toBe('daytona');
    }
    expect(model.requests).toHaveLength(2 * JOBS);

    // Server side: one sandbox per job, created as asked, all deleted.
    const created = fake.sandboxes.filter((s) => !s.seeded);
    expect(created).toHaveLength(JOBS);
    expect(fake.live()).toEqual([]);
    expect(fake.deleted()).toHaveLength(JOBS);
    expect(fake.peakLive).toBe(10);
    const jobIds = new Set(results.map((x) => labelValue(x.id as string)));
    for (const sb of created) {
      const b = sb.createBody;
      expect(b).toMatchObject({
        buildInfo: { dockerfileContent: 'FROM python:3.13\n' },
        cpu: 2,
        memory: 4,
        disk: 10,
        autoStopInterval: 20,
        autoDeleteInterval: 45,
        networkBlockAll: true,
        env: { GREETING: 'hello', API_TOKEN: SECRET },
      });
      expect(sb.labels).toMatchObject({
        [LABELS.managed]: 'true',
        [LABELS.runId]: runId,
        [LABELS.owner]: owner,
        'rho-flow.workflow': 'batch',
      });
      const jobLabel = sb.labels[LABELS.jobId];
      expect(jobIds.has(jobLabel ?? '')).toBe(true);
      jobIds.delete(jobLabel ?? '');
      const createdAt = Date.parse(sb.labels[LABELS.createdAt] ?? '');
      expect(createdAt).toBeGreaterThanOrEqual(startedAt - 1000);
      expect(createdAt).toBeLessThanOrEqual(Date.now());
    }
    expect(jobIds.size).toBe(0);
    const slugs = results.map((x) => x.slug as string);
    expect(new Set(created.map((s) => s.name))).toEqual(new Set(slugs.map((s) => sandboxName(runId, s, 1))));

    // The secret never reaches a file rho-flow wrote.
    const files = await fs.readdir(runDir, { recursive: true });
    for (const f of files) {
      const p = path.join(runDir, f);
      if ((await fs.stat(p)).isFile()) expect(await fs.readFile(p, 'utf8')).not.toContain(SECRET);
    }
  });
});

describe('rho-flow run --backend daytona: uploading a large tree', () => {
  it('a 2,000-file tree takes as many HTTP requests as a 10-file one (one tar archive); --backend overrides the file', async () => {
    await using fake = await startFakeDaytona();
    await using rig = await RunRig.create();
    for (const [size, files] of [
      ['small', 10],
      ['big', 2000],
    ] as const) {
      for (let i = 0; i < files; i++) {
        await rig.write(`trees/${size}/d${i % 20}/f${i}.txt`, `file ${i}\n`);
      }
    }
    await rig.write(
      'upload.yaml',
      `name: upload
strategy:
  matrix:
    size: [small, big]
uploads:
  - ./trees/\${{ matrix.size }}:/work/tree
steps:
  - run: echo "files=$(find /work/tree -type f | wc -l)" >> "$RHO_FLOW_OUTPUT"
`,
    );
    const r = await rig.run(
      ['run', 'upload.yaml', '--backend', 'daytona', '-j', '2', '-o', 'out', '--reporter', 'plain'],
      daytonaCliEnv(fake),
    );
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const results = await rig.results();
    const counted = Object.fromEntries(
      results.map((x) => [
        (x.matrix as { size: string }).size,
        (x.steps as Array<{ outputs: Record<string, string> }>)[0]?.outputs.files,
      ]),
    );
    expect(counted).toEqual({ small: '10', big: '2000' });
    // Requests per sandbox and endpoint, as the server counted them.
    const perJob = Object.fromEntries(
      results.map((x) => {
        const id = x.sandboxId as string;
        const byEndpoint: Record<string, number> = {};
        for (const q of fake.requests.filter((q) => q.sandboxId === id)) {
          byEndpoint[q.endpoint] = (byEndpoint[q.endpoint] ?? 0) + 1;
        }
        return [(x.matrix as { size: string }).size, byEndpoint];
      }),
    );
    expect(perJob.big).toEqual(perJob.small);
    // create, probe, archive upload + unpack, the step, delete.
    expect(perJob.big).toEqual({ create: 1, exec: 3, upload: 1, delete: 1 });
    expect(fake.live()).toEqual([]);
  });
});
