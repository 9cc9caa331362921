// The balancing rule: table-driven cases, then a property over random clusters run round after
// round (each peer deciding on the loads as they are, moves applied at once): loads converge to
// within the margin, no process moves twice within its cooldown, the number of moves stays
// under the potential bound, and a converged cluster makes no more moves.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chooseMove, perSlot, type BalanceOptions, type Movable, type PeerLoad } from './balancer.ts';

const NOW = 100_000;
const peer = (id: string, capacity: number, runnable: number): PeerLoad => ({ id, capacity, runnable });
const proc = (pid: string, extra: Partial<Movable> = {}): Movable => ({ pid, cpuMs: 5000, startedAt: 0, migratable: true, ...extra });
const procs = (n: number, extra: Partial<Movable> = {}) => Array.from({ length: n }, (_, i) => proc(`aaaa.${i + 1}`, { cpuMs: 5000 + i, ...extra }));

describe('chooseMove', () => {
  const cases: {
    name: string;
    self: PeerLoad;
    others: PeerLoad[];
    mine: Movable[];
    opts?: BalanceOptions;
    want: { pid: string; to: string } | undefined;
  }[] = [
    { name: 'balanced: stays', self: peer('s', 2, 2), others: [peer('b', 2, 2), peer('c', 4, 4)], mine: procs(2), want: undefined },
    { name: 'busy → idle: the process with the most CPU time', self: peer('s', 2, 6), others: [peer('b', 2, 0)], mine: procs(6), want: { pid: 'aaaa.6', to: 'b' } },
    { name: 'difference exactly the margin: stays (hysteresis)', self: peer('s', 1, 2), others: [peer('b', 1, 1)], mine: procs(2), want: undefined },
    { name: 'difference just over the margin moves', self: peer('s', 1, 3), others: [peer('b', 1, 1)], mine: procs(3), want: { pid: 'aaaa.3', to: 'b' } },
    { name: 'custom margin 3: 4 vs 1 per slot stays', self: peer('s', 1, 4), others: [peer('b', 1, 1)], mine: procs(4), opts: { margin: 3 }, want: undefined },
    { name: 'custom margin 3: 5 vs 1 per slot moves', self: peer('s', 1, 5), others: [peer('b', 1, 1)], mine: procs(5), opts: { margin: 3 }, want: { pid: 'aaaa.5', to: 'b' } },
    {
      name: 'margin 0: never a move leaving the target busier than this peer (2,1 on one slot each)',
      self: peer('s', 1, 2), others: [peer('b', 1, 1)], mine: procs(2), opts: { margin: 0 }, want: undefined,
    },
    {
      name: 'the target least loaded after the move, not the least loaded now',
      self: peer('s', 1, 4), others: [peer('small', 1, 0), peer('big', 8, 2)], mine: procs(4), want: { pid: 'aaaa.4', to: 'big' },
    },
    { name: 'ties go to the lower peer id', self: peer('s', 1, 4), others: [peer('d', 2, 0), peer('c', 2, 0)], mine: procs(4), want: { pid: 'aaaa.4', to: 'c' } },
    { name: 'peers without slots are no targets', self: peer('s', 1, 4), others: [peer('z', 0, 0)], mine: procs(4), want: undefined },
    { name: 'itself in `others` is ignored', self: peer('s', 4, 8), others: [peer('s', 4, 0)], mine: procs(8), want: undefined },
    {
      name: 'a peer without slots sheds even to a busy one',
      self: peer('s', 0, 1), others: [peer('b', 1, 5)], mine: procs(1), want: { pid: 'aaaa.1', to: 'b' },
    },
    { name: 'nothing runnable here: stays', self: peer('s', 1, 0), others: [peer('b', 1, 0)], mine: [], want: undefined },
    {
      name: 'only eligible processes: not migratable, blocked, young, cooling down are skipped',
      self: peer('s', 1, 5),
      others: [peer('b', 1, 0)],
      mine: [
        proc('a.1', { cpuMs: 9000, migratable: false }),
        proc('a.2', { cpuMs: 9000, runnable: false }),
        proc('a.3', { cpuMs: 999 }),
        proc('a.4', { cpuMs: 9000, lastMovedAt: NOW - 9_999 }),
        proc('a.5', { cpuMs: 1000 }),
      ],
      want: { pid: 'a.5', to: 'b' },
    },
    {
      name: 'the cooldown ends exactly cooldownMs after the last move',
      self: peer('s', 1, 3), others: [peer('b', 1, 0)], mine: [proc('a.1', { lastMovedAt: NOW - 10_000 })], want: { pid: 'a.1', to: 'b' },
    },
    {
      name: 'custom minCpuMs and cooldownMs',
      self: peer('s', 1, 3), others: [peer('b', 1, 0)],
      mine: [proc('a.1', { cpuMs: 50, lastMovedAt: NOW - 9000 }), proc('a.2', { cpuMs: 40 })],
      opts: { minCpuMs: 45, cooldownMs: 500 },
      want: { pid: 'a.1', to: 'b' },
    },
    {
      name: 'imbalanced but nothing eligible: stays',
      self: peer('s', 1, 6), others: [peer('b', 1, 0)], mine: [proc('a.1', { migratable: false }), proc('a.2', { cpuMs: 10 })], want: undefined,
    },
    {
      name: 'equal CPU time: the older process, then the lower pid',
      self: peer('s', 1, 3), others: [peer('b', 1, 0)],
      mine: [proc('a.3', { startedAt: 5 }), proc('a.2', { startedAt: 7 }), proc('a.1', { startedAt: 7 })],
      want: { pid: 'a.3', to: 'b' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(chooseMove(c.self, c.others, c.mine, NOW, c.opts)).toEqual(c.want);
    });
  }

  it('perSlot: runnable per slot; without slots, infinite if it has anything', () => {
    expect(perSlot(peer('a', 4, 6))).toBe(1.5);
    expect(perSlot(peer('a', 0, 1))).toBe(Infinity);
    expect(perSlot(peer('a', 0, 0))).toBe(0);
  });

  it('bad input: a clear RangeError, not a silent choice', () => {
    expect(() => chooseMove(peer('s', NaN, 1), [], procs(1), NOW)).toThrow(/peer s: capacity and runnable must be finite/);
    expect(() => chooseMove(peer('s', 1, 3), [peer('b', 1, -1)], procs(3), NOW)).toThrow(/peer b/);
    expect(() => chooseMove(peer('s', 1, 3), [peer('b', 1, 0)], procs(3), NOW, { margin: -1 })).toThrow(/margin must be a finite number ≥ 0/);
    expect(() => chooseMove(peer('s', 1, 3), [peer('b', 1, 0)], procs(3), NOW, { cooldownMs: NaN })).toThrow(/cooldownMs/);
  });
});

// ───────────────────────────── simulation ─────────────────────────────

interface SimProc {
  pid: string;
  at: number;
  cpuMs: number;
  startedAt: number;
  lastMovedAt?: number;
  migratable: boolean;
}

/** In the early rounds processes come and go, so loads keep changing while processes cool down. */
type Churn = { round: number; kind: 'start'; at: number; migratable: boolean } | { round: number; kind: 'exit'; index: number };

const ROUND_MS = 1000;

class Sim {
  readonly moves: { pid: string; from: number; to: number; at: number }[] = [];
  /** Σ runnable²/capacity at the start plus what every start added: each move lowers it by more than the margin. */
  potential: number;
  private round = 0;
  private started = 0;

  constructor(
    readonly caps: number[],
    readonly procs: SimProc[],
    private readonly order: number[][],
    private readonly opts: BalanceOptions,
    private readonly churn: Churn[] = [],
  ) {
    this.potential = caps.reduce((s, c, i) => s + this.count(i) ** 2 / c, 0);
  }

  count(i: number): number {
    return this.procs.filter((p) => p.at === i).length;
  }

  loads(): number[] {
    return this.caps.map((c, i) => this.count(i) / c);
  }

  /** Rounds of: churn, CPU time accrues, then every peer (in this round's order) decides on the loads as they are now. */
  run(rounds: number): this {
    for (const end = this.round + rounds; this.round < end; this.round++) {
      const now = this.round * ROUND_MS;
      for (const e of this.churn.filter((e) => e.round === this.round)) {
        if (e.kind === 'start') {
          this.potential += (2 * this.count(e.at) + 1) / this.caps[e.at]!;
          this.procs.push({ pid: `n.${++this.started}`, at: e.at, cpuMs: 0, startedAt: now, migratable: e.migratable });
        } else if (this.procs.length) {
          this.procs.splice(e.index % this.procs.length, 1);
        }
      }
      const counts = this.caps.map((_, i) => this.count(i));
      for (const p of this.procs) p.cpuMs += ROUND_MS * Math.min(1, this.caps[p.at]! / counts[p.at]!);
      for (const i of this.order[this.round % this.order.length]!) {
        const load = (j: number): PeerLoad => ({ id: `p${j}`, capacity: this.caps[j]!, runnable: this.count(j) });
        const others = this.caps.map((_, j) => load(j)).filter((_, j) => j !== i);
        const move = chooseMove(load(i), others, this.procs.filter((p) => p.at === i), now, this.opts);
        if (!move) continue;
        const p = this.procs.find((q) => q.pid === move.pid)!;
        expect(p.at).toBe(i);
        const to = Number(move.to.slice(1));
        // the promise of the rule: the target is not busier than this peer after the move
        expect((this.count(to) + 1) / this.caps[to]!).toBeLessThanOrEqual((this.count(i) - 1) / this.caps[i]!);
        p.at = to;
        p.lastMovedAt = now;
        this.moves.push({ pid: p.pid, from: i, to, at: now });
      }
    }
    return this;
  }
}

const CHURN_ROUNDS = 40;

const clusterArb = fc
  .record({
    caps: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 2, maxLength: 7 }),
    margin: fc.constantFrom(0, 0.5, 1, 1.5, 2, 3),
    cooldownMs: fc.integer({ min: 0, max: 20_000 }),
    minCpuMs: fc.integer({ min: 0, max: 5000 }),
  })
  .chain((c) =>
    fc.record({
      c: fc.constant(c),
      procs: fc.array(
        fc.record({ at: fc.integer({ min: 0, max: c.caps.length - 1 }), cpuMs: fc.integer({ min: 0, max: 6000 }), migratable: fc.boolean() }),
        { maxLength: 60 },
      ),
      // who decides first in each round (peers act at their own times)
      order: fc.array(fc.shuffledSubarray([...c.caps.keys()], { minLength: c.caps.length }), { minLength: 1, maxLength: 5 }),
      churn: fc.array(
        fc.oneof(
          fc.record({ round: fc.nat(CHURN_ROUNDS - 1), kind: fc.constant('start' as const), at: fc.integer({ min: 0, max: c.caps.length - 1 }), migratable: fc.boolean() }),
          fc.record({ round: fc.nat(CHURN_ROUNDS - 1), kind: fc.constant('exit' as const), index: fc.nat() }),
        ),
        { maxLength: 40 },
      ),
    }),
  );

describe('chooseMove over many rounds (property)', () => {
  it('converges within the margin, respects the cooldown, moves a bounded number of times, then stays put', () => {
    fc.assert(
      fc.property(clusterArb, fc.boolean(), ({ c, procs: ps, order, churn }, allMigratable) => {
        const procs: SimProc[] = ps.map((p, i) => ({ pid: `f.${i}`, at: p.at, cpuMs: p.cpuMs, startedAt: 0, migratable: allMigratable || p.migratable }));
        const opts: BalanceOptions = { margin: c.margin, cooldownMs: c.cooldownMs, minCpuMs: c.minCpuMs };
        const events = churn.map((e) => (e.kind === 'start' && allMigratable ? { ...e, migratable: true } : e));
        // long enough after the churn for every process to pass minCpuMs and its cooldown many times over
        const sim = new Sim(c.caps, procs, order, opts, events).run(CHURN_ROUNDS + 150);

        // bounded: Σ r²/c drops by more than the margin per move
        if (c.margin > 0) expect(sim.moves.length).toBeLessThanOrEqual(sim.potential / c.margin);

        // the cooldown: no process moved again within cooldownMs of its last move
        const last = new Map<string, number>();
        for (const m of sim.moves) {
          const prev = last.get(m.pid);
          if (prev !== undefined) expect(m.at - prev).toBeGreaterThanOrEqual(c.cooldownMs);
          last.set(m.pid, m.at);
        }

        // converged: no peer is more than the margin busier than another while it has a process to
        // give — below a margin of 1 only as far as the no-ping-pong rule lets a move go
        const loads = sim.loads();
        const reachable = (s: number, t: number) => loads[t]! + 1 / c.caps[t]! <= loads[s]! - 1 / c.caps[s]!;
        for (let s = 0; s < loads.length; s++) {
          for (let t = 0; t < loads.length; t++) {
            if (loads[s]! - loads[t]! > c.margin && reachable(s, t)) expect(procs.some((p) => p.at === s && p.migratable)).toBe(false);
          }
        }
        if (allMigratable && c.margin >= 1) expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(c.margin);

        // no oscillation: 100 more rounds, not one move
        const before = sim.moves.length;
        const pids = procs.map((p) => p.pid).sort();
        sim.run(100);
        expect(sim.moves.length).toBe(before);
        // nothing lost or duplicated by moving
        expect(procs.map((p) => p.pid).sort()).toEqual(pids);
      }),
      { numRuns: 300 },
    );
  });

  it('a concrete imbalance settles: 24 processes on one 2-slot peer of four', () => {
    const caps = [2, 2, 4, 1];
    const procs: SimProc[] = Array.from({ length: 24 }, (_, i) => ({ pid: `x.${i}`, at: 0, cpuMs: 2000, startedAt: 0, migratable: true }));
    const sim = new Sim(caps, procs, [[0, 1, 2, 3]], {}).run(200);
    const loads = sim.loads();
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    expect(loads.reduce((s, l, i) => s + l * caps[i]!, 0)).toBe(24);
    expect(sim.moves.length).toBeGreaterThan(0);
    expect(sim.moves.length).toBeLessThanOrEqual(sim.potential);
  });
});
