/**
 * Issue 6 acceptance, step conditions: `if:` with `success()`, `failure()`,
 * `always()` and plain expressions behaves like GitHub Actions — a
 * condition without a status function means `success() && (…)` — observed
 * in the step statuses the real CLI writes to results.jsonl.
 */
import { describe, expect, it } from 'vitest';
import { RunRig } from '../helpers/run-rig.js';
import { lastResults } from './ci-helpers.js';

const COND = `name: cond
strategy:
  matrix:
    x: [a, b]
steps:
  - id: first
    run: echo first
  - id: only-a
    if: matrix.x == 'a'
    run: echo only a
  - id: boom
    if: \${{ matrix.x == 'b' }}
    run: exit 1
  - id: bare-after-failure
    if: matrix.x == 'b'
    run: echo must not run after a failure
  - id: on-failure
    if: failure()
    run: echo a step failed
  - id: on-success
    if: success()
    run: echo all good
  - id: always
    if: always()
    run: echo always
  - id: default
    run: echo default is success
  - id: failure-and-b
    if: failure() && matrix.x == 'b'
    run: echo failed in b
  - id: not-failure
    if: "!failure()"
    run: echo not failed
  - id: tolerated
    if: matrix.x == 'a'
    continue-on-error: true
    run: exit 3
  - id: after-tolerated
    run: echo still success
finally:
  - id: cleanup
    if: matrix.x == 'b'
    run: echo finally steps run after a failure too
`;

describe('if: conditions through the CLI', () => {
  it('success(), failure(), always(), expressions and their implicit success()', async () => {
    await using rig = await RunRig.create();
    await rig.write('cond.yaml', COND);
    const r = await rig.run(['run', 'cond.yaml', '-o', 'out', '--reporter', 'plain']);
    expect(r.code, r.stderr).toBe(1);
    const results = await lastResults(await rig.runDir());
    const statuses = (id: string): Record<string, string> =>
      Object.fromEntries(
        (results.get(id)?.steps as Array<{ id: string; status: string }>).map((s) => [s.id, s.status]),
      );
    expect(results.get('cond[x=a]')?.status).toBe('passed');
    expect(statuses('cond[x=a]')).toEqual({
      first: 'passed',
      'only-a': 'passed',
      boom: 'skipped',
      'bare-after-failure': 'skipped',
      'on-failure': 'skipped',
      'on-success': 'passed',
      always: 'passed',
      default: 'passed',
      'failure-and-b': 'skipped',
      'not-failure': 'passed',
      tolerated: 'failed',
      'after-tolerated': 'passed',
      cleanup: 'skipped',
    });
    expect(results.get('cond[x=b]')?.status).toBe('failed');
    expect(statuses('cond[x=b]')).toEqual({
      first: 'passed',
      'only-a': 'skipped',
      boom: 'failed',
      'bare-after-failure': 'skipped',
      'on-failure': 'passed',
      'on-success': 'skipped',
      always: 'passed',
      default: 'skipped',
      'failure-and-b': 'passed',
      'not-failure': 'skipped',
      tolerated: 'skipped',
      'after-tolerated': 'skipped',
      cleanup: 'passed',
    });
  });
});
