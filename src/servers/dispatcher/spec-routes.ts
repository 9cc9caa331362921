// Where the outcome of a speculation must go (Fork On Wait across peers).
//
// A process running on a guess (WAIT_CONFIRM) may send messages; each carries the ids of the
// speculations it depends on, and its receiver becomes dependent on them too. When a speculation
// ends, its host's executor says `spec.resolved`; every dependent must hear it, wherever it runs:
//   - the host of the speculating process sends it to every peer its dependent deliveries went to;
//   - a peer that got it tells its local processes that received such deliveries (their executors),
//     and passes it on to the peers it forwarded such deliveries to (a process that moved), and
//     its processes' own dependent sends were recorded here too, so it travels transitively.
// Outcomes are remembered for a while (bounded): a delivery that arrives after the outcome has a
// committed dependency stripped, and is dropped when it depends on a cancelled one (the send
// never happened, as far as the rest of the cluster is concerned).
import type { PeerId } from '../../kernel/types.ts';
import type { Pid, SpecId } from '../../kernel/process/protocol.ts';

/** Speculations tracked at once; the oldest are forgotten first. */
export const MAX_TRACKED_SPECS = 4096;
/** Outcomes remembered. */
export const MAX_RESOLVED_SPECS = 4096;

interface Dependents {
  peers: Set<PeerId>;
  pids: Set<Pid>;
}

export interface Resolution {
  /** Peers to send `spec.resolved` to (never `self`'s own id: local dependents are in `pids`). */
  peers: PeerId[];
  /** Local processes that received dependent deliveries. */
  pids: Pid[];
}

/** What to do with a delivery in the light of outcomes already known. */
export type Filtered = { drop: true } | { drop: false; deps: string[] | undefined };

export class SpeculationRoutes {
  private readonly tracked = new Map<SpecId, Dependents>();
  private readonly resolved = new Map<SpecId, boolean>();

  constructor(
    private readonly maxTracked = MAX_TRACKED_SPECS,
    private readonly maxResolved = MAX_RESOLVED_SPECS,
  ) {}

  /** A delivery depending on `deps` went (or was forwarded) to `peer`. */
  sentTo(peer: PeerId, deps: readonly SpecId[]): void {
    for (const id of deps) this.entry(id).peers.add(peer);
  }

  /** A delivery depending on `deps` was given to local process `pid`. */
  deliveredTo(pid: Pid, deps: readonly SpecId[]): void {
    for (const id of deps) this.entry(id).pids.add(pid);
  }

  /** Drops committed dependencies; a delivery depending on a cancelled speculation is dropped. */
  filter(deps: readonly SpecId[] | undefined): Filtered {
    if (!deps || deps.length === 0) return { drop: false, deps: undefined };
    const left: SpecId[] = [];
    for (const id of deps) {
      const ok = this.resolved.get(id);
      if (ok === false) return { drop: true };
      if (ok === undefined) left.push(id);
    }
    return { drop: false, deps: left.length ? left : undefined };
  }

  /** Was it resolved already (and how)? */
  outcome(id: SpecId): boolean | undefined {
    return this.resolved.get(id);
  }

  /**
   * Speculation `id` ended. Returns who must hear it, once: a repeat (it came back around a
   * cycle of forwards) returns nobody.
   */
  resolve(id: SpecId, ok: boolean): Resolution {
    if (this.resolved.has(id)) return { peers: [], pids: [] };
    this.resolved.set(id, ok);
    if (this.resolved.size > this.maxResolved) this.resolved.delete(this.resolved.keys().next().value!);
    const d = this.tracked.get(id);
    this.tracked.delete(id);
    return { peers: d ? [...d.peers] : [], pids: d ? [...d.pids] : [] };
  }

  /** The unresolved speculations local process `pid` depends on (what it takes along when it moves). */
  depsOf(pid: Pid): SpecId[] {
    const out: SpecId[] = [];
    for (const [id, d] of this.tracked) if (d.pids.has(pid)) out.push(id);
    return out;
  }

  /** `pid` moved to `peer`: outcomes it depends on go there from now on. */
  moved(pid: Pid, peer: PeerId): void {
    for (const d of this.tracked.values()) {
      if (!d.pids.delete(pid)) continue;
      d.peers.add(peer);
    }
  }

  get size(): number {
    return this.tracked.size;
  }

  private entry(id: SpecId): Dependents {
    let d = this.tracked.get(id);
    if (d) {
      // most recently used last: the oldest speculations are the ones forgotten
      this.tracked.delete(id);
      this.tracked.set(id, d);
      return d;
    }
    d = { peers: new Set(), pids: new Set() };
    this.tracked.set(id, d);
    if (this.tracked.size > this.maxTracked) this.tracked.delete(this.tracked.keys().next().value!);
    return d;
  }
}
