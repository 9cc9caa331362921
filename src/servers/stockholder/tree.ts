// A replicated tree with a real MOVE operation: the algorithm of Kleppmann, Mulligan, Gomes,
// Beresford, "A highly-available move operation for replicated trees" (IEEE TPDS 2021).
// It is the groundwork for the cluster filesystem's namespace: every create, rename, move and
// delete is one MoveOp, and replicas that have seen the same set of ops hold the same tree,
// whatever order (or how many times) the ops arrived in.
//
// How it stays convergent: ops are totally ordered by their Lamport timestamp
// (counter, peer id) — never by wall clock — and the tree is, by definition, the result of
// applying every known op in that order. An op older than the newest one applied is slotted
// in by undoing the later ops, applying it, and redoing them. A move that is invalid in the
// state at its timestamp (it would make a node its own ancestor, moves ROOT/TRASH, or targets
// a parent unknown at that time) is kept in the log as a no-op, so undo/redo stays exact and
// the op is re-evaluated whenever an earlier op is inserted before it.
//
// Pure and host-agnostic: no DOM, no Node, no clocks, no randomness.

export type NodeId = string;

/** Lamport timestamp: (counter, peer id), compared lexicographically. Peer ids break ties, so
 *  two distinct peers never produce equal timestamps. */
export type Timestamp = readonly [counter: number, peer: string];

/** The fixed root of the namespace. It has no parent and can never be moved. */
export const ROOT: NodeId = 'root';
/** The fixed trash: deleting is moving under TRASH (the filesystem keeps a trash, and a
 *  delete concurrent with a move then resolves like any two moves). Never moved either. */
export const TRASH: NodeId = 'trash';

export interface MoveOp<M> {
  readonly time: Timestamp;
  readonly parent: NodeId;
  readonly meta: M;
  readonly child: NodeId;
}

/** Where a node sat (and what it was called) before an op: what undo restores. */
export interface Placement<M> {
  readonly parent: NodeId;
  readonly meta: M;
}

export interface LogEntry<M> {
  readonly op: MoveOp<M>;
  /** The child's placement before the op; undefined when the op created the child. */
  readonly old: Placement<M> | undefined;
  /** False when the op was skipped (cycle, fixed node, unknown parent): a recorded no-op. */
  readonly applied: boolean;
}

/** Total order on timestamps: counter first, then peer id by code units (not locale). */
export function compareTs(a: Timestamp, b: Timestamp): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] === b[1]) return 0;
  return a[1] < b[1] ? -1 : 1;
}

const isFixed = (id: NodeId): boolean => id === ROOT || id === TRASH;
const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function checkTimestamp(t: Timestamp): void {
  if (!Array.isArray(t) || t.length !== 2 || !Number.isSafeInteger(t[0]) || t[0] < 0 || typeof t[1] !== 'string' || t[1] === '') {
    throw new TypeError(`malformed timestamp: ${JSON.stringify(t)}`);
  }
}

/**
 * One replica of the tree.
 *
 * Choices beyond the paper:
 * - A move into a parent unknown at the op's timestamp is refused (recorded as a no-op), where
 *   the paper would let the parent spring into existence as a parentless orphan. With causal
 *   senders this never happens (a peer can only name a parent whose creation it has seen, and
 *   that creation has a smaller timestamp); if ops arrive out of causal order the move is
 *   re-evaluated, and takes effect, once the parent's creation is slotted in before it. The
 *   payoff is a simple invariant: every node is reachable from ROOT or TRASH — no orphans.
 * - Local `move` throws on a move that is invalid right now (EINVAL for the filesystem) instead
 *   of emitting a no-op; remote ops never throw except when malformed.
 * - The log grows forever for now. It can later be truncated below a causally stable
 *   timestamp (one every peer has passed): no op older than that can still arrive, so those
 *   entries will never be undone. Duplicate detection must then also reject ops at or below
 *   that watermark.
 */
export class ReplicatedTree<M> {
  readonly peer: string;
  /** Lamport counter: the greatest counter seen, locally or remotely. */
  private clock = 0;
  private readonly nodesById = new Map<NodeId, Placement<M>>();
  private readonly childIndex = new Map<NodeId, Set<NodeId>>();
  /** Every op known, ascending by timestamp, with what undo needs. */
  private readonly entries: LogEntry<M>[] = [];

  constructor(peer: string) {
    if (typeof peer !== 'string' || peer === '') throw new TypeError('peer id must be a non-empty string');
    this.peer = peer;
  }

  /** The op log, ascending by timestamp (read-only view). */
  get log(): readonly LogEntry<M>[] {
    return this.entries;
  }

  /** The current Lamport counter. */
  get counter(): number {
    return this.clock;
  }

  /**
   * A local op: stamps it with the next Lamport time, applies it at once and returns it for
   * sending. Creating a node = moving a fresh id under a parent; rename = move to the same
   * parent with new meta; delete = move under TRASH.
   * Throws RangeError if the move is invalid in the current tree.
   */
  move(parent: NodeId, meta: M, child: NodeId): MoveOp<M> {
    const why = this.invalid(parent, child);
    if (why !== undefined) throw new RangeError(`cannot move ${child} under ${parent}: ${why}`);
    const op: MoveOp<M> = { time: [this.clock + 1, this.peer], parent, meta, child };
    this.apply(op);
    return op;
  }

  /**
   * A remote (or echoed) op. Idempotent: an op whose timestamp is already in the log is ignored
   * (timestamps are unique per op). Returns true if the op was new.
   */
  apply(op: MoveOp<M>): boolean {
    checkTimestamp(op.time);
    const copy: MoveOp<M> = { time: [op.time[0], op.time[1]], parent: op.parent, meta: op.meta, child: op.child };
    const at = this.insertionPoint(copy.time);
    const here = this.entries[at];
    if (here !== undefined && compareTs(here.op.time, copy.time) === 0) return false;
    if (copy.time[0] > this.clock) this.clock = copy.time[0];
    // Undo every later op (newest first), apply this one, redo them in order.
    const later = this.entries.splice(at);
    for (let i = later.length - 1; i >= 0; i--) this.undo(later[i]!);
    this.entries.push(this.doOp(copy));
    for (const e of later) this.entries.push(this.doOp(e.op));
    return true;
  }

  /** The parent of a node, or undefined for ROOT, TRASH and unknown ids. */
  parentOf(child: NodeId): NodeId | undefined {
    return this.nodesById.get(child)?.parent;
  }

  /** The meta of a node, or undefined for ROOT, TRASH and unknown ids. */
  metaOf(child: NodeId): M | undefined {
    return this.nodesById.get(child)?.meta;
  }

  /** Whether the id names a node of this tree (ROOT and TRASH always do). */
  has(id: NodeId): boolean {
    return isFixed(id) || this.nodesById.has(id);
  }

  /** Children of a node, sorted by id (code units) so every replica lists them alike. */
  children(parent: NodeId): NodeId[] {
    const set = this.childIndex.get(parent);
    return set === undefined ? [] : [...set].sort(byCodeUnits);
  }

  /** Whether a is a strict ancestor of b. */
  isAncestor(a: NodeId, b: NodeId): boolean {
    // The tree never holds a cycle and ROOT/TRASH have no parent, so this walk ends; the step
    // bound turns a broken invariant into an error instead of a hang.
    let steps = 0;
    for (let p = this.parentOf(b); p !== undefined; p = this.parentOf(p)) {
      if (p === a) return true;
      if (++steps > this.nodesById.size) throw new Error(`tree invariant broken: cycle through ${b}`);
    }
    return false;
  }

  /** Every node except ROOT and TRASH (including those in the trash), sorted by id. */
  nodes(): NodeId[] {
    return [...this.nodesById.keys()].sort(byCodeUnits);
  }

  /** Why moving child under parent is invalid in the current tree, or undefined if it is valid. */
  private invalid(parent: NodeId, child: NodeId): string | undefined {
    if (isFixed(child)) return 'ROOT and TRASH are fixed';
    if (!this.has(parent)) return 'unknown parent';
    if (parent === child || this.isAncestor(child, parent)) return 'would make a node its own ancestor';
    return undefined;
  }

  /** Index of the first log entry with timestamp >= t (binary search). */
  private insertionPoint(t: Timestamp): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareTs(this.entries[mid]!.op.time, t) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private doOp(op: MoveOp<M>): LogEntry<M> {
    const old = this.nodesById.get(op.child);
    if (this.invalid(op.parent, op.child) !== undefined) return { op, old, applied: false };
    this.place(op.child, old, { parent: op.parent, meta: op.meta });
    return { op, old, applied: true };
  }

  private undo(e: LogEntry<M>): void {
    if (!e.applied) return;
    this.place(e.op.child, this.nodesById.get(e.op.child), e.old);
  }

  /** Moves child from placement `from` to `to` (either may be undefined: absent). */
  private place(child: NodeId, from: Placement<M> | undefined, to: Placement<M> | undefined): void {
    if (from !== undefined) {
      const siblings = this.childIndex.get(from.parent);
      siblings?.delete(child);
      if (siblings?.size === 0) this.childIndex.delete(from.parent);
    }
    if (to === undefined) {
      this.nodesById.delete(child);
      return;
    }
    this.nodesById.set(child, to);
    let set = this.childIndex.get(to.parent);
    if (set === undefined) this.childIndex.set(to.parent, (set = new Set()));
    set.add(child);
  }
}
