// Tabs of one profile are played by several openProfileStore calls sharing one fake Web Locks
// manager (and fake-indexeddb as the profile's IndexedDB).
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { TEST_OPS } from '../../servers/stockholder/store-conformance.ts';
import { IdbStore } from './store-idb.ts';
import { OTHER_TAB_LABEL, openProfileStore, type LockRequester, type ProfileStore } from './store-owner.ts';

/** Exclusive Web Locks in miniature: ifAvailable, a FIFO queue, abort of a queued request. */
class FakeLocks implements LockRequester {
  private readonly held = new Set<string>();
  private readonly queues = new Map<string, (() => void)[]>();

  async request(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => unknown): Promise<unknown> {
    if (this.held.has(name)) {
      if (options.ifAvailable) return callback(null);
      await new Promise<void>((resolve, reject) => {
        const queue = this.queues.get(name) ?? [];
        this.queues.set(name, queue);
        queue.push(resolve);
        options.signal?.addEventListener('abort', () => {
          queue.splice(queue.indexOf(resolve), 1);
          reject(new DOMException('request aborted', 'AbortError'));
        });
      });
    }
    this.held.add(name); // (a handed-over lock is still held: no one can slip in between)
    try {
      return await callback({ name, mode: 'exclusive' });
    } finally {
      const next = this.queues.get(name)?.shift();
      if (next) next();
      else this.held.delete(name);
    }
  }
}

let dbs = 0;
const tabs: ProfileStore[] = [];
async function openTab(locks: LockRequester | null, dbName: string): Promise<ProfileStore> {
  const tab = await openProfileStore({ locks, dbName });
  tabs.push(tab);
  return tab;
}
afterEach(async () => {
  for (const tab of tabs.splice(0)) await tab.release();
  vi.unstubAllGlobals();
});

/** Whether a promise has settled once everything already queued has run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setTimeout(resolve, 0));
  return done;
}

describe('openProfileStore', () => {
  test('of two tabs one owns the IndexedDB store; the other runs on memory until it closes', async () => {
    const locks = new FakeLocks();
    const dbName = `owner-test-${++dbs}`;
    const first = await openTab(locks, dbName);
    const second = await openTab(locks, dbName);

    expect(first.owner).toBe(true);
    expect(first.store).toBeInstanceOf(IdbStore);
    expect(first.store.durable).toBe(true);
    if (second.owner) throw new Error('two owners');
    expect(second.reason).toBe('another-tab');
    expect(second.store.label).toBe(OTHER_TAB_LABEL);
    expect(second.store.durable).toBe(false);
    expect(await settled(second.takeover)).toBe(false);

    await first.store.commitOps(TEST_OPS);
    await first.release(); // the owner tab closes

    const taken = await second.takeover;
    expect(taken.durable).toBe(true);
    expect(await taken.loadOps()).toHaveLength(TEST_OPS.length);

    // The lock passed on for good: a tab opened now is the one waiting.
    const third = await openTab(locks, dbName);
    expect(third.owner).toBe(false);
  });

  test('a waiting tab that goes away stops waiting, so the lock goes to the next tab', async () => {
    const locks = new FakeLocks();
    const dbName = `owner-test-${++dbs}`;
    const first = await openTab(locks, dbName);
    const second = await openTab(locks, dbName);
    await second.release();
    await first.release();

    const third = await openTab(locks, dbName);
    expect(third.owner).toBe(true);
    if (!second.owner) expect(await settled(second.takeover)).toBe(false);
  });

  test('a released owner lets the next tab own the store at once', async () => {
    const locks = new FakeLocks();
    const dbName = `owner-test-${++dbs}`;
    const first = await openTab(locks, dbName);
    await first.release();
    const second = await openTab(locks, dbName);
    expect(second.owner).toBe(true);
  });

  test('without Web Locks (insecure origin) tabs share the store append-only: both persist, neither deletes', async () => {
    const dbName = `owner-test-${++dbs}`;
    const a = await openTab(null, dbName);
    const b = await openTab(null, dbName);
    for (const tab of [a, b]) {
      if (tab.owner) throw new Error('owned without a lock');
      expect(tab.reason).toBe('no-web-locks');
      expect(tab.store.durable).toBe(true);
      expect(tab.store.label).toMatch(/shared by this profile's tabs/);
      expect(await settled(tab.takeover)).toBe(false);
    }
    const block = { hash: 'ab'.repeat(32), bytes: new Uint8Array([1, 2, 3]) };
    await a.store.putBlocks([block]);
    // B's garbage collection must not delete a block A may be about to name in an op.
    await b.store.deleteBlocks([block.hash]);
    expect(await a.store.getBlock(block.hash)).toEqual(block.bytes);
  });

  test('uses navigator.locks by default (in a worker too: no window needed)', async () => {
    vi.stubGlobal('navigator', { locks: new FakeLocks() });
    const first = await openProfileStore({ dbName: `owner-test-${++dbs}` });
    tabs.push(first);
    const second = await openProfileStore({ dbName: `owner-test-${dbs}` });
    tabs.push(second);
    expect(first.owner).toBe(true);
    expect(second.owner).toBe(false);
  });

  test('with no navigator.locks at all it falls back to memory', async () => {
    vi.stubGlobal('navigator', {});
    const tab = await openProfileStore({ dbName: `owner-test-${++dbs}` });
    tabs.push(tab);
    expect(tab.owner).toBe(false);
    expect(tab.store.label).toMatch(/shared by this profile's tabs/);
  });
});
