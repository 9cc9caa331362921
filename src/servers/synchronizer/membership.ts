// Gossip-style membership with failure detection (van Renesse et al., 1998), as a pure state
// machine: no I/O, no clock of its own — the Synchronizer feeds it time and messages.
//
// Every peer owns a heartbeat (incarnation, counter) only it increments. Gossip spreads the
// highest heartbeat anyone has seen; a peer whose heartbeat stops rising is declared dead.
// A restarted peer starts a higher incarnation, so stale news of its old life never wins.
import type { PeerId, PeerKind } from '../../kernel/types.ts';

export type MemberStatus = 'alive' | 'dead' | 'left';

/** The resource entry each peer spreads about itself. */
export interface ResourceEntry {
  kind: PeerKind;
  capacity: number;
  load: number;
  uptimeMs: number;
  version: string;
}

export interface MemberRecord {
  id: PeerId;
  incarnation: number;
  heartbeat: number;
  status: MemberStatus;
  entry: ResourceEntry;
}

interface Local extends MemberRecord {
  /** Local time the record last changed: what failure detection and forgetting measure. */
  changedAt: number;
}

const STATUS_RANK: Record<MemberStatus, number> = { alive: 0, dead: 1, left: 2 };

/** >0 when a is newer than b. Status breaks ties so "dead"/"left" news spreads. */
export function compareRecords(a: Pick<MemberRecord, 'incarnation' | 'heartbeat' | 'status'>, b: Pick<MemberRecord, 'incarnation' | 'heartbeat' | 'status'>): number {
  return a.incarnation - b.incarnation || a.heartbeat - b.heartbeat || STATUS_RANK[a.status] - STATUS_RANK[b.status];
}

export interface MembershipTiming {
  /** Gossip period; failure timeouts are counted in these. */
  tickMs: number;
  /** Dead and left records are kept this long so the news spreads, then forgotten. */
  forgetMs: number;
}

export const DEFAULT_TIMING: MembershipTiming = { tickMs: 500, forgetMs: 30_000 };

export class Membership {
  private readonly members = new Map<PeerId, Local>();
  /** Forgotten peers' last heartbeat: older news of them is ignored. */
  private readonly tombstones = new Map<PeerId, { incarnation: number; heartbeat: number; until: number }>();

  constructor(
    readonly self: PeerId,
    incarnation: number,
    entry: ResourceEntry,
    now: number,
    readonly timing: MembershipTiming = DEFAULT_TIMING,
  ) {
    this.members.set(self, { id: self, incarnation, heartbeat: 0, status: 'alive', entry, changedAt: now });
  }

  /**
   * Silence after which a peer is declared dead. Gossip needs about log2(n) periods to carry
   * a heartbeat across n peers, so the timeout grows with the cluster (3 s for a handful).
   */
  failAfterMs(): number {
    const n = Math.max(2, this.members.size);
    return this.timing.tickMs * (4 + Math.ceil(Math.log2(n)));
  }

  /** One gossip period: beat our own heart, then judge everyone else. Returns true if the view changed. */
  tick(now: number, entry: ResourceEntry): boolean {
    const me = this.members.get(this.self)!;
    if (me.status === 'alive') {
      me.heartbeat++;
      me.entry = entry;
      me.changedAt = now;
    }
    let changed = false;
    const failAfter = this.failAfterMs();
    for (const m of [...this.members.values()]) {
      if (m.id === this.self) continue;
      if (m.status === 'alive' && now - m.changedAt > failAfter) {
        m.status = 'dead';
        m.changedAt = now;
        changed = true;
      } else if (m.status !== 'alive' && now - m.changedAt > this.timing.forgetMs) {
        this.members.delete(m.id);
        this.tombstones.set(m.id, { incarnation: m.incarnation, heartbeat: m.heartbeat, until: now + 2 * this.timing.forgetMs });
      }
    }
    for (const [id, t] of this.tombstones) if (t.until < now) this.tombstones.delete(id);
    return changed;
  }

  /** Adopts newer news. Returns true if the set of alive peers or their entries changed. */
  merge(records: MemberRecord[], now: number): boolean {
    let changed = false;
    for (const r of records) {
      if (r.id === this.self) {
        // Someone declared us dead at our current heartbeat: beat once more to overrule them.
        const me = this.members.get(this.self)!;
        if (me.status === 'alive' && r.incarnation === me.incarnation && r.heartbeat >= me.heartbeat && r.status !== 'alive') {
          me.heartbeat = r.heartbeat + 1;
        }
        continue;
      }
      const tomb = this.tombstones.get(r.id);
      if (tomb && compareRecords(r, { ...tomb, status: 'left' }) <= 0) continue;
      const cur = this.members.get(r.id);
      if (cur && compareRecords(r, cur) <= 0) continue;
      if (!cur && r.status !== 'alive') continue; // no need to learn of the dead we never knew
      if (!cur || cur.status !== r.status || !sameEntry(cur.entry, r.entry)) changed = true;
      // Built field by field: `{ ...r, entry, changedAt }` takes V8's slow path (about 10x), and
      // this line runs for every record of every gossip message.
      this.members.set(r.id, { id: r.id, incarnation: r.incarnation, heartbeat: r.heartbeat, status: r.status, entry: { ...r.entry }, changedAt: now });
      if (tomb) this.tombstones.delete(r.id);
    }
    return changed;
  }

  /** Marks ourselves as leaving; the returned digest is the goodbye to gossip. */
  leave(now: number): MemberRecord[] {
    const me = this.members.get(this.self)!;
    me.heartbeat++;
    me.status = 'left';
    me.changedAt = now;
    return this.digest();
  }

  /** Everything we know, for gossip. */
  digest(): MemberRecord[] {
    const out: MemberRecord[] = [];
    for (const m of this.members.values()) out.push({ id: m.id, incarnation: m.incarnation, heartbeat: m.heartbeat, status: m.status, entry: m.entry });
    return out;
  }

  /** Alive peers (ourselves included), sorted by id: the view every peer converges to. */
  alive(): MemberRecord[] {
    return this.digest()
      .filter((m) => m.status === 'alive')
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: PeerId): MemberRecord | undefined {
    return this.members.get(id);
  }
}

function sameEntry(a: ResourceEntry, b: ResourceEntry): boolean {
  return a.kind === b.kind && a.capacity === b.capacity && a.load === b.load && a.version === b.version;
}
