// Synchronizer: cluster membership. Joins, graceful leaves and failures are learned by gossip
// over admitted links; each peer's resource entry (load, capacity, uptime, version, kind)
// rides along. Time, randomness and link news all come from the Driver, by message.
import { PORTS, type Server, type ServerContext } from '../../kernel/server.ts';
import type { Address, Envelope, PeerId } from '../../kernel/types.ts';
import { DriverReplySchema } from './driver-replies.ts';
import { DEFAULT_TIMING, Membership, type MembershipTiming, type ResourceEntry } from './membership.ts';
import { SynchronizerRequest, fromWire, toWire, type PeerView, type ViewMessage } from './protocol.ts';

/** Gossip goes to every neighbor in a small cluster, and to this many random ones beyond. */
export const SMALL_CLUSTER = 8;
export const FANOUT = 3;

export class SynchronizerServer implements Server {
  readonly port = PORTS.synchronizer;
  private ctx!: ServerContext;
  private membership: Membership | undefined;
  private readonly neighbors = new Set<PeerId>();
  private readonly rtt = new Map<PeerId, number>();
  private readonly watchers = new Map<string, Address>();
  private entry: ResourceEntry | undefined;
  private startedAt = 0;
  private now = 0;
  private rng: () => number = () => 0;

  constructor(private readonly timing: MembershipTiming = DEFAULT_TIMING) {}

  private get driver(): Address {
    return { peer: this.ctx.self, port: PORTS.driver };
  }

  start(ctx: ServerContext): void {
    this.ctx = ctx;
    ctx.send(this.driver, { kind: 'random', n: 16, tag: 'seed' });
    ctx.send(this.driver, { kind: 'host.info' });
    ctx.send(this.driver, { kind: 'net.watch' });
    ctx.send(this.driver, { kind: 'timer.set', id: 'gossip', ms: this.timing.tickMs, repeat: true });
  }

  stop(): void {
    if (!this.membership) return;
    const goodbye = toWire(this.membership.leave(this.now));
    for (const peer of this.neighbors) this.ctx.send({ peer, port: this.port }, { kind: 'gossip', m: goodbye });
  }

  receive(env: Envelope): void {
    if (env.from.peer === this.ctx.self && env.from.port === PORTS.driver) return this.fromDriver(env.body);
    const parsed = SynchronizerRequest.safeParse(env.body);
    if (!parsed.success) {
      this.ctx.log('warn', `bad message from ${env.from.peer}/${env.from.port}: ${parsed.error.issues[0]?.message}`);
      return;
    }
    const req = parsed.data;
    switch (req.kind) {
      case 'gossip':
        if (env.from.port !== this.port) return this.ctx.log('warn', `gossip from a non-synchronizer port ${env.from.port}`);
        if (this.membership?.merge(fromWire(req.m), this.now)) this.publish();
        break;
      case 'watch':
        if (env.from.peer !== this.ctx.self) return this.ctx.log('warn', `remote watch refused from ${env.from.peer}`);
        this.watchers.set(env.from.port, env.from);
        this.publishTo(env.from);
        break;
      case 'unwatch':
        this.watchers.delete(env.from.port);
        break;
    }
  }

  private fromDriver(body: unknown): void {
    const parsed = DriverReplySchema.safeParse(body);
    if (!parsed.success) return;
    const msg = parsed.data;
    switch (msg.kind) {
      case 'random':
        if (msg.tag === 'seed') this.rng = mulberry32(new DataView(msg.bytes.buffer, msg.bytes.byteOffset, 4).getUint32(0));
        break;
      case 'host.info':
        this.now = msg.now;
        if (!this.membership) this.startedAt = msg.now;
        this.entry = { kind: msg.peerKind, capacity: msg.capacity, load: msg.load, uptimeMs: msg.now - this.startedAt, version: msg.version };
        // The incarnation is wall-clock time at start, so a restarted peer outranks its old life.
        this.membership ??= new Membership(this.ctx.self, Math.floor(msg.wallNow), this.entry, msg.now, this.timing);
        break;
      case 'net.up':
        this.neighbors.add(msg.peer);
        // Greet a new neighbor with everything we know, so a joining peer converges at once.
        if (this.membership) this.ctx.send({ peer: msg.peer, port: this.port }, { kind: 'gossip', m: toWire(this.membership.digest()) });
        break;
      case 'net.down':
        this.neighbors.delete(msg.peer);
        this.rtt.delete(msg.peer);
        break;
      case 'net.stats':
        for (const l of msg.links) if (l.rttMs !== undefined) this.rtt.set(l.peer, l.rttMs);
        break;
      case 'timer.fire':
        this.now = msg.now;
        this.tick();
        break;
    }
  }

  private tick(): void {
    // Ask for fresh load and link figures; they are used from the next tick on.
    this.ctx.send(this.driver, { kind: 'host.info' });
    this.ctx.send(this.driver, { kind: 'net.stats' });
    if (!this.membership || !this.entry) return;
    this.membership.tick(this.now, this.entry);
    const digest = { kind: 'gossip', m: toWire(this.membership.digest()) };
    for (const peer of this.gossipTargets()) this.ctx.send({ peer, port: this.port }, digest);
    this.publish();
  }

  private gossipTargets(): PeerId[] {
    const all = [...this.neighbors];
    if (all.length <= SMALL_CLUSTER) return all;
    // Partial Fisher–Yates: FANOUT distinct random neighbors.
    for (let i = 0; i < FANOUT; i++) {
      const j = i + Math.floor(this.rng() * (all.length - i));
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    return all.slice(0, FANOUT);
  }

  /** The current view: alive peers, and how we reach each. */
  view(): ViewMessage {
    const peers: PeerView[] = (this.membership?.alive() ?? []).map((m) => ({
      id: m.id,
      ...m.entry,
      state: m.id === this.ctx.self ? 'self' : this.neighbors.has(m.id) ? 'connected' : 'gossip',
      rttMs: this.rtt.get(m.id),
    }));
    return { kind: 'view', self: this.ctx.self, peers };
  }

  private publish(): void {
    if (this.watchers.size === 0) return;
    const v = this.view();
    for (const w of this.watchers.values()) this.ctx.send(w, v);
  }

  private publishTo(to: Address): void {
    this.ctx.send(to, this.view());
  }
}

/** A tiny seeded PRNG: gossip target choice must replay exactly under the simulator. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
