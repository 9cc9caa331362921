// Load balancing, MOSIX-style: every peer now and then compares its load with the others' and
// pushes one process to a less busy peer. Pure, so the rule is tested on its own.
//
// Load is runnable processes per slot (core). A peer moves a process to a target only when
//   1. it is busier than the target by more than `margin` per slot (hysteresis: small
//      differences are not worth a migration), and
//   2. after the move the target is not busier per slot than this peer will be (so the target
//      never has a reason to send one back: no ping-pong).
// Each move then lowers Σ runnable²/capacity over the cluster by more than `margin`, so moves
// stop after a bounded number — provided a move is counted in the target's `runnable` as soon
// as it starts (as placement counts placements in flight): peers deciding on stale loads could
// all pick the same idle peer.
//
// The process moved is one that has shown it runs long (cpuMs ≥ minCpuMs: past CPU time is the
// best predictor of remaining CPU time) and was not moved within `cooldownMs`; of those, the
// one with the most CPU time. With integer capacities a margin of at least 1 can always be
// reached; a smaller margin stops at the closest balance rule 2 allows.
import type { PeerId } from '../../kernel/types.ts';

export interface PeerLoad {
  id: PeerId;
  /** Execution slots; 0 for a peer that runs no processes (never a target; sheds what it has). */
  capacity: number;
  /** Runnable processes there, including moves to it in flight. */
  runnable: number;
}

export interface Movable {
  pid: string;
  /** CPU time used so far. */
  cpuMs: number;
  /** When it started (ms, the clock of `now`). */
  startedAt: number;
  /** When it last arrived here by migration (same clock). */
  lastMovedAt?: number;
  /** False when it cannot be frozen now (blocked in spawn, pinned to this peer, ...). */
  migratable: boolean;
  /** False when it is blocked (waiting for input): moving it would not lower the load. Default true. */
  runnable?: boolean;
}

export interface BalanceOptions {
  /** Runnable processes per slot this peer must exceed a target by before moving (default 1). */
  margin?: number;
  /** CPU time a process must have used to be worth moving (default 1000). */
  minCpuMs?: number;
  /** A process is not moved again within this long of its last move (default 10000). */
  cooldownMs?: number;
}

export const DEFAULT_MARGIN = 1;
export const DEFAULT_MIN_CPU_MS = 1000;
export const DEFAULT_COOLDOWN_MS = 10_000;

/** Runnable per slot; a peer without slots is infinitely loaded if it has anything to run. */
export function perSlot(p: Pick<PeerLoad, 'capacity' | 'runnable'>): number {
  if (p.capacity > 0) return p.runnable / p.capacity;
  return p.runnable > 0 ? Infinity : 0;
}

/** The one move this peer should make now, or undefined. Never a move after which the target would be busier per slot than this peer. */
export function chooseMove(
  self: PeerLoad,
  others: readonly PeerLoad[],
  mine: readonly Movable[],
  now: number,
  opts: BalanceOptions = {},
): { pid: string; to: PeerId } | undefined {
  const margin = opts.margin ?? DEFAULT_MARGIN;
  const minCpuMs = opts.minCpuMs ?? DEFAULT_MIN_CPU_MS;
  const cooldownMs = opts.cooldownMs ?? DEFAULT_COOLDOWN_MS;
  for (const [name, v] of [['margin', margin], ['minCpuMs', minCpuMs], ['cooldownMs', cooldownMs]] as const) {
    if (!(v >= 0 && v < Infinity)) throw new RangeError(`balance option ${name} must be a finite number ≥ 0, not ${v}`);
  }
  checkLoad(self);
  others.forEach(checkLoad);

  if (self.runnable < 1) return undefined;
  const pid = pick(mine, now, minCpuMs, cooldownMs);
  if (pid === undefined) return undefined;

  const load = perSlot(self);
  // A peer without slots may move its processes anywhere: it can never be a target itself.
  const loadAfter = self.capacity > 0 ? (self.runnable - 1) / self.capacity : Infinity;
  let best: { peer: PeerLoad; after: number } | undefined;
  for (const t of others) {
    if (t.id === self.id || t.capacity <= 0) continue;
    const after = (t.runnable + 1) / t.capacity;
    if (!(load - perSlot(t) > margin) || after > loadAfter) continue;
    if (!best || after < best.after || (after === best.after && t.id < best.peer.id)) best = { peer: t, after };
  }
  return best && { pid, to: best.peer.id };
}

/** The process to move: migratable, runnable, proven long-running, out of its cooldown; the most CPU time first. */
function pick(mine: readonly Movable[], now: number, minCpuMs: number, cooldownMs: number): string | undefined {
  let best: Movable | undefined;
  for (const m of mine) {
    if (!m.migratable || m.runnable === false || m.cpuMs < minCpuMs) continue;
    if (m.lastMovedAt !== undefined && now - m.lastMovedAt < cooldownMs) continue;
    // ties: the older process, then the lower pid (every run decides alike)
    if (!best || m.cpuMs > best.cpuMs || (m.cpuMs === best.cpuMs && (m.startedAt < best.startedAt || (m.startedAt === best.startedAt && m.pid < best.pid)))) {
      best = m;
    }
  }
  return best?.pid;
}

function checkLoad(p: PeerLoad): void {
  if (!(p.capacity >= 0 && p.capacity < Infinity) || !(p.runnable >= 0 && p.runnable < Infinity)) {
    throw new RangeError(`peer ${p.id}: capacity and runnable must be finite numbers ≥ 0 (got ${p.capacity}, ${p.runnable})`);
  }
}
