// Fork On Wait bookkeeping of one process (DESIGN.md "Fork On Wait"; docs/speculation.md): its
// speculation levels, the output and effects it holds back, and the deliveries it logged for a
// rollback. Pure data: the executor (executor.ts) takes and restores the twins.
//
// A level is one point the process can be rolled back to, with the ids whose cancellation
// rolls it back there:
//   'call' / 'sync'  its own speculation (one id, `<pid>~<n>`): the twin is the thread STOPPED at
//                    the wait; the running copy goes on with the predicted result;
//   'dep'            it received a message that depends on speculations it did not depend on
//                    yet (foreign ids): the twin is the thread just before that delivery.
// Levels are in the order they were taken. An id that commits leaves every level; a level
// with no id left is dropped (a confirmed inner level merges into its parent: its effects are
// now held by the levels below). An id that is cancelled rolls the process back to the first
// level holding it and drops that level and all above.
//
// Held effects (Speculator's output commit): output written while any level is open is held
// with the serial of the newest level then; it is released once no open level is older.

import type { Pid, SpecId, SpeculationStats } from '../process/protocol.ts';
import type { ThreadSnapshot } from '../wasm/snapshot.ts';
import type { TmpImage } from '../process/image.ts';

/** A result a wait can have: what is predicted and compared. */
export type WaitResult =
  /** lshapes.call: errno 0 and the reply bytes, or the errno of a call that failed (ESRCH). */
  | { kind: 'call'; errno: number; data: Uint8Array }
  /** the replica wait of fd_sync / fd_datasync on /cluster: its errno. */
  | { kind: 'sync'; errno: number };

export function sameResult(a: WaitResult, b: WaitResult): boolean {
  if (a.kind !== b.kind || a.errno !== b.errno) return false;
  if (a.kind === 'sync' || b.kind === 'sync') return true;
  return equalBytes(a.data, b.data);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a rollback restores: the thread and what lives beside it. */
export interface Twin {
  thread: ThreadSnapshot;
  /** The private /tmp then (null: none). */
  tmp: TmpImage | null;
  /** QueueInput.consumed then (null: no interactive stdin). */
  stdinMark: number | null;
  /** Its size, counted against the executor's twin memory bound. */
  bytes: number;
}

/** The process's own speculation of a level. */
export interface OwnSpec {
  id: SpecId;
  /** Predictor key. */
  site: string;
  predicted: WaitResult;
  /** Clock time of the fork (savedMs on a hit). */
  forkAt: number;
  /** For a call: the reply token whose real reply resolves it. */
  token?: number;
  /**
   * The real result arrived carrying speculations of others: it is compared once they commit
   * (and dropped if one is cancelled: the sender re-sends after its own rollback).
   */
  waiting?: { result: WaitResult; deps: Set<SpecId> };
}

export type LevelKind = 'call' | 'sync' | 'dep';

export interface Level {
  readonly serial: number;
  readonly kind: LevelKind;
  /** The ids whose cancellation rolls the process back to this level's twin. */
  readonly ids: Set<SpecId>;
  readonly twin: Twin;
  /** Number of the first delivery logged after the twin was taken. */
  readonly logFrom: number;
  readonly own?: OwnSpec;
}

/** A delivery, kept while a level is open so a rollback can deliver it again. */
export interface Delivery {
  port: string;
  from: Pid;
  token: number;
  data: Uint8Array;
  seq?: number;
  deps?: SpecId[];
  /** Its `seq` was checked against repeats on arrival (arrival order is the sender's order). */
  checked?: boolean;
}

interface Logged {
  n: number;
  m: Delivery;
}

interface HeldChunk {
  fd: 1 | 2;
  data: Uint8Array;
  /** The newest level open when it was written. */
  serial: number;
}

export class ProcSpeculation {
  levels: Level[] = [];
  private serial = 0;
  /** Number of the next own speculation. */
  nextSpec = 1;
  private log: Logged[] = [];
  private logNext = 0;
  private held: HeldChunk[] = [];
  heldBytes = 0;
  /** Effects waiting until nothing is speculative any more (stalled fs mutations, spawn...). */
  private stalls: (() => void)[] = [];
  readonly stats: SpeculationStats = { depth: 0, predictions: 0, hits: 0, rollbacks: 0, savedMs: 0 };

  constructor(readonly pid: Pid) {}

  get active(): boolean {
    return this.levels.length > 0;
  }

  /** Own speculations outstanding (what `state.spec.depth` shows). */
  get depth(): number {
    let n = 0;
    for (const l of this.levels) if (l.own && l.ids.has(l.own.id)) n++;
    return n;
  }

  /** Own speculations at `site` not resolved yet (the predictor probes an untrusted site one at a time). */
  outstandingAt(site: string): number {
    let n = 0;
    for (const l of this.levels) if (l.own?.site === site && l.ids.has(l.own.id)) n++;
    return n;
  }

  /** Whether `id` is this process's own (`<pid>~<n>`). */
  isOwn(id: SpecId): boolean {
    return id.length > this.pid.length + 1 && id.startsWith(this.pid) && id[this.pid.length] === '~';
  }

  /** Everything the process depends on now: what its sends carry as `deps`. */
  deps(): SpecId[] {
    const out = new Set<SpecId>();
    for (const l of this.levels) for (const id of l.ids) out.add(id);
    return [...out];
  }

  dependsOn(id: SpecId): boolean {
    for (const l of this.levels) if (l.ids.has(id)) return true;
    return false;
  }

  /** Whether `id` concerns this process at all: a level, a held real result, or the log. */
  knows(id: SpecId): boolean {
    if (this.dependsOn(id)) return true;
    for (const l of this.levels) if (l.own?.waiting?.deps.has(id)) return true;
    for (const e of this.log) if (e.m.deps?.includes(id)) return true;
    return false;
  }

  newId(): SpecId {
    return `${this.pid}~${this.nextSpec++}`;
  }

  push(kind: LevelKind, ids: Iterable<SpecId>, twin: Twin, own?: OwnSpec): Level {
    const level: Level = { serial: ++this.serial, kind, ids: new Set(ids), twin, logFrom: this.logNext, ...(own ? { own } : {}) };
    this.levels.push(level);
    return level;
  }

  /** The own level waiting for the reply with `token`. */
  awaiting(token: number): Level | undefined {
    return this.levels.find((l) => l.own?.token === token && l.ids.has(l.own.id) && !l.own.waiting);
  }

  /** The first level `id` rolls back to. */
  firstWith(id: SpecId): Level | undefined {
    return this.levels.find((l) => l.ids.has(id));
  }

  /** Index of the level of the own speculation `id` (-1: not open). */
  ownIndex(id: SpecId): number {
    return this.levels.findIndex((l) => l.own?.id === id && l.ids.has(id));
  }

  /**
   * `id` committed: it leaves every level; levels left with no id are dropped (returned, for
   * their twins' memory).
   */
  commit(id: SpecId): Level[] {
    for (const l of this.levels) l.ids.delete(id);
    return this.dropEmpty();
  }

  dropEmpty(): Level[] {
    const dropped = this.levels.filter((l) => l.ids.size === 0);
    if (dropped.length) this.levels = this.levels.filter((l) => l.ids.size > 0);
    return dropped;
  }

  /**
   * Rolls back to `level`: it and every level above are dropped (returned); output written
   * since is discarded; the deliveries logged since come back for delivering again.
   */
  cut(level: Level): { dropped: Level[]; redeliver: Delivery[] } {
    const i = this.levels.indexOf(level);
    if (i < 0) return { dropped: [], redeliver: [] };
    const dropped = this.levels.splice(i);
    const kept: HeldChunk[] = [];
    let bytes = 0;
    for (const c of this.held) {
      if (c.serial < level.serial) {
        kept.push(c);
        bytes += c.data.length;
      }
    }
    this.held = kept;
    this.heldBytes = bytes;
    const j = this.log.findIndex((e) => e.n >= level.logFrom);
    const redeliver = j < 0 ? [] : this.log.splice(j).map((e) => e.m);
    // Stalled effects belong to the thread being replaced: they never happen.
    this.stalls = [];
    return { dropped, redeliver };
  }

  /** Everything dropped (the process ends). */
  clear(): Level[] {
    const dropped = this.levels;
    this.levels = [];
    this.held = [];
    this.heldBytes = 0;
    this.log = [];
    this.stalls = [];
    return dropped;
  }

  /** Logs a delivery while some level may roll back before it. */
  logDelivery(m: Delivery): void {
    if (!this.active) return;
    this.log.push({ n: this.logNext++, m });
  }

  /** Deliveries logged, for tests and diagnostics. */
  get logged(): number {
    return this.log.length;
  }

  hold(fd: 1 | 2, data: Uint8Array): void {
    const top = this.levels[this.levels.length - 1];
    this.held.push({ fd, data, serial: top ? top.serial : 0 });
    this.heldBytes += data.length;
  }

  /** Held output no open level is older than, in order: it may be posted now. */
  releasable(): { fd: 1 | 2; data: Uint8Array }[] {
    const oldest = this.levels.length ? this.levels[0]!.serial : Infinity;
    let i = 0;
    while (i < this.held.length && this.held[i]!.serial < oldest) i++;
    if (i === 0) return [];
    const out = this.held.splice(0, i);
    for (const c of out) this.heldBytes -= c.data.length;
    return out.map((c) => ({ fd: c.fd, data: c.data }));
  }

  /** The log entries no open level needs any more go. */
  trimLog(): void {
    if (!this.active) {
      this.log = [];
      return;
    }
    const from = Math.min(...this.levels.map((l) => l.logFrom));
    const j = this.log.findIndex((e) => e.n >= from);
    if (j < 0) this.log = [];
    else if (j > 0) this.log.splice(0, j);
  }

  /** Resolves once nothing is speculative; never, if the process is rolled back first. */
  whenCommitted(): Promise<void> {
    return new Promise((resolve) => this.stalls.push(resolve));
  }

  /** Nothing is speculative any more: the stalled effects go. */
  releaseStalls(): void {
    for (const go of this.stalls.splice(0)) go();
  }
}

/** Speculations resolved lately, so late messages carrying them are handled right (bounded). */
export class ResolvedIds {
  private readonly map = new Map<SpecId, boolean>();

  constructor(private readonly limit = 8192) {}

  get(id: SpecId): boolean | undefined {
    return this.map.get(id);
  }

  set(id: SpecId, ok: boolean): void {
    this.map.delete(id);
    this.map.set(id, ok);
    while (this.map.size > this.limit) this.map.delete(this.map.keys().next().value as SpecId);
  }
}

/** Bytes a thread snapshot and a /tmp image hold (for the twin memory bound). */
export function twinBytes(thread: ThreadSnapshot, tmp: TmpImage | null): number {
  let n = thread.asyncify?.length ?? 0;
  for (const r of thread.memory.runs) n += r.bytes.length;
  if (tmp) for (const node of tmp.nodes) if (node.kind === 'file') n += node.data.length;
  return n + 1024;
}

/** The origin process of a speculation id. */
export function originOf(id: SpecId): Pid {
  const i = id.lastIndexOf('~');
  return i > 0 ? id.slice(0, i) : id;
}
