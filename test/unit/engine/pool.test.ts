import { describe, expect, it } from 'vitest';
import { JobPool } from '../../../src/engine/pool.js';
import { Deferred } from '../../../src/util/deferred.js';

/** A controllable fake job: the test decides when each one finishes. */
function controllable(n: number): { gates: Deferred<void>[]; started: number[] } {
  return { gates: Array.from({ length: n }, () => new Deferred<void>()), started: [] };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('JobPool', () => {
  it('never runs more than the global limit and reaches it', async () => {
    const pool = new JobPool(3);
    const { gates, started } = controllable(10);
    let live = 0;
    let peak = 0;
    const all = gates.map((g, i) =>
      pool.run(async () => {
        started.push(i);
        live++;
        peak = Math.max(peak, live);
        await g.promise;
        live--;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1, 2]);
    gates[1]!.resolve();
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    for (const g of gates) g.resolve();
    await Promise.all(all);
    expect(peak).toBe(3);
    expect(pool.peak).toBe(3);
  });

  it('applies a per-group limit without holding global slots while waiting', async () => {
    const pool = new JobPool(4);
    const a = controllable(4);
    const b = controllable(2);
    const running = new Set<string>();
    const runs = [
      ...a.gates.map((g, i) =>
        pool.run(
          async () => {
            running.add(`a${i}`);
            await g.promise;
            running.delete(`a${i}`);
          },
          { key: 'A', limit: 1 },
        ),
      ),
      ...b.gates.map((g, i) =>
        pool.run(async () => {
          running.add(`b${i}`);
          await g.promise;
          running.delete(`b${i}`);
        }),
      ),
    ];
    await tick();
    // Only one job of group A runs, and B's jobs were not blocked behind A's queue.
    expect([...running].sort()).toEqual(['a0', 'b0', 'b1']);
    a.gates[0]!.resolve();
    await tick();
    expect([...running].sort()).toEqual(['a1', 'b0', 'b1']);
    for (const g of [...a.gates, ...b.gates]) g.resolve();
    await Promise.all(runs);
  });

  it('after stop(), queued tasks are called with started=false and every promise settles', async () => {
    const pool = new JobPool(1);
    const gate = new Deferred<void>();
    const seen: boolean[] = [];
    const first = pool.run(async (started) => {
      seen.push(started);
      await gate.promise;
    });
    const rest = [1, 2, 3].map(() =>
      pool.run((started) => {
        seen.push(started);
        return Promise.resolve();
      }),
    );
    await tick();
    pool.stop();
    gate.resolve();
    await Promise.all([first, ...rest]);
    expect(seen).toEqual([true, false, false, false]);
  });
});
