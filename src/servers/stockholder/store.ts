// Where a peer keeps its share of the cluster filesystem: blocks and the op log. One small
// adapter interface (as automerge-repo does for storage) with three implementations: memory
// (tests, the simulator, a tab that does not own its profile's store), IndexedDB through `idb`
// (src/host/browser/store-idb.ts) and files on disk (src/host/node/store-disk.ts).
//
// Durability contract, which ingest relies on ("no manifest ever names a missing block"):
// - putBlocks may be relaxed (IndexedDB durability 'relaxed'): a crash may lose blocks put
//   recently, never corrupt one.
// - commitOps is strict and atomic: when it resolves, the ops survive a crash; a crash before
//   leaves none of them. The Stockholder commits a write op only after putBlocks of all its
//   blocks resolved, and a strict commit orders after the relaxed writes before it.
import type { FsOp, Hash } from './types.ts';

export interface StoredBlock {
  readonly hash: Hash;
  readonly bytes: Uint8Array;
}

export interface StoreEstimate {
  /** Bytes used by this origin / directory, as the platform reports it. */
  usage: number;
  /** Bytes it may use (Infinity when unknown). */
  quota: number;
}

/** Thrown (rejected) when the platform refuses a write for lack of space. Nothing was stored. */
export class StoreFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreFullError';
  }
}

export interface BlockStore {
  /** What it is, for logs and the UI ("IndexedDB lshapes-store", "memory", "/var/lshapes/store"). */
  readonly label: string;
  /** True when what is stored survives this peer (IndexedDB, disk); false for memory. */
  readonly durable: boolean;
  hasBlock(hash: Hash): Promise<boolean>;
  getBlock(hash: Hash): Promise<Uint8Array | undefined>;
  /** Stores blocks (bytes must match their hash: the caller verified it). Idempotent. */
  putBlocks(blocks: readonly StoredBlock[]): Promise<void>;
  deleteBlocks(hashes: readonly Hash[]): Promise<void>;
  listBlocks(): Promise<Hash[]>;
  /** Appends ops atomically and durably. Ops already stored (same origin and seq) are ignored. */
  commitOps(ops: readonly FsOp[]): Promise<void>;
  /** Every op committed, in any order. */
  loadOps(): Promise<FsOp[]>;
  /**
   * What the last loadOps could not read (a damaged record), each with why. Such a record is
   * left stored as it is and costs only its own ops; absent: the store has no such records.
   */
  readonly refused?: readonly string[];
  estimate(): Promise<StoreEstimate>;
  close(): Promise<void>;
}

/** Blocks and ops in memory: for tests, the simulator, and a tab waiting to own its profile's store. */
export class MemoryStore implements BlockStore {
  readonly label: string;
  readonly durable = false;
  private readonly blocks = new Map<Hash, Uint8Array>();
  private readonly ops = new Map<string, FsOp>();
  /** Optional cap in bytes: putBlocks beyond it throws StoreFullError (tests of quota). */
  quota: number;

  constructor(opts: { label?: string; quota?: number } = {}) {
    this.label = opts.label ?? 'memory';
    this.quota = opts.quota ?? Infinity;
  }

  private usage(): number {
    let n = 0;
    for (const b of this.blocks.values()) n += b.length;
    return n;
  }

  async hasBlock(hash: Hash): Promise<boolean> {
    return this.blocks.has(hash);
  }
  async getBlock(hash: Hash): Promise<Uint8Array | undefined> {
    const b = this.blocks.get(hash);
    return b && new Uint8Array(b); // a copy (Buffer#slice would hand out the stored bytes)
  }
  async putBlocks(blocks: readonly StoredBlock[]): Promise<void> {
    const fresh = blocks.filter((b) => !this.blocks.has(b.hash));
    const adding = fresh.reduce((n, b) => n + b.bytes.length, 0);
    if (this.quota !== Infinity && this.usage() + adding > this.quota) {
      throw new StoreFullError(`${this.label}: storing ${adding} more bytes would pass the quota of ${this.quota}`);
    }
    for (const b of fresh) this.blocks.set(b.hash, new Uint8Array(b.bytes)); // own copy, even of a Buffer view
  }
  async deleteBlocks(hashes: readonly Hash[]): Promise<void> {
    for (const h of hashes) this.blocks.delete(h);
  }
  async listBlocks(): Promise<Hash[]> {
    return [...this.blocks.keys()];
  }
  async commitOps(ops: readonly FsOp[]): Promise<void> {
    for (const op of ops) {
      const key = `${op.origin}:${op.seq}`;
      if (!this.ops.has(key)) this.ops.set(key, op);
    }
  }
  async loadOps(): Promise<FsOp[]> {
    return [...this.ops.values()];
  }
  async estimate(): Promise<StoreEstimate> {
    return { usage: this.usage(), quota: this.quota };
  }
  async close(): Promise<void> {}
}
