import { describe, expect, test } from 'vitest';
import { MemoryStore, StoreFullError } from './store.ts';
import { describeBlockStore, testBlock } from './store-conformance.ts';

describeBlockStore('MemoryStore', async () => new MemoryStore(), { durable: false });

describe('MemoryStore quota', () => {
  test('a put past the quota throws StoreFullError and stores none of its blocks', async () => {
    const store = new MemoryStore({ quota: 1000 });
    const kept = testBlock(1, 600);
    await store.putBlocks([kept]);

    const [small, big] = [testBlock(2, 100), testBlock(3, 400)];
    const failed = store.putBlocks([small, big]);
    await expect(failed).rejects.toBeInstanceOf(StoreFullError);
    await expect(failed).rejects.toThrow(/quota of 1000/);
    expect(await store.listBlocks()).toEqual([kept.hash]);
    expect(await store.estimate()).toEqual({ usage: 600, quota: 1000 });
  });

  test('re-putting a stored block does not count against the quota', async () => {
    const store = new MemoryStore({ quota: 1000 });
    const a = testBlock(1, 900);
    await store.putBlocks([a]);
    await store.putBlocks([a]);
    expect(await store.listBlocks()).toEqual([a.hash]);
  });

  test('the label names what the store is', () => {
    expect(new MemoryStore().label).toBe('memory');
    expect(new MemoryStore({ label: 'memory (waiting)' }).label).toBe('memory (waiting)');
  });

  test('a block put as a view of a bigger buffer (a Node Buffer from a pool) is stored as its own bytes', async () => {
    const store = new MemoryStore({ quota: 1000 });
    const b = testBlock(4, 100);
    const pool = Buffer.alloc(8192);
    pool.set(b.bytes, 50);
    await store.putBlocks([{ hash: b.hash, bytes: pool.subarray(50, 150) }]);
    pool.fill(0); // the pool is reused by whoever owns it
    const got = (await store.getBlock(b.hash))!;
    expect(got).toEqual(b.bytes);
    expect(got.buffer.byteLength).toBe(100); // not a view pinning the pool
  });
});
