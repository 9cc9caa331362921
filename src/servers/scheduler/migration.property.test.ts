// Property: a running program moved at random points, to random peers, several hops, prints
// exactly what it prints unmoved. `busy N` prints 1, 2, 3, … (one line per N iterations) and
// never ends, so its unmoved output is known (busyLines): each run checks the output it got up to a kill
// is exactly the first lines of that sequence (no line lost, none twice, none out of order).
import { beforeAll, describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import { BUSY_EVERY, busyLines, simCluster } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

describe('migration keeps output byte-identical', () => {
  test('random hops of a busy program: its output is the unmoved sequence, exactly', async () => {
    const { peers, pump, terminal, findRow } = await simCluster(3, { seed: 'hops' });
    const t = terminal(peers[0]!);
    const lines = (pid: string) => t.raw(pid).split('\n').length - 1;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ steps: fc.integer({ min: 0, max: 30 }), to: fc.integer({ min: 1, max: 2 }) }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 2 }),
        async (hops, first) => {
          let host = first;
          const pid = await t.run('busy', [String(BUSY_EVERY)], { on: peers[host]! });
          expect(await pump(() => lines(pid) >= 1)).toBe(true);
          let moves = 0;
          for (const hop of hops) {
            await pump(() => false, hop.steps, 0);
            const to = (host + hop.to) % peers.length;
            const r = await t.request({ kind: 'migrate', pid, to: peers[to]!.id });
            expect(r, JSON.stringify(r)).toMatchObject({ kind: 'migrate.ok', peer: peers[to]!.id });
            host = to;
            moves++;
          }
          const after = lines(pid);
          expect(await pump(() => lines(pid) >= after + 2)).toBe(true);
          expect(await findRow(t, (r) => r.pid === pid && r.peer === peers[host]!.id && r.moves === moves)).toBeDefined();
          expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
          expect(await pump(() => !!t.exit(pid))).toBe(true);
          const got = t.raw(pid);
          const n = lines(pid);
          const want = busyLines(n);
          expect(got).toBe(want);
          expect(t.shown(pid)).toBe(want);
        },
      ),
      { numRuns: 5, seed: 42, endOnFailure: true },
    );
  }, 180_000);
});
