// The simulator host: many real kernels (bootKernel, same servers as a tab) in one process,
// on a virtual clock and a seeded virtual network. Joins, crashes, restarts, leaves and
// partitions are driven by the test; everything else — keys, nonces, latencies, gossip
// targets — comes from one seed, so the same seed replays the same run, event for event.
//
// Running: `run(ms)` pops events in (time, sequence) order. After each event it waits for one
// setImmediate turn (Scheduler.run). Node runs every queued microtask (and every microtask those
// queue) before the next macrotask, and the simulator's crypto resolves without macrotasks, so
// that turn is a complete barrier: every `await`, queueMicrotask and promise chain the event
// started has settled before virtual time moves on — the guarantee a browser gives between two
// tasks. The cost is one event-loop turn per event (a few µs).
//
// Links: the topology (full mesh by default, like the browser host) says whom a joining peer
// dials. A link lost between two live peers is re-dialed by the lower id after the browser
// host's backoff (mesh.ts), so links that kernels closed for silence during a partition come
// back after the heal, as they would between real tabs.
import { createHash } from 'node:crypto';
import { identityFrom, type Identity } from '../../kernel/identity.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import type { Clock, KernelEvent, PeerId } from '../../kernel/types.ts';
import type { ExecutionDriver } from '../../kernel/process/protocol.ts';
import type { ProgramStore } from '../../servers/scheduler/client.ts';
import { MemoryStore, type BlockStore } from '../../servers/stockholder/store.ts';
import type { MembershipTiming } from '../../servers/synchronizer/membership.ts';
import type { ViewMessage } from '../../servers/synchronizer/protocol.ts';
import { bootKernel } from '../common/boot.ts';
import type { SchedulerOptions } from '../../servers/scheduler/scheduler.ts';
import { VERSION } from '../common/version.ts';
import { Scheduler, TimerOwner, settle } from './clock.ts';
import { simCryptoDriver, simKeyPair } from './crypto.ts';
import { SimNetwork, type NetworkOptions, type SimNic } from './network.ts';
import { SimRandom } from './random.ts';

/** Which live peers a joining (or restarted) peer connects to. */
export type Topology = (joining: PeerId, live: readonly PeerId[], random: SimRandom) => PeerId[];

/** Everyone to everyone, like the browser host. */
export const fullMesh: Topology = (_joining, live) => [...live];

/** Each joining peer links to `degree` random live peers (a cheaper, sparser cluster). */
export function randomMesh(degree: number): Topology {
  return (_joining, live, random) => {
    const pool = [...live];
    for (let i = 0; i < Math.min(degree, pool.length); i++) {
      const j = i + Math.floor(random.float() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, degree);
  };
}

export interface SimOptions extends Partial<NetworkOptions> {
  seed: number | string;
  /** The cluster token every peer boots with. */
  token?: string;
  timing?: MembershipTiming;
  topology?: Topology;
  /** Gives a booting peer its executors (capacity = their count); without it peers run no processes. */
  exec?: (peer: { id: PeerId; index: number }, clock: Clock) => ExecutionDriver | undefined;
  programs?: ProgramStore;
  /** Each peer's file store; it outlives crashes and restarts, like a tab's IndexedDB. Default: memory. */
  store?: (peer: { id: PeerId; index: number }) => BlockStore;
  /** Every peer's Scheduler options (rebalancing, checkpoints). */
  scheduler?: SchedulerOptions;
}

export type SimPeerStatus = 'alive' | 'crashed' | 'left';

export interface SimPeer {
  readonly id: PeerId;
  /** Join order, from 0. */
  readonly index: number;
  readonly capacity: number;
  status: SimPeerStatus;
  /** The current life's kernel (a restart boots a new one). */
  kernel: Kernel;
  /** The latest view its Synchronizer published. */
  view: ViewMessage | undefined;
  /** 1 for the first boot, +1 per restart. */
  lives: number;
}

interface PeerState extends SimPeer {
  identity: Identity;
  random: SimRandom;
  owner: TimerOwner;
  nic: SimNic;
  viewKey: string;
}

/** Mirrors the browser host's reconnect backoff (src/host/common/mesh.ts). */
const RETRY_MS = [500, 1000, 2000, 4000, 8000];
const STABLE_MS = 10_000;

export class Simulation {
  readonly sched = new Scheduler();
  readonly network: SimNetwork;
  readonly trace: string[] = [];
  /** Events run so far (for profiling). */
  eventsRun = 0;
  private readonly random: SimRandom;
  private readonly netRandom: SimRandom;
  private readonly hostRandom: SimRandom;
  private readonly token: string;
  private readonly timing: MembershipTiming | undefined;
  private readonly topology: Topology;
  private readonly execFor: SimOptions['exec'];
  private readonly programs: ProgramStore | undefined;
  private readonly schedulerOptions: SchedulerOptions | undefined;
  private readonly storeFor: NonNullable<SimOptions['store']>;
  private readonly stores = new Map<PeerId, BlockStore>();
  private readonly peerList: PeerState[] = [];
  private readonly byId = new Map<PeerId, PeerState>();
  /** Pairs the topology wants linked; the reconnect rule restores these. */
  private readonly wanted = new Set<string>();
  private readonly retryPending = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private readonly connectedAt = new Map<string, number>();

  constructor(opts: SimOptions) {
    this.random = new SimRandom(opts.seed);
    this.netRandom = this.random.fork();
    this.hostRandom = this.random.fork();
    this.token = opts.token ?? 'sim-cluster-token-0001';
    this.timing = opts.timing;
    this.topology = opts.topology ?? fullMesh;
    this.execFor = opts.exec;
    this.programs = opts.programs;
    this.schedulerOptions = opts.scheduler;
    this.storeFor = opts.store ?? (() => new MemoryStore());
    this.network = new SimNetwork(this.sched, this.netRandom, opts);
    this.network.onLinkLost = (a, b) => this.linkLost(a, b);
  }

  get now(): number {
    return this.sched.now;
  }

  get peers(): readonly SimPeer[] {
    return this.peerList;
  }

  live(): SimPeer[] {
    return this.peerList.filter((p) => p.status === 'alive');
  }

  peer(id: PeerId): SimPeer | undefined {
    return this.byId.get(id);
  }

  /** Boots a new peer (kind 'sim', capacity 1..8) and connects it per the topology. */
  async addPeer(): Promise<SimPeer> {
    const random = this.random.fork();
    const crypto = simCryptoDriver(random);
    const identity = await identityFrom(crypto, simKeyPair(random.bytes(32)));
    if (this.byId.has(identity.peerId)) throw new Error(`peer id collision ${identity.peerId}`);
    const capacity = random.int(1, 8);
    const p = { id: identity.peerId, index: this.peerList.length, capacity, identity, random, lives: 0, view: undefined, viewKey: '' } as PeerState;
    this.peerList.push(p);
    this.byId.set(p.id, p);
    this.log(`join ${short(p.id)} capacity=${capacity}`);
    await this.boot(p);
    return p;
  }

  /** The peer dies at once: no goodbye, its timers never fire, it hears nothing more. */
  crash(peer: SimPeer | PeerId): void {
    const p = this.state(peer);
    if (p.status !== 'alive') return;
    this.log(`crash ${short(p.id)}`);
    this.kill(p, 'crashed');
  }

  /** Graceful leave: kernel.stop() says goodbye over every link, then the peer is gone. */
  async leave(peer: SimPeer | PeerId): Promise<void> {
    const p = this.state(peer);
    if (p.status !== 'alive') return;
    this.log(`leave ${short(p.id)}`);
    p.kernel.stop('leaving');
    await settle();
    this.kill(p, 'left');
  }

  /** Boots the peer again with the same identity: a new kernel, a new incarnation (later wallNow). */
  async restart(peer: SimPeer | PeerId): Promise<SimPeer> {
    const p = this.state(peer);
    if (p.status === 'alive') this.kill(p, 'crashed');
    this.log(`restart ${short(p.id)}`);
    await this.boot(p);
    return p;
  }

  /**
   * Cuts the network between the groups: frames wait on the wire, nobody gets linkDown (the
   * kernels must notice the silence). Peers in no group reach everyone.
   */
  partition(...groups: (SimPeer | PeerId)[][]): void {
    const ids = groups.map((g) => g.map((x) => (typeof x === 'string' ? x : x.id)));
    this.log(`partition ${ids.map((g) => g.length).join('/')}`);
    this.network.partition(...ids);
  }

  heal(): void {
    this.log('heal');
    this.network.heal();
  }

  /** Advances virtual time by `ms`, running every event due and settling its async work. */
  async run(ms: number): Promise<void> {
    this.eventsRun += await this.sched.run(this.sched.now + ms);
  }

  /** Runs in `stepMs` steps until `done()` holds; returns false if `maxMs` passed first. */
  async runUntil(done: () => boolean, maxMs: number, stepMs = 250): Promise<boolean> {
    const end = this.sched.now + maxMs;
    while (!done()) {
      if (this.sched.now >= end) return false;
      await this.run(Math.min(stepMs, end - this.sched.now));
    }
    return true;
  }

  /** Each live peer's latest Synchronizer view. */
  views(): Map<PeerId, ViewMessage | undefined> {
    return new Map(this.live().map((p) => [p.id, p.view]));
  }

  /** What every live peer's view should list: the live peers, with kind and capacity. */
  expectedView(): { id: PeerId; kind: 'sim'; capacity: number }[] {
    return this.live()
      .map((p) => ({ id: p.id, kind: 'sim' as const, capacity: p.capacity }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** True when every live peer's view lists exactly the live peers. */
  converged(): boolean {
    const want = viewKey(this.expectedView());
    return this.peerList.every((p) => p.status !== 'alive' || p.viewKey === want);
  }

  /** SHA-256 of the whole trace: equal hashes mean the runs did the same things at the same times. */
  traceHash(): string {
    const h = createHash('sha256');
    for (const line of this.trace) h.update(line).update('\n');
    return h.digest('hex');
  }

  // ---- internals ----

  private async boot(p: PeerState): Promise<void> {
    const life = ++p.lives;
    const owner = new TimerOwner(`${short(p.id)}#${life}`);
    const nic = this.network.addNic(p.id, owner);
    const clock = this.sched.clockFor(owner);
    const exec = this.execFor?.(p, clock);
    if (exec) (p as { capacity: number }).capacity = exec.count;
    let store = this.stores.get(p.id);
    if (store === undefined) this.stores.set(p.id, (store = this.storeFor(p)));
    const kernel = await bootKernel({
      store,
      ...(exec ? { exec } : {}),
      ...(this.programs ? { programs: this.programs } : {}),
      ...(this.schedulerOptions ? { scheduler: this.schedulerOptions } : {}),
      identity: p.identity,
      token: this.token,
      timing: this.timing,
      drivers: {
        nic,
        clock,
        random: p.random,
        crypto: simCryptoDriver(p.random),
        console: { write: (text) => this.log(`${short(p.id)} console ${text}`) },
        info: { kind: 'sim', capacity: p.capacity, version: VERSION, load: () => 0 },
      },
    });
    Object.assign(p, { owner, nic, kernel, status: 'alive' as const, view: undefined, viewKey: '' });
    const current = () => p.kernel === kernel && p.status === 'alive';
    kernel.on((e) => {
      if (current()) this.log(`${short(p.id)} ${describe(e)}`);
    });
    kernel.register('sim.watch', (env) => {
      if (!current()) return;
      const view = env.body as ViewMessage;
      const key = viewKey(view.peers);
      p.view = view;
      if (key !== p.viewKey) {
        p.viewKey = key;
        this.log(`${short(p.id)} view n=${view.peers.length} ${fnv(key)}`);
      }
    });
    kernel.start();
    kernel.send({ peer: p.id, port: 'sim.watch' }, { peer: p.id, port: 'synchronizer' }, { kind: 'watch' });
    const others = this.live()
      .filter((q) => q !== p)
      .map((q) => q.id);
    for (const q of this.topology(p.id, others, this.hostRandom)) {
      const key = pairKey(p.id, q);
      this.wanted.add(key);
      this.attempts.delete(key);
      this.connectedAt.set(key, this.now);
      this.network.connect(...ordered(p.id, q));
    }
    await settle();
  }

  private kill(p: PeerState, status: SimPeerStatus): void {
    p.status = status;
    p.owner.alive = false;
    this.network.crash(p.id);
  }

  /** The host's reconnect rule: a lost link between two live peers comes back, the lower id dialing. */
  private linkLost(a: PeerId, b: PeerId): void {
    const key = pairKey(a, b);
    if (this.retryPending.has(key) || !this.wanted.has(key)) return;
    const [lo, hi] = ordered(a, b);
    const pl = this.byId.get(lo);
    const ph = this.byId.get(hi);
    if (!pl || !ph || pl.status !== 'alive' || ph.status !== 'alive') return;
    if (this.now - (this.connectedAt.get(key) ?? 0) > STABLE_MS) this.attempts.delete(key);
    const n = this.attempts.get(key) ?? 0;
    this.attempts.set(key, n + 1);
    const delay = RETRY_MS[Math.min(n, RETRY_MS.length - 1)]! * (0.75 + this.hostRandom.float() * 0.5);
    this.retryPending.add(key);
    this.sched.after(
      delay,
      () => {
        this.retryPending.delete(key);
        if (pl.status !== 'alive' || ph.status !== 'alive' || this.network.isLinked(lo, hi)) return;
        this.connectedAt.set(key, this.now);
        this.network.connect(lo, hi);
      },
      pl.owner,
    );
  }

  private state(peer: SimPeer | PeerId): PeerState {
    const p = this.byId.get(typeof peer === 'string' ? peer : peer.id);
    if (!p) throw new Error(`unknown peer ${String(peer)}`);
    return p;
  }

  private log(text: string): void {
    this.trace.push(`${this.sched.now.toFixed(3)} ${text}`);
  }
}

function describe(e: KernelEvent): string {
  switch (e.type) {
    case 'link.up':
      return `link.up ${short(e.peer)}`;
    case 'link.admitted':
      return `link.admitted ${short(e.peer)} ${e.kind}`;
    case 'link.down':
    case 'link.refused':
    case 'frame.bad':
      return `${e.type} ${short(e.peer)} ${e.reason}`;
    case 'message.undeliverable':
      return `undeliverable ${short(e.to.peer)}/${e.to.port} ${e.reason}`;
    case 'log':
      return `log ${e.level} ${e.source} ${e.text}`;
  }
}

function viewKey(peers: readonly { id: string; kind: string; capacity: number }[]): string {
  let s = '';
  for (const p of peers) s += `${p.id}:${p.kind}:${p.capacity},`;
  return s;
}

function fnv(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

function short(id: PeerId): string {
  return id.slice(0, 8);
}

function pairKey(a: PeerId, b: PeerId): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

function ordered(a: PeerId, b: PeerId): [PeerId, PeerId] {
  return a < b ? [a, b] : [b, a];
}
