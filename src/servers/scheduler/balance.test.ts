// Rebalancing and drain with real programs: a busy peer hands long-running processes to idle
// ones until no move would help (and nothing ping-pongs); `drain` empties a peer that is leaving.
import { beforeAll, describe, expect, test } from 'vitest';
import { buildPrograms } from '../../kernel/wasi/test-programs.ts';
import type { ProcessInfo } from './client.ts';
import { simCluster, text } from './test-cluster.ts';

beforeAll(() => buildPrograms(), 180_000);

/** Fast rounds on virtual time (the pump advances it slowly while programs run in real time). */
const FAST = { rebalance: true, rebalanceEveryMs: 40, balance: { minCpuMs: 100, cooldownMs: 400 }, checkpointEveryMs: 0 };

const perPeer = (rows: ProcessInfo[], pids: string[]) => {
  const n = new Map<string, number>();
  for (const r of rows) if (pids.includes(r.pid) && r.state !== 'EXITED') n.set(r.peer, (n.get(r.peer) ?? 0) + 1);
  return n;
};

describe('rebalancing', () => {
  test('three busy processes on one of two peers end 2/1 and stay so; a new idle peer gets one', async () => {
    const { sim, peers, pump, terminal, ps } = await simCluster(2, { scheduler: FAST });
    const [a, b] = peers as [typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const pids = [await t.run('busy', [], { on: a }), await t.run('busy', [], { on: a }), await t.run('busy', [], { on: a })];
    const spread = async (want: number[]) => {
      // Bounded in real time too: the programs load (a cold module rewrite) and run in real time.
      const until = Date.now() + 60_000;
      for (let i = 0; i < 400 || Date.now() < until; i++) {
        const counts = [...perPeer(await ps(t), pids).values()].sort();
        if (JSON.stringify(counts) === JSON.stringify(want)) return true;
        await pump(() => false, 10, 0);
      }
      return false;
    };
    expect(await spread([1, 2])).toBe(true);
    // Stays: many more rounds (and cooldowns) pass without another move.
    const moves = async () => (await ps(t)).filter((r) => pids.includes(r.pid)).reduce((n, r) => n + (r.moves ?? 0), 0);
    const settled = await moves();
    expect(settled).toBe(1);
    await pump(() => false, 300, 0);
    expect(await moves()).toBe(settled);
    expect([...perPeer(await ps(t), pids).values()].sort()).toEqual([1, 2]);
    // A new idle peer: the peer with two gives it one.
    const c = await sim.addPeer();
    expect(await sim.runUntil(() => sim.converged(), 20_000, 50)).toBe(true);
    expect(await spread([1, 1, 1])).toBe(true);
    const where = perPeer(await ps(t), pids);
    expect(where.get(a.id)).toBe(1);
    expect(where.get(b.id)).toBe(1);
    expect(where.get(c.id)).toBe(1);
    for (const pid of pids) expect(await t.request({ kind: 'kill', pid })).toMatchObject({ kind: 'kill.ok' });
  }, 180_000);

  test('turned off, nothing moves', async () => {
    const { peers, pump, terminal, ps, findRow } = await simCluster(2, { scheduler: { ...FAST, rebalance: false } });
    const [a] = peers as [typeof peers[0]];
    const t = terminal(a);
    const pids = [await t.run('busy', [], { on: a }), await t.run('busy', [], { on: a })];
    // Long enough running that the balancer would move one (FAST's minCpuMs), were it on.
    expect(await findRow(t, (r) => r.pid === pids[1] && r.state === 'RUNNING' && r.cpuMs > 500)).toBeDefined();
    await pump(() => false, 300, 0);
    expect([...perPeer(await ps(t), pids).entries()]).toEqual([[a.id, 2]]);
    for (const pid of pids) await t.request({ kind: 'kill', pid });
  }, 120_000);
});

describe('drain', () => {
  test('moves every process off the peer, busy or waiting for stdin; they go on elsewhere', async () => {
    const { peers, pump, terminal, findRow } = await simCluster(3);
    const [a, b, c] = peers as [typeof peers[0], typeof peers[0], typeof peers[0]];
    const t = terminal(a);
    const busy = await t.run('busy', [], { on: b });
    const cat = await t.run('cat', [], { on: b, interactive: true });
    t.send({ kind: 'stdin', pid: cat, data: text('before\n') });
    expect(await pump(() => t.raw(cat) === 'before\n')).toBe(true);
    const drainer = terminal(b);
    expect(await drainer.request({ kind: 'drain' })).toMatchObject({ kind: 'drain.ok', moved: 2, left: 0 });
    for (const pid of [busy, cat]) expect(await findRow(t, (r) => r.pid === pid && r.peer !== b.id && r.state !== 'MIGRATING')).toBeDefined();
    // Spread over the others, not piled on one.
    const hosts = new Set([(await findRow(t, (r) => r.pid === busy))!.peer, (await findRow(t, (r) => r.pid === cat))!.peer]);
    expect(hosts).toEqual(new Set([a.id, c.id]));
    t.send({ kind: 'stdin', pid: cat, data: text('after\n') });
    t.send({ kind: 'stdin.end', pid: cat });
    expect(await pump(() => !!t.exit(cat))).toBe(true);
    expect(t.raw(cat)).toBe('before\nafter\n');
    await t.request({ kind: 'kill', pid: busy });
  }, 120_000);
});
