// Simulator benchmark: how fast the deterministic simulator runs a 200-peer cluster, how long
// membership takes to converge and to notice crashes in virtual time, and that a replay from the
// same seed gives the same trace.
import { Simulation, randomMesh } from '../src/host/sim/sim.ts';

export interface SimResult {
  peers: number;
  joinConvergeVirtualMs: number;
  crashDetectVirtualMs: number;
  wallMsPerVirtualS: number;
  traceLines: number;
  replayIdentical: boolean;
}

async function scenario(peers: number, seed: number): Promise<{ hash: string; join: number; detect: number; wall: number; virt: number; lines: number }> {
  const sim = new Simulation({ seed, topology: randomMesh(8), latencyMs: 20, jitterMs: 15 });
  const t0 = performance.now();
  for (let i = 0; i < peers; i++) await sim.addPeer();
  const joinedAt = sim.now;
  if (!(await sim.runUntil(() => sim.converged(), 30_000, 50))) throw new Error('did not converge after joins');
  const join = sim.now - joinedAt;
  const victims = sim.live().slice(0, Math.floor(peers / 10));
  for (const v of victims) sim.crash(v);
  const crashedAt = sim.now;
  if (!(await sim.runUntil(() => sim.converged(), 60_000, 50))) throw new Error('did not converge after crashes');
  const detect = sim.now - crashedAt;
  const wall = performance.now() - t0;
  return { hash: sim.traceHash(), join, detect, wall, virt: sim.now, lines: sim.trace.length };
}

export async function runSimBench(peers = 200): Promise<SimResult> {
  const a = await scenario(peers, 7);
  const b = await scenario(peers, 7);
  return {
    peers,
    joinConvergeVirtualMs: a.join,
    crashDetectVirtualMs: a.detect,
    wallMsPerVirtualS: a.wall / (a.virt / 1000),
    traceLines: a.lines,
    replayIdentical: a.hash === b.hash,
  };
}
