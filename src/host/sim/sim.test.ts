// Many real kernels on the simulator: membership converges through joins, crashes, a
// partition, restarts and leaves, and a run replays exactly from its seed.
import { describe, expect, test } from 'vitest';
import type { PeerId } from '../../kernel/types.ts';
import { SimRandom } from './random.ts';
import { Simulation, fullMesh, randomMesh, type SimOptions, type SimPeer } from './sim.ts';

/** Ids in a peer's latest view, sorted (views are sorted by id already). */
function viewIds(p: SimPeer): PeerId[] {
  return (p.view?.peers ?? []).map((v) => v.id);
}

function ids(peers: readonly SimPeer[]): PeerId[] {
  return peers.map((p) => p.id).sort();
}

/** Every live peer's view lists exactly `expected` (ids, kinds and capacities). */
function expectViewsExactly(sim: Simulation, expected = sim.expectedView()): void {
  for (const p of sim.live()) {
    const got = (p.view?.peers ?? []).map((v) => ({ id: v.id, kind: v.kind, capacity: v.capacity }));
    expect(got, `view of ${p.id.slice(0, 8)}`).toEqual(expected);
  }
}

function pick<T>(random: SimRandom, from: readonly T[], n: number): T[] {
  const pool = [...from];
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random.float() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, n);
}

interface ChaosResult {
  hash: string;
  sim: Simulation;
  crashed: SimPeer[];
  left: SimPeer[];
}

/**
 * Joins in four waves; crashes ~10% and at the same moment splits the survivors in two halves,
 * long enough for each side to declare the other (and the crashed) dead; heals; restarts two
 * crashed peers and lets two others leave. Asserts exact views after every phase.
 */
async function chaos(n: number, opts: SimOptions, log?: (phase: string) => void): Promise<ChaosResult> {
  const sim = new Simulation(opts);
  // The test's own choices come from their own stream, so they replay with the seed too.
  const choose = new SimRandom(`choices-${String(opts.seed)}`);

  for (let wave = 0; wave < 4; wave++) {
    const size = Math.floor(n / 4) + (wave < n % 4 ? 1 : 0);
    for (let i = 0; i < size; i++) await sim.addPeer();
    await sim.run(500);
  }
  expect(await sim.runUntil(() => sim.converged(), 20_000), 'converged after the joins').toBe(true);
  expect(sim.live()).toHaveLength(n);
  expectViewsExactly(sim);
  log?.('joined');

  const crashed = pick(choose, sim.live(), Math.round(n / 10));
  for (const p of crashed) sim.crash(p);
  const live = pick(choose, sim.live(), sim.live().length);
  const sideA = live.slice(0, live.length >> 1);
  const sideB = live.slice(live.length >> 1);
  sim.partition(sideA, sideB);
  // Each side must forget the crashed peers and the other side, and nothing more.
  const sideView = (side: SimPeer[]) => side.every((p) => viewIds(p).join() === ids(side).join());
  expect(await sim.runUntil(() => sideView(sideA) && sideView(sideB), 20_000), 'each side sees only its own live half').toBe(true);
  log?.('crashed and split');
  await sim.run(1000);
  expect(sideView(sideA) && sideView(sideB)).toBe(true);

  sim.heal();
  expect(await sim.runUntil(() => sim.converged(), 40_000), 'converged after the heal').toBe(true);
  log?.('healed');

  const restarted = crashed.slice(0, 2);
  for (const p of restarted) await sim.restart(p);
  const leaving = pick(choose, sim.live().filter((p) => !restarted.includes(p)), 2);
  for (const p of leaving) await sim.leave(p);
  expect(await sim.runUntil(() => sim.converged(), 20_000), 'converged after restarts and leaves').toBe(true);
  await sim.run(1000); // and it stays converged
  log?.('restarted and left');

  expectViewsExactly(sim);
  const stillCrashed = crashed.slice(2);
  expect(sim.live()).toHaveLength(n - stillCrashed.length - leaving.length);
  for (const p of sim.live()) {
    const seen = new Set(viewIds(p));
    for (const gone of [...stillCrashed, ...leaving]) expect(seen.has(gone.id)).toBe(false);
    for (const back of restarted) expect(seen.has(back.id)).toBe(true);
  }
  return { hash: sim.traceHash(), sim, crashed: stillCrashed, left: leaving };
}

describe('simulator: small cluster, full mesh', () => {
  test('a crashed peer disappears from every view within 5 s; a leaving one at once', async () => {
    const sim = new Simulation({ seed: 7, topology: fullMesh });
    for (let i = 0; i < 5; i++) await sim.addPeer();
    expect(await sim.runUntil(() => sim.converged(), 5000, 50)).toBe(true);
    expect(sim.live()[0]!.view!.peers).toHaveLength(5);

    const [victim, leaver] = [sim.peers[1]!, sim.peers[3]!];
    sim.crash(victim);
    const crashedAt = sim.now;
    // Still listed right after the crash: nobody is told, they must notice the silence.
    await sim.run(500);
    expect(sim.live().every((p) => viewIds(p).includes(victim.id))).toBe(true);
    expect(await sim.runUntil(() => sim.live().every((p) => !viewIds(p).includes(victim.id)), 5000 - 500, 50)).toBe(true);
    expect(sim.now - crashedAt).toBeLessThanOrEqual(5000);
    expectViewsExactly(sim);

    await sim.leave(leaver);
    const leftAt = sim.now;
    // Its goodbye travels one hop (latency 20–30 ms): well before any failure timeout.
    expect(await sim.runUntil(() => sim.live().every((p) => !viewIds(p).includes(leaver.id)), 2000, 10)).toBe(true);
    expect(sim.now - leftAt).toBeLessThan(200);
    expect(sim.trace.some((l) => l.includes(`link.down ${leaver.id.slice(0, 8)} peer left`))).toBe(true);
    expectViewsExactly(sim);
  });

  test('a restarted peer comes back with a new incarnation and stale news of its old life loses', async () => {
    const sim = new Simulation({ seed: 11 });
    for (let i = 0; i < 4; i++) await sim.addPeer();
    expect(await sim.runUntil(() => sim.converged(), 5000, 50)).toBe(true);
    const p = sim.peers[0]!;
    sim.crash(p);
    await sim.run(300); // restarted before anyone noticed the crash
    await sim.restart(p);
    expect(p.lives).toBe(2);
    await sim.run(8000); // past the failure timeout: the old life's silence must not kill the new one
    expect(sim.converged()).toBe(true);
    expect(sim.live().every((q) => viewIds(q).includes(p.id))).toBe(true);
  });

  test('links cut by a partition come back after the heal (the lower id re-dials)', async () => {
    const sim = new Simulation({ seed: 3 });
    for (let i = 0; i < 6; i++) await sim.addPeer();
    expect(await sim.runUntil(() => sim.converged(), 5000, 50)).toBe(true);
    const [a, b] = [sim.peers.slice(0, 3), sim.peers.slice(3)];
    sim.partition(a, b);
    await sim.run(8000);
    // Silence closed every cross link, and each side declared the other dead.
    for (const x of a) for (const y of b) expect(x.kernel.isAdmitted(y.id)).toBe(false);
    expect(viewIds(a[0]!)).toEqual(ids(a));
    sim.heal();
    expect(await sim.runUntil(() => sim.converged(), 15_000, 50)).toBe(true);
    const allLinked = () => a.every((x) => b.every((y) => x.kernel.isAdmitted(y.id) && y.kernel.isAdmitted(x.id)));
    expect(await sim.runUntil(allLinked, 15_000, 50)).toBe(true);
  });
});

describe('simulator: lossy links', () => {
  test('links that fail come back by themselves and nobody is declared dead', async () => {
    const sim = new Simulation({ seed: 5, loss: 0.002 });
    for (let i = 0; i < 8; i++) await sim.addPeer();
    expect(await sim.runUntil(() => sim.converged(), 5000, 50)).toBe(true);
    for (let s = 0; s < 30; s++) {
      await sim.run(1000);
      expect(sim.converged(), `converged at ${sim.now} ms`).toBe(true);
    }
    expect(sim.network.stats.linkFailures).toBeGreaterThan(3);
    expect(sim.trace.filter((l) => l.includes('link.down') && l.includes('simulated loss')).length).toBeGreaterThan(3);
    expect(sim.network.stats.connects).toBeGreaterThan(28 + 3); // 28 links in the mesh, plus re-dials
  });
});

describe('simulator: 200 peers', () => {
  // A sparse mesh (each joiner dials 8 random peers, ~16 links each) rather than the browser
  // host's full mesh: 200 peers in full mesh are ~20 000 links pinging every second, about
  // 3 s of wall time per simulated second here. Membership must then also cross several hops.
  test('converges through joins, crashes, a partition, restarts and leaves', async () => {
    const { sim, crashed, left } = await chaos(200, { seed: 42, topology: randomMesh(8), latencyMs: 20, jitterMs: 15 });
    expect(crashed).toHaveLength(18);
    expect(left).toHaveLength(2);
    // The cut was noticed the way the kernels must notice it: by silence, then re-dialed.
    expect(sim.trace.some((l) => l.includes('link.down') && l.includes('silent for'))).toBe(true);
    // 1564 links from the joins (each dials min(8, peers so far)); the cut ones were re-dialed.
    expect(sim.network.stats.connects).toBeGreaterThan(1564 + 200);
    expect(sim.network.stats.framesDropped).toBeGreaterThan(0);
  }, 120_000);
});

describe('simulator: determinism', () => {
  // The same scenario at 24 peers in full mesh (the 200-peer run replays too; it is just
  // twice as long to prove it).
  test('the same seed replays the same trace; a different seed does not', async () => {
    const a = await chaos(24, { seed: 1 });
    const b = await chaos(24, { seed: 1 });
    const c = await chaos(24, { seed: 2 });
    expect(a.sim.trace.length).toBeGreaterThan(1000);
    expect(b.sim.trace).toEqual(a.sim.trace);
    expect(b.hash).toBe(a.hash);
    expect(c.hash).not.toBe(a.hash);
  }, 120_000);
});
