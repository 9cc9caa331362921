// The replication planner's policy: rarest first, spread over holders within a window, never
// back to a holder that sent a bad block, requests of a departed holder given back; and the
// replication factor by rendezvous hashing.
import { describe, expect, test } from 'vitest';
import { ReplicationPlanner, REQUEST_TIMEOUT_MS, WINDOW, replicationFactor, shouldHold } from './replication.ts';
import type { Manifest } from './types.ts';

const h = (n: number) => n.toString(16).padStart(64, '0');
const P = (c: string) => c.repeat(32);
const [A, B, C] = [P('a'), P('b'), P('c')];

function planner(manifests: Record<string, Manifest>, adverts: Record<string, { versions?: string[]; blocks?: string[] }>, held: Set<string> = new Set()) {
  const p = new ReplicationPlanner();
  p.setManifests(new Map(Object.entries(manifests)));
  for (const [peer, a] of Object.entries(adverts)) p.setAdvert(peer, a.versions ?? [], a.blocks ?? []);
  p.setWants(Object.values(manifests), (x) => held.has(x));
  return p;
}

describe('replication planner', () => {
  test('rarest block first, then file order; blocks already held are never asked for', () => {
    const m = { v: { size: 4 << 20, blocks: [h(1), h(2), h(3), h(4)] } };
    // A holds all; C holds block 3 too (so 3 is the least rare); block 2 is already here.
    const p = planner(m, { [A]: { versions: ['v'] }, [C]: { blocks: [h(3)] } }, new Set([h(2)]));
    const reqs = p.next(0);
    expect(reqs.map((r) => r.hash)).toEqual([h(1), h(4), h(3)]);
    expect(reqs.find((r) => r.hash === h(3))?.peer).toBe(C); // the idle holder takes it
  });

  test('requests spread over holders, at most WINDOW in flight per holder', () => {
    const blocks = Array.from({ length: 3 * WINDOW }, (_, i) => h(i + 1));
    const p = planner({ v: { size: blocks.length << 20, blocks } }, { [A]: { versions: ['v'] }, [B]: { versions: ['v'] } });
    const reqs = p.next(0);
    expect(reqs).toHaveLength(2 * WINDOW);
    expect(reqs.filter((r) => r.peer === A)).toHaveLength(WINDOW);
    expect(reqs.filter((r) => r.peer === B)).toHaveLength(WINDOW);
    expect(p.next(1)).toEqual([]); // windows full
    expect(p.delivered(reqs[0]!.hash, reqs[0]!.peer)).toBe(true);
    expect(p.next(2)).toHaveLength(1); // one slot freed
  });

  test('a block that failed its hash check from a holder is asked of another, never of it again', () => {
    const p = planner({ v: { size: 1 << 20, blocks: [h(1)] } }, { [A]: { versions: ['v'] }, [B]: { versions: ['v'] } });
    const [first] = p.next(0);
    p.failed(first!.hash, first!.peer);
    const [second] = p.next(1);
    expect(second!.peer).not.toBe(first!.peer);
    p.failed(second!.hash, second!.peer);
    expect(p.next(2)).toEqual([]);
    expect(p.delivered(h(1), first!.peer)).toBe(false); // not awaited from it any more
  });

  test('a holder that leaves gives its requests back; a silent one times out', () => {
    const p = planner({ v: { size: 2 << 20, blocks: [h(1), h(2)] } }, { [A]: { versions: ['v'] } });
    expect(p.next(0)).toHaveLength(2);
    expect(p.removePeer(A).sort()).toEqual([h(1), h(2)]);
    expect(p.unavailable().sort()).toEqual([h(1), h(2)]);
    p.setAdvert(B, ['v'], []);
    const again = p.next(1);
    expect(again.map((r) => r.peer)).toEqual([B, B]);
    expect(p.next(2 + REQUEST_TIMEOUT_MS).map((r) => r.hash).sort()).toEqual([h(1), h(2)]);
  });

  test('urgent blocks (a reader waits) go before the rarest', () => {
    const p = planner({ v: { size: 3 << 20, blocks: [h(1), h(2), h(3)] } }, { [A]: { versions: ['v'] }, [B]: { blocks: [h(1), h(2)] } });
    expect(p.next(0, [h(2)])[0]!.hash).toBe(h(2));
  });
});

describe('replication factor', () => {
  const peers = (n: number) => Array.from({ length: n }, (_, i) => i.toString(16).padStart(32, '0'));

  test('every peer holds everything up to 8 peers; beyond, exactly 3 per version', () => {
    expect(replicationFactor(8)).toBe(8);
    expect(replicationFactor(9)).toBe(3);
    for (const p of peers(8)) expect(shouldHold('x:1', p, peers(8))).toBe(true);
    for (let v = 0; v < 50; v++) expect(peers(20).filter((p) => shouldHold(`v:${v}`, p, peers(20)))).toHaveLength(3);
  });

  test('when a holder leaves, exactly one new peer takes its place; the others keep theirs', () => {
    const all = peers(12);
    for (let v = 0; v < 50; v++) {
      const before = all.filter((p) => shouldHold(`v:${v}`, p, all));
      const rest = all.filter((p) => p !== before[0]);
      const after = rest.filter((p) => shouldHold(`v:${v}`, p, rest));
      expect(after).toHaveLength(3);
      expect(after.filter((p) => before.includes(p))).toHaveLength(2);
    }
  });

  test('different versions land on different peers (load spreads)', () => {
    const all = peers(12);
    const holders = new Set<string>();
    for (let v = 0; v < 40; v++) for (const p of all) if (shouldHold(`v:${v}`, p, all)) holders.add(p);
    expect(holders.size).toBeGreaterThanOrEqual(10);
  });
});
