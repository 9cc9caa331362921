// What every BlockStore must do (store.ts), as a vitest suite each adapter's test file runs:
// describeBlockStore('IdbStore', make, { durable: true }).
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterEach, describe, expect, test } from 'vitest';
import type { BlockStore, StoredBlock } from './store.ts';
import { BLOCK_SIZE, opId, type FsOp, type OpBody } from './types.ts';

/**
 * Makes a store. `make()` starts over on fresh, empty storage; `make(true)` opens another
 * instance over the storage of the last `make()` (the suite closes the earlier one first).
 */
export type MakeStore = (reuse?: boolean) => Promise<BlockStore>;

/** A block of `size` bytes whose content depends on `seed`, with its real SHA-256. */
export function testBlock(seed: number, size = 1000): StoredBlock {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return { hash: bytesToHex(sha256(bytes)), bytes };
}

const A = 'peerA~0000aaaa';
const B = 'peerB~0000bbbb';
const op = (origin: string, seq: number, body: OpBody): FsOp => ({ origin, seq, time: [seq * 2, origin], wall: 1_700_000_000_000 + seq, body });
const [h1, h2, h3] = [1, 2, 3].map((s) => testBlock(s, 10).hash) as [string, string, string];

/** One op of every kind, with nested arrays and objects and names no ASCII-only store would keep. */
export const TEST_OPS: readonly FsOp[] = [
  op(A, 1, { t: 'move', child: `${A}:1`, parent: 'root', meta: { name: 'Résumé — 履歴書 📄.txt', kind: 'file' } }),
  op(A, 2, { t: 'write', node: `${A}:1`, manifest: { size: 2 * BLOCK_SIZE + 5, blocks: [h1, h2, h3] }, supersedes: [] }),
  op(B, 1, { t: 'move', child: `${A}:1`, parent: 'trash', meta: { name: 'e\u0301 \u0000 "quoted"', kind: 'file' }, seen: { [A]: 2, [B]: 0 } }),
  op(B, 2, { t: 'purge', nodes: [`${A}:1`, 'x'], seen: { [A]: 2, [B]: 1 } }),
  op(A, 3, { t: 'write', node: `${A}:1`, manifest: { size: 0, blocks: [] }, supersedes: [`${A}:2`, `${B}:7`] }),
  op(B, 3, { t: 'drop', node: `${A}:1`, version: `${A}:2` }),
];

const byId = (ops: readonly FsOp[]): FsOp[] => [...ops].sort((x, y) => opId(x).localeCompare(opId(y)));
const sorted = (hashes: readonly string[]): string[] => [...hashes].sort();

export function describeBlockStore(name: string, make: MakeStore, opts: { durable: boolean }): void {
  describe(`BlockStore conformance: ${name}`, () => {
    const open = new Set<BlockStore>();
    const fresh = async (reuse = false): Promise<BlockStore> => {
      const store = await make(reuse);
      open.add(store);
      return store;
    };
    const close = async (store: BlockStore): Promise<void> => {
      open.delete(store);
      await store.close();
    };
    afterEach(async () => {
      for (const store of [...open]) await close(store);
    });

    test('says what it is', async () => {
      const store = await fresh();
      expect(store.label.length).toBeGreaterThan(0);
      expect(store.durable).toBe(opts.durable);
    });

    test('an empty store has no blocks and no ops', async () => {
      const store = await fresh();
      expect(await store.listBlocks()).toEqual([]);
      expect(await store.loadOps()).toEqual([]);
      expect(await store.hasBlock(testBlock(1).hash)).toBe(false);
      expect(await store.getBlock(testBlock(1).hash)).toBeUndefined();
    });

    test('put, get, has, list and delete blocks', async () => {
      const store = await fresh();
      const [a, b, c] = [testBlock(1), testBlock(2, 3000), testBlock(3, 1)] as [StoredBlock, StoredBlock, StoredBlock];
      await store.putBlocks([a, b]);
      await store.putBlocks([c]);
      expect(sorted(await store.listBlocks())).toEqual(sorted([a.hash, b.hash, c.hash]));
      expect(await store.hasBlock(b.hash)).toBe(true);
      expect(await store.getBlock(a.hash)).toEqual(a.bytes);
      expect(await store.getBlock(b.hash)).toEqual(b.bytes);
      expect(await store.getBlock(c.hash)).toEqual(c.bytes);

      await store.deleteBlocks([a.hash, testBlock(99).hash]); // deleting an absent block is no error
      expect(await store.hasBlock(a.hash)).toBe(false);
      expect(await store.getBlock(a.hash)).toBeUndefined();
      expect(sorted(await store.listBlocks())).toEqual(sorted([b.hash, c.hash]));
      expect(await store.getBlock(b.hash)).toEqual(b.bytes);
    });

    test('putBlocks is idempotent, within a call and across calls', async () => {
      const store = await fresh();
      const a = testBlock(1);
      const b = testBlock(2);
      await store.putBlocks([a, a, b]);
      await store.putBlocks([b, a]);
      expect(sorted(await store.listBlocks())).toEqual(sorted([a.hash, b.hash]));
      expect(await store.getBlock(a.hash)).toEqual(a.bytes);
      await store.putBlocks([]);
      expect((await store.listBlocks()).length).toBe(2);
    });

    test('stores a copy: changing the caller’s bytes after put changes nothing', async () => {
      const store = await fresh();
      const a = testBlock(1);
      const original = a.bytes.slice();
      await store.putBlocks([a]);
      a.bytes.fill(0);
      expect(await store.getBlock(a.hash)).toEqual(original);
    });

    test('a block that is a view into a bigger buffer is stored as just its bytes', async () => {
      const store = await fresh();
      const big = new Uint8Array(5000).map((_, i) => i & 0xff);
      const view = big.subarray(1000, 1700);
      const hash = bytesToHex(sha256(view));
      await store.putBlocks([{ hash, bytes: view }]);
      const got = await store.getBlock(hash);
      expect(got?.byteLength).toBe(700);
      expect(got).toEqual(big.slice(1000, 1700));
    });

    test('a whole 1 MiB block round-trips', async () => {
      const store = await fresh();
      const a = testBlock(7, BLOCK_SIZE);
      await store.putBlocks([a]);
      const got = await store.getBlock(a.hash);
      // Compared by hash: toEqual walks a MiB element by element for seconds.
      expect(got && bytesToHex(sha256(got))).toBe(a.hash);
      expect(got?.byteLength).toBe(BLOCK_SIZE);
    });

    test('ops round-trip deep-equal: nested manifests, version vectors, unicode names', async () => {
      const store = await fresh();
      await store.commitOps(TEST_OPS.slice(0, 2));
      await store.commitOps(TEST_OPS.slice(2));
      await store.commitOps([]);
      expect(byId(await store.loadOps())).toStrictEqual(byId(TEST_OPS));
    });

    test('commitOps is idempotent: every op loads once, with the content first committed', async () => {
      const store = await fresh();
      const [o1, o2, o3] = TEST_OPS as [FsOp, FsOp, FsOp];
      await store.commitOps([o1, o2, o1]);
      await store.commitOps([o2, o3]);
      await store.commitOps([{ ...o1, wall: 1, body: { t: 'drop', node: 'x', version: 'y' } }]);
      const loaded = await store.loadOps();
      expect(loaded.length).toBe(3);
      expect(byId(loaded)).toStrictEqual(byId([o1, o2, o3]));
    });

    test('estimate counts at least the bytes stored', async () => {
      const store = await fresh();
      await store.putBlocks([testBlock(1, 4000), testBlock(2, 4000)]);
      const { usage, quota } = await store.estimate();
      expect(usage).toBeGreaterThanOrEqual(8000);
      expect(quota).toBeGreaterThanOrEqual(usage);
    });

    if (opts.durable) {
      test('a reopened store has the blocks and ops; deleted blocks stay deleted', async () => {
        const first = await fresh();
        const [a, b] = [testBlock(1), testBlock(2, 2500)];
        await first.putBlocks([a, b]);
        await first.deleteBlocks([a.hash]);
        await first.commitOps(TEST_OPS);
        await close(first);

        const second = await fresh(true);
        expect(await second.listBlocks()).toEqual([b.hash]);
        expect(await second.hasBlock(a.hash)).toBe(false);
        expect(await second.getBlock(b.hash)).toEqual(b.bytes);
        expect(byId(await second.loadOps())).toStrictEqual(byId(TEST_OPS));
      });

      test('a reopened store keeps committing, and still ignores ops it already has', async () => {
        const first = await fresh();
        await first.commitOps(TEST_OPS.slice(0, 3));
        await close(first);

        const second = await fresh(true);
        await second.commitOps(TEST_OPS); // the first three again, and three new
        await close(second);

        const third = await fresh(true);
        const loaded = await third.loadOps();
        expect(loaded.length).toBe(TEST_OPS.length);
        expect(byId(loaded)).toStrictEqual(byId(TEST_OPS));
      });
    }
  });
}
