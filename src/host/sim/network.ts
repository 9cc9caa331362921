// A seeded virtual network for the simulator. Each peer gets a SimNic (the kernel's
// NetworkInterface); `connect(a, b)` stands for the whole WebRTC dance and ends in `linkUp` on
// both sides with consistent fake DTLS fingerprints.
//
// Model (what a kernel can observe, and why):
//  - A link is a reliable, ordered data channel: each direction is a FIFO queue; a frame is
//    due after latency + jitter (+ size / bandwidth) and never overtakes an earlier one.
//  - `loss` is the probability that sending a frame breaks the link. A data channel never
//    drops single messages (SCTP retransmits); what an application does see of a lossy path is
//    the connection failing. Both sides then get `linkDown` and the host reconnects.
//  - A partition is a cut cable: nothing crosses it and nobody is told. Frames wait in their
//    queue (as SCTP would keep retransmitting) and flow again after `heal()`, unless a kernel
//    closed the silent link meanwhile. Kernels must notice the cut by silence.
//  - A crashed peer's NIC is dead: it receives nothing and its links stay "up" on the remote
//    sides, which again must notice by silence. Frames it sent before the crash still arrive.
//  - `close` by a kernel reaches the other side as `linkDown`, in order after the frames sent
//    before it (so a `bye` is read before the link goes down).
//  - bufferedAmount is the bytes sent on a link and not yet delivered; `drain` fires when it
//    falls back under LOW_WATER_BYTES, so the kernel's flow control is exercised for real.
import type { LinkInfo, NetworkInterface, NicEvents, PeerId } from '../../kernel/types.ts';
import { toHex } from '../../kernel/types.ts';
import { ownFrame } from '../../kernel/wire.ts';
import type { Scheduler, TimerOwner } from './clock.ts';
import type { SimRandom } from './random.ts';

export interface NetworkOptions {
  /** One-way delay of every frame. */
  latencyMs: number;
  /** Extra uniform random delay in [0, jitterMs). */
  jitterMs: number;
  /** Probability that sending one frame breaks its link (see the header). */
  loss: number;
  /** Bytes per millisecond per link direction; Infinity for no limit. */
  bandwidth: number;
  /** Signaling time from `connect` to `linkUp` (offer and answer through the relay). */
  connectMs: number;
}

export const DEFAULT_NETWORK: NetworkOptions = { latencyMs: 20, jitterMs: 10, loss: 0, bandwidth: Infinity, connectMs: 60 };

/** Matches the browser data plane's bufferedAmountLowThreshold. */
export const LOW_WATER_BYTES = 256 * 1024;

type Item = { at: number; bytes: Uint8Array } | { at: number; down: string };

/** One direction of a link: a FIFO of frames in flight, delivered one head at a time. */
class Direction {
  private items: Item[] = [];
  private head = 0;
  /** Due time of the last queued item: nothing may be due earlier (FIFO). */
  lastAt = 0;
  /** When the sender's side of the wire is free again (bandwidth model). */
  wireFreeAt = 0;
  bytes = 0;
  scheduled = false;
  /** The head reached a partition and waits for `heal()`. */
  stalled = false;
  wantDrain = false;

  get length(): number {
    return this.items.length - this.head;
  }

  peek(): Item | undefined {
    return this.items[this.head];
  }

  push(item: Item): void {
    this.items.push(item);
  }

  shift(): Item | undefined {
    const item = this.items[this.head];
    if (!item) return undefined;
    this.items[this.head++] = undefined as unknown as Item;
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if ('bytes' in item) this.bytes -= item.bytes.length;
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }
}

/** One transport connection between two NICs. Side 0 initiated it. */
class Conn {
  readonly up: [boolean, boolean] = [false, false];
  readonly dirs: [Direction, Direction] = [new Direction(), new Direction()];
  closed = false;
  /** Failed (simulated loss): nothing more crosses it; both sides are about to be told. */
  broken = false;
  constructor(
    readonly id: number,
    readonly ends: [SimNic, SimNic],
  ) {}

  side(nic: SimNic): 0 | 1 | -1 {
    return this.ends[0] === nic ? 0 : this.ends[1] === nic ? 1 : -1;
  }
}

export interface NetworkStats {
  framesSent: number;
  framesDelivered: number;
  framesDropped: number;
  bytesDelivered: number;
  connects: number;
  linkFailures: number;
}

export class SimNic implements NetworkInterface {
  events: NicEvents | undefined;
  alive = true;

  constructor(
    private readonly net: SimNetwork,
    readonly peer: PeerId,
    readonly owner: TimerOwner,
    /** This NIC's fake DTLS certificate fingerprint, as an SDP would show it. */
    readonly fingerprint: string,
  ) {}

  attach(events: NicEvents): void {
    this.events = events;
  }

  send(peer: PeerId, frame: Uint8Array): void {
    this.net.send(this, peer, frame);
  }

  bufferedAmount(peer: PeerId): number {
    return this.net.buffered(this, peer);
  }

  close(peer: PeerId, reason: string): void {
    this.net.close(this, peer, reason);
  }
}

export class SimNetwork {
  readonly opts: NetworkOptions;
  private readonly nics = new Map<PeerId, SimNic>();
  private readonly conns = new Map<string, Conn>();
  private groups: Map<PeerId, number> | undefined;
  private nextConnId = 0;
  readonly stats: NetworkStats = { framesSent: 0, framesDelivered: 0, framesDropped: 0, bytesDelivered: 0, connects: 0, linkFailures: 0 };
  /** Told whenever a link between two peers is lost or a connection attempt fails (the reconnect rule hooks here). */
  onLinkLost: ((a: PeerId, b: PeerId) => void) | undefined;

  constructor(
    private readonly sched: Scheduler,
    private readonly random: SimRandom,
    opts: Partial<NetworkOptions> = {},
  ) {
    this.opts = { ...DEFAULT_NETWORK, ...opts };
  }

  /** A NIC for `peer`; a restarted peer gets a new one and the old one goes dead. */
  addNic(peer: PeerId, owner: TimerOwner): SimNic {
    const old = this.nics.get(peer);
    if (old) old.alive = false;
    const fp = `sha-256 ${toHex(this.random.bytes(32)).toUpperCase().replace(/(..)(?!$)/g, '$1:')}`;
    const nic = new SimNic(this, peer, owner, fp);
    this.nics.set(peer, nic);
    return nic;
  }

  nic(peer: PeerId): SimNic | undefined {
    return this.nics.get(peer);
  }

  /** The peer's NIC stops receiving; nobody is told. */
  crash(peer: PeerId): void {
    const nic = this.nics.get(peer);
    if (nic) nic.alive = false;
  }

  /**
   * Starts a connection; both sides get `linkUp` after `connectMs` unless one side is dead or
   * the two are partitioned by then (the attempt then fails and `onLinkLost` is told).
   * The new connection replaces any older one between the two.
   */
  connect(a: PeerId, b: PeerId): void {
    const na = this.nics.get(a);
    const nb = this.nics.get(b);
    if (!na || !nb || a === b) throw new Error(`connect: unknown peer or self-link ${a} ${b}`);
    const conn = new Conn(this.nextConnId++, [na, nb]);
    this.sched.after(this.opts.connectMs, () => {
      if (!this.current(na) || !this.current(nb) || this.partitioned(a, b)) {
        this.onLinkLost?.(a, b);
        return;
      }
      const key = pairKey(a, b);
      const old = this.conns.get(key);
      if (old) this.retire(old);
      this.conns.set(key, conn);
      this.stats.connects++;
      this.linkUp(conn, 0);
      // The answerer's side opens in its own event, right after (same instant).
      this.sched.after(0, () => {
        if (!conn.closed && this.current(nb)) this.linkUp(conn, 1);
      });
    });
  }

  isLinked(a: PeerId, b: PeerId): boolean {
    const c = this.conns.get(pairKey(a, b));
    return !!c && !c.closed && c.up[0] && c.up[1];
  }

  /** Cuts the network into groups; peers in no group reach everyone. Replaces any earlier cut. */
  partition(...groups: PeerId[][]): void {
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((p) => this.groups!.set(p, i)));
  }

  heal(): void {
    this.groups = undefined;
    for (const conn of this.conns.values()) {
      for (const d of [0, 1] as const) {
        const dir = conn.dirs[d];
        if (!dir.stalled) continue;
        dir.stalled = false;
        const head = dir.peek();
        if (head) head.at = Math.max(head.at, this.sched.now + this.delay());
        this.scheduleHead(conn, d);
      }
    }
  }

  partitioned(a: PeerId, b: PeerId): boolean {
    if (!this.groups) return false;
    const ga = this.groups.get(a);
    const gb = this.groups.get(b);
    return ga !== undefined && gb !== undefined && ga !== gb;
  }

  // ---- what SimNic calls ----

  send(from: SimNic, to: PeerId, bytes: Uint8Array): void {
    const found = this.current(from) ? this.connOf(from, to) : undefined;
    if (!found || !found.conn.up[found.side] || found.conn.broken) {
      this.stats.framesDropped++;
      return; // a closed channel: the send goes nowhere, as with a closed RTCDataChannel
    }
    const { conn, side } = found;
    this.stats.framesSent++;
    if (this.opts.loss > 0 && this.random.float() < this.opts.loss) {
      this.fail(conn, 'link failed (simulated loss)');
      return;
    }
    const dir = conn.dirs[side];
    const now = this.sched.now;
    // Copy: a real transport owns its bytes (not bytes.slice(): on a Buffer that is a view).
    const copy = ownFrame(bytes);
    let sentAt = now;
    if (Number.isFinite(this.opts.bandwidth)) {
      sentAt = Math.max(now, dir.wireFreeAt) + copy.length / this.opts.bandwidth;
      dir.wireFreeAt = sentAt;
    }
    const at = Math.max(sentAt + this.delay(), dir.lastAt);
    dir.lastAt = at;
    dir.push({ at, bytes: copy });
    dir.bytes += copy.length;
    if (dir.bytes > LOW_WATER_BYTES) dir.wantDrain = true;
    this.scheduleHead(conn, side);
  }

  buffered(from: SimNic, to: PeerId): number {
    const found = this.connOf(from, to);
    return found ? found.conn.dirs[found.side].bytes : 0;
  }

  close(from: SimNic, to: PeerId, reason: string): void {
    const found = this.current(from) ? this.connOf(from, to) : undefined;
    if (!found || !found.conn.up[found.side]) return;
    const { conn, side } = found;
    conn.up[side] = false;
    const dir = conn.dirs[side];
    const at = Math.max(this.sched.now + this.delay(), dir.lastAt);
    dir.lastAt = at;
    dir.push({ at, down: `remote closed: ${reason}` });
    this.scheduleHead(conn, side);
    this.endLost(conn);
  }

  // ---- internals ----

  private linkUp(conn: Conn, side: 0 | 1): void {
    const me = conn.ends[side];
    const them = conn.ends[1 - side]!;
    conn.up[side] = true;
    const info: LinkInfo = { peer: them.peer, localFingerprint: me.fingerprint, remoteFingerprint: them.fingerprint };
    me.events?.linkUp(info);
  }

  private scheduleHead(conn: Conn, d: 0 | 1): void {
    const dir = conn.dirs[d];
    const head = dir.peek();
    if (dir.scheduled || dir.stalled || !head || conn.closed) return;
    dir.scheduled = true;
    this.sched.at(head.at, () => this.deliverHead(conn, d));
  }

  private deliverHead(conn: Conn, d: 0 | 1): void {
    const dir = conn.dirs[d];
    dir.scheduled = false;
    if (conn.closed || conn.broken) return dir.clear();
    const sender = conn.ends[d];
    const receiver = conn.ends[1 - d]!;
    if (this.partitioned(sender.peer, receiver.peer)) {
      dir.stalled = true; // held on the wire until heal()
      return;
    }
    const item = dir.shift();
    if (!item) return;
    if (!this.current(receiver)) {
      // Nobody is listening any more: the receiving side of this connection is gone.
      if ('bytes' in item) this.stats.framesDropped++;
      if (conn.up[1 - d]) {
        conn.up[1 - d] = false;
        this.endLost(conn);
      }
    } else if ('bytes' in item) {
      if (conn.up[1 - d]) {
        this.stats.framesDelivered++;
        this.stats.bytesDelivered += item.bytes.length;
        receiver.events?.frame(sender.peer, item.bytes);
      } else {
        this.stats.framesDropped++;
      }
    } else if (conn.up[1 - d]) {
      conn.up[1 - d] = false;
      receiver.events?.linkDown(sender.peer, item.down);
      this.endLost(conn);
    }
    if (dir.wantDrain && dir.bytes <= LOW_WATER_BYTES) {
      dir.wantDrain = false;
      this.sched.after(
        0,
        () => {
          if (!conn.closed && conn.up[d] && this.current(sender)) sender.events?.drain(receiver.peer);
        },
        sender.owner,
      );
    }
    this.scheduleHead(conn, d);
  }

  /** The link breaks: both sides are told after a delay, frames in flight are lost. */
  private fail(conn: Conn, reason: string): void {
    this.stats.linkFailures++;
    conn.broken = true;
    for (const d of [0, 1] as const) {
      conn.dirs[d].clear();
      const me = conn.ends[d];
      const them = conn.ends[1 - d]!;
      this.sched.after(this.delay(), () => {
        if (conn.closed || !conn.up[d]) return;
        conn.up[d] = false;
        if (this.current(me)) me.events?.linkDown(them.peer, reason);
        this.endLost(conn);
      });
    }
  }

  /** One end went down: once both are, the connection is gone. Either way the host is told. */
  private endLost(conn: Conn): void {
    if (!conn.up[0] && !conn.up[1]) this.retire(conn);
    this.onLinkLost?.(conn.ends[0].peer, conn.ends[1].peer);
  }

  private retire(conn: Conn): void {
    conn.closed = true;
    conn.dirs[0].clear();
    conn.dirs[1].clear();
    const key = pairKey(conn.ends[0].peer, conn.ends[1].peer);
    if (this.conns.get(key) === conn) this.conns.delete(key);
  }

  private connOf(nic: SimNic, to: PeerId): { conn: Conn; side: 0 | 1 } | undefined {
    const conn = this.conns.get(pairKey(nic.peer, to));
    if (!conn || conn.closed) return undefined;
    const side = conn.side(nic);
    return side < 0 ? undefined : { conn, side: side as 0 | 1 };
  }

  /** Alive and still the peer's NIC (not replaced by a restart). */
  private current(nic: SimNic): boolean {
    return nic.alive && this.nics.get(nic.peer) === nic;
  }

  private delay(): number {
    return this.opts.latencyMs + (this.opts.jitterMs > 0 ? this.random.float() * this.opts.jitterMs : 0);
  }
}

function pairKey(a: PeerId, b: PeerId): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
