// IdbStore on fake-indexeddb (an in-memory IndexedDB for Node, installed as the globals).
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { StoreFullError } from '../../servers/stockholder/store.ts';
import { describeBlockStore, TEST_OPS, testBlock } from '../../servers/stockholder/store-conformance.ts';
import { IdbStore } from './store-idb.ts';

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
      { stores: 'blocks', durability: 'relaxed' },
      { stores: 'blocks', durability: 'relaxed' },
      { stores: 'ops', durability: 'strict' },
    ]);
  });

  test('a commit whose transaction aborts mid-way stores none of its ops', async () => {
    const store = await open();
    await store.commitOps(TEST_OPS.slice(0, 1));
    // The crash: the transaction aborts after the call's second op was put.
    faultOnPut('ops', (n, os, put) => {
      const request = put();
      if (n === 2) os.transaction.abort();
      return request;
    });
    await expect(store.commitOps(TEST_OPS.slice(1, 4))).rejects.toThrow();
    expect(await store.loadOps()).toStrictEqual(TEST_OPS.slice(0, 1));
  });

  test('a commit that throws mid-way (after some puts) stores none of its ops', async () => {
    const store = await open();
    faultOnPut('ops', (n, _os, put) => {
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
    faultOnPut('ops', (n, os, put) => {
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
    const raw = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(name, 1);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
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
