// Stockholder: the cluster filesystem's server. One per peer.
//
// It holds this peer's replica of the namespace (FsModel: a move-CRDT tree plus file versions),
// this peer's share of the content (immutable 1 MiB blocks named by SHA-256, in a BlockStore),
// and keeps both in step with the other peers:
//   - ops: every local op is stored (strict transaction), applied, and pushed to every linked
//     peer; anti-entropy (`vv` → `ops`) repairs whatever a push missed, so a peer that was away
//     catches up and every replica converges to the same namespace;
//   - blocks: peers advertise what they hold (`have`); the planner fetches what this peer should
//     hold, rarest first from several holders, each block checked against its hash.
// Local users are the host (files panel: ingest, download, rename...) and processes, through
// ClusterFileSystem (fs.ts); both call this object directly — it is handed to them at boot as a
// device, like the executors are handed to the Scheduler.
import { PORTS, type Server, type ServerContext } from '../../kernel/server.ts';
import { toHex, type Clock, type Envelope, type PeerId } from '../../kernel/types.ts';
import type { ViewMessage } from '../synchronizer/protocol.ts';
import type { FileProgress, FileRow, FilesSnapshot } from './files-api.ts';
import { FsModel, type FileEntry } from './model.ts';
import { MAX_OPS_BYTES, MAX_OPS_PER_MESSAGE, PeerMessageSchema, type PeerMessage } from './protocol.ts';
import { ReplicationPlanner, replicationFactor, shouldHold } from './replication.ts';
import { StoreFullError, type BlockStore, type StoredBlock } from './store.ts';
import { BLOCK_SIZE, ROOT, type FsOp, type Hash, type Manifest, type VersionId } from './types.ts';

/** Anti-entropy and `have` refresh period. */
const SYNC_PERIOD_MS = 2_000;
/** Changes to what this peer holds are advertised at most this often. */
const HAVE_COALESCE_MS = 300;
/** The files panel gets at most this many snapshots a second. */
const SNAPSHOT_COALESCE_MS = 250;
/** Blocks are stored in batches of this many (one relaxed transaction each). */
const PUT_BATCH = 8;
/** After the store refused a write for lack of space, replication waits this long to try again. */
const FULL_RETRY_MS = 30_000;
/** How long a reader waits for some peer to advertise a block it needs before giving up. */
const HOLDER_WAIT_MS = 5_000;
/** The store's usage estimate is refreshed at most this often. */
const ESTIMATE_PERIOD_MS = 5_000;
/** Blocks kept in memory for readers (16 MiB). */
const CACHE_BLOCKS = 16;
/** Notices kept for the panel. */
const NOTICES = 20;

export interface StockholderDevices {
  clock: Clock;
  sha256(data: Uint8Array): Promise<Uint8Array>;
  /** 4 random bytes name this boot's origin. */
  randomBytes(n: number): Uint8Array;
  store: BlockStore;
  /** Resolves with a better store later (a tab that gets to own its profile's IndexedDB). */
  takeover?: Promise<BlockStore>;
}

/** Reads a dropped file piece by piece (Blob.slice in a tab); rejects if the file vanished. */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

export type Notice = FilesSnapshot['notices'][number];

interface Upload {
  path: string;
  parent: string;
  progress: FileProgress;
}

interface NeededIndex {
  revision: number;
  map: Map<VersionId, Manifest>;
  byBlock?: Map<Hash, VersionId[]>;
}

interface Rate {
  at: number;
  bytes: number;
}

export class StockholderServer implements Server {
  readonly port = PORTS.stockholder;
  private ctx!: ServerContext;
  private store: BlockStore;
  model!: FsModel;
  /** Blocks in the store. */
  private readonly held = new Set<Hash>();
  private readonly planner = new ReplicationPlanner();
  /** Alive members (self included) and the ones with a direct link. */
  private members: PeerId[] = [];
  private linked = new Set<PeerId>();
  private readonly inbox: Envelope[] = [];
  private loaded = false;
  readonly ready: Promise<void>;
  private markReady!: () => void;
  /** Local-op and remote-op commits, in order. */
  private commits: Promise<void> = Promise.resolve();
  private haveTimer: (() => void) | undefined;
  private snapshotTimer: (() => void) | undefined;
  private periodic: (() => void) | undefined;
  private fullUntil = 0;
  private pendingPuts: StoredBlock[] = [];
  /** Blocks received, verified, and queued or being stored. */
  private readonly storing = new Set<Hash>();
  private putting: Promise<void> | undefined;
  /** Blocks a reader is waiting for. */
  private readonly fetchWaiters = new Map<Hash, Array<{ ok(b: Uint8Array): void; fail(e: Error): void; deadline: number }>>();
  /** Blocks written by an ingest or a draft not yet named by an op: GC must spare them. */
  private readonly pinned = new Map<Hash, number>();
  private readonly uploads = new Map<number, Upload>();
  private nextUpload = 0;
  private readonly rates = new Map<VersionId, Rate[]>();
  private readonly replicaWaiters = new Set<() => void>();
  private readonly watchers = new Map<number, (s: FilesSnapshot) => void>();
  private nextWatcher = 0;
  private readonly notices: Notice[] = [];
  /** Recently read blocks (readers get them shared: callers never write into them). */
  private readonly cache = new Map<Hash, Uint8Array>();
  /** The store's latest estimate of its usage and quota. */
  private estimated = { usage: 0, quota: Infinity };
  private estimatedAt = -Infinity;
  private neededCache: NeededIndex | undefined;
  /** Stats for tests and the bench. */
  readonly stats = { blocksIn: 0, blocksOut: 0, badBlocks: 0, refused: 0, opsIn: 0, loadMs: 0, loadedOps: 0 };

  constructor(private readonly devices: StockholderDevices) {
    this.store = devices.store;
    this.ready = new Promise((r) => (this.markReady = r));
  }

  get self(): PeerId {
    return this.ctx.self;
  }

  get storeInfo(): { label: string; durable: boolean } {
    return { label: this.store.label, durable: this.store.durable };
  }

  start(ctx: ServerContext): void {
    this.ctx = ctx;
    this.members = [ctx.self];
    this.model = new FsModel(`${ctx.self}~${toHex(this.devices.randomBytes(4))}`);
    ctx.send({ peer: ctx.self, port: PORTS.synchronizer }, { kind: 'watch' });
    void this.load(this.store).then(
      () => {
        this.loaded = true;
        this.markReady();
        for (const env of this.inbox.splice(0)) this.receive(env);
        this.schedulePeriodic();
        this.replan();
      },
      (err) => this.notice('error', `could not load the file store ${this.store.label}: ${errText(err)}`),
    );
    void this.devices.takeover?.then((s) => this.adopt(s)).catch((err) => this.notice('warn', `could not take over the profile's store: ${errText(err)}`));
  }

  stop(): void {
    this.periodic?.();
    this.haveTimer?.();
    this.snapshotTimer?.();
  }

  // ---- loading and the store ----

  private async load(store: BlockStore): Promise<void> {
    const started = this.devices.clock.now();
    const ops = await store.loadOps();
    this.noticeRefused(store);
    this.model.load(ops);
    this.model.entries(); // the view is built lazily: count it in the load
    this.stats.loadMs = this.devices.clock.now() - started;
    this.stats.loadedOps = ops.length;
    for (const h of await store.listBlocks()) this.held.add(h);
    await this.collectGarbage();
    const files = this.model.entries().filter((e) => e.kind === 'file').length;
    this.ctx.log('info', `stockholder: ${ops.length} ops, ${files} files, ${this.held.size} blocks from ${store.label}`);
  }

  /** Switches to a store this peer now owns (a tab whose profile's owner closed): merges both. */
  private async adopt(next: BlockStore): Promise<void> {
    await this.ready;
    const prev = this.store;
    const ops = await next.loadOps();
    this.noticeRefused(next);
    const fresh = this.model.receive(ops);
    // Everything this peer learnt while it kept memory only goes into the durable store.
    await next.commitOps(this.model.opsSince({}, Number.MAX_SAFE_INTEGER));
    for (const h of [...this.held]) {
      const bytes = await prev.getBlock(h);
      if (bytes) await next.putBlocks([{ hash: h, bytes }]);
    }
    for (const h of await next.listBlocks()) this.held.add(h);
    this.store = next;
    await prev.close();
    this.notice('info', `this tab now owns the profile's store (${next.label}); ${fresh.length} ops from it merged`);
    this.changed();
    this.replan();
  }

  /** Records of the op log the store could not read: said, not hidden (they stay stored). */
  private noticeRefused(store: BlockStore): void {
    for (const why of store.refused ?? []) this.notice('error', `could not read part of the file store's op log: ${why}`);
  }

  /** Deletes blocks no version needs (an ingest a crash interrupted, files purged from the trash). */
  private async collectGarbage(): Promise<void> {
    const needed = new Set<Hash>();
    for (const m of this.needed().values()) for (const h of m.blocks) needed.add(h);
    const garbage = [...this.held].filter((h) => !needed.has(h) && !this.pinned.has(h));
    if (garbage.length === 0) return;
    await this.store.deleteBlocks(garbage);
    for (const h of garbage) this.held.delete(h);
    this.ctx.log('info', `stockholder: deleted ${garbage.length} blocks no file needs`);
  }

  private needed(): Map<VersionId, Manifest> {
    return this.neededIndex().map;
  }

  /** The needed versions a block belongs to (indexed once per namespace revision: hot path). */
  private versionsWith(h: Hash): readonly VersionId[] {
    const index = this.neededIndex();
    if (index.byBlock === undefined) {
      index.byBlock = new Map();
      for (const [v, m] of index.map) {
        for (const b of m.blocks) {
          const list = index.byBlock.get(b);
          if (list === undefined) index.byBlock.set(b, [v]);
          else if (list.at(-1) !== v) list.push(v);
        }
      }
    }
    return index.byBlock.get(h) ?? [];
  }

  private neededIndex(): NeededIndex {
    if (this.neededCache?.revision !== this.model.revision) {
      this.neededCache = { revision: this.model.revision, map: this.model.neededVersions() };
    }
    return this.neededCache;
  }

  // ---- messages ----

  receive(env: Envelope): void {
    const body = env.body as { kind?: unknown };
    if (env.from.peer === this.ctx.self && env.from.port === PORTS.synchronizer) {
      if (body?.kind === 'view') this.onView(env.body as ViewMessage);
      return;
    }
    if (!this.loaded) {
      if (this.inbox.length < 10_000) this.inbox.push(env);
      return;
    }
    if (env.from.peer === this.ctx.self) return;
    if (!this.members.includes(env.from.peer)) {
      this.stats.refused++;
      this.ctx.log('warn', `stockholder: refused a message from ${env.from.peer.slice(0, 8)}, which is not a member of the cluster`);
      return;
    }
    const parsed = PeerMessageSchema.safeParse(env.body);
    if (!parsed.success) {
      this.stats.refused++;
      this.ctx.log('warn', `stockholder: bad message from ${env.from.peer.slice(0, 8)}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      return;
    }
    this.onPeerMessage(env.from.peer, parsed.data as PeerMessage);
  }

  private toPeer(peer: PeerId, msg: PeerMessage): void {
    this.ctx.send({ peer, port: PORTS.stockholder }, msg);
  }

  private onPeerMessage(peer: PeerId, msg: PeerMessage): void {
    switch (msg.kind) {
      case 'vv': {
        const all = this.model.opsSince(msg.vv, MAX_OPS_PER_MESSAGE);
        let bytes = 0;
        let n = 0;
        // A prefix of opsSince is still gap-free per origin.
        while (n < all.length && (n === 0 || bytes < MAX_OPS_BYTES)) bytes += opBytes(all[n++]!);
        const ops = all.slice(0, n);
        if (ops.length > 0) this.toPeer(peer, { kind: 'ops', ops, ...(n < all.length || all.length >= MAX_OPS_PER_MESSAGE ? { more: true } : {}) });
        return;
      }
      case 'ops': {
        this.stats.opsIn += msg.ops.length;
        const fresh = this.model.receive(msg.ops);
        if (fresh.length > 0) {
          // A failed commit is reported by persist(); the ops stay applied and other peers keep them.
          this.persist(fresh).catch(() => {});
          this.changed();
          this.replan();
        }
        // An answer that stopped short: ask again at once rather than next round.
        if (msg.more) this.toPeer(peer, { kind: 'vv', vv: this.model.versionVector() });
        return;
      }
      case 'have':
        this.planner.setAdvert(peer, msg.versions, msg.blocks);
        this.wakeReplicaWaiters();
        this.changed();
        this.pump();
        return;
      case 'get':
        void this.serve(peer, msg.hashes);
        return;
      case 'block':
        void this.onBlock(peer, msg.hash, msg.bytes);
        return;
      case 'nohave':
        this.planner.failed(msg.hash, peer);
        this.pump();
        return;
    }
  }

  private onView(view: ViewMessage): void {
    if (view?.kind !== 'view' || !Array.isArray(view.peers)) return;
    const before = new Set(this.members);
    this.members = view.peers.map((p) => p.id);
    const linked = new Set(view.peers.filter((p) => p.state === 'connected').map((p) => p.id));
    for (const p of before) {
      if (!this.members.includes(p)) {
        this.planner.removePeer(p);
      }
    }
    const fresh = [...linked].filter((p) => !this.linked.has(p));
    this.linked = linked;
    if (!this.loaded) return;
    for (const p of fresh) {
      this.toPeer(p, { kind: 'vv', vv: this.model.versionVector() });
      this.toPeer(p, this.haveMessage());
    }
    this.wakeReplicaWaiters();
    this.changed();
    this.replan();
  }

  private schedulePeriodic(): void {
    this.periodic = this.devices.clock.setTimeout(() => {
      // Anti-entropy with one linked peer per round (gossip-style): O(n) messages per round
      // for the cluster, and any op still spreads to everyone in O(log n) rounds.
      const linked = [...this.linked].sort();
      if (linked.length > 0) {
        const r = this.devices.randomBytes(4);
        const p = linked[((r[0]! << 16) | (r[1]! << 8) | r[2]!) % linked.length]!;
        this.toPeer(p, { kind: 'vv', vv: this.model.versionVector() });
        this.toPeer(p, this.haveMessage());
      }
      this.pump();
      this.schedulePeriodic();
    }, SYNC_PERIOD_MS);
  }

  // ---- ops ----

  /** Stores ops (strict), in the order given, after everything stored before. */
  private persist(ops: readonly FsOp[]): Promise<void> {
    const done = this.commits.then(() => this.store.commitOps(ops));
    this.commits = done.catch((err) => this.notice('error', `could not store ${ops.length} operations: ${errText(err)}`));
    return done;
  }

  /** A local op: already applied to the model; store it, then tell every linked peer. */
  private async publish(ops: readonly FsOp[]): Promise<void> {
    this.changed();
    let stored: unknown;
    await this.persist(ops).catch((err) => (stored = err ?? new Error('commit failed')));
    // Sent even when the commit failed: the op is applied here, and on other peers it is not lost.
    for (const p of this.linked) this.toPeer(p, { kind: 'ops', ops: [...ops] });
    this.replan();
    if (stored !== undefined) throw stored;
  }

  /** Runs a local op on the model (which throws for an invalid one) and publishes it. */
  async apply(make: (m: FsModel, wall: number) => FsOp | FsOp[] | undefined): Promise<FsOp[]> {
    await this.ready;
    const made = make(this.model, this.devices.clock.wallNow());
    const ops = made === undefined ? [] : Array.isArray(made) ? made : [made];
    if (ops.length > 0) await this.publish(ops);
    if (ops.some((op) => op.body.t === 'purge')) await this.collectGarbage();
    return ops;
  }

  // ---- blocks: storing ----

  async hashOf(bytes: Uint8Array): Promise<Hash> {
    return toHex(await this.devices.sha256(bytes));
  }

  /** Stores blocks this peer made (ingest, a process's write), pinned until an op names them. */
  async putOwnBlocks(blocks: readonly StoredBlock[]): Promise<void> {
    for (const b of blocks) this.pin(b.hash);
    try {
      await this.store.putBlocks(blocks);
    } catch (err) {
      for (const b of blocks) this.unpin(b.hash);
      throw err;
    }
    for (const b of blocks) this.held.add(b.hash);
  }

  pin(h: Hash): void {
    this.pinned.set(h, (this.pinned.get(h) ?? 0) + 1);
  }

  unpin(h: Hash): void {
    const n = (this.pinned.get(h) ?? 1) - 1;
    if (n <= 0) this.pinned.delete(h);
    else this.pinned.set(h, n);
  }

  /** A block's bytes: from the store, or fetched from a holder (a process or download is waiting). */
  async readBlock(h: Hash): Promise<Uint8Array> {
    await this.ready;
    const cached = this.cache.get(h);
    if (cached) {
      // Most recently used last.
      this.cache.delete(h);
      this.cache.set(h, cached);
      return cached;
    }
    if (this.held.has(h)) {
      const bytes = await this.store.getBlock(h);
      if (bytes) {
        this.remember(h, bytes);
        return bytes;
      }
      this.held.delete(h);
    }
    return new Promise((ok, fail) => {
      let list = this.fetchWaiters.get(h);
      if (list === undefined) this.fetchWaiters.set(h, (list = []));
      // A file's op can arrive before its holders' `have`: give them a moment to speak up.
      const deadline = this.devices.clock.now() + HOLDER_WAIT_MS;
      list.push({ ok, fail, deadline });
      this.devices.clock.setTimeout(() => this.pump(), HOLDER_WAIT_MS);
      this.pump();
    });
  }

  /** Keeps a block read: programs read files in small pieces, each of which would cost a store read. */
  private remember(h: Hash, bytes: Uint8Array): void {
    this.cache.set(h, bytes);
    while (this.cache.size > CACHE_BLOCKS) this.cache.delete(this.cache.keys().next().value!);
  }

  // ---- blocks: replication ----

  /** Recomputes what this peer wants, then asks for it. */
  private replan(): void {
    if (!this.loaded) return;
    const needed = this.needed();
    this.planner.setManifests(needed);
    const mine: Manifest[] = [];
    for (const [v, m] of needed) if (shouldHold(v, this.ctx.self, this.members)) mine.push(m);
    // Blocks received and waiting for their batch to be stored are not wanted again.
    this.planner.setWants(mine, (h) => this.held.has(h) || this.storing.has(h));
    this.scheduleHave();
    this.pump();
  }

  private pump(): void {
    if (!this.loaded) return;
    const now = this.devices.clock.now();
    const urgent = [...this.fetchWaiters.keys()];
    if (now < this.fullUntil && urgent.length === 0) return;
    const reqs = this.planner.next(now, urgent);
    const byPeer = new Map<PeerId, Hash[]>();
    for (const r of reqs) {
      const list = byPeer.get(r.peer);
      if (list) list.push(r.hash);
      else byPeer.set(r.peer, [r.hash]);
    }
    for (const [peer, hashes] of byPeer) this.toPeer(peer, { kind: 'get', hashes });
    // A reader waiting on a block nobody has hears so once its wait for a holder is over.
    for (const h of urgent) {
      if (this.planner.requested(h) || this.planner.holdersOf(h).length > 0) continue;
      const list = this.fetchWaiters.get(h) ?? [];
      const keep = list.filter((w) => w.deadline > now);
      for (const w of list) if (w.deadline <= now) w.fail(new Error(`block ${h.slice(0, 12)} is on no live peer`));
      if (keep.length > 0) this.fetchWaiters.set(h, keep);
      else this.fetchWaiters.delete(h);
    }
  }

  /** Answers a `get`, one block at a time (the kernel queues and chunks them). */
  private async serve(peer: PeerId, hashes: readonly Hash[]): Promise<void> {
    // Every read started at once (the store works in parallel), each block sent as soon as it and
    // those before it are read.
    const reads = hashes.map((h) => (this.held.has(h) ? this.store.getBlock(h).catch(() => undefined) : Promise.resolve(undefined)));
    for (const [i, h] of hashes.entries()) {
      const bytes = await reads[i];
      if (bytes === undefined) {
        this.toPeer(peer, { kind: 'nohave', hash: h });
        continue;
      }
      this.stats.blocksOut++;
      this.toPeer(peer, { kind: 'block', hash: h, bytes });
    }
  }

  private async onBlock(peer: PeerId, h: Hash, bytes: Uint8Array): Promise<void> {
    if (!this.planner.awaiting(h, peer)) {
      this.ctx.log('warn', `stockholder: ignored block ${h.slice(0, 12)} from ${peer.slice(0, 8)} that was not asked of it`);
      return;
    }
    const actual = await this.hashOf(bytes);
    if (actual !== h) {
      this.stats.badBlocks++;
      this.planner.failed(h, peer);
      this.notice('warn', `a block from peer ${peer.slice(0, 8)} failed its hash check (${h.slice(0, 12)}): dropped, asking another holder`);
      this.pump();
      return;
    }
    this.planner.delivered(h, peer);
    this.stats.blocksIn++;
    const waiters = this.fetchWaiters.get(h);
    this.fetchWaiters.delete(h);
    if (waiters) this.remember(h, bytes);
    for (const w of waiters ?? []) w.ok(bytes);
    if (this.held.has(h) || this.storing.has(h)) return this.pump();
    this.countRate(h, bytes.length);
    this.storing.add(h);
    this.pendingPuts.push({ hash: h, bytes });
    void this.flushPuts();
    this.pump();
  }

  /** Stores fetched blocks in batches, one relaxed transaction per batch. */
  private async flushPuts(): Promise<void> {
    if (this.putting) return;
    while (this.pendingPuts.length > 0) {
      const batch = this.pendingPuts.splice(0, PUT_BATCH);
      this.putting = this.store.putBlocks(batch);
      try {
        await this.putting;
        for (const b of batch) this.held.add(b.hash);
      } catch (err) {
        // Not stored: wanted again (after the pause, if the store is full).
        if (err instanceof StoreFullError) {
          this.fullUntil = this.devices.clock.now() + FULL_RETRY_MS;
          this.notice('error', `storage full: replication paused (${err.message})`);
        } else {
          this.notice('error', `could not store ${batch.length} blocks: ${errText(err)}`);
        }
      }
      for (const b of batch) this.storing.delete(b.hash);
      this.putting = undefined;
    }
    this.scheduleHave();
    this.wakeReplicaWaiters();
    this.changed();
    this.replan();
  }

  private haveMessage(): PeerMessage {
    const versions: VersionId[] = [];
    const loose = new Set<Hash>();
    for (const [v, m] of this.needed()) {
      if (m.blocks.every((h) => this.held.has(h))) versions.push(v);
      else for (const h of m.blocks) if (this.held.has(h)) loose.add(h);
    }
    return { kind: 'have', versions, blocks: [...loose] };
  }

  private scheduleHave(): void {
    if (this.haveTimer) return;
    this.haveTimer = this.devices.clock.setTimeout(() => {
      this.haveTimer = undefined;
      const have = this.haveMessage();
      for (const p of this.linked) this.toPeer(p, have);
    }, HAVE_COALESCE_MS);
  }

  // ---- replicas ----

  /** Whether this peer holds every block of `m`. */
  holdsAll(m: Manifest): boolean {
    return m.blocks.every((h) => this.held.has(h));
  }

  /** Live peers (this one included) holding every block of a version. */
  replicas(version: VersionId): number {
    const m = this.needed().get(version);
    let n = m !== undefined && this.holdsAll(m) ? 1 : 0;
    for (const p of this.planner.versionHolders(version)) if (p !== this.ctx.self && this.members.includes(p)) n++;
    return n;
  }

  /** Resolves once `want` live peers (or every live peer, if fewer) hold the version. */
  waitReplicas(version: VersionId, want: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.replicas(version) >= Math.min(want, this.members.length)) {
          this.replicaWaiters.delete(check);
          resolve();
        }
      };
      this.replicaWaiters.add(check);
      check();
    });
  }

  private wakeReplicaWaiters(): void {
    for (const w of [...this.replicaWaiters]) w();
  }

  // ---- ingest: files from the desktop ----

  /**
   * Stores files dropped into directory `dir` (view id), creating folders on their paths. Each
   * file's blocks are stored first, in batches; then its create/write op in one strict commit.
   * A file that fails (vanished, quota) adds nothing; the others still go in.
   */
  async ingest(dir: string, files: readonly { path: string; source?: ByteSource }[]): Promise<{ added: number; failed: { path: string; error: string }[] }> {
    await this.ready;
    const failed: { path: string; error: string }[] = [];
    let added = 0;
    for (const f of files) {
      try {
        if (f.source) await this.ingestOne(dir, f.path, f.source);
        else await this.apply((m, wall) => makeFolders(m, dir, splitPath(f.path), wall).ops);
        added++;
      } catch (err) {
        const error = err instanceof StoreFullError ? `storage full: ${err.message}` : errText(err);
        failed.push({ path: f.path, error });
        this.notice('error', `${f.path} was not added: ${error}`);
      }
    }
    return { added, failed };
  }

  private async ingestOne(dir: string, path: string, source: ByteSource): Promise<void> {
    const parts = splitPath(path);
    const name = parts.pop()!;
    const id = this.nextUpload++;
    const upload: Upload = { path, parent: dir, progress: { direction: 'upload', done: 0, total: source.size, bytesPerSecond: 0 } };
    this.uploads.set(id, upload);
    const started = this.devices.clock.now();
    const hashes: Hash[] = [];
    try {
      let batch: StoredBlock[] = [];
      let storing: Promise<void> = Promise.resolve();
      for (let offset = 0; offset < source.size; offset += BLOCK_SIZE) {
        const length = Math.min(BLOCK_SIZE, source.size - offset);
        let bytes: Uint8Array;
        try {
          bytes = await source.read(offset, length);
        } catch (err) {
          throw new Error(`the file could not be read at byte ${offset} (was it moved or deleted?): ${errText(err)}`);
        }
        if (bytes.length !== length) throw new Error(`the file changed while it was read (got ${bytes.length} bytes at ${offset}, expected ${length})`);
        const hash = await this.hashOf(bytes);
        hashes.push(hash);
        batch.push({ hash, bytes });
        if (batch.length >= PUT_BATCH) {
          // Hash the next batch while this one is stored.
          await storing;
          const b = batch;
          batch = [];
          storing = this.putOwnBlocks(b).then(() => {
            upload.progress.done += b.reduce((n, x) => n + x.bytes.length, 0);
            const secs = (this.devices.clock.now() - started) / 1000;
            upload.progress.bytesPerSecond = secs > 0 ? upload.progress.done / secs : 0;
            this.changed();
          });
          storing.catch(() => {});
        }
      }
      await storing;
      if (batch.length > 0) await this.putOwnBlocks(batch);
      const manifest: Manifest = { size: source.size, blocks: hashes };
      await this.apply((m, wall) => {
        const { ops, parent } = makeFolders(m, dir, parts, wall);
        const existing = m.lookup(parent, name);
        if (existing && existing.kind === 'dir') throw new Error(`${name} exists and is a folder`);
        if (existing) ops.push(m.write(existing.id, manifest, wall));
        else ops.push(...m.createFile(parent, name, manifest, wall));
        return ops;
      });
    } finally {
      for (const h of hashes) this.unpin(h);
      this.uploads.delete(id);
      this.changed();
    }
  }

  // ---- the files panel ----

  watch(listener: (s: FilesSnapshot) => void): number {
    const id = ++this.nextWatcher;
    this.watchers.set(id, listener);
    void this.ready.then(() => listener(this.snapshot()));
    return id;
  }

  unwatch(id: number): void {
    this.watchers.delete(id);
  }

  /** Something the panel shows changed: send a snapshot soon. */
  private changed(): void {
    if (this.watchers.size === 0 || this.snapshotTimer) return;
    this.snapshotTimer = this.devices.clock.setTimeout(async () => {
      // The store's estimate can be costly (without StorageManager it sums every block): not
      // on every snapshot of a running transfer.
      const now = this.devices.clock.now();
      if (now >= this.estimatedAt + ESTIMATE_PERIOD_MS) {
        this.estimatedAt = now;
        this.estimated = await this.store.estimate().catch(() => this.estimated);
      }
      this.snapshotTimer = undefined;
      const s = this.snapshot();
      for (const w of this.watchers.values()) {
        try {
          w(s);
        } catch {
          // A watcher that throws (a closed page) does not stop the others.
        }
      }
    }, SNAPSHOT_COALESCE_MS);
  }

  snapshot(): FilesSnapshot {
    const members = this.members.length;
    const rows: FileRow[] = this.model.entries().map((e) => this.row(e, members));
    for (const u of this.uploads.values()) {
      const name = u.path.split('/').filter(Boolean).join('/');
      rows.push({
        id: `upload:${u.path}`,
        parent: u.parent,
        name,
        path: `${u.parent === ROOT ? '' : this.model.path(u.parent)}/${name}`,
        kind: 'file',
        size: u.progress.total,
        mtime: 0,
        replicas: 0,
        local: false,
        soleCopy: false,
        trashed: false,
        progress: { ...u.progress },
      });
    }
    return {
      rows,
      peers: members,
      factor: replicationFactor(members),
      store: { ...this.storeInfo, ...this.estimated },
      soleCopies: rows.filter((r) => r.soleCopy).length,
      notices: [...this.notices],
    };
  }

  private row(e: FileEntry, members: number): FileRow {
    const base: FileRow = {
      id: e.id,
      parent: e.parent,
      name: e.name,
      path: this.model.path(e.id),
      kind: e.kind,
      size: e.size,
      mtime: e.mtime,
      replicas: 0,
      local: false,
      soleCopy: false,
      trashed: e.trashed,
      ...(e.version !== undefined ? { version: e.version } : {}),
      ...(e.conflictOf !== undefined ? { conflictOf: e.conflictOf } : {}),
    };
    if (e.kind !== 'file' || e.version === undefined || e.manifest === undefined) return base;
    const local = this.holdsAll(e.manifest);
    const replicas = this.replicas(e.version);
    // Alone with a durable store, closing loses nothing: the file is back when the tab is.
    const soleCopy = local && replicas === 1 && (members > 1 || !this.store.durable);
    const progress = local ? undefined : this.progressOf(e.version, e.manifest);
    return { ...base, version: e.version, replicas, local, soleCopy, ...(progress ? { progress } : {}) };
  }

  private progressOf(version: VersionId, m: Manifest): FileProgress | undefined {
    if (!shouldHold(version, this.ctx.self, this.members)) return undefined;
    let done = 0;
    m.blocks.forEach((h, i) => {
      if (this.held.has(h)) done += Math.min(BLOCK_SIZE, m.size - i * BLOCK_SIZE);
    });
    const now = this.devices.clock.now();
    const recent = (this.rates.get(version) ?? []).filter((r) => now - r.at < 3000);
    const bytesPerSecond = recent.reduce((n, r) => n + r.bytes, 0) / 3;
    const stalled = m.blocks.some((h) => !this.held.has(h) && this.planner.holdersOf(h).length === 0 && !this.planner.requested(h));
    const paused =
      now < this.fullUntil ? 'storage full' : stalled && bytesPerSecond === 0 ? 'waiting for a peer that holds it' : undefined;
    return { direction: 'replicate', done, total: m.size, bytesPerSecond, ...(paused ? { paused } : {}) };
  }

  private countRate(h: Hash, bytes: number): void {
    const now = this.devices.clock.now();
    for (const v of this.versionsWith(h)) {
      const list = (this.rates.get(v) ?? []).filter((r) => now - r.at < 3000);
      list.push({ at: now, bytes });
      this.rates.set(v, list);
    }
  }

  notice(level: Notice['level'], text: string): void {
    this.notices.push({ at: this.devices.clock.wallNow(), level, text });
    if (this.notices.length > NOTICES) this.notices.shift();
    this.ctx?.log(level, `stockholder: ${text}`);
    this.changed();
  }
}

/** A dropped path's components (`a/b/c.txt` → a, b, c.txt); refuses empty paths and `..`. */
function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.some((p) => p === '..')) throw new Error(`bad path ${JSON.stringify(path)}`);
  return parts;
}

/** `mkdir -p` of `parts` under `dir`: the ops it took and the innermost folder. */
function makeFolders(m: FsModel, dir: string, parts: readonly string[], wall: number): { ops: FsOp[]; parent: string } {
  const ops: FsOp[] = [];
  let parent = dir;
  for (const p of parts) {
    const existing = m.lookup(parent, p);
    if (existing && existing.kind !== 'dir') throw new Error(`${p} exists and is not a folder`);
    if (!existing) ops.push(m.mkdir(parent, p, wall));
    parent = m.lookup(parent, p)!.id;
  }
  return { ops, parent };
}

/** Rough wire size of an op: its manifest's hashes dominate. */
function opBytes(op: FsOp): number {
  return 200 + (op.body.t === 'write' ? op.body.manifest.blocks.length * 66 : op.body.t === 'purge' ? op.body.nodes.length * 50 : 0);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Reads a whole file's bytes at `pos` for `length` from its manifest (blocks fetched as needed). */
export async function readManifest(sh: StockholderServer, m: Manifest, pos: number, length: number): Promise<Uint8Array> {
  const end = Math.min(m.size, pos + length);
  if (pos >= end) return new Uint8Array(0);
  const out = new Uint8Array(end - pos);
  for (let at = pos; at < end; ) {
    const i = Math.floor(at / BLOCK_SIZE);
    const block = await sh.readBlock(m.blocks[i]!);
    const from = at - i * BLOCK_SIZE;
    const n = Math.min(block.length - from, end - at);
    out.set(block.subarray(from, from + n), at - pos);
    at += n;
  }
  return out;
}

