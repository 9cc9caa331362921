// The Stockholder's vocabulary: blocks, manifests, versions and the operations every replica
// exchanges. Plain data only (they travel in kernel messages and sit in IndexedDB / on disk).
import type { NodeId, Timestamp } from './tree.ts';

export type { NodeId, Timestamp } from './tree.ts';
export { ROOT, TRASH } from './tree.ts';

/** Content is cut into blocks of exactly this size (the last one shorter). */
export const BLOCK_SIZE = 1 << 20;

/** SHA-256 of a block: 64 lowercase hex characters. */
export type Hash = string;

/**
 * Who made an op, in which boot: `<peer id>~<8 hex boot nonce>`. A reloaded tab keeps its peer
 * id but starts a new origin, so an op sequence number is never reused even when the tab's
 * earlier ops lived only in memory.
 */
export type Origin = string;

/** The id of an op, `<origin>:<seq>`. A file version is named by the id of the write op that made it,
 *  a node by the id of the op that created it. */
export type OpId = string;
export type VersionId = OpId;

/** Per origin, the highest seq applied (every lower one is applied too: delivery is gap-free per origin). */
export type VersionVector = Record<Origin, number>;

/** One version of a file's bytes: the hashes of its blocks, in order. */
export interface Manifest {
  readonly size: number;
  /** `ceil(size / BLOCK_SIZE)` hashes; empty for an empty file. */
  readonly blocks: readonly Hash[];
}

export type NodeKind = 'dir' | 'file';

/** What a tree node carries (the move op's metadata). `kind` never changes for a node. */
export interface Meta {
  readonly name: string;
  readonly kind: NodeKind;
}

export type OpBody =
  /**
   * Create (a fresh child id), rename (same parent, new name), move, delete (parent TRASH) or
   * restore (out of TRASH). A move into TRASH carries `seen`: the deleter's version vector, so
   * a write it had not seen can win over the delete ("edit beats delete").
   */
  | { readonly t: 'move'; readonly child: NodeId; readonly parent: NodeId; readonly meta: Meta; readonly seen?: VersionVector }
  /** A new version of a file. `supersedes` = the versions its writer saw as current (heads). */
  | { readonly t: 'write'; readonly node: NodeId; readonly manifest: Manifest; readonly supersedes: readonly VersionId[] }
  /** Dismisses one conflict copy (a losing head) of a file. */
  | { readonly t: 'drop'; readonly node: NodeId; readonly version: VersionId }
  /** Empties the trash of these nodes (and everything under them), except where an unseen write wins. */
  | { readonly t: 'purge'; readonly nodes: readonly NodeId[]; readonly seen: VersionVector };

export interface FsOp {
  readonly origin: Origin;
  /** 1, 2, 3, ... per origin, without gaps. */
  readonly seq: number;
  /** Lamport time (counter, origin): the total order every replica applies ops in. */
  readonly time: Timestamp;
  /** Wall-clock ms of its maker: shown (mtime, conflict-copy names), never used to order. */
  readonly wall: number;
  readonly body: OpBody;
}

export const opId = (op: Pick<FsOp, 'origin' | 'seq'>): OpId => `${op.origin}:${op.seq}`;

/** The peer id part of an origin. */
export const originPeer = (origin: Origin): string => origin.slice(0, origin.indexOf('~') < 0 ? origin.length : origin.indexOf('~'));

/** The number of blocks a file of `size` bytes has. */
export const blockCount = (size: number): number => Math.ceil(size / BLOCK_SIZE);
