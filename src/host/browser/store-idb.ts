// The Stockholder's store in a browser profile: IndexedDB through `idb`. Works in a Web Worker
// (only `indexedDB` and `navigator` are used, never `window`). One tab at a time may own it:
// see store-owner.ts.
//
// Durability (store.ts): putBlocks commits with durability 'relaxed' (the browser may lose the
// last blocks on a crash, never half a block: a value is written whole or not at all);
// commitOps commits ONE transaction with durability 'strict', so it is atomic and, once it
// resolves, on disk. Transactions on a database commit in order, so a strict commit also
// orders after every relaxed block write before it.
import { openDB, type DBSchema, type IDBPDatabase, type IDBPObjectStore } from 'idb';
import { opId, type FsOp, type Hash } from '../../servers/stockholder/types.ts';
import { StoreFullError, type BlockStore, type StoreEstimate, type StoredBlock } from '../../servers/stockholder/store.ts';

export const DEFAULT_STORE_DB = 'lshapes-store';

interface StoreSchema extends DBSchema {
  /** key: the block's hash. Written as Uint8Array; an ArrayBuffer is read back too. */
  blocks: { key: Hash; value: Uint8Array | ArrayBuffer };
  /** key: `${origin}:${seq}` (opId), so committing an op twice stores it once. */
  ops: { key: string; value: FsOp };
}

type StoreName = 'blocks' | 'ops';
type WriteStore<S extends StoreName> = IDBPObjectStore<StoreSchema, [S], S, 'readwrite'>;

export class IdbStore implements BlockStore {
  readonly label: string;
  readonly durable = true;

  private constructor(
    private readonly db: IDBPDatabase<StoreSchema>,
    readonly name: string,
    /** Shared with other tabs that write too: never delete (see store-owner.ts). */
    readonly shared: boolean,
  ) {
    this.label = shared ? `IndexedDB ${name} (shared by this profile's tabs; unused blocks are freed only over https or localhost)` : `IndexedDB ${name}`;
  }

  /**
   * Opens (creating if needed) the profile's database; `name` is for tests and experiments.
   * `shared`: other tabs may write to it at the same time, so deleteBlocks does nothing.
   */
  static async open(name: string = DEFAULT_STORE_DB, opts: { shared?: boolean } = {}): Promise<IdbStore> {
    const db = await openDB<StoreSchema>(name, 1, {
      upgrade(db) {
        db.createObjectStore('blocks');
        db.createObjectStore('ops');
      },
      // A newer version of the app wants to upgrade the schema: let it rather than block it.
      blocking() {
        db.close();
      },
    });
    return new IdbStore(db, name, opts.shared ?? false);
  }

  async hasBlock(hash: Hash): Promise<boolean> {
    return (await this.db.getKey('blocks', hash)) !== undefined;
  }

  async getBlock(hash: Hash): Promise<Uint8Array | undefined> {
    const value = await this.db.get('blocks', hash);
    if (value === undefined) return undefined;
    return value instanceof Uint8Array ? value : new Uint8Array(value);
  }

  async putBlocks(blocks: readonly StoredBlock[]): Promise<void> {
    if (blocks.length === 0) return;
    await this.inTransaction('blocks', 'relaxed', async (store) => {
      // Re-putting a block is harmless (same hash, same bytes), so no lookup first.
      for (const b of blocks) await store.put(ownBuffer(b.bytes), b.hash);
    });
  }

  async deleteBlocks(hashes: readonly Hash[]): Promise<void> {
    // Another tab may have just stored one of these for a file it is about to commit.
    if (hashes.length === 0 || this.shared) return;
    await this.inTransaction('blocks', 'relaxed', async (store) => {
      for (const h of hashes) await store.delete(h);
    });
  }

  async listBlocks(): Promise<Hash[]> {
    return this.db.getAllKeys('blocks');
  }

  async commitOps(ops: readonly FsOp[]): Promise<void> {
    if (ops.length === 0) return;
    // "Ops already stored are ignored": keep the first copy (in this call, and in the store).
    const first = new Map<string, FsOp>();
    for (const op of ops) if (!first.has(opId(op))) first.set(opId(op), op);
    await this.inTransaction('ops', 'strict', async (store) => {
      // All requests issued at once: one round of lookups, one of writes (10,000 ops: ~0.3 s, not ~7 s).
      const keys = [...first.keys()];
      const present = await all(keys.map((k) => () => store.getKey(k)));
      await all(keys.filter((_, i) => present[i] === undefined).map((k) => () => store.put(first.get(k)!, k)));
    });
  }

  async loadOps(): Promise<FsOp[]> {
    return this.db.getAll('ops');
  }

  async estimate(): Promise<StoreEstimate> {
    const storage = globalThis.navigator?.storage;
    if (typeof storage?.estimate === 'function') {
      const { usage, quota } = await storage.estimate();
      return { usage: usage ?? 0, quota: quota ?? Infinity };
    }
    // No StorageManager (old browsers, tests): sum the blocks ourselves; the quota is unknown.
    let usage = 0;
    let cursor = await this.db.transaction('blocks').store.openCursor();
    while (cursor) {
      usage += cursor.value.byteLength;
      cursor = await cursor.continue();
    }
    return { usage, quota: Infinity };
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /**
   * Runs `body` in one readwrite transaction and resolves once it committed. Anything thrown
   * inside aborts the transaction, so a failed call stores none of its writes. A full disk
   * shows up either as a request error or only as the transaction's error (Chrome aborts the
   * transaction at commit with QuotaExceededError); both become StoreFullError.
   */
  private async inTransaction<S extends StoreName>(
    name: S,
    durability: IDBTransactionDurability,
    body: (store: WriteStore<S>) => Promise<void>,
  ): Promise<void> {
    const tx = this.db.transaction(name, 'readwrite', { durability });
    // Observed below; this keeps an abort during `body` from being an unhandled rejection.
    tx.done.catch(() => {});
    try {
      await body(tx.store as WriteStore<S>);
      await tx.done;
    } catch (e) {
      try {
        tx.abort();
      } catch {
        // Already aborted or finished.
      }
      throw this.storeError(e, tx.error);
    }
  }

  private storeError(e: unknown, txError: DOMException | null): unknown {
    if (isQuotaError(e) || isQuotaError(txError)) {
      return new StoreFullError(
        `${this.label}: the browser refused to store more (QuotaExceededError); free some space or make this site's storage persistent`,
      );
    }
    // An AbortError of a request says less than the transaction's own error.
    return (e as { name?: string } | null)?.name === 'AbortError' && txError ? txError : e;
  }
}

const isQuotaError = (e: unknown): boolean => (e as { name?: unknown } | null)?.name === 'QuotaExceededError';

/**
 * The bytes as a Uint8Array that owns its whole, unshared buffer: structured clone (what
 * IndexedDB stores) copies a view's entire underlying buffer, so a block sliced out of a
 * bigger read would otherwise be stored with all of it; and a SharedArrayBuffer cannot be stored.
 */
function ownBuffer(bytes: Uint8Array): Uint8Array {
  const whole = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return whole ? bytes : bytes.slice();
}

/**
 * Issues every request, then waits for all. If issuing one throws (the transaction aborted),
 * the requests already issued reject too: each is observed, so none is an unhandled rejection.
 */
async function all<T>(requests: (() => Promise<T>)[]): Promise<T[]> {
  const issued: Promise<T>[] = [];
  for (const request of requests) {
    const p = request();
    p.catch(() => {});
    issued.push(p);
  }
  return Promise.all(issued);
}
