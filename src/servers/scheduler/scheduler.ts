// Scheduler: process management for the whole cluster.
//
// Every peer's Scheduler plays three roles for a process:
//   spawner — it allocated the pid, chose the host, and keeps what the parent or terminal needs:
//             the exit status for `wait`, where stdin goes, and news of a host that vanished;
//   host    — the process runs in one of its executors; it routes the process's output to the
//             terminal (the `client` address), its messages to other processes, and its exit;
//   table   — it spreads its hosted processes to every other Scheduler, so each peer holds the
//             cluster-wide process table (each row owned by the peer that runs it).
// A process started from a terminal is a root process: the terminal gets its `exit`. Children
// inherit the terminal of their parent (their output goes there too); their parent gets their
// exit status through `wait`. When the terminal's peer goes away the processes it started are
// killed (hangup); when a host goes away its processes are reported lost.
import { PORTS, type Server, type ServerContext } from '../../kernel/server.ts';
import { toHex, type Address, type Clock, type Envelope, type PeerId } from '../../kernel/types.ts';
import {
  type ExecutionDriver,
  type FromExecutor,
  type KernelErrno,
  type KernelReply,
  type KernelRequest,
  type Pid,
  type ProcessState,
} from '../../kernel/process/protocol.ts';
import type { ViewMessage } from '../synchronizer/protocol.ts';
import type { ClientMessage, ProcessInfo, ProgramStore } from './client.ts';
import { choosePeer, resolvePeer, type Candidate } from './placement.ts';
import { ModuleCache } from './module-cache.ts';
import { NOREPLY_PORT } from '../../kernel/process/lshapes.ts';
import { Errno } from '../../kernel/wasi/errno.ts';
import { serveFileSystem, type FsReply, type FsRequest } from '../../kernel/wasi/remote-fs.ts';
import type { FileSystem } from '../../kernel/wasi/vfs.ts';
import { ClientRequestSchema, MAX_ARG_CHARS, MAX_ARGS, MAX_DATA_BYTES, MAX_MODULE_BYTES, PeerMessageSchema, type PeerMessage, type RunRequest } from './protocol.ts';

/** A spawn not started by then has failed. First starts rewrite the module: seconds. */
export const START_TIMEOUT_MS = 45_000;
/** A kill not confirmed by then is reported as failed. */
export const KILL_TIMEOUT_MS = 10_000;
/** Exited processes stay in the table this long, so ps and the panel show how they ended. */
export const EXITED_RETENTION_MS = 30_000;
/** Table changes are sent to other peers at most this often. */
export const TABLE_COALESCE_MS = 250;
/** Bytes of modules (original and rewritten) kept; those of running processes are never dropped. */
const MODULE_CACHE_BYTES = 256 << 20;
/** Output a process may have in flight to a terminal that acknowledges it. */
export const OUTPUT_WINDOW_BYTES = 1 << 20;
/** Output is forwarded in pieces no larger than this. */
const OUT_PIECE_BYTES = 1 << 20;
/** Where recently heard-from processes run: routes replies before the table catches up. */
const RECENT_SENDERS = 1024;

export interface SchedulerDevices {
  clock: Clock;
  sha256(data: Uint8Array): Promise<Uint8Array>;
  /** Where this peer runs processes; without it the peer runs none (capacity 0). */
  exec?: ExecutionDriver;
  /** Program modules by name. */
  programs?: ProgramStore;
  /** The cluster filesystem, served to this peer's executors' `fs` requests (their /cluster). */
  files?: FileSystem;
}

/** A process running on this peer. */
interface Hosted {
  info: ProcessInfo;
  executor: number;
  client: Address;
  spawner: PeerId;
  hash: string;
  /** Calls of the process waiting for the spawn they asked for: it will run again soon. */
  spawning: number;
  /** Output flow-control window, when its terminal acknowledges output. */
  window?: number;
}

type Outcome = { kind: 'exit'; code: number; message?: string } | { kind: 'lost'; message: string };

interface Waiter {
  reply(r: KernelReply): void;
  cancelTimer?: () => void;
}

/** A process this peer spawned (it may run anywhere). */
interface Spawned {
  pid: Pid;
  host: PeerId;
  client: Address;
  parent?: Pid;
  /** `run.ok` or the spawn reply is sent when it has started. */
  started: boolean;
  onStart?: (r: { ok: true } | { ok: false; errno: KernelErrno; message: string }) => void;
  cancelStartTimer?: () => void;
  outcome?: Outcome;
  waiters: Waiter[];
}

interface PendingKill {
  host: PeerId;
  done(ok: boolean, message?: string): void;
  cancelTimer(): void;
}

const RUNNABLE: ReadonlySet<ProcessState> = new Set(['READY', 'RUNNING']);

export class SchedulerServer implements Server {
  readonly port = PORTS.scheduler;
  private ctx!: ServerContext;
  private nextPid = 0;
  /** Names this boot's pids: a reloaded tab keeps its peer id but must not reuse pids. */
  private pidPrefix = '';
  /** Peers that left the view (until they come back): a late `start` from one is refused. */
  private readonly gone = new Set<PeerId>();
  private readonly recentSenders = new Map<Pid, PeerId>();
  private nextRef = 0;
  private readonly hosted = new Map<Pid, Hosted>();
  private readonly spawned = new Map<Pid, Spawned>();
  /** Other peers' rows of the cluster table. */
  private readonly tables = new Map<PeerId, ProcessInfo[]>();
  private readonly kills = new Map<number, PendingKill>();
  private readonly watchers = new Map<string, Address>();
  private readonly modules = new ModuleCache(MODULE_CACHE_BYTES / 2, (h) => this.inUse(h));
  private readonly rewritten = new ModuleCache(MODULE_CACHE_BYTES / 2, (h) => this.inUse(h));
  /** Starts whose module is being checked against its hash. */
  private readonly checking = new Set<Pid>();
  private view: ViewMessage | undefined;
  private known = new Set<PeerId>();
  private tableTimer: (() => void) | undefined;
  private lastLoad = -1;

  constructor(private readonly devices: SchedulerDevices) {}

  /** Execution slots this peer offers. */
  get capacity(): number {
    return this.devices.exec?.count ?? 0;
  }

  start(ctx: ServerContext): void {
    this.ctx = ctx;
    this.pidPrefix = bootPrefix(ctx.self, this.devices.clock.wallNow());
    this.devices.exec?.attach((executor, msg) => this.fromExecutor(executor, msg));
    // Executors reach the cluster filesystem through this Scheduler: tell each its root.
    const exec = this.devices.exec;
    if (exec && this.devices.files) for (let e = 0; e < exec.count; e++) exec.post(e, { t: 'files', root: this.devices.files.root });
    ctx.send({ peer: ctx.self, port: PORTS.synchronizer }, { kind: 'watch' });
    this.reportLoad();
  }

  stop(): void {
    for (const h of this.hosted.values()) {
      if (h.info.state !== 'EXITED') this.devices.exec?.post(h.executor, { t: 'kill', pid: h.info.pid, reason: 'its peer shut down' });
    }
  }

  receive(env: Envelope): void {
    const { from } = env;
    if (from.port === PORTS.synchronizer && from.peer === this.ctx.self) return this.onView(env.body as ViewMessage);
    if (from.port === PORTS.scheduler) {
      const parsed = PeerMessageSchema.safeParse(env.body);
      if (!parsed.success) return this.ctx.log('warn', `bad scheduler message from ${from.peer.slice(0, 8)}: ${parsed.error.issues[0]?.message}`);
      return this.onPeerMessage(from.peer, parsed.data);
    }
    if (from.peer !== this.ctx.self) return this.ctx.log('warn', `request from remote port ${from.peer.slice(0, 8)}/${from.port} refused`);
    const parsed = ClientRequestSchema.safeParse(env.body);
    if (!parsed.success) return this.ctx.log('warn', `bad request from ${from.port}: ${parsed.error.issues[0]?.message}`);
    const req = parsed.data;
    switch (req.kind) {
      case 'run':
        void this.run(from, req);
        break;
      case 'stdin':
      case 'stdin.end':
        this.routeStdin(req.pid, req.kind === 'stdin' ? req.data : undefined);
        break;
      case 'ack': {
        const host = this.whereIs(req.pid);
        if (host) this.toPeer(host, { kind: 'out.ack', pid: req.pid, bytes: req.bytes });
        break;
      }
      case 'kill':
        this.killPid(req.pid, `killed from ${from.port}`, (ok, message) =>
          this.toClient(from, ok ? { kind: 'kill.ok', req: req.req } : { kind: 'kill.failed', req: req.req, message: message ?? 'kill failed' }),
        );
        break;
      case 'ps':
        this.toClient(from, { kind: 'ps.ok', req: req.req, rows: this.table() });
        break;
      case 'programs':
        void (this.devices.programs?.list() ?? Promise.resolve([])).then(
          (names) => this.toClient(from, { kind: 'programs.ok', req: req.req, names }),
          () => this.toClient(from, { kind: 'programs.ok', req: req.req, names: [] }),
        );
        break;
      case 'watch':
        this.watchers.set(from.port, from);
        this.toClient(from, { kind: 'table', rows: this.table() });
        break;
      case 'unwatch':
        this.watchers.delete(from.port);
        break;
    }
  }

  // ---- the cluster table ----

  /** Every process this peer knows of, its own first. */
  table(): ProcessInfo[] {
    const rows = [...this.hosted.values()].map((h) => ({ ...h.info }));
    for (const [peer, theirs] of this.tables) if (peer !== this.ctx.self) rows.push(...theirs);
    return rows;
  }

  private tableChanged(): void {
    this.reportLoad();
    if (this.tableTimer) return;
    this.tableTimer = this.devices.clock.setTimeout(() => {
      this.tableTimer = undefined;
      const rows = [...this.hosted.values()].map((h) => h.info);
      for (const peer of this.known) if (peer !== this.ctx.self) this.toPeer(peer, { kind: 'table', rows });
      this.publish();
    }, TABLE_COALESCE_MS);
  }

  private publish(): void {
    if (this.watchers.size === 0) return;
    const rows = this.table();
    for (const w of this.watchers.values()) this.toClient(w, { kind: 'table', rows });
  }

  private localRunnable(): number {
    let n = 0;
    for (const h of this.hosted.values()) if (RUNNABLE.has(h.info.state) || h.spawning > 0) n++;
    return n;
  }

  private reportLoad(): void {
    const load = this.localRunnable();
    if (load === this.lastLoad) return;
    this.lastLoad = load;
    this.ctx.send({ peer: this.ctx.self, port: PORTS.driver }, { kind: 'load.report', load });
  }

  // ---- membership ----

  private onView(view: ViewMessage): void {
    if (view?.kind !== 'view' || !Array.isArray(view.peers)) return;
    this.view = view;
    const now = new Set(view.peers.map((p) => p.id));
    for (const peer of now) this.gone.delete(peer);
    for (const peer of this.known) if (!now.has(peer)) this.peerGone(peer);
    const mine = [...this.hosted.values()].map((h) => h.info);
    for (const peer of now) if (!this.known.has(peer) && peer !== this.ctx.self) this.toPeer(peer, { kind: 'table', rows: mine });
    this.known = now;
  }

  private peerGone(peer: PeerId): void {
    const short = peer.slice(0, 8);
    this.gone.add(peer);
    if (this.tables.delete(peer)) this.publish();
    for (const s of this.spawned.values()) {
      if (s.host !== peer || s.outcome) continue;
      const message = `lost: its peer ${short} went away`;
      if (!s.started) this.failStart(s, 'EHOSTUNREACH', `peer ${short} went away before the process started`);
      else this.settle(s, { kind: 'lost', message });
    }
    for (const h of this.hosted.values()) {
      if (h.info.state === 'EXITED') continue;
      if (h.client.peer === peer || h.spawner === peer) {
        this.devices.exec?.post(h.executor, { t: 'kill', pid: h.info.pid, reason: `hangup: the peer ${short} that started it went away` });
      }
    }
  }

  private alivePeers(): PeerId[] {
    return this.view?.peers.map((p) => p.id) ?? [this.ctx.self];
  }

  private candidates(): Candidate[] {
    const peers = this.view?.peers ?? [];
    const out: Candidate[] = [];
    for (const p of peers) {
      if (p.id === this.ctx.self) {
        out.push({ id: p.id, capacity: this.capacity, load: this.localRunnable() });
        continue;
      }
      if (p.state === 'gossip') continue; // no direct link to start it over
      const rows = this.tables.get(p.id) ?? [];
      const seen = new Set(rows.map((r) => r.pid));
      let load = rows.filter((r) => RUNNABLE.has(r.state)).length;
      // Our own placements there that its table does not show yet.
      for (const s of this.spawned.values()) if (s.host === p.id && !s.outcome && !seen.has(s.pid)) load++;
      // The peer's own table is fresher than its gossiped load (which lags a gossip round or
      // two and would keep a just-finished peer looking busy); gossip stands in until it came.
      out.push({ id: p.id, capacity: p.capacity, load: this.tables.has(p.id) ? load : Math.max(load, p.load) });
    }
    if (!peers.some((p) => p.id === this.ctx.self)) out.push({ id: this.ctx.self, capacity: this.capacity, load: this.localRunnable() });
    return out;
  }

  // ---- spawner role ----

  private async run(client: Address, req: RunRequest): Promise<void> {
    const fail = (message: string) => this.toClient(client, { kind: 'run.failed', req: req.req, message });
    try {
      const module = req.module ?? (await this.devices.programs?.load(req.name));
      if (!module) return fail(`no such program: ${req.name}`);
      let placed: { pid: Pid; host: PeerId } | undefined;
      const r = await this.spawn(
        {
          name: req.name,
          module,
          args: req.args,
          env: req.env ?? {},
          on: req.on,
          client,
          interactive: req.interactive ?? false,
          ...(req.acks ? { window: OUTPUT_WINDOW_BYTES } : {}),
        },
        (started) => {
          if (started.ok && placed) this.toClient(client, { kind: 'run.ok', req: req.req, pid: placed.pid, peer: placed.host });
          else if (!started.ok) fail(started.message);
        },
      );
      if ('error' in r) return fail(r.error);
      placed = r;
    } catch (err) {
      fail(`cannot start ${req.name}: ${(err as Error).message}`);
    }
  }

  /**
   * Chooses a host, allocates the pid and asks the host to start it; `onStart` hears whether it
   * started (never before this returns). Placement and registration happen in one turn, so
   * spawns that overlap see each other's placements.
   */
  private async spawn(
    p: {
      name: string;
      module: Uint8Array;
      args: string[];
      env: Record<string, string>;
      on: string | undefined;
      client: Address;
      parent?: Pid;
      interactive: boolean;
      window?: number;
    },
    onStart: NonNullable<Spawned['onStart']>,
  ): Promise<{ error: string; errno: KernelErrno } | { pid: Pid; host: PeerId }> {
    if (p.module.length > MAX_MODULE_BYTES) return { error: `${p.name} is larger than ${MAX_MODULE_BYTES >> 20} MiB`, errno: 'EINVAL' };
    if (!isWasm(p.module)) return { error: `${p.name} is not a WebAssembly module`, errno: 'ENOEXEC' };
    if (p.args.length > MAX_ARGS || p.args.some((a) => a.length > MAX_ARG_CHARS)) {
      return { error: `at most ${MAX_ARGS} arguments of ${MAX_ARG_CHARS} characters`, errno: 'EINVAL' };
    }
    const hash = toHex(await this.devices.sha256(p.module));
    let host: PeerId | undefined;
    if (p.on) {
      const r = resolvePeer(p.on, this.alivePeers());
      if ('error' in r) return { error: r.error, errno: 'EHOSTUNREACH' };
      host = r.peer;
    } else {
      host = choosePeer(this.candidates(), this.ctx.self);
      if (!host) return { error: 'no peer in the cluster runs processes', errno: 'EAGAIN' };
    }
    this.remember(hash, p.module);
    const pid = `${this.pidPrefix}.${++this.nextPid}`;
    const s: Spawned = { pid, host, client: p.client, started: false, waiters: [], ...(p.parent ? { parent: p.parent } : {}) };
    this.spawned.set(pid, s);
    s.cancelStartTimer = this.devices.clock.setTimeout(() => {
      if (s.started || s.outcome) return;
      // It may still be loading there: make sure it does not run on as an orphan.
      this.toPeer(host, { kind: 'kill', ref: 0, pid, reason: 'it did not start in time' });
      this.failStart(s, 'EHOSTUNREACH', `peer ${host.slice(0, 8)} did not start ${p.name} within ${START_TIMEOUT_MS / 1000} s`);
    }, START_TIMEOUT_MS);
    const sent = this.toPeer(host, {
      kind: 'start',
      pid,
      name: p.name,
      args: p.args,
      env: p.env,
      hash,
      module: p.module,
      client: p.client,
      ...(p.parent ? { parent: p.parent } : {}),
      interactive: p.interactive,
      ...(p.window ? { window: p.window } : {}),
    });
    // Answered in a later turn, after the caller has the pid.
    s.onStart = (r) => queueMicrotask(() => onStart(r));
    if (!sent) this.failStart(s, 'EHOSTUNREACH', `peer ${host.slice(0, 8)} cannot be reached`);
    return { pid, host };
  }

  private failStart(s: Spawned, errno: KernelErrno, message: string): void {
    s.cancelStartTimer?.();
    s.outcome = { kind: 'lost', message };
    this.spawned.delete(s.pid);
    s.onStart?.({ ok: false, errno, message });
    this.tableChanged();
  }

  /** A spawned process ended or was lost: tell its terminal (root) or waiting parent. */
  private settle(s: Spawned, outcome: Outcome): void {
    if (s.outcome) return;
    s.outcome = outcome;
    if (!s.parent) {
      if (outcome.kind === 'lost') this.toClient(s.client, { kind: 'lost', pid: s.pid, message: outcome.message });
      // A root process's exit went to its terminal from its host, right after its output.
    } else if (outcome.kind === 'lost') {
      this.toClient(s.client, { kind: 'out', pid: s.pid, fd: 2, data: utf8(`[pid ${s.pid} ${outcome.message}]\n`) });
    }
    for (const w of s.waiters.splice(0)) {
      w.cancelTimer?.();
      w.reply(replyFor(outcome));
    }
    // A root's record is only needed until now; a child's until its parent is gone.
    if (!s.parent || !this.hosted.has(s.parent) || this.hosted.get(s.parent)!.info.state === 'EXITED') this.spawned.delete(s.pid);
    this.tableChanged();
  }

  private remember(hash: string, module: Uint8Array): void {
    this.modules.set(hash, module);
  }

  private inUse(hash: string): boolean {
    for (const h of this.hosted.values()) if (h.hash === hash && h.info.state !== 'EXITED') return true;
    return false;
  }

  /** Where a process runs now, as far as this peer knows. */
  private whereIs(pid: Pid): PeerId | undefined {
    const h = this.hosted.get(pid);
    if (h && h.info.state !== 'EXITED') return this.ctx.self;
    const s = this.spawned.get(pid);
    if (s && !s.outcome) return s.host;
    for (const [peer, rows] of this.tables) if (rows.some((r) => r.pid === pid && r.state !== 'EXITED')) return peer;
    const recent = this.recentSenders.get(pid);
    return recent && this.known.has(recent) ? recent : undefined;
  }

  private routeStdin(pid: Pid, data: Uint8Array | undefined): void {
    const host = this.whereIs(pid);
    if (!host) return;
    this.toPeer(host, data ? { kind: 'stdin', pid, data } : { kind: 'stdin.end', pid });
  }

  private killPid(pid: string, reason: string, done: (ok: boolean, message?: string) => void): void {
    const host = this.whereIs(pid);
    if (!host) return done(false, `no such process: ${pid}`);
    const ref = ++this.nextRef;
    const cancelTimer = this.devices.clock.setTimeout(() => {
      this.kills.delete(ref);
      done(false, `peer ${host.slice(0, 8)} did not confirm the kill of ${pid}`);
    }, KILL_TIMEOUT_MS);
    this.kills.set(ref, { host, done, cancelTimer });
    this.toPeer(host, { kind: 'kill', ref, pid, reason });
  }

  // ---- messages from other Schedulers (and from this one to itself) ----

  private onPeerMessage(from: PeerId, msg: PeerMessage): void {
    switch (msg.kind) {
      case 'start':
        this.startHere(from, msg);
        break;
      case 'started': {
        const s = this.spawned.get(msg.pid);
        if (!s || s.host !== from || s.started) return;
        s.started = true;
        s.cancelStartTimer?.();
        s.onStart?.({ ok: true });
        break;
      }
      case 'start.failed': {
        const s = this.spawned.get(msg.pid);
        if (s && s.host === from && !s.started) this.failStart(s, msg.errno, msg.message);
        break;
      }
      case 'exited': {
        const s = this.spawned.get(msg.pid);
        if (!s || s.host !== from) return;
        if (!s.started) {
          s.started = true;
          s.cancelStartTimer?.();
          s.onStart?.({ ok: true });
        }
        this.settle(s, { kind: 'exit', code: msg.code, ...(msg.message !== undefined ? { message: msg.message } : {}) });
        break;
      }
      case 'stdin':
      case 'stdin.end': {
        const h = this.hosted.get(msg.pid);
        if (!h || h.info.state === 'EXITED') return;
        this.devices.exec?.post(h.executor, msg.kind === 'stdin' ? { t: 'stdin', pid: msg.pid, data: msg.data } : { t: 'stdin.end', pid: msg.pid });
        break;
      }
      case 'out.ack': {
        const h = this.hosted.get(msg.pid);
        if (h && h.info.state !== 'EXITED' && h.window) this.devices.exec?.post(h.executor, { t: 'out.ack', pid: msg.pid, bytes: msg.bytes });
        break;
      }
      case 'kill': {
        const h = this.hosted.get(msg.pid);
        const alive = h && h.info.state !== 'EXITED';
        if (alive) this.devices.exec?.post(h.executor, { t: 'kill', pid: msg.pid, reason: msg.reason });
        this.toPeer(from, { kind: 'kill.result', ref: msg.ref, ok: !!alive, ...(alive ? {} : { message: `no such process: ${msg.pid}` }) });
        break;
      }
      case 'kill.result': {
        const k = this.kills.get(msg.ref);
        if (!k || k.host !== from) return;
        this.kills.delete(msg.ref);
        k.cancelTimer();
        k.done(msg.ok, msg.message);
        break;
      }
      case 'deliver': {
        this.recentSenders.delete(msg.from);
        this.recentSenders.set(msg.from, from);
        if (this.recentSenders.size > RECENT_SENDERS) this.recentSenders.delete(this.recentSenders.keys().next().value!);
        const h = this.hosted.get(msg.pid);
        if (!h || h.info.state === 'EXITED') {
          // A call to a process that is gone would wait forever: tell the caller.
          if (msg.token !== 0 && !msg.port.startsWith('#')) {
            this.toPeer(from, { kind: 'deliver', pid: msg.from, port: NOREPLY_PORT + msg.token, from: msg.pid, token: 0, data: new Uint8Array(0) });
          }
          return;
        }
        this.devices.exec?.post(h.executor, { t: 'deliver', pid: msg.pid, port: msg.port, from: msg.from, token: msg.token, data: msg.data });
        break;
      }
      case 'table': {
        if (from === this.ctx.self) return;
        const rows = msg.rows.filter((r) => r.peer === from);
        this.tables.set(from, rows);
        // An `exited` lost with a flapping link: the host's table still says how it ended.
        for (const r of rows) {
          const s = this.spawned.get(r.pid);
          if (s && s.host === from && s.started && !s.outcome && r.state === 'EXITED' && r.exitCode !== undefined) {
            this.settle(s, { kind: 'exit', code: r.exitCode });
          }
        }
        this.publish();
        break;
      }
    }
  }

  // ---- host role ----

  private startHere(from: PeerId, msg: Extract<PeerMessage, { kind: 'start' }>): void {
    const exec = this.devices.exec;
    if (!exec || exec.count === 0) {
      this.toPeer(from, { kind: 'start.failed', pid: msg.pid, errno: 'EAGAIN', message: `peer ${this.ctx.self.slice(0, 8)} runs no processes` });
      return;
    }
    if (this.hosted.has(msg.pid) || this.checking.has(msg.pid)) return; // a duplicate start
    if (this.gone.has(from) || this.gone.has(msg.client.peer)) {
      this.toPeer(from, { kind: 'start.failed', pid: msg.pid, errno: 'EAGAIN', message: 'the peer that asked for it has left' });
      return;
    }
    // The hash names the module in every cache: never take a peer's word for it.
    this.checking.add(msg.pid);
    void this.devices.sha256(msg.module).then(
      (digest) => {
        this.checking.delete(msg.pid);
        if (toHex(digest) !== msg.hash) {
          this.toPeer(from, { kind: 'start.failed', pid: msg.pid, errno: 'EINVAL', message: 'the module does not match its hash' });
          return;
        }
        this.startChecked(from, msg, exec);
      },
      (err: Error) => {
        this.checking.delete(msg.pid);
        this.toPeer(from, { kind: 'start.failed', pid: msg.pid, errno: 'EAGAIN', message: `cannot hash the module: ${err.message}` });
      },
    );
  }

  private startChecked(from: PeerId, msg: Extract<PeerMessage, { kind: 'start' }>, exec: ExecutionDriver): void {
    if (this.gone.has(from) || this.gone.has(msg.client.peer)) return; // left while we hashed: nobody to run it for
    this.remember(msg.hash, msg.module);
    const executor = this.leastBusyExecutor(exec.count);
    const info: ProcessInfo = {
      pid: msg.pid,
      name: msg.name,
      args: msg.args,
      peer: this.ctx.self,
      state: 'READY',
      cpuMs: 0,
      startedAt: this.devices.clock.wallNow(),
      ...(msg.parent ? { parent: msg.parent } : {}),
    };
    this.hosted.set(msg.pid, {
      info,
      executor,
      client: msg.client,
      spawner: from,
      hash: msg.hash,
      spawning: 0,
      ...(msg.window ? { window: msg.window } : {}),
    });
    const rewritten = this.rewritten.get(msg.hash);
    exec.post(executor, {
      t: 'start',
      spec: {
        pid: msg.pid,
        peer: this.ctx.self,
        name: msg.name,
        hash: msg.hash,
        ...(rewritten ? { rewritten } : { module: msg.module }),
        args: [msg.name, ...msg.args],
        env: msg.env,
        hasParent: msg.parent !== undefined,
        ...(msg.parent ? { parent: msg.parent } : {}),
        interactiveStdin: msg.interactive,
        ...(msg.window ? { outputWindow: msg.window } : {}),
      },
    });
    // Accepted: the spawner may go on (a parent fanning out children does not wait for each to
    // load: cold loads take a second). A module that then fails to load exits with 1 and says why.
    this.toPeer(from, { kind: 'started', pid: msg.pid });
    this.tableChanged();
  }

  private leastBusyExecutor(count: number): number {
    const busy = new Array<number>(count).fill(0);
    for (const h of this.hosted.values()) if (h.info.state !== 'EXITED') busy[h.executor]!++;
    let best = 0;
    for (let i = 1; i < count; i++) if (busy[i]! < busy[best]!) best = i;
    return best;
  }

  private fromExecutor(executor: number, msg: FromExecutor): void {
    if (msg.t === 'rewritten') {
      this.rewritten.set(msg.hash, msg.bytes);
      return;
    }
    if (msg.t === 'fs') {
      // Answered whatever became of the process: the executor waits for every reply (releases
      // of an exited process's files included).
      void this.serveFs(msg.req).then((reply) => this.devices.exec?.post(executor, { t: 'fs.reply', call: msg.call, reply }));
      return;
    }
    const h = this.hosted.get(msg.pid);
    if (!h || h.executor !== executor || h.info.state === 'EXITED') return;
    switch (msg.t) {
      case 'state':
        h.info.state = msg.state;
        h.info.cpuMs = msg.cpuMs;
        this.tableChanged();
        break;
      case 'out':
        for (let i = 0; i < msg.data.length; i += OUT_PIECE_BYTES) {
          const data = msg.data.length <= OUT_PIECE_BYTES ? msg.data : msg.data.subarray(i, i + OUT_PIECE_BYTES);
          this.ctx.send(h.client, { kind: 'out', pid: msg.pid, fd: msg.fd, data } satisfies ClientMessage);
        }
        break;
      case 'exit':
        this.onExit(h, msg.code, msg.message, msg.cpuMs);
        break;
      case 'call':
        this.onCall(h, msg.call, msg.req);
        break;
    }
  }

  private serveFs(req: FsRequest): Promise<FsReply> {
    const files = this.devices.files;
    if (!files) return Promise.resolve({ ok: false, errno: Errno.NOSYS, message: 'this peer has no cluster filesystem' });
    return serveFileSystem(files, req);
  }

  private onExit(h: Hosted, code: number, message: string | undefined, cpuMs: number): void {
    const pid = h.info.pid;
    h.info.state = 'EXITED';
    h.info.exitCode = code;
    h.info.cpuMs = cpuMs;
    if (h.info.parent === undefined) {
      this.ctx.send(h.client, { kind: 'exit', pid, code, ...(message !== undefined ? { message } : {}) } satisfies ClientMessage);
    } else if (message) {
      this.ctx.send(h.client, { kind: 'out', pid, fd: 2, data: utf8(`[pid ${pid} ${message}]\n`) } satisfies ClientMessage);
    }
    this.toPeer(h.spawner, { kind: 'exited', pid, code, ...(message !== undefined ? { message } : {}) });
    // Its children's exit records are only kept for its `wait`s.
    for (const s of [...this.spawned.values()]) if (s.parent === pid && s.outcome) this.spawned.delete(s.pid);
    this.devices.clock.setTimeout(() => {
      this.hosted.delete(pid);
      this.tableChanged();
    }, EXITED_RETENTION_MS);
    this.tableChanged();
  }

  private onCall(h: Hosted, call: number, req: KernelRequest): void {
    const pid = h.info.pid;
    const reply = (r: KernelReply) => {
      if (h.info.state !== 'EXITED') this.devices.exec?.post(h.executor, { t: 'reply', pid, call, reply: r });
    };
    const err = (errno: KernelErrno, message: string) => reply({ ok: false, errno, message });
    switch (req.op) {
      case 'cluster_info': {
        const peers = this.view?.peers ?? [];
        const slots = peers.reduce((n, p) => n + (p.id === this.ctx.self ? this.capacity : p.capacity), 0);
        reply({ ok: true, op: 'cluster_info', peers: Math.max(1, peers.length), slots: Math.max(this.capacity, slots) });
        break;
      }
      case 'spawn': {
        h.spawning++;
        const done = (r: KernelReply) => {
          h.spawning--;
          this.reportLoad();
          reply(r);
        };
        void (async () => {
          const module = req.name === '' ? this.modules.get(h.hash) : await this.devices.programs?.load(req.name);
          if (!module) return done({ ok: false, errno: 'ENOENT', message: `no such program: ${req.name}` });
          const name = req.name === '' ? h.info.name : req.name;
          let child: Pid | undefined;
          const r = await this.spawn({ name, module, args: req.args, env: {}, on: req.peer, client: h.client, parent: pid, interactive: false, ...(h.window ? { window: h.window } : {}) }, (st) =>
            done(st.ok ? { ok: true, op: 'spawn', child: child! } : { ok: false, errno: st.errno, message: st.message }),
          );
          if ('error' in r) return done({ ok: false, errno: r.errno, message: r.error });
          child = r.pid;
        })().catch((e: Error) => done({ ok: false, errno: 'EAGAIN', message: e.message }));
        break;
      }
      case 'wait': {
        const s = this.spawned.get(req.child);
        if (!s || s.parent !== pid) return err('ECHILD', `${req.child} is not a child of ${pid}`);
        if (s.outcome) return reply(replyFor(s.outcome));
        const w: Waiter = { reply };
        if (req.timeoutMs >= 0) {
          w.cancelTimer = this.devices.clock.setTimeout(() => {
            s.waiters.splice(s.waiters.indexOf(w), 1);
            err('ETIMEDOUT', `${req.child} still running after ${req.timeoutMs} ms`);
          }, req.timeoutMs);
        }
        s.waiters.push(w);
        break;
      }
      case 'kill':
        this.killPid(req.target, `killed by ${pid}`, (ok, message) => (ok ? reply({ ok: true, op: 'kill' }) : err('ESRCH', message ?? 'no such process')));
        break;
      case 'send': {
        if (req.data.length > MAX_DATA_BYTES) return err('EMSGSIZE', 'messages are at most 1 MiB');
        const host = this.whereIs(req.to);
        if (!host) return err('ESRCH', `no such process: ${req.to}`);
        this.toPeer(host, { kind: 'deliver', pid: req.to, port: req.port, from: pid, token: req.token, data: req.data });
        reply({ ok: true, op: 'send' });
        break;
      }
    }
  }

  // ---- sending ----

  private toPeer(peer: PeerId, msg: PeerMessage): boolean {
    return this.ctx.send({ peer, port: PORTS.scheduler }, msg);
  }

  private toClient(client: Address, msg: ClientMessage): void {
    this.ctx.send(client, msg);
  }
}

function replyFor(o: Outcome): KernelReply {
  return o.kind === 'exit' ? { ok: true, op: 'wait', code: o.code } : { ok: false, errno: 'EHOSTUNREACH', message: o.message };
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Six hex chars naming this boot of this peer (FNV-1a of its id and start time). */
function bootPrefix(peer: PeerId, wallNow: number): string {
  let h = 0x811c9dc5;
  const s = `${peer}:${wallNow}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0').slice(0, 6);
}

/** The WebAssembly binary header: magic "\0asm" and version 1. */
function isWasm(b: Uint8Array): boolean {
  return b.length >= 8 && b[0] === 0 && b[1] === 0x61 && b[2] === 0x73 && b[3] === 0x6d && b[4] === 1 && b[5] === 0 && b[6] === 0 && b[7] === 0;
}
