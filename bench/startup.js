#!/usr/bin/env node
/**
 * Target 6 — startup (issue 7). Needs `npm run build`.
 *
 *   node bench/startup.js [--runs 10] [--json]
 *
 * Wall time of `rho-flow --version` (target ≤ 150 ms) and of `rho-flow
 * validate` of one workflow file (target ≤ 300 ms), against `node -e 0` on
 * the same machine in the same run (node's own startup: the floor). Runs
 * are interleaved so load changes hit every case alike; medians. Also the
 * CPU time of each (less sensitive to load than wall time) and the figures
 * minus the `node -e 0` floor.
 *
 * Measured processes run without `NODE_EXTRA_CA_CERTS` (`lib.js`'s
 * `measuredEnv`): node 20 parses that bundle before any JavaScript runs. Where
 * it is set, `node -e 0` and `--version` are measured with it as well
 * (context rows): the difference is what it costs every node start here.
 */
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import {
  BIN,
  KEEP_CA_ENV,
  benchArgs,
  figure,
  machine,
  median,
  progress,
  report,
  requireBuild,
  round,
  runNode,
  tempDir,
} from './lib.js';

const args = benchArgs(process.argv.slice(2), { runs: 10 });
requireBuild();

/** A realistic workflow: matrix, vars, templates, run and prompt steps, artifacts. */
const WORKFLOW = `# yaml-language-server: $schema=../schemas/workflow.schema.json
name: startup-bench
description: One workflow for the startup benchmark.
sandbox:
  backend: local
  working-dir: /work
  env:
    SUITE: \${{ vars.suite }}
timeout: 30m
profile: developer
vars:
  suite: unit
strategy:
  matrix:
    task: [flaky-test, type-error]
    python: ["3.12", "3.13"]
  repeat: 2
steps:
  - id: baseline
    run: |
      echo "task=\${{ matrix.task }} python=\${{ matrix.python }}"
      echo "result=ok" >> "$RHO_FLOW_OUTPUT"
    timeout: 5m
    continue-on-error: true
  - id: fix
    prompt: |
      Fix \${{ matrix.task }} (suite \${{ vars.suite }}, attempt \${{ repeat.index }}).
      The baseline said: \${{ steps.baseline.outputs.result }}
    max-turns: 20
  - id: verify
    run: echo verify \${{ job.id }}
artifacts:
  - path: /work/out
    to: out/
`;

const tmp = tempDir('rho-flow-bench-startup-');
try {
  const file = path.join(tmp.path, 'wf.yaml');
  fs.writeFileSync(file, WORKFLOW);
  const cases = [
    { id: 'node', label: 'node -e 0 (floor)', args: ['-e', '0'] },
    { id: 'version', label: 'rho-flow --version', args: [BIN, '--version'], target: 150 },
    { id: 'validate1', label: 'rho-flow validate (1 file)', args: [BIN, 'validate', file], target: 300 },
  ];
  const caFile = process.env.NODE_EXTRA_CA_CERTS;
  const caCases =
    caFile && !KEEP_CA_ENV
      ? [
          { id: 'nodeCa', label: 'node -e 0 with NODE_EXTRA_CA_CERTS', args: ['-e', '0'], keepCa: true },
          {
            id: 'versionCa',
            label: 'rho-flow --version with NODE_EXTRA_CA_CERTS',
            args: [BIN, '--version'],
            keepCa: true,
          },
        ]
      : [];
  const all = [...cases, ...caCases];
  const run = (c) => runNode(c.args, { expectCode: 0, ...(c.keepCa ? { keepCaEnv: true } : {}) });
  progress(`startup: ${args.runs} interleaved runs of ${all.length} cases`);
  for (const c of all) await run(c); // warm the page cache
  const samples = new Map(all.map((c) => [c.id, []]));
  for (let r = 0; r < args.runs; r++) {
    for (const c of all) samples.get(c.id).push(await run(c));
  }
  const wall = (id) => median(samples.get(id).map((s) => s.wallMs));
  const cpu = (id) => median(samples.get(id).map((s) => s.cpuMs));
  const floor = wall('node');
  const figures = [
    figure(
      'startup.nodeMs',
      'node -e 0 (floor), wall',
      round(floor),
      'ms',
      undefined,
      undefined,
      `CPU ${round(cpu('node'))} ms`,
    ),
  ];
  for (const c of cases.slice(1)) {
    figures.push(
      figure(
        `startup.${c.id}Ms`,
        `${c.label}, wall`,
        round(wall(c.id)),
        'ms',
        c.target,
        '<=',
        `CPU ${round(cpu(c.id))} ms`,
      ),
      figure(
        `startup.${c.id}OverFloorMs`,
        `${c.label} minus the node floor`,
        round(wall(c.id) - floor),
        'ms',
      ),
      figure(`startup.${c.id}Ratio`, `${c.label} / node -e 0`, round(wall(c.id) / floor, 2), '×'),
    );
  }
  if (caCases.length > 0) {
    const certs = (fs.readFileSync(caFile, 'utf8').match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
    figures.push(
      figure(
        'startup.nodeCaMs',
        `node -e 0 with this machine's NODE_EXTRA_CA_CERTS (${certs} certificates), wall`,
        round(wall('nodeCa')),
        'ms',
        undefined,
        undefined,
        `CPU ${round(cpu('nodeCa'))} ms; node 20 parses them before any JavaScript runs`,
      ),
      figure(
        'startup.versionCaMs',
        'rho-flow --version with it, wall',
        round(wall('versionCa')),
        'ms',
        undefined,
        undefined,
        `${round(wall('versionCa') - wall('nodeCa'))} ms over that node; CPU ${round(cpu('versionCa'))} ms`,
      ),
      figure(
        'startup.caCostMs',
        'what NODE_EXTRA_CA_CERTS adds to every node start here',
        round(wall('nodeCa') - floor),
        'ms',
      ),
    );
  }
  report(
    {
      bench: 'startup',
      title: '6. Startup — rho-flow --version and validate of one file vs node -e 0',
      command: `node bench/startup.js --runs ${args.runs}`,
      machine: machine(),
      figures,
      details: Object.fromEntries(
        [...samples].map(([id, s]) => [
          id,
          { wallMs: s.map((x) => round(x.wallMs)), cpuMs: s.map((x) => round(x.cpuMs)) },
        ]),
      ),
    },
    args.json,
  );
} finally {
  tmp.remove();
}
