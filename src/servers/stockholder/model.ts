// FsModel: one replica of the cluster filesystem's namespace. The Kleppmann move tree
// (tree.ts) holds where every node sits; this file adds what a filesystem needs on top:
// gap-free delivery per origin, file versions with conflict copies, edit-beats-delete, the
// trash and its purge, and a derived *view* (FileEntry rows) that keeps the filesystem's
// promises: no cycles, unique names per directory, no version silently lost.
//
// Convergence: the view is a pure function of the *set* of ops applied (the tree is a function
// of the set by construction; everything else here is computed from sets, ordered by Lamport
// time or by id, never by arrival order). So replicas that applied the same ops show the same
// view, whatever order or how many times the ops arrived.
//
// Pure and host-agnostic: no I/O, no clocks (wall time is passed in), no randomness.
import { ReplicatedTree, compareTs, type LogEntry, type Placement } from './tree.ts';
import {
  ROOT,
  TRASH,
  blockCount,
  opId,
  originPeer,
  type FsOp,
  type Manifest,
  type Meta,
  type NodeId,
  type NodeKind,
  type OpBody,
  type Origin,
  type VersionId,
  type VersionVector,
} from './types.ts';

export interface FileEntry {
  /** View id: the node id; a conflict copy is `${node}@${version}`. */
  id: string;
  /** Tree node. */
  node: NodeId;
  /** View id of its directory: ROOT at top; TRASH for top-level trashed entries. */
  parent: string;
  /** Name shown (collision / conflict naming applied). */
  name: string;
  kind: NodeKind;
  /** Files: version shown (undefined while the file has no write → size 0). */
  version?: VersionId;
  manifest?: Manifest;
  /** Files: manifest size; dirs: 0. */
  size: number;
  /** Wall ms of the shown version's write op (files), of the op that last placed it (dirs, files without a write). */
  mtime: number;
  /** Conflict copies: view id of the file they lost to. */
  conflictOf?: string;
  /** In the trash at any depth. */
  trashed: boolean;
}

/** Errors of local ops carry a POSIX-like code for the fs layer (EEXIST, ENOENT, ENOTDIR, EISDIR, EINVAL). */
export type FsErrorCode = 'EEXIST' | 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EINVAL';
function fsError(code: FsErrorCode, message: string, range = true): Error & { code: FsErrorCode } {
  const e = range ? new RangeError(`${code}: ${message}`) : new Error(`${code}: ${message}`);
  return Object.assign(e, { code });
}

// ---- names ----------------------------------------------------------------------------------

/** Why a name is not allowed (empty, '.', '..', or holding '/' or NUL), or undefined if fine. */
export function badName(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'name must be a non-empty string';
  if (name === '.' || name === '..') return `name may not be ${name}`;
  if (name.includes('/') || name.includes('\0')) return 'name may not contain "/" or NUL';
  return undefined;
}

/** [stem, '.ext'] of a file name; a dotfile (`.bashrc`) or a trailing dot has no extension. */
function splitExt(name: string): [string, string] {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) return [name, ''];
  return [name.slice(0, dot), name.slice(dot)];
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * Syncthing-style conflict name: `<stem>.sync-conflict-<YYYYMMDD-HHMMSS>-<PEER7>.<ext>`, date in
 * UTC of `wall`, PEER7 = the first 7 characters of the origin's peer id, upper-cased.
 * Directories keep their whole name as the stem (a dot in a folder name is no extension).
 */
export function syncConflictName(name: string, wall: number, origin: Origin, kind: NodeKind): string {
  const d = new Date(wall);
  const stamp =
    `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-` +
    `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  const peer = originPeer(origin).slice(0, 7).toUpperCase();
  const [stem, ext] = kind === 'file' ? splitExt(name) : [name, ''];
  return `${stem}.sync-conflict-${stamp}-${peer}${ext}`;
}

/** `a.txt` → `a-2.txt` (files keep their extension last), `dir` → `dir-2`. */
function withSuffix(name: string, k: number, kind: NodeKind): string {
  const [stem, ext] = kind === 'file' ? splitExt(name) : [name, ''];
  return `${stem}-${k}${ext}`;
}

// ---- validation of ops from the network -------------------------------------------------------

const HASH = /^[0-9a-f]{64}$/;
/** Wall clocks beyond what a Date can show are refused (conflict names are built from them). */
const MAX_WALL = 8.64e15;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown, min: number): x is number => Number.isSafeInteger(x) && (x as number) >= min;
/** Origins name version-vector keys and prefix view ids: no '@' (conflict-copy ids), no prototype key. */
const isOrigin = (x: unknown): x is Origin => typeof x === 'string' && x !== '' && !x.includes('@') && x !== '__proto__';
/** A node reference: non-empty, no '@' (reserved for conflict-copy view ids). */
const isNodeRef = (x: unknown): x is NodeId => typeof x === 'string' && x !== '' && !x.includes('@');
const isFixed = (id: string): boolean => id === ROOT || id === TRASH;

/** A checked copy of a version vector, or a reason. */
function parseVv(x: unknown): VersionVector | string {
  if (!isObject(x)) return 'seen must be an object';
  const out: VersionVector = {};
  for (const [o, n] of Object.entries(x)) {
    if (!isOrigin(o)) return `bad origin in seen: ${JSON.stringify(o)}`;
    if (!isCount(n, 0)) return `bad seq in seen for ${o}`;
    out[o] = n;
  }
  return out;
}

function parseManifest(x: unknown): Manifest | string {
  if (!isObject(x) || !isCount(x.size, 0) || !Array.isArray(x.blocks)) return 'bad manifest';
  if (x.blocks.length !== blockCount(x.size)) return 'manifest block count does not match its size';
  for (const h of x.blocks) if (typeof h !== 'string' || !HASH.test(h)) return 'bad block hash';
  return { size: x.size, blocks: [...(x.blocks as string[])] };
}

function parseBody(x: unknown, self: string): OpBody | string {
  if (!isObject(x)) return 'body must be an object';
  switch (x.t) {
    case 'move': {
      if (!isNodeRef(x.child) || !isNodeRef(x.parent)) return 'bad move child/parent';
      if (isFixed(x.child)) return 'ROOT and TRASH cannot be moved';
      if (!isObject(x.meta) || (x.meta.kind !== 'dir' && x.meta.kind !== 'file')) return 'bad meta';
      const why = badName(x.meta.name);
      if (why !== undefined) return why;
      const meta: Meta = { name: x.meta.name as string, kind: x.meta.kind };
      if (x.seen === undefined) return { t: 'move', child: x.child, parent: x.parent, meta };
      const seen = parseVv(x.seen);
      if (typeof seen === 'string') return seen;
      return { t: 'move', child: x.child, parent: x.parent, meta, seen };
    }
    case 'write': {
      if (!isNodeRef(x.node) || isFixed(x.node)) return 'bad write node';
      const manifest = parseManifest(x.manifest);
      if (typeof manifest === 'string') return manifest;
      if (!Array.isArray(x.supersedes)) return 'supersedes must be an array';
      for (const v of x.supersedes) if (typeof v !== 'string' || v === '' || v === self) return 'bad superseded version';
      return { t: 'write', node: x.node, manifest, supersedes: [...(x.supersedes as string[])] };
    }
    case 'drop': {
      if (!isNodeRef(x.node) || isFixed(x.node) || typeof x.version !== 'string' || x.version === '') return 'bad drop';
      return { t: 'drop', node: x.node, version: x.version };
    }
    case 'purge': {
      if (!Array.isArray(x.nodes) || x.nodes.length === 0) return 'purge needs nodes';
      for (const n of x.nodes) if (!isNodeRef(n) || isFixed(n)) return 'bad purged node';
      const seen = parseVv(x.seen);
      if (typeof seen === 'string') return seen;
      return { t: 'purge', nodes: [...(x.nodes as string[])], seen };
    }
    default:
      return `unknown op type ${JSON.stringify(x.t)}`;
  }
}

/** A checked, normalized copy of an op (unknown keys dropped), or why it is malformed. */
export function parseOp(x: unknown): FsOp | string {
  if (!isObject(x)) return 'op must be an object';
  if (!isOrigin(x.origin)) return 'bad origin';
  if (!isCount(x.seq, 1)) return 'bad seq';
  const t = x.time;
  if (!Array.isArray(t) || t.length !== 2 || !isCount(t[0], 1)) return 'bad timestamp';
  if (t[1] !== x.origin) return 'timestamp peer is not the op origin';
  if (typeof x.wall !== 'number' || !(x.wall >= 0 && x.wall <= MAX_WALL)) return 'bad wall clock';
  const body = parseBody(x.body, `${x.origin}:${x.seq}`);
  if (typeof body === 'string') return body;
  return { origin: x.origin, seq: x.seq, time: [t[0], x.origin], wall: x.wall, body };
}

// ---- the view ---------------------------------------------------------------------------------

type WriteOp = FsOp & { readonly body: Extract<OpBody, { t: 'write' }> };
type MoveFsOp = FsOp & { readonly body: Extract<OpBody, { t: 'move' }> };
type PurgeOp = FsOp & { readonly body: Extract<OpBody, { t: 'purge' }> };

interface View {
  /** The revision this view shows (a local create or write patches it forward). */
  revision: number;
  readonly byId: Map<string, FileEntry>;
  /** Per directory view id: entries sorted by name, and by name. */
  readonly kids: Map<string, FileEntry[]>;
  readonly byName: Map<string, Map<string, FileEntry>>;
  /** Every entry, sorted by id. */
  readonly all: FileEntry[];
  /** Per file node with writes: heads, the winner first, then the rest by descending time. */
  readonly heads: Map<NodeId, WriteOp[]>;
  /** Per node in the tree: the name it would have outside the trash, and its last placement outside the trash. */
  readonly baseName: Map<NodeId, string>;
  readonly preTrash: Map<NodeId, Placement<Meta>>;
  readonly paths: Map<string, string>;
}

const timeKey = (t: readonly [number, string]): string => `${t[0]}/${t[1]}`;
const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byTimeDesc = (a: FsOp, b: FsOp): number => compareTs(b.time, a.time);

/** Index of the first element whose key is >= key, in an array sorted by that key (code units). */
function lowerBound<T>(xs: readonly T[], key: string, keyOf: (x: T) => string): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyOf(xs[mid]!) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

type Status = 'live' | 'trashed' | 'gone';
/** What the view's passes share about the tree. */
interface Layout {
  /** Per node in the tree: its latest applied op (where it sits now). */
  readonly placing: Map<NodeId, LogEntry<Meta>>;
  /** Per node: its last placement outside the trash. */
  readonly preTrash: Map<NodeId, Placement<Meta>>;
  readonly kind: Map<NodeId, NodeKind>;
  readonly placingOp: (n: NodeId) => MoveFsOp;
}
interface Resolved {
  status: Status;
  parent: string;
}

/**
 * One replica of the filesystem namespace.
 *
 * Choices beyond the brief:
 * - Purge is final: a node named by a purge whose `seen` covers every write in its subtree (as
 *   the subtree is now) vanishes with that subtree for good, wherever later (concurrent) moves
 *   put it; only an unseen write in its subtree saves it. Deciding on the final tree makes the
 *   outcome independent of delivery order.
 * - A rescued node (edit beats delete) is put back at its last placement *outside* the trash
 *   (the delete's `old`; if it had since moved within the trash, the placement before it first
 *   entered it), as if restored there, and its writes count for that folder's own delete: a
 *   folder deleted without seeing the edit comes back too (the edit's whole path returns). So
 *   the parent is live unless someone trashed or purged it *having seen the edit*; then the
 *   node goes along with its parent (trashed inside it / purged), rather than popping up at
 *   ROOT. ROOT when there is no such placement, or to cut a loop of rescues (smallest id).
 * - Heads: maximal versions not dropped. A drop never removes the last head (then the newest
 *   maximal version is shown anyway), so a file never loses all its content to dismisses.
 * - A node's kind is the one its creating op gave it (node id = that op's id) when known.
 * - A write on a directory node (only a malformed peer makes one) is ignored by the view.
 * - Per origin, Lamport counters must increase with seq (timestamps must be unique for the
 *   tree): an op breaking that is rejected when its turn comes, and its origin stalls there.
 * - The view is recomputed lazily, O(ops + nodes) per round of the rescue fixpoint (usually two),
 *   except after a local create or write, which patch it in place when nothing else can change.
 */
export class FsModel {
  readonly origin: Origin;
  private readonly tree: ReplicatedTree<Meta>;
  /** Applied ops per origin, index = seq - 1 (gap-free). */
  private readonly applied = new Map<Origin, FsOp[]>();
  /** Ops past a gap, per origin by seq. */
  private readonly held = new Map<Origin, Map<number, FsOp>>();
  private heldCount = 0;
  private clock = 0;
  private rev = 0;
  private rejectedCount = 0;
  private lastReject: string | undefined;
  /** Move ops by timestamp (the tree's log keeps only the MoveOp): for `seen`, wall and origin. */
  private readonly moves = new Map<string, MoveFsOp>();
  /** Versions per node id, whether or not the node is known yet. */
  private readonly versions = new Map<NodeId, Map<VersionId, WriteOp>>();
  private readonly superseded = new Map<NodeId, Set<VersionId>>();
  private readonly dropped = new Map<NodeId, Set<VersionId>>();
  private readonly purges: PurgeOp[] = [];
  private view: View | undefined;

  constructor(origin: Origin) {
    if (!isOrigin(origin)) throw new TypeError('origin must be a non-empty string without "@"');
    this.origin = origin;
    this.tree = new ReplicatedTree<Meta>(origin);
  }

  get pending(): number {
    return this.heldCount;
  }
  get rejected(): number {
    return this.rejectedCount;
  }
  get lastRejection(): string | undefined {
    return this.lastReject;
  }
  get revision(): number {
    return this.rev;
  }

  // ---- delivery ----

  receive(ops: readonly FsOp[]): FsOp[] {
    const out: FsOp[] = [];
    if (!Array.isArray(ops)) {
      this.reject('receive expects an array of ops');
      return out;
    }
    for (const raw of ops) {
      const op = parseOp(raw);
      if (typeof op === 'string') {
        this.reject(op, raw);
        continue;
      }
      const have = this.applied.get(op.origin)?.length ?? 0;
      if (op.seq <= have) continue; // duplicate
      if (op.seq > have + 1) {
        let q = this.held.get(op.origin);
        if (q === undefined) this.held.set(op.origin, (q = new Map()));
        if (!q.has(op.seq)) {
          q.set(op.seq, op);
          this.heldCount++;
        }
        continue;
      }
      if (!this.applyNext(op)) continue;
      out.push(op);
      this.drain(op.origin, out);
    }
    return out;
  }

  load(ops: readonly FsOp[]): void {
    const time = (op: unknown): readonly [number, string] => {
      const t = isObject(op) ? op.time : undefined;
      return Array.isArray(t) && typeof t[0] === 'number' && typeof t[1] === 'string' ? [t[0], t[1]] : [0, ''];
    };
    this.receive([...ops].sort((a, b) => compareTs(time(a), time(b))));
  }

  versionVector(): VersionVector {
    const vv: VersionVector = {};
    for (const [o, list] of this.applied) vv[o] = list.length;
    return vv;
  }

  opsSince(vv: VersionVector, limit = 1000): FsOp[] {
    // Merge the origins' tails by Lamport time (each tail stays in seq order, as seq order is
    // time order within an origin): the receiver's tree then mostly appends.
    const heap: Array<{ list: FsOp[]; at: number }> = [];
    for (const [o, list] of this.applied) {
      const theirs = isObject(vv) && Object.hasOwn(vv, o) && isCount(vv[o], 0) ? vv[o]! : 0;
      if (theirs < list.length) heap.push({ list, at: theirs });
    }
    const less = (i: number, j: number) => compareTs(heap[i]!.list[heap[i]!.at]!.time, heap[j]!.list[heap[j]!.at]!.time) < 0;
    const swap = (i: number, j: number) => ([heap[i], heap[j]] = [heap[j]!, heap[i]!]);
    const down = (i: number) => {
      for (;;) {
        let m = i;
        for (const c of [2 * i + 1, 2 * i + 2]) if (c < heap.length && less(c, m)) m = c;
        if (m === i) return;
        swap(i, m);
        i = m;
      }
    };
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
    const out: FsOp[] = [];
    while (heap.length > 0 && out.length < limit) {
      const top = heap[0]!;
      out.push(top.list[top.at++]!);
      if (top.at === top.list.length) {
        heap[0] = heap[heap.length - 1]!;
        heap.pop();
      }
      down(0);
    }
    return out;
  }

  private reject(why: string, raw?: unknown): void {
    this.rejectedCount++;
    // Only strings and numbers are quoted: String() of a hostile object can throw.
    const show = (v: unknown) => (typeof v === 'string' ? v.slice(0, 80) : typeof v === 'number' ? String(v) : typeof v);
    const o = isObject(raw) ? `${show(raw.origin)}:${show(raw.seq)}: ` : '';
    this.lastReject = `${o}${why}`;
  }

  /** Applies held ops of `origin` that are now next in line. */
  private drain(origin: Origin, out: FsOp[]): void {
    const q = this.held.get(origin);
    if (q === undefined) return;
    for (;;) {
      const next = q.get((this.applied.get(origin)?.length ?? 0) + 1);
      if (next === undefined) break;
      q.delete(next.seq);
      this.heldCount--;
      if (!this.applyNext(next)) break;
      out.push(next);
    }
    if (q.size === 0) this.held.delete(origin);
  }

  /** Applies the op next in its origin's sequence; false (rejected) if its time runs backwards. */
  private applyNext(op: FsOp): boolean {
    let list = this.applied.get(op.origin);
    const prev = list?.[list.length - 1];
    if (prev !== undefined && op.time[0] <= prev.time[0]) {
      this.reject('Lamport counter does not increase with seq', op);
      return false;
    }
    if (list === undefined) this.applied.set(op.origin, (list = []));
    list.push(op);
    if (op.time[0] > this.clock) this.clock = op.time[0];
    this.rev++;
    const b = op.body;
    switch (b.t) {
      case 'move':
        this.moves.set(timeKey(op.time), op as MoveFsOp);
        this.tree.apply({ time: op.time, parent: b.parent, meta: b.meta, child: b.child });
        break;
      case 'write': {
        let vs = this.versions.get(b.node);
        if (vs === undefined) this.versions.set(b.node, (vs = new Map()));
        vs.set(opId(op), op as WriteOp);
        let sup = this.superseded.get(b.node);
        if (sup === undefined) this.superseded.set(b.node, (sup = new Set()));
        for (const v of b.supersedes) sup.add(v);
        break;
      }
      case 'drop': {
        let d = this.dropped.get(b.node);
        if (d === undefined) this.dropped.set(b.node, (d = new Set()));
        d.add(b.version);
        break;
      }
      case 'purge':
        this.purges.push(op as PurgeOp);
        break;
    }
    return true;
  }

  // ---- local ops ----

  /** Stamps, checks and applies a local op whose body may name the op's own id (a new node). */
  private local(wall: number, body: (id: string) => OpBody): FsOp {
    const seq = (this.applied.get(this.origin)?.length ?? 0) + 1;
    const draft = { origin: this.origin, seq, time: [this.clock + 1, this.origin], wall, body: body(`${this.origin}:${seq}`) };
    const op = parseOp(draft);
    if (typeof op === 'string') throw fsError('EINVAL', op);
    const current = this.view !== undefined && this.view.revision === this.rev ? this.view : undefined;
    this.applyNext(op);
    if (current !== undefined && this.patch(current, op)) current.revision = this.rev;
    return op;
  }

  /**
   * Brings the view up to date after a local create or write without recomputing it, in the
   * common cases where nothing else can change (the ingest of many files would otherwise cost a
   * whole recompute per file): a fresh node in a live directory under a free name, or a write
   * to a live file without conflict copies. False when a full recompute is needed.
   */
  private patch(v: View, op: FsOp): boolean {
    const b = op.body;
    if (b.t === 'move' && b.child === opId(op)) {
      if (b.parent !== ROOT) {
        const dir = v.byId.get(b.parent);
        if (dir === undefined || dir.kind !== 'dir' || dir.trashed || dir.conflictOf !== undefined) return false;
      }
      if (v.byName.get(b.parent)?.has(b.meta.name)) return false;
      const entry: FileEntry = { id: b.child, node: b.child, parent: b.parent, name: b.meta.name, kind: b.meta.kind, size: 0, mtime: op.wall, trashed: false };
      this.putEntry(v, entry);
      v.baseName.set(b.child, b.meta.name);
      return true;
    }
    if (b.t === 'write') {
      const old = v.byId.get(b.node);
      if (old === undefined || old.kind !== 'file' || old.trashed || old.conflictOf !== undefined) return false;
      const heads = v.heads.get(b.node) ?? [];
      if (heads.length > 1) return false; // conflict copies would go: names may shift
      if (heads.length === 1 && !b.supersedes.includes(opId(heads[0]!))) return false; // a new conflict
      v.heads.set(b.node, [op as WriteOp]);
      this.putEntry(v, { ...old, version: opId(op), manifest: b.manifest, size: b.manifest.size, mtime: op.wall });
      return true;
    }
    return false;
  }

  /** Adds an entry to the view's indexes, or replaces the one with its id (same parent and name). */
  private putEntry(v: View, e: FileEntry): void {
    const replacing = v.byId.has(e.id);
    v.byId.set(e.id, e);
    let names = v.byName.get(e.parent);
    if (names === undefined) v.byName.set(e.parent, (names = new Map()));
    names.set(e.name, e);
    let kids = v.kids.get(e.parent);
    if (kids === undefined) v.kids.set(e.parent, (kids = []));
    const k = lowerBound(kids, e.name, (x) => x.name);
    kids.splice(k, replacing ? 1 : 0, e);
    const i = lowerBound(v.all, e.id, (x) => x.id);
    v.all.splice(i, replacing ? 1 : 0, e);
  }

  mkdir(parent: string, name: string, wall: number): FsOp {
    this.checkCreate(parent, name);
    return this.local(wall, (id) => ({ t: 'move', child: id, parent, meta: { name, kind: 'dir' } }));
  }

  createFile(parent: string, name: string, manifest: Manifest, wall: number): FsOp[] {
    this.checkCreate(parent, name);
    const m = parseManifest(manifest);
    if (typeof m === 'string') throw fsError('EINVAL', m);
    const create = this.local(wall, (id) => ({ t: 'move', child: id, parent, meta: { name, kind: 'file' } }));
    const node = opId(create);
    return [create, this.local(wall, () => ({ t: 'write', node, manifest: m, supersedes: [] }))];
  }

  /**
   * A new version of a file. It supersedes the heads known now (so it resolves a conflict it
   * saw), or, when given, `base`: the versions the writer's content was based on (a writer that
   * started from an older version then leaves a newer concurrent head standing as a conflict copy
   * rather than silently overwriting it).
   */
  write(node: string, manifest: Manifest, wall: number, base?: readonly VersionId[]): FsOp {
    const e = this.nodeEntry(node);
    if (e.kind !== 'file') throw fsError('EISDIR', `${node} is a directory`);
    const supersedes = base !== undefined ? [...base] : (this.currentView().heads.get(node) ?? []).map(opId);
    return this.local(wall, () => ({ t: 'write', node, manifest, supersedes }));
  }

  move(id: string, parent: string, name: string, wall: number): FsOp {
    const e = this.nodeEntry(id);
    const why = badName(name);
    if (why !== undefined) throw fsError('EINVAL', why);
    this.checkDir(parent, true);
    if (parent === id || this.tree.isAncestor(id, parent) || this.viewAncestor(id, parent)) {
      throw fsError('EINVAL', `moving ${id} under ${parent} would make it its own ancestor`);
    }
    // A move into the trash is a delete: it carries what its maker had seen.
    const seen = parent === TRASH ? { seen: this.versionVector() } : {};
    return this.local(wall, () => ({ t: 'move', child: e.node, parent, meta: { name, kind: e.kind }, ...seen }));
  }

  remove(id: string, wall: number): FsOp {
    const e = this.nodeEntry(id);
    if (e.parent === TRASH) throw fsError('EINVAL', `${id} is in the trash already`);
    const name = this.currentView().baseName.get(id) ?? e.name;
    const seen = this.versionVector();
    return this.local(wall, () => ({ t: 'move', child: id, parent: TRASH, meta: { name, kind: e.kind }, seen }));
  }

  restore(id: string, wall: number): FsOp {
    const e = this.nodeEntry(id);
    if (!e.trashed) throw fsError('EINVAL', `${id} is not in the trash`);
    const v = this.currentView();
    const pre = e.parent === TRASH ? v.preTrash.get(id) : undefined;
    let parent = pre?.parent ?? ROOT;
    const live = (p: string) => {
      const d = v.byId.get(p);
      return d !== undefined && d.kind === 'dir' && d.conflictOf === undefined && !d.trashed && !this.tree.isAncestor(id, p);
    };
    if (parent !== ROOT && !live(parent)) parent = ROOT;
    const name = pre?.meta.name ?? v.baseName.get(id) ?? e.name;
    return this.local(wall, () => ({ t: 'move', child: id, parent, meta: { name, kind: e.kind } }));
  }

  emptyTrash(wall: number): FsOp | undefined {
    const nodes = (this.currentView().kids.get(TRASH) ?? []).filter((e) => e.conflictOf === undefined).map((e) => e.node);
    if (nodes.length === 0) return undefined;
    const seen = this.versionVector();
    return this.local(wall, () => ({ t: 'purge', nodes: nodes.sort(byCodeUnits), seen }));
  }

  dismiss(conflictCopyId: string, wall: number): FsOp {
    const e = this.currentView().byId.get(conflictCopyId);
    if (e === undefined || e.conflictOf === undefined || e.version === undefined) {
      throw fsError('EINVAL', `${conflictCopyId} is not a conflict copy`);
    }
    const version = e.version;
    return this.local(wall, () => ({ t: 'drop', node: e.node, version }));
  }

  /** The entry of a node (not a conflict copy) for a local op. */
  private nodeEntry(id: string): FileEntry {
    if (isFixed(id)) throw fsError('EINVAL', `${id} is fixed`);
    const e = this.currentView().byId.get(id);
    if (e === undefined) throw fsError('ENOENT', `no entry ${id}`);
    if (e.conflictOf !== undefined) throw fsError('EINVAL', `${id} is a conflict copy`);
    return e;
  }

  /** Throws unless `dir` is ROOT, TRASH (when allowed) or a directory entry; trashed ones only when allowed. */
  private checkDir(dir: string, inTrash: boolean): void {
    if (dir === ROOT || (inTrash && dir === TRASH)) return;
    const d = this.currentView().byId.get(dir);
    if (d === undefined || (d.trashed && !inTrash) || dir === TRASH) throw fsError('ENOENT', `no directory ${dir}`);
    if (d.kind !== 'dir' || d.conflictOf !== undefined) throw fsError('ENOTDIR', `${dir} is not a directory`);
  }

  private checkCreate(parent: string, name: string): void {
    const why = badName(name);
    if (why !== undefined) throw fsError('EINVAL', why);
    this.checkDir(parent, false);
    if (this.lookup(parent, name) !== undefined) throw fsError('EEXIST', `${name} exists in ${parent}`, false);
  }

  /** Whether a is a strict ancestor of b in the view. */
  private viewAncestor(a: string, b: string): boolean {
    const v = this.currentView();
    for (let p = v.byId.get(b)?.parent, steps = 0; p !== undefined && steps <= v.all.length; p = v.byId.get(p)?.parent, steps++) {
      if (p === a) return true;
    }
    return false;
  }

  // ---- reading the view ----

  get(id: string): FileEntry | undefined {
    return this.currentView().byId.get(id);
  }

  children(dir: string): FileEntry[] {
    return [...(this.currentView().kids.get(dir) ?? [])];
  }

  lookup(dir: string, name: string): FileEntry | undefined {
    return this.currentView().byName.get(dir)?.get(name);
  }

  /** '/a/b.txt'; inside the trash, the path below the trash. '/' for ROOT and TRASH. Throws for an unknown id. */
  path(id: string): string {
    if (isFixed(id)) return '/';
    const v = this.currentView();
    const cached = v.paths.get(id);
    if (cached !== undefined) return cached;
    const chain: FileEntry[] = [];
    let e = v.byId.get(id);
    if (e === undefined) throw fsError('ENOENT', `no entry ${id}`);
    let at = '';
    while (e !== undefined) {
      const known = v.paths.get(e.id);
      if (known !== undefined) {
        at = known;
        break;
      }
      chain.push(e);
      e = v.byId.get(e.parent);
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      at = `${at}/${chain[i]!.name}`;
      v.paths.set(chain[i]!.id, at);
    }
    return at;
  }

  entries(): FileEntry[] {
    return [...this.currentView().all];
  }

  /** Heads of a file: the winner (shown version) first, then the conflict copies' versions by descending time. */
  heads(node: string): VersionId[] {
    return (this.currentView().heads.get(node) ?? []).map(opId);
  }

  /**
   * Every version shown anywhere (live, trash, conflict copies) with its manifest. Also the heads
   * of files whose create has not arrived yet: they will be shown once it does, so GC must spare them.
   */
  neededVersions(): Map<VersionId, Manifest> {
    const v = this.currentView();
    const out = new Map<VersionId, Manifest>();
    for (const e of v.all) if (e.version !== undefined && e.manifest !== undefined) out.set(e.version, e.manifest);
    for (const [node, hs] of v.heads) {
      if (this.tree.has(node)) continue;
      for (const h of hs) out.set(opId(h), h.body.manifest);
    }
    return out;
  }

  private currentView(): View {
    if (this.view === undefined || this.view.revision !== this.rev) this.view = this.computeView();
    return this.view;
  }

  // ---- computing the view: O(ops + nodes), once per revision ----

  /** The kind the node's creating op gave it; else the one its placement says. */
  private kindOf(node: NodeId, placed: Meta): NodeKind {
    const colon = node.lastIndexOf(':');
    const create = colon > 0 ? this.applied.get(node.slice(0, colon))?.[Number(node.slice(colon + 1)) - 1] : undefined;
    return create?.body.t === 'move' && create.body.child === node ? create.body.meta.kind : placed.kind;
  }

  /** Heads of a node: maximal versions, minus dropped ones (but never none when there are versions). */
  private headsOf(node: NodeId, vs: Map<VersionId, WriteOp>): WriteOp[] {
    const sup = this.superseded.get(node);
    const dropped = this.dropped.get(node);
    let maximal = [...vs.values()].filter((w) => !sup?.has(opId(w)));
    if (maximal.length === 0) maximal = [...vs.values()]; // only malformed supersedes cycles get here
    maximal.sort(byTimeDesc);
    const kept = maximal.filter((w) => !dropped?.has(opId(w)));
    return kept.length > 0 ? kept : [maximal[0]!];
  }

  /**
   * The parent every node hangs from: its tree parent, or for a rescued node in the trash its
   * pre-trash parent (ROOT when there is none). Only rescue links can close a loop; a loop is cut
   * at its smallest rescued node, which hangs from ROOT instead.
   */
  private links(l: Layout, rescued: ReadonlySet<NodeId>): Map<NodeId, string> {
    const link = new Map<NodeId, string>();
    for (const [n, e] of l.placing) {
      let p = e.op.parent;
      if (p === TRASH && rescued.has(n)) {
        const pre = l.preTrash.get(n);
        p = pre !== undefined && l.placing.has(pre.parent) ? pre.parent : ROOT;
      }
      link.set(n, p);
    }
    const state = new Map<NodeId, 'walking' | 'done'>();
    for (const start of l.placing.keys()) {
      const path: NodeId[] = [];
      let cur = start;
      while (l.placing.has(cur) && !state.has(cur)) {
        state.set(cur, 'walking');
        path.push(cur);
        cur = link.get(cur)!;
      }
      if (state.get(cur) === 'walking') {
        const loop = path.slice(path.indexOf(cur));
        const cut = loop.filter((n) => rescued.has(n) && l.placing.get(n)!.op.parent === TRASH).sort(byCodeUnits)[0]!;
        link.set(cut, ROOT);
      }
      for (const n of path) state.set(n, 'done');
    }
    return link;
  }

  /**
   * Per node, the highest write seq per origin in its subtree (as linked), children before
   * parents; from that, the nodes a purge removes for good (it had seen every write below) and
   * the trashed nodes an unseen write brings back (their delete, or a purge naming them, had not).
   */
  private overrides(l: Layout, link: Map<NodeId, string>): { gone: Set<NodeId>; rescued: Set<NodeId> } {
    const purgesOf = new Map<NodeId, PurgeOp[]>();
    for (const p of this.purges) {
      for (const n of p.body.nodes) {
        const list = purgesOf.get(n);
        if (list === undefined) purgesOf.set(n, [p]);
        else list.push(p);
      }
    }
    const kids = new Map<string, NodeId[]>();
    for (const [n, p] of link) {
      const list = kids.get(p);
      if (list === undefined) kids.set(p, [n]);
      else list.push(n);
    }
    const order: NodeId[] = [];
    const stack: string[] = [ROOT, TRASH];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (!isFixed(n)) order.push(n);
      for (const c of kids.get(n) ?? []) stack.push(c);
    }
    const exceeds = (vec: Map<Origin, number>, seen: VersionVector | undefined) => {
      for (const [o, s] of vec) if (s > (seen?.[o] ?? 0)) return true;
      return false;
    };
    const vecs = new Map<NodeId, Map<Origin, number>>();
    const gone = new Set<NodeId>();
    const rescued = new Set<NodeId>();
    for (let i = order.length - 1; i >= 0; i--) {
      const n = order[i]!;
      let vec = new Map<Origin, number>();
      for (const c of kids.get(n) ?? []) {
        let cv = vecs.get(c)!;
        vecs.delete(c);
        if (cv.size > vec.size) [vec, cv] = [cv, vec]; // merge the smaller into the larger
        for (const [o, s] of cv) if (s > (vec.get(o) ?? 0)) vec.set(o, s);
      }
      if (l.kind.get(n) === 'file') {
        for (const w of this.versions.get(n)?.values() ?? []) if (w.seq > (vec.get(w.origin) ?? 0)) vec.set(w.origin, w.seq);
      }
      vecs.set(n, vec);
      const named = purgesOf.get(n);
      if (named !== undefined && named.some((p) => !exceeds(vec, p.body.seen))) gone.add(n);
      else if (l.placing.get(n)!.op.parent === TRASH && (named !== undefined || exceeds(vec, l.placingOp(n).body.seen ?? {}))) {
        rescued.add(n);
      }
    }
    return { gone, rescued };
  }

  private computeView(): View {
    // 1. Where each node sits (its latest applied op), and its last placement outside the trash.
    const placing = new Map<NodeId, LogEntry<Meta>>();
    const preTrash = new Map<NodeId, Placement<Meta>>();
    for (const e of this.tree.log) {
      if (!e.applied) continue;
      placing.set(e.op.child, e);
      if (e.op.parent === TRASH && e.old !== undefined && e.old.parent !== TRASH) preTrash.set(e.op.child, e.old);
    }
    const placingOp = (n: NodeId): MoveFsOp => this.moves.get(timeKey(placing.get(n)!.op.time))!;
    const kind = new Map<NodeId, NodeKind>();
    for (const [n, e] of placing) kind.set(n, this.kindOf(n, e.op.meta));
    const layout: Layout = { placing, preTrash, kind, placingOp };

    // 2. Heads of every file with writes.
    const heads = new Map<NodeId, WriteOp[]>();
    for (const [n, vs] of this.versions) {
      if (kind.get(n) === 'dir') continue;
      heads.set(n, this.headsOf(n, vs));
    }

    // 3. Which deletes and purges an unseen write overrides. A rescued node hangs at its
    //    pre-trash parent, so its writes then count against that parent's own delete: rescues
    //    cascade upwards. Iterate to a fixpoint; the sets only move one way (rescued grows, gone
    //    shrinks), so it ends; usually after two rounds.
    const rescued = new Set<NodeId>();
    let gone: Set<NodeId> | undefined;
    let link: Map<NodeId, string>;
    for (;;) {
      link = this.links(layout, rescued);
      const found = this.overrides(layout, link);
      const before = rescued.size;
      for (const n of found.rescued) rescued.add(n);
      const nextGone = gone === undefined ? found.gone : new Set([...gone].filter((n) => found.gone.has(n)));
      const stable = rescued.size === before && nextGone.size === gone?.size;
      gone = nextGone;
      if (stable) break;
    }

    // 4. Status of every node: follow links up to ROOT (live), TRASH (trashed) or a gone node.
    const status = new Map<NodeId, Status>();
    for (const start of placing.keys()) {
      const path: NodeId[] = [];
      let cur = start;
      let s: Status;
      for (;;) {
        if (cur === ROOT || cur === TRASH) {
          s = cur === ROOT ? 'live' : 'trashed';
          break;
        }
        const known = status.get(cur) ?? (gone.has(cur) ? 'gone' : undefined);
        if (known !== undefined) {
          s = known;
          break;
        }
        path.push(cur);
        cur = link.get(cur)!;
      }
      for (const n of path) status.set(n, s);
    }
    const resolved = new Map<NodeId, Resolved>();
    const baseName = new Map<NodeId, string>();
    for (const [n, e] of placing) {
      const pre = rescued.has(n) && e.op.parent === TRASH ? preTrash.get(n) : undefined;
      baseName.set(n, (pre ?? e.op).meta.name);
      resolved.set(n, { status: gone.has(n) ? 'gone' : status.get(n)!, parent: link.get(n)! });
    }

    // 5. Entries: nodes and conflict copies, then names made unique per directory.
    interface Draft {
      entry: FileEntry;
      want: string;
      /** 0: keeps its name outright; 1: takes the next free variant of `want`. */
      rank: 0 | 1;
    }
    const drafts = new Map<string, Draft[]>(); // per view parent
    const add = (d: Draft) => {
      let l = drafts.get(d.entry.parent);
      if (l === undefined) drafts.set(d.entry.parent, (l = []));
      l.push(d);
    };
    const sameName = new Map<string, NodeId[]>(); // `${parent}/${name}` → nodes
    for (const [n, r] of resolved) {
      if (r.status === 'gone') continue;
      const key = `${r.parent}/${baseName.get(n)!}`;
      const l = sameName.get(key);
      if (l === undefined) sameName.set(key, [n]);
      else l.push(n);
    }
    for (const group of sameName.values()) {
      // The node placed earliest keeps the name; the others get a conflict name from their placing op.
      group.sort((a, b) => compareTs(placing.get(a)!.op.time, placing.get(b)!.op.time));
      group.forEach((n, i) => {
        const r = resolved.get(n)!;
        const k = kind.get(n)!;
        const name = baseName.get(n)!;
        const placed = placingOp(n);
        const trashed = r.status === 'trashed';
        const hs = k === 'file' ? (heads.get(n) ?? []) : [];
        const win = hs[0];
        const entry: FileEntry = { id: n, node: n, parent: r.parent, name, kind: k, size: 0, mtime: placed.wall, trashed };
        if (win !== undefined) Object.assign(entry, { version: opId(win), manifest: win.body.manifest, size: win.body.manifest.size, mtime: win.wall });
        add({ entry, want: i === 0 ? name : syncConflictName(name, placed.wall, placed.origin, k), rank: i === 0 ? 0 : 1 });
        for (const w of hs.slice(1)) {
          const version = opId(w);
          const copy: FileEntry = {
            id: `${n}@${version}`,
            node: n,
            parent: r.parent,
            name,
            kind: 'file',
            version,
            manifest: w.body.manifest,
            size: w.body.manifest.size,
            mtime: w.wall,
            conflictOf: n,
            trashed,
          };
          add({ entry: copy, want: syncConflictName(name, w.wall, w.origin, 'file'), rank: 1 });
        }
      });
    }
    const byId = new Map<string, FileEntry>();
    const kids = new Map<string, FileEntry[]>();
    const byName = new Map<string, Map<string, FileEntry>>();
    const all: FileEntry[] = [];
    for (const [dir, list] of drafts) {
      list.sort((a, b) => a.rank - b.rank || byCodeUnits(a.entry.id, b.entry.id));
      const names = new Map<string, FileEntry>();
      for (const d of list) {
        let name = d.want;
        for (let k = 2; names.has(name); k++) name = withSuffix(d.want, k, d.entry.kind);
        d.entry.name = name;
        names.set(name, d.entry);
        byId.set(d.entry.id, d.entry);
        all.push(d.entry);
      }
      byName.set(dir, names);
      kids.set(dir, [...names.values()].sort((a, b) => byCodeUnits(a.name, b.name)));
    }
    all.sort((a, b) => byCodeUnits(a.id, b.id));
    return { revision: this.rev, byId, kids, byName, all, heads, baseName, preTrash, paths: new Map() };
  }
}
