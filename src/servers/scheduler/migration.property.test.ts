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

/** Sample programs that end by themselves, with what they read on stdin (interactive when given). */
const PROGRAMS: { name: string; args: string[]; stdin?: string }[] = [
  { name: 'memhog', args: ['300', '40'] },
  { name: 'cat', args: [], stdin: 'one\ntwo\nthree\n'.repeat(200) },
  { name: 'wc', args: ['/README.txt'] },
  { name: 'sha256sum', args: ['/README.txt'] },
  { name: 'grep', args: ['-n', 'the', '/README.txt'] },
  { name: 'tee', args: ['/tmp/copy'], stdin: 'tee line\n'.repeat(300) },
  { name: 'hello', args: ['moved', 'world'] },
];

describe('every sample program moved at random points prints what it prints unmoved', () => {
  test('random program, random hops (before, during, maybe after its end)', async () => {
    const { peers, pump, terminal } = await simCluster(3, { seed: 'hops-programs' });
    const t = terminal(peers[0]!);
    /** Runs one to its end, moving it at the given steps; returns its output as the terminal shows it. */
    const runOnce = async (p: (typeof PROGRAMS)[number], hops: { steps: number; to: number }[]) => {
      let host = 0;
      const pid = await t.run(p.name, p.args, { on: peers[host]!, ...(p.stdin !== undefined ? { interactive: true } : {}) });
      if (p.stdin !== undefined) {
        // Fed in pieces while it runs and moves: none may be lost or read twice.
        const pieces = p.stdin.match(/[\s\S]{1,100}/g) ?? [];
        void (async () => {
          for (const piece of pieces) {
            t.send({ kind: 'stdin', pid, data: new TextEncoder().encode(piece) });
            await pump(() => false, 3, 0);
          }
          t.send({ kind: 'stdin.end', pid });
        })();
      }
      for (const hop of hops) {
        await pump(() => !!t.exit(pid), hop.steps, 0);
        if (t.exit(pid)) break;
        const to = (host + hop.to) % peers.length;
        const r = await t.request({ kind: 'migrate', pid, to: peers[to]!.id });
        // The only refusal left is a program that ended first (a request that meets it between
        // two hosts follows it): the output must still be the unmoved one.
        if (r.kind === 'migrate.ok') {
          host = to;
          moved.set(p.name, (moved.get(p.name) ?? 0) + 1);
        } else {
          expect(r.kind).toBe('migrate.failed');
          const message = (r as { message: string }).message;
          expect(message).toMatch(/^cannot move \S+: it has ended$|^no such process: /);
          refused.push(message);
        }
      }
      expect(await pump(() => !!t.exit(pid), 200_000)).toBe(true);
      expect(t.exit(pid)!.code).toBe(0);
      return t.shown(pid);
    };
    const unmoved = new Map<string, string>();
    const moved = new Map<string, number>();
    const refused: string[] = [];
    for (const p of PROGRAMS) unmoved.set(p.name, await runOnce(p, []));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...PROGRAMS),
        fc.array(fc.record({ steps: fc.integer({ min: 0, max: 40 }), to: fc.integer({ min: 1, max: 2 }) }), { minLength: 1, maxLength: 3 }),
        async (p, hops) => {
          expect(await runOnce(p, hops)).toBe(unmoved.get(p.name));
        },
      ),
      { numRuns: 12, seed: 7, endOnFailure: true },
    );
    // The property is only as good as the moves it made: the long-running ones really moved.
    // (Which ones moved depends on timing — a short program may end first — but some must.)
    expect([...moved.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
  }, 300_000);
});

/**
 * Parents (they spawn and wait for children) that end by themselves. Where a part ran and how
 * fast ping played are masked: the rest of the output is the unmoved one, byte for byte.
 */
const PARENTS: { name: string; args: string[]; speculation?: 'off' }[] = [
  { name: 'primes', args: ['2000000', '3'] },
  { name: 'ping', args: ['150'] },
  // With Fork On Wait the writer runs ahead of its replica's acks: a move quiesces it first.
  { name: 'journal', args: ['200', '10'] },
  { name: 'journal', args: ['200', '10'], speculation: 'off' },
];
const keyOf = (p: (typeof PARENTS)[number]) => `${p.name}${p.speculation === 'off' ? ' (speculation off)' : ''}`;

describe('a parent moved at random points prints what it prints unmoved', () => {
  test('primes, ping and journal (speculating and not): random hops while their children run', async () => {
    const { peers, pump, terminal } = await simCluster(3, { seed: 'hops-parents' });
    const t = terminal(peers[0]!);
    const mask = (out: string) => out.replace(/ on [0-9a-f]{8}:/g, ' on PEER:').replace(/avg [\d.]+ ms/g, 'avg X ms');
    let moves = 0;
    const movedBy = new Map<string, number>();
    const runOnce = async (p: (typeof PARENTS)[number], hops: { steps: number; to: number }[]) => {
      let host = 0;
      const r = await t.request({ kind: 'run', name: p.name, args: p.args, on: peers[host]!.id, ...(p.speculation ? { speculation: p.speculation } : {}) });
      if (r.kind !== 'run.ok') throw new Error(JSON.stringify(r));
      const pid = r.pid;
      for (const hop of hops) {
        await pump(() => !!t.exit(pid), hop.steps, 0);
        if (t.exit(pid)) break;
        const to = (host + hop.to) % peers.length;
        const m = await t.request({ kind: 'migrate', pid, to: peers[to]!.id });
        if (m.kind === 'migrate.ok') {
          host = to;
          moves++;
          movedBy.set(keyOf(p), (movedBy.get(keyOf(p)) ?? 0) + 1);
        } else {
          // Refused only when it ended first, when its speculation did not settle in time, or
          // while a child it spawns is not started yet (its record could not travel): each a
          // clear reason, and it runs on where it was.
          expect((m as { message: string }).message).toMatch(/^cannot move \S+: it has ended$|^no such process: |speculation did not settle|it is starting a child process$/);
        }
      }
      expect(await pump(() => !!t.exit(pid), 200_000)).toBe(true);
      expect(t.exit(pid)!.code, t.shown(pid)).toBe(0);
      return mask(t.shown(pid));
    };
    const unmoved = new Map<string, string>();
    for (const p of PARENTS) unmoved.set(keyOf(p), await runOnce(p, []));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...PARENTS),
        fc.array(fc.record({ steps: fc.integer({ min: 0, max: 60 }), to: fc.integer({ min: 1, max: 2 }) }), { minLength: 1, maxLength: 3 }),
        async (p, hops) => {
          expect(await runOnce(p, hops)).toBe(unmoved.get(keyOf(p)));
        },
      ),
      { numRuns: 9, seed: 11, endOnFailure: true },
    );
    // Parents really moved (most hops land while they run).
    expect(moves, JSON.stringify([...movedBy])).toBeGreaterThanOrEqual(5);
  }, 300_000);
});
