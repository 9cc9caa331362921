// The Stockholder's store in a browser profile: IndexedDB through `idb`. Works in a Web Worker
// (only `indexedDB` and `navigator` are used, never `window`). One tab at a time may own it:
// see store-owner.ts.
//
// Durability (store.ts): putBlocks commits with durability 'relaxed' (the browser may lose the
// last blocks on a crash, never half a block: a value is written whole or not at all);
// commitOps commits ONE transaction with durability 'strict', so it is atomic and, once it
// resolves, on disk. Transactions on a database commit in order, so a strict commit also
// orders after every relaxed block write before it.
//
// Op layout (database version 2): one `batches` record per commitOps, its ops as one JSON
// string, plus an `opIndex` (op id → batch) that makes "ops already stored are ignored" a key
// lookup. One record instead of one per op is what makes a reload fast: reading 19,900 per-op
// records took ~300 ms of a 10,000-entry namespace's load, reading one string and JSON.parse
// a few ms. Version 1 kept one `ops` record per op: opening such a profile moves every op
// that parses into one batch, in the same (atomic) upgrade transaction; a record that does
// not parse stays where it is, loaded as before for the model to refuse with its reason.
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction } from 'idb';
import { parseOp } from '../../servers/stockholder/model.ts';
import { opId, type FsOp, type Hash } from '../../servers/stockholder/types.ts';
import { StoreFullError, type BlockStore, type StoreEstimate, type StoredBlock } from '../../servers/stockholder/store.ts';

export const DEFAULT_STORE_DB = 'lshapes-store';
/** 1: one `ops` record per op; 2: `batches` + `opIndex` (see the top of this file). */
export const STORE_DB_VERSION = 2;
/** The format of a `batches` record this code writes and reads; any other is refused, never guessed at. */
export const BATCH_FORMAT = 1;

/** One commitOps: `ops` is JSON of an FsOp[] (a string clones and parses far faster than 10,000 objects). */
export interface OpBatch {
  v: typeof BATCH_FORMAT;
  ops: string;
}

interface StoreSchema extends DBSchema {
  /** key: the block's hash. Written as Uint8Array; an ArrayBuffer is read back too. */
  blocks: { key: Hash; value: Uint8Array | ArrayBuffer };
  /** Version 1's layout, key opId. Never written now; holds only records the upgrade could not parse. */
  ops: { key: string; value: FsOp };
  /** One record per commitOps, keys ascending in commit order. */
  batches: { key: number; value: OpBatch };
  /** Every op stored, key opId → its batch's key (0: a version-1 `ops` record). */
  opIndex: { key: string; value: number };
}

type StoreName = 'blocks' | 'ops' | 'batches' | 'opIndex';
type WriteTx = IDBPTransaction<StoreSchema, StoreName[], 'readwrite'>;

export class IdbStore implements BlockStore {
  readonly label: string;
  readonly durable = true;
  /** What the last loadOps could not read, each with why (store.ts). */
  refused: readonly string[] = [];

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
    const db = await openDB<StoreSchema>(name, STORE_DB_VERSION, {
      upgrade(db, oldVersion, _newVersion, tx) {
        if (oldVersion < 1) {
          db.createObjectStore('blocks');
          db.createObjectStore('ops');
        }
        if (oldVersion < 2) {
          db.createObjectStore('batches', { autoIncrement: true });
          db.createObjectStore('opIndex');
          migrateOpsToBatch(tx as unknown as IDBPTransaction<StoreSchema, StoreName[], 'versionchange'>);
        }
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
    await this.inTransaction(['blocks'], 'relaxed', async (tx) => {
      const store = tx.objectStore('blocks');
      // Re-putting a block is harmless (same hash, same bytes), so no lookup first.
      for (const b of blocks) await store.put(ownBuffer(b.bytes), b.hash);
    });
  }

  async deleteBlocks(hashes: readonly Hash[]): Promise<void> {
    // Another tab may have just stored one of these for a file it is about to commit.
    if (hashes.length === 0 || this.shared) return;
    await this.inTransaction(['blocks'], 'relaxed', async (tx) => {
      const store = tx.objectStore('blocks');
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
    await this.inTransaction(['batches', 'opIndex'], 'strict', async (tx) => {
      const index = tx.objectStore('opIndex');
      // All lookups issued at once: one round (10,000 ops: ~0.3 s, not ~7 s one by one).
      const keys = [...first.keys()];
      const present = await all(keys.map((k) => () => index.getKey(k)));
      const fresh = keys.filter((_, i) => present[i] === undefined);
      if (fresh.length === 0) return;
      const batch: OpBatch = { v: BATCH_FORMAT, ops: JSON.stringify(fresh.map((k) => first.get(k)!)) };
      const at = await tx.objectStore('batches').add(batch);
      await all(fresh.map((k) => () => index.put(at, k)));
    });
  }

  /**
   * Every op: the batches in commit order, after any version-1 record left over. A batch
   * record that cannot be read is refused (named in `refused`, left stored untouched); the
   * others load. Ops themselves are checked by the model (parseOp), as ops from peers are.
   */
  async loadOps(): Promise<FsOp[]> {
    const tx = this.db.transaction(['ops', 'batches'], 'readonly');
    const [legacy, keys, batches] = await Promise.all([tx.objectStore('ops').getAll(), tx.objectStore('batches').getAllKeys(), tx.objectStore('batches').getAll()]);
    await tx.done;
    const out: FsOp[] = legacy;
    const refused: string[] = [];
    batches.forEach((record, i) => {
      const ops = readBatch(record);
      if (typeof ops === 'string') refused.push(`ops record ${keys[i]} in ${this.name}: ${ops}; left as it is, the other records loaded`);
      else for (const op of ops) out.push(op);
    });
    this.refused = refused;
    return out;
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
  private async inTransaction(names: StoreName[], durability: IDBTransactionDurability, body: (tx: WriteTx) => Promise<void>): Promise<void> {
    const tx = this.db.transaction(names, 'readwrite', { durability });
    // Observed below; this keeps an abort during `body` from being an unhandled rejection.
    tx.done.catch(() => {});
    try {
      await body(tx);
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

/** A batch record's ops, or why it cannot be read. */
export function readBatch(record: unknown): FsOp[] | string {
  if (typeof record !== 'object' || record === null) return 'not an ops record';
  const { v, ops } = record as Partial<Record<keyof OpBatch, unknown>>;
  if (v !== BATCH_FORMAT) return typeof v === 'number' ? `format ${v}, which this version does not read (it reads ${BATCH_FORMAT})` : 'no format version';
  if (typeof ops !== 'string') return 'its ops are not a string';
  let parsed: unknown;
  try {
    parsed = JSON.parse(ops);
  } catch (e) {
    return `its ops are not valid JSON (${(e as Error).message})`;
  }
  if (!Array.isArray(parsed)) return 'its ops are not a list';
  if (!parsed.every((op) => typeof op === 'object' && op !== null && !Array.isArray(op))) return 'an op in it is not an object';
  return parsed as FsOp[];
}

/**
 * Version 1 → 2, inside the (atomic) upgrade transaction: every `ops` record that parses goes
 * into one batch, in key order, and out of `ops`; one that does not stays, indexed as 0. A
 * failure aborts the upgrade, leaving the version-1 database as it was.
 */
function migrateOpsToBatch(tx: IDBPTransaction<StoreSchema, StoreName[], 'versionchange'>): void {
  const ops = tx.objectStore('ops');
  const index = tx.objectStore('opIndex');
  const observe = (p: Promise<unknown>) => void p.catch(() => {}); // a failure aborts tx: open rejects
  observe(
    Promise.all([ops.getAllKeys(), ops.getAll()]).then(async ([keys, records]) => {
      const moved: FsOp[] = [];
      const movedKeys: string[] = [];
      keys.forEach((k, i) => {
        if (typeof parseOp(records[i]) === 'string') observe(index.put(0, k));
        else (moved.push(records[i]!), movedKeys.push(k));
      });
      if (moved.length === 0) return;
      const at = await tx.objectStore('batches').add({ v: BATCH_FORMAT, ops: JSON.stringify(moved) });
      for (const k of movedKeys) {
        observe(index.put(at, k));
        observe(ops.delete(k));
      }
    }),
  );
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
