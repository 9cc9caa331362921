// Where a new process goes: the peer with the most spare capacity, this peer on ties.
// Pure, so the rule is tested on its own.
import type { PeerId } from '../../kernel/types.ts';

export interface Candidate {
  id: PeerId;
  /** Execution slots (cores) the peer offers; 0 for a peer that runs no processes. */
  capacity: number;
  /** Runnable processes there, as best known (gossiped load, the process table, placements in flight). */
  load: number;
}

export function spare(c: Candidate): number {
  return c.capacity - c.load;
}

/**
 * The peer to start a process on, or undefined when no peer can run one. Spare capacity may be
 * negative everywhere (more runnable processes than cores): the least overloaded still wins.
 * Ties go to `self` (no transfer), then to the lower peer id (every peer decides alike).
 */
export function choosePeer(candidates: readonly Candidate[], self: PeerId): PeerId | undefined {
  let best: Candidate | undefined;
  for (const c of candidates) {
    if (c.capacity <= 0) continue;
    if (!best) {
      best = c;
      continue;
    }
    const d = spare(c) - spare(best);
    if (d > 0 || (d === 0 && rank(c, self) < rank(best, self))) best = c;
  }
  return best?.id;
}

function rank(c: Candidate, self: PeerId): string {
  return c.id === self ? '' : c.id;
}

/** Resolves a user's peer argument: a full id or a unique prefix of one (at least 4 chars). */
export function resolvePeer(arg: string, peers: readonly PeerId[]): { peer: PeerId } | { error: string } {
  const want = arg.toLowerCase();
  if (!/^[0-9a-f]{4,32}$/.test(want)) return { error: `not a peer id: ${arg}` };
  const matches = peers.filter((p) => p.startsWith(want));
  if (matches.length === 1) return { peer: matches[0]! };
  if (matches.length === 0) return { error: `no peer ${arg} in the cluster` };
  return { error: `${arg} names ${matches.length} peers; give more of the id` };
}
