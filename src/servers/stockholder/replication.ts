// Which blocks to fetch next, from whom: the replication planner. Pure bookkeeping — the
// Stockholder feeds it what peers advertise (`have`), what this peer wants, and what arrived;
// it answers with requests to send.
//
// Policy:
// - rarest first: the block held by the fewest peers is fetched first, so a file whose only
//   holder may leave soon gets a second copy early (BitTorrent's rule); ties go in file order;
// - several holders in parallel: each request goes to the holder with the fewest requests in
//   flight, at most WINDOW per holder (enough to keep a data channel busy, not to flood it);
// - a block that failed its hash check from a holder is never asked of that holder again;
// - a holder that leaves gives its requests back; blocks already stored are never re-asked,
//   so a dropped transfer resumes where it stopped.
import type { PeerId } from '../../kernel/types.ts';
import type { Hash, Manifest, VersionId } from './types.ts';

/** Block requests in flight per holder (1 MiB each). */
export const WINDOW = 8;
/** A request unanswered this long is given back and asked elsewhere. */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface Request {
  peer: PeerId;
  hash: Hash;
}

interface Advert {
  versions: Set<VersionId>;
  blocks: Set<Hash>;
}

interface InFlight {
  peer: PeerId;
  since: number;
}

export class ReplicationPlanner {
  private readonly adverts = new Map<PeerId, Advert>();
  /** Blocks wanted and not held, in file order, with the versions wanting them. */
  private wanted: Hash[] = [];
  private readonly inFlight = new Map<Hash, InFlight>();
  private readonly perPeer = new Map<PeerId, number>();
  private readonly refused = new Map<Hash, Set<PeerId>>();
  /** Manifests of versions peers advertise: a `have` names versions, the blocks come from here. */
  private manifests: ReadonlyMap<VersionId, Manifest> = new Map();
  /** Holders per block, rebuilt lazily when adverts or manifests change. */
  private holders: Map<Hash, PeerId[]> | undefined;

  /** Replaces what `peer` holds. */
  setAdvert(peer: PeerId, versions: readonly VersionId[], blocks: readonly Hash[]): void {
    this.adverts.set(peer, { versions: new Set(versions), blocks: new Set(blocks) });
    this.holders = undefined;
  }

  /** The versions the namespace references, with their manifests (to expand adverts into blocks). */
  setManifests(manifests: ReadonlyMap<VersionId, Manifest>): void {
    this.manifests = manifests;
    this.holders = undefined;
  }

  /** What this peer wants: every block of these versions that `held` says is missing. */
  setWants(versions: Iterable<Manifest>, held: (h: Hash) => boolean): void {
    const seen = new Set<Hash>();
    const out: Hash[] = [];
    for (const m of versions) {
      for (const h of m.blocks) {
        if (seen.has(h) || held(h)) continue;
        seen.add(h);
        out.push(h);
      }
    }
    this.wanted = out;
  }

  /** A peer left: its advert goes, its requests come back. Returns the hashes given back. */
  removePeer(peer: PeerId): Hash[] {
    this.adverts.delete(peer);
    this.holders = undefined;
    const back: Hash[] = [];
    for (const [h, f] of this.inFlight) {
      if (f.peer === peer) {
        this.inFlight.delete(h);
        back.push(h);
      }
    }
    this.perPeer.delete(peer);
    return back;
  }

  /** The peers that hold `hash` (by their adverts). */
  holdersOf(hash: Hash): PeerId[] {
    return this.holderIndex().get(hash) ?? [];
  }

  /** Peers whose advert says they hold every block of `version`. */
  versionHolders(version: VersionId): PeerId[] {
    const out: PeerId[] = [];
    for (const [peer, a] of this.adverts) if (a.versions.has(version)) out.push(peer);
    return out;
  }

  /** Whether a request for `hash` is in flight. */
  requested(hash: Hash): boolean {
    return this.inFlight.has(hash);
  }

  /** Wanted blocks that no live peer advertises (replication of them is stalled). */
  unavailable(): Hash[] {
    const index = this.holderIndex();
    return this.wanted.filter((h) => !this.inFlight.has(h) && (index.get(h)?.length ?? 0) === 0);
  }

  /**
   * Requests to send now. `first` are hashes to put ahead of the rarest-first order (a process
   * is waiting to read them).
   */
  next(now: number, first: readonly Hash[] = []): Request[] {
    const index = this.holderIndex();
    // Give back requests that timed out.
    for (const [h, f] of this.inFlight) {
      if (now - f.since >= REQUEST_TIMEOUT_MS) {
        this.inFlight.delete(h);
        this.perPeer.set(f.peer, (this.perPeer.get(f.peer) ?? 1) - 1);
      }
    }
    const order = (hs: readonly Hash[]) =>
      hs
        .map((h, i) => ({ h, i, n: index.get(h)?.length ?? 0 }))
        .filter((x) => x.n > 0 && !this.inFlight.has(x.h))
        .sort((a, b) => a.n - b.n || a.i - b.i)
        .map((x) => x.h);
    const out: Request[] = [];
    for (const h of [...order(first), ...order(this.wanted)]) {
      if (this.inFlight.has(h)) continue;
      const bad = this.refused.get(h);
      let best: PeerId | undefined;
      let bestLoad = WINDOW;
      for (const p of index.get(h) ?? []) {
        if (bad?.has(p)) continue;
        const load = this.perPeer.get(p) ?? 0;
        if (load < bestLoad || (load === bestLoad && best !== undefined && p < best)) {
          best = p;
          bestLoad = load;
        }
      }
      if (best === undefined) continue;
      this.inFlight.set(h, { peer: best, since: now });
      this.perPeer.set(best, bestLoad + 1);
      out.push({ peer: best, hash: h });
    }
    return out;
  }

  /** A block arrived from `peer` and passed its hash check (or was stored anyway). */
  delivered(hash: Hash, peer: PeerId): boolean {
    const f = this.inFlight.get(hash);
    if (f === undefined || f.peer !== peer) return false;
    this.inFlight.delete(hash);
    this.perPeer.set(peer, (this.perPeer.get(peer) ?? 1) - 1);
    this.wanted = this.wanted.filter((h) => h !== hash);
    return true;
  }

  /** `peer` could not give `hash` (nohave, or bytes that failed the hash check): ask elsewhere. */
  failed(hash: Hash, peer: PeerId): void {
    const f = this.inFlight.get(hash);
    if (f !== undefined && f.peer === peer) {
      this.inFlight.delete(hash);
      this.perPeer.set(peer, (this.perPeer.get(peer) ?? 1) - 1);
    }
    let bad = this.refused.get(hash);
    if (bad === undefined) this.refused.set(hash, (bad = new Set()));
    bad.add(peer);
  }

  /** Whether `peer` was asked for `hash` and has not answered. */
  awaiting(hash: Hash, peer: PeerId): boolean {
    return this.inFlight.get(hash)?.peer === peer;
  }

  private holderIndex(): Map<Hash, PeerId[]> {
    if (this.holders !== undefined) return this.holders;
    const index = new Map<Hash, PeerId[]>();
    const add = (h: Hash, p: PeerId) => {
      const list = index.get(h);
      if (list === undefined) index.set(h, [p]);
      else if (!list.includes(p)) list.push(p);
    };
    for (const [peer, a] of this.adverts) {
      for (const v of a.versions) for (const h of this.manifests.get(v)?.blocks ?? []) add(h, peer);
      for (const h of a.blocks) add(h, peer);
    }
    this.holders = index;
    return index;
  }
}

/**
 * Should `self` hold `version`? Every peer while the cluster has at most `ALL_UP_TO` peers,
 * otherwise the `FACTOR` peers that rank highest for it by rendezvous hashing over the live
 * members — when a holder leaves, the next in rank takes over, so the factor holds again.
 */
export const ALL_UP_TO = 8;
export const FACTOR = 3;

export function replicationFactor(members: number): number {
  return members <= ALL_UP_TO ? members : FACTOR;
}

export function shouldHold(version: VersionId, self: PeerId, members: readonly PeerId[]): boolean {
  if (members.length <= ALL_UP_TO) return true;
  const ranked = [...members].sort((a, b) => rank(version, b) - rank(version, a) || (a < b ? -1 : 1));
  return ranked.slice(0, FACTOR).includes(self);
}

/** FNV-1a over version + peer: cheap, deterministic, well enough spread for ranking. */
function rank(version: VersionId, peer: PeerId): number {
  let h = 0x811c9dc5;
  const s = `${version}|${peer}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
