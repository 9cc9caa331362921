// Membership as a pure state machine: joins, failure detection, leaves, restarts, tombstones.
import { describe, expect, test } from 'vitest';
import { Membership, compareRecords, type MemberRecord, type ResourceEntry } from './membership.ts';
import { SynchronizerRequest, fromWire, isWireMember, toWire } from './protocol.ts';

const T = { tickMs: 500, forgetMs: 30_000 };
const id = (c: string) => c.repeat(32);
const A = id('a');
const B = id('b');
const C = id('c');
const entry = (capacity = 2): ResourceEntry => ({ kind: 'sim', capacity, load: 0, uptimeMs: 0, version: '1' });
const rec = (who: string, incarnation: number, heartbeat: number, status: MemberRecord['status'] = 'alive', capacity = 2): MemberRecord => ({
  id: who,
  incarnation,
  heartbeat,
  status,
  entry: entry(capacity),
});
const aliveIds = (m: Membership) => m.alive().map((r) => r.id);

describe('membership', () => {
  test('join: a new alive peer is adopted once; the view is sorted and includes self', () => {
    const m = new Membership(B, 1, entry(), 0, T);
    expect(aliveIds(m)).toEqual([B]);
    expect(m.merge([rec(C, 1, 3), rec(A, 1, 1, 'alive', 8)], 10)).toBe(true);
    expect(aliveIds(m)).toEqual([A, B, C]);
    expect(m.get(A)!.entry.capacity).toBe(8);
    // Same news again changes nothing; a newer heartbeat alone is not a view change.
    expect(m.merge([rec(C, 1, 3)], 20)).toBe(false);
    expect(m.merge([rec(C, 1, 4)], 20)).toBe(false);
    expect(m.get(C)!.heartbeat).toBe(4);
    // A changed resource entry is.
    expect(m.merge([rec(C, 1, 5, 'alive', 4)], 30)).toBe(true);
  });

  test('the dead we never knew are not learned', () => {
    const m = new Membership(A, 1, entry(), 0, T);
    expect(m.merge([rec(B, 1, 9, 'dead'), rec(C, 1, 9, 'left')], 0)).toBe(false);
    expect(m.get(B)).toBeUndefined();
    expect(m.get(C)).toBeUndefined();
  });

  test('our own heartbeat rises every tick; others are judged by how long theirs stood still', () => {
    const m = new Membership(A, 1, entry(), 0, T);
    m.merge([rec(B, 1, 1)], 0);
    const failAfter = m.failAfterMs();
    expect(failAfter).toBe(500 * (4 + 1)); // two members
    let t = 0;
    for (; t + T.tickMs <= failAfter; t += T.tickMs) expect(m.tick(t, entry())).toBe(false);
    expect(m.get(A)!.heartbeat).toBe(t / T.tickMs);
    expect(m.get(B)!.status).toBe('alive');
    // A newer heartbeat restarts B's clock...
    m.merge([rec(B, 1, 2)], t);
    expect(m.tick(t + failAfter, entry())).toBe(false);
    // ...and silence past the timeout kills it.
    expect(m.tick(t + failAfter + 1, entry())).toBe(true);
    expect(m.get(B)!.status).toBe('dead');
    expect(aliveIds(m)).toEqual([A]);
  });

  test('the failure timeout grows with log2 of the cluster', () => {
    const m = new Membership(A, 1, entry(), 0, T);
    m.merge(Array.from({ length: 199 }, (_, i) => rec(i.toString(16).padStart(32, '0'), 1, 1)), 0);
    expect(m.failAfterMs()).toBe(500 * (4 + 8)); // 200 members
  });

  test('dead news with the same heartbeat beats alive news, and spreads', () => {
    const m = new Membership(C, 1, entry(), 0, T);
    m.merge([rec(B, 1, 5)], 0);
    expect(compareRecords(rec(B, 1, 5, 'dead'), rec(B, 1, 5, 'alive'))).toBeGreaterThan(0);
    expect(m.merge([rec(B, 1, 5, 'dead')], 1)).toBe(true);
    expect(m.get(B)!.status).toBe('dead');
    expect(m.merge([rec(B, 1, 5, 'alive')], 2)).toBe(false); // stale alive news loses
    expect(m.get(B)!.status).toBe('dead');
  });

  test('leave: the goodbye outranks the last heartbeat; the leaver stops beating', () => {
    const b = new Membership(B, 1, entry(), 0, T);
    b.tick(500, entry());
    b.tick(1000, entry());
    const bye = b.leave(1200);
    const mine = bye.find((r) => r.id === B)!;
    expect(mine).toMatchObject({ status: 'left', heartbeat: 3 });
    b.tick(1500, entry());
    expect(b.get(B)!.heartbeat).toBe(3);

    const a = new Membership(A, 1, entry(), 0, T);
    a.merge([rec(B, 1, 2)], 1000);
    expect(a.merge(bye, 1250)).toBe(true);
    expect(a.get(B)!.status).toBe('left');
    expect(aliveIds(a)).toEqual([A]);
  });

  test('a restart (higher incarnation) wins over stale dead news, and stale news of the old life loses', () => {
    const a = new Membership(A, 1, entry(), 0, T);
    a.merge([rec(B, 1, 50)], 0);
    a.tick(10_000, entry()); // B silent: dead
    expect(a.get(B)!.status).toBe('dead');
    expect(a.merge([rec(B, 2, 0)], 10_100)).toBe(true); // restarted: incarnation 2, heartbeat 0
    expect(a.get(B)).toMatchObject({ incarnation: 2, heartbeat: 0, status: 'alive' });
    expect(a.merge([rec(B, 1, 999, 'dead')], 10_200)).toBe(false); // the old life, however late its news
    expect(a.get(B)).toMatchObject({ incarnation: 2, status: 'alive' });
  });

  test('forgotten peers leave a tombstone that ignores stale news but not newer life', () => {
    const a = new Membership(A, 1, entry(), 0, T);
    a.merge([rec(B, 1, 7)], 0);
    a.tick(4000, entry()); // dead
    a.tick(4000 + T.forgetMs + 1, entry()); // forgotten
    expect(a.get(B)).toBeUndefined();
    // A slow peer still gossiping B at its last heartbeat must not bring it back.
    expect(a.merge([rec(B, 1, 7, 'alive')], 35_000)).toBe(false);
    expect(a.merge([rec(B, 1, 7, 'dead')], 35_000)).toBe(false);
    expect(a.get(B)).toBeUndefined();
    // B was only cut off (a partition healed): its heart kept beating, so it is back.
    expect(a.merge([rec(B, 1, 30)], 36_000)).toBe(true);
    expect(aliveIds(a)).toEqual([A, B]);
  });

  test('tombstones expire after twice the forget time', () => {
    const a = new Membership(A, 1, entry(), 0, T);
    a.merge([rec(B, 1, 7)], 0);
    a.tick(4000, entry());
    const forgotAt = 4000 + T.forgetMs + 1;
    a.tick(forgotAt, entry());
    a.tick(forgotAt + 2 * T.forgetMs + 1, entry());
    expect(a.merge([rec(B, 1, 7, 'alive')], forgotAt + 2 * T.forgetMs + 2)).toBe(true);
  });

  test('a peer declared dead overrules it by beating once more, and the others believe it', () => {
    const a = new Membership(A, 1, entry(), 0, T);
    a.tick(500, entry());
    a.tick(1000, entry());
    const hb = a.get(A)!.heartbeat;
    // C wrongly declared A dead at A's current heartbeat (e.g. after a partition).
    const c = new Membership(C, 1, entry(), 0, T);
    c.merge([rec(A, 1, hb)], 1000);
    c.merge([rec(A, 1, hb, 'dead')], 1001);
    expect(c.get(A)!.status).toBe('dead');

    a.merge(c.digest(), 1100);
    expect(a.get(A)).toMatchObject({ status: 'alive', heartbeat: hb + 1 });
    expect(c.merge(a.digest(), 1200)).toBe(true);
    expect(c.get(A)!.status).toBe('alive');
    // Old dead news of another incarnation is not ours to answer.
    a.merge([rec(A, 0, hb + 10, 'dead')], 1300);
    expect(a.get(A)!.heartbeat).toBe(hb + 1);
  });
});

describe('gossip wire format', () => {
  const records = [rec(A, 1735689600123, 42, 'alive', 8), rec(B, 7, 0, 'dead'), rec(C, 9, 3, 'left')];

  test('round-trips through toWire/fromWire and the request schema', () => {
    const body = { kind: 'gossip', m: toWire(records) };
    const parsed = SynchronizerRequest.parse(body);
    expect(parsed.kind === 'gossip' && fromWire(parsed.m)).toEqual(records);
  });

  test('refuses malformed members', () => {
    const good = toWire(records)[0]!;
    const bad: unknown[] = [
      good.slice(0, 8),
      [...good, 'extra'],
      ['A'.repeat(32), ...good.slice(1)], // upper-case hex
      ['a'.repeat(31), ...good.slice(1)],
      [good[0], -1, ...good.slice(2)],
      [good[0], 1.5, ...good.slice(2)],
      [good[0], good[1], good[2], 3, ...good.slice(4)], // no status 3
      [...good.slice(0, 4), 'toaster', ...good.slice(5)],
      [...good.slice(0, 5), 4097, ...good.slice(6)],
      [...good.slice(0, 6), 1e7, ...good.slice(7)],
      [...good.slice(0, 7), Infinity, good[8]],
      [...good.slice(0, 7), Number.NaN, good[8]],
      [...good.slice(0, 8), 'v'.repeat(33)],
      [...good.slice(0, 8), 1],
      { 0: good[0] },
    ];
    expect(isWireMember(good)).toBe(true);
    for (const m of bad) {
      expect(isWireMember(m), JSON.stringify(m)).toBe(false);
      expect(SynchronizerRequest.safeParse({ kind: 'gossip', m: [good, m] }).success).toBe(false);
    }
    expect(SynchronizerRequest.safeParse({ kind: 'gossip', m: Array(4097).fill(good) }).success).toBe(false);
  });
});
