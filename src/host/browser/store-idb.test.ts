// IdbStore on fake-indexeddb (an in-memory IndexedDB for Node, installed as the globals).
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { StoreFullError } from '../../servers/stockholder/store.ts';
import { describeBlockStore, TEST_OPS, testBlock } from '../../servers/stockholder/store-conformance.ts';
import { parseOp } from '../../servers/stockholder/model.ts';
import { opId, type FsOp } from '../../servers/stockholder/types.ts';
import { BATCH_FORMAT, IdbStore, readBatch } from './store-idb.ts';

let dbs = 0;
const newName = (): string => `lshapes-store-test-${++dbs}`;

let last = '';
describeBlockStore(
  'IdbStore',
  async (reuse) => {
    if (!reuse) last = newName();
    return IdbStore.open(last);
  },
  { durable: true },
);

/** Replaces a prototype method for one test; undone in afterEach. */
const patches: (() => void)[] = [];
function patch<T extends object, K extends keyof T>(proto: T, key: K, make: (original: T[K]) => T[K]): void {
  const original = proto[key];
  proto[key] = make(original);
  patches.push(() => {
    proto[key] = original;
  });
}

/** Makes `IDBObjectStore.put` on `storeName` call `fault` (with the put's 1-based index) after or instead of putting. */
function faultOnPut(storeName: string, fault: (n: number, store: IDBObjectStore, put: () => IDBRequest) => IDBRequest): void {
  let n = 0;
  patch(IDBObjectStore.prototype, 'put', (original) =>
    function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
      const put = () => original.apply(this, args);
      return this.name === storeName ? fault(++n, this, put) : put();
    },
  );
}

/** What fake-indexeddb does when a write fails at commit: abort the transaction with this error. */
function abortWith(tx: IDBTransaction, errorName: string): void {
  const fake = tx as unknown as { _state: string; _abort(name: string): void };
  fake._state = 'active';
  fake._abort(errorName);
}

/** The database as it is, without IdbStore (its current version; `version` + `upgrade` to make an old one). */
function rawOpen(name: string, version?: number, upgrade?: (db: IDBDatabase) => void): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = version === undefined ? indexedDB.open(name) : indexedDB.open(name, version);
    request.onupgradeneeded = () => upgrade?.(request.result);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Runs `body` in one raw readwrite transaction on `stores`; resolves with what it returned once committed. */
async function rawTx<T>(name: string, stores: string[], body: (tx: IDBTransaction) => () => T): Promise<T> {
  const db = await rawOpen(name);
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(stores, 'readwrite');
      const result = body(tx);
      tx.oncomplete = () => resolve(result());
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Every record of `store`, as [key, value] pairs in key order. */
function rawRecords(name: string, store: string): Promise<[IDBValidKey, unknown][]> {
  return rawTx(name, [store], (tx) => {
    const keys = tx.objectStore(store).getAllKeys();
    const values = tx.objectStore(store).getAll();
    return () => keys.result.map((k, i) => [k, values.result[i]] as [IDBValidKey, unknown]);
  });
}

const byId = (ops: readonly unknown[]): unknown[] => [...ops].sort((x, y) => opId(x as FsOp).localeCompare(opId(y as FsOp)));

describe('IdbStore op log: one record per commit', () => {
  const opened: IdbStore[] = [];
  const open = async (name: string): Promise<IdbStore> => {
    const store = await IdbStore.open(name);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  test('each commitOps is one batch record of its new ops, in commit order; none is per op', async () => {
    const name = newName();
    const store = await open(name);
    await store.commitOps(TEST_OPS.slice(0, 2));
    await store.commitOps(TEST_OPS.slice(1, 5)); // TEST_OPS[1] again: not stored twice
    await store.commitOps(TEST_OPS.slice(0, 2)); // nothing new: no record at all
    const batches = await rawRecords(name, 'batches');
    expect(batches.map(([, b]) => readBatch(b))).toStrictEqual([TEST_OPS.slice(0, 2), TEST_OPS.slice(2, 5)]);
    expect(batches.map(([, b]) => (b as { v: unknown }).v)).toEqual([BATCH_FORMAT, BATCH_FORMAT]);
    expect(await rawRecords(name, 'ops')).toEqual([]);
    // The index names each op's batch.
    const index = new Map(await rawRecords(name, 'opIndex'));
    expect(index.size).toBe(5);
    expect(index.get(opId(TEST_OPS[0]!))).toBe(batches[0]![0]);
    expect(index.get(opId(TEST_OPS[4]!))).toBe(batches[1]![0]);
    expect(store.refused).toEqual([]);
  });

  test('a profile in the version-1 layout (one record per op) loads whole, and moves into one batch', async () => {
    const name = newName();
    const junk = { origin: 'peerZ~00000000', seq: 1, body: 'not an op' };
    const v1 = await rawOpen(name, 1, (db) => {
      db.createObjectStore('blocks');
      db.createObjectStore('ops');
    });
    await new Promise<void>((resolve, reject) => {
      const tx = v1.transaction(['blocks', 'ops'], 'readwrite');
      for (const op of TEST_OPS) tx.objectStore('ops').put(op, opId(op));
      tx.objectStore('ops').put(junk, 'peerZ~00000000:1');
      tx.objectStore('blocks').put(testBlock(1).bytes, testBlock(1).hash);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
    v1.close();

    const store = await open(name);
    // Every record comes back, the unparseable one too (the model refuses it with its reason, as before).
    expect(byId(await store.loadOps())).toStrictEqual(byId([...TEST_OPS, junk]));
    expect(await store.getBlock(testBlock(1).hash)).toEqual(testBlock(1).bytes);
    // The ops that parse are now one batch; those that do not (junk, and TEST_OPS' NUL name) stay where they were.
    const parses = TEST_OPS.filter((op) => typeof parseOp(op) !== 'string');
    const stays = TEST_OPS.filter((op) => typeof parseOp(op) === 'string');
    expect(parses.length).toBe(TEST_OPS.length - 1);
    expect((await rawRecords(name, 'batches')).map(([, b]) => byId(readBatch(b) as FsOp[]))).toStrictEqual([byId(parses)]);
    expect(await rawRecords(name, 'ops')).toStrictEqual([...stays.map((op) => [opId(op), op]), ['peerZ~00000000:1', junk]]);
    // Both are known stored: committing them again adds nothing.
    await store.commitOps([...TEST_OPS, junk as unknown as FsOp]);
    expect((await rawRecords(name, 'batches')).length).toBe(1);
    await store.close();
    const again = await open(name);
    expect(byId(await again.loadOps())).toStrictEqual(byId([...TEST_OPS, junk]));
  });

  test('a damaged batch record is refused with its reason and left as it is; the other records load', async () => {
    const name = newName();
    const store = await open(name);
    await store.commitOps(TEST_OPS.slice(0, 2));
    const damaged: unknown[] = [
      { v: BATCH_FORMAT, ops: '[{"origin":"peerA~0000aaaa","se' },
      { v: 2, ops: '[]' },
      { ops: '[]' },
      { v: BATCH_FORMAT, ops: '{"origin":"peerA~0000aaaa"}' },
      { v: BATCH_FORMAT, ops: '[1]' },
      { v: BATCH_FORMAT, ops: [TEST_OPS[5]] },
      'garbage',
    ];
    await rawTx(name, ['batches'], (tx) => {
      for (const d of damaged) tx.objectStore('batches').add(d);
      return () => undefined;
    });
    await store.commitOps(TEST_OPS.slice(2));
    expect(byId(await store.loadOps())).toStrictEqual(byId(TEST_OPS));
    expect(store.refused).toHaveLength(damaged.length);
    const reasons = store.refused.join('\n');
    for (const why of [/not valid JSON/, /format 2, which this version does not read/, /no format version/, /not a list/, /not an object/, /not a string/, /not an ops record/]) {
      expect(reasons).toMatch(why);
    }
    expect(store.refused[0]).toMatch(new RegExp(`^ops record 2 in ${name}: `));
    // Nothing was deleted or rewritten.
    expect((await rawRecords(name, 'batches')).map(([, b]) => b)).toContainEqual(damaged[0]);
    expect((await rawRecords(name, 'batches')).length).toBe(2 + damaged.length);
    // A load without damage says so.
    await rawTx(name, ['batches'], (tx) => {
      for (let k = 2; k < 2 + damaged.length; k++) tx.objectStore('batches').delete(k);
      return () => undefined;
    });
    expect(byId(await store.loadOps())).toStrictEqual(byId(TEST_OPS));
    expect(store.refused).toEqual([]);
  });
});

describe('IdbStore on IndexedDB', () => {
  const opened: IdbStore[] = [];
  const open = async (name = newName()): Promise<IdbStore> => {
    const store = await IdbStore.open(name);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    for (const undo of patches.splice(0).reverse()) undo();
    for (const store of opened.splice(0)) await store.close();
    vi.unstubAllGlobals();
  });

  test('is labelled by its database, named lshapes-store unless told otherwise', async () => {
    const store = await open();
    expect(store.label).toBe(`IndexedDB ${store.name}`);
    const profile = await IdbStore.open();
    opened.push(profile);
    expect(profile.name).toBe('lshapes-store');
  });

  test('blocks commit relaxed, ops strict', async () => {
    const seen: { stores: unknown; durability: unknown }[] = [];
    patch(IDBDatabase.prototype, 'transaction', (original) =>
      function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
        const [stores, mode, options] = args;
        if (mode === 'readwrite') seen.push({ stores, durability: options?.durability });
        return original.apply(this, args);
      } as IDBDatabase['transaction'],
    );
    const store = await open();
    await store.putBlocks([testBlock(1)]);
    await store.deleteBlocks([testBlock(1).hash]);
    await store.commitOps(TEST_OPS);
    expect(seen).toEqual([
      { stores: ['blocks'], durability: 'relaxed' },
      { stores: ['blocks'], durability: 'relaxed' },
      { stores: ['batches', 'opIndex'], durability: 'strict' },
    ]);
  });

  test('a commit whose transaction aborts mid-way stores none of its ops', async () => {
    const store = await open();
    await store.commitOps(TEST_OPS.slice(0, 1));
    // The crash: the transaction aborts after the call's second op was indexed (its batch added).
    faultOnPut('opIndex', (n, os, put) => {
      const request = put();
      if (n === 2) os.transaction.abort();
      return request;
    });
    await expect(store.commitOps(TEST_OPS.slice(1, 4))).rejects.toThrow();
    expect(await store.loadOps()).toStrictEqual(TEST_OPS.slice(0, 1));
  });

  test('a commit that throws mid-way (after some puts) stores none of its ops', async () => {
    const store = await open();
    faultOnPut('opIndex', (n, _os, put) => {
      if (n === 3) throw new TypeError('simulated failure inside the transaction');
      return put();
    });
    await expect(store.commitOps(TEST_OPS.slice(0, 4))).rejects.toThrow(/simulated failure/);
    expect(await store.loadOps()).toEqual([]);
  });

  test('QuotaExceededError from a put is StoreFullError, and none of the call’s blocks stay', async () => {
    const store = await open();
    const kept = testBlock(1);
    await store.putBlocks([kept]);
    faultOnPut('blocks', (n, _os, put) => {
      if (n === 2) throw new DOMException('quota', 'QuotaExceededError');
      return put();
    });
    const failed = store.putBlocks([testBlock(2), testBlock(3)]);
    await expect(failed).rejects.toBeInstanceOf(StoreFullError);
    await expect(failed).rejects.toThrow(/QuotaExceededError/);
    expect(await store.listBlocks()).toEqual([kept.hash]);
  });

  test('QuotaExceededError as the transaction’s abort (how Chrome reports it) is StoreFullError too', async () => {
    const store = await open();
    faultOnPut('blocks', (n, os, put) => {
      const request = put();
      if (n === 2) abortWith(os.transaction, 'QuotaExceededError');
      return request;
    });
    await expect(store.putBlocks([testBlock(2), testBlock(3)])).rejects.toBeInstanceOf(StoreFullError);
    expect(await store.listBlocks()).toEqual([]);
  });

  test('QuotaExceededError while committing ops is StoreFullError, nothing committed', async () => {
    const store = await open();
    faultOnPut('opIndex', (n, os, put) => {
      const request = put();
      if (n === 3) abortWith(os.transaction, 'QuotaExceededError');
      return request;
    });
    await expect(store.commitOps(TEST_OPS)).rejects.toBeInstanceOf(StoreFullError);
    expect(await store.loadOps()).toEqual([]);
  });

  test('a block sliced from a bigger buffer is stored without the rest of that buffer', async () => {
    const store = await open();
    const big = new Uint8Array(64 * 1024);
    const block = { ...testBlock(1, 100) };
    big.set(block.bytes, 500);
    await store.putBlocks([{ hash: block.hash, bytes: big.subarray(500, 600) }]);
    const got = await store.getBlock(block.hash);
    expect(got?.buffer.byteLength).toBe(100);
  });

  test('reads a block stored as an ArrayBuffer', async () => {
    const name = newName();
    const store = await open(name);
    const a = testBlock(1);
    const raw = await rawOpen(name);
    await new Promise<void>((resolve, reject) => {
      const tx = raw.transaction('blocks', 'readwrite');
      tx.objectStore('blocks').put(a.bytes.slice().buffer, a.hash);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
    raw.close();
    const got = await store.getBlock(a.hash);
    expect(got).toBeInstanceOf(Uint8Array);
    expect(got).toEqual(a.bytes);
  });

  test('estimate asks navigator.storage when there is one', async () => {
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ usage: 1234, quota: 99_999 }) } });
    const store = await open();
    expect(await store.estimate()).toEqual({ usage: 1234, quota: 99_999 });
  });

  test('without navigator.storage, estimate sums the blocks and leaves the quota unknown', async () => {
    vi.stubGlobal('navigator', {});
    const store = await open();
    await store.putBlocks([testBlock(1, 300), testBlock(2, 700)]);
    expect(await store.estimate()).toEqual({ usage: 1000, quota: Infinity });
  });
});
