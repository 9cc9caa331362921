import fsp, { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { StoreFullError } from '../../servers/stockholder/store.ts';
import { describeBlockStore, TEST_OPS, testBlock } from '../../servers/stockholder/store-conformance.ts';
import { DiskStore, TEMP_SUFFIX } from './store-disk.ts';

const root = await mkdtemp(join(tmpdir(), 'lshapes-store-disk-'));
afterAll(() => rm(root, { recursive: true, force: true }));

let dirs = 0;
const newDir = (): string => join(root, `store-${++dirs}`);

let last = '';
describeBlockStore(
  'DiskStore',
  async (reuse) => {
    if (!reuse) last = newDir();
    return DiskStore.open(last);
  },
  { durable: true },
);

describe('DiskStore on disk', () => {
  const opened: DiskStore[] = [];
  const openStore = async (dir: string): Promise<DiskStore> => {
    const store = await DiskStore.open(dir);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close().catch(() => {});
  });

  test('lays blocks out as blocks/<2 hex>/<hash>', async () => {
    const dir = newDir();
    const store = await openStore(dir);
    const a = testBlock(1);
    await store.putBlocks([a]);
    expect(await readFile(join(dir, 'blocks', a.hash.slice(0, 2), a.hash))).toEqual(Buffer.from(a.bytes));
  });

  test('a torn last record of ops.log is ignored, cut away, and the next commit still loads', async () => {
    const dir = newDir();
    const first = await openStore(dir);
    await first.commitOps(TEST_OPS.slice(0, 2));
    await first.commitOps(TEST_OPS.slice(2, 4));
    await first.close();
    const log = join(dir, 'ops.log');
    const whole = (await stat(log)).size;
    // A crash mid-append of the next commit: a header announcing 500 bytes, and 3 of them.
    const header = Buffer.alloc(8);
    header.writeUInt32BE(500, 0);
    await appendFile(log, Buffer.concat([header, Buffer.from([1, 2, 3])]));

    const second = await openStore(dir);
    expect(second.tornTailBytes).toBe(11);
    expect((await stat(log)).size).toBe(whole);
    expect(await second.loadOps()).toStrictEqual(TEST_OPS.slice(0, 4));
    await second.commitOps(TEST_OPS.slice(4));
    await second.close();

    const third = await openStore(dir);
    expect(third.tornTailBytes).toBe(0);
    expect(await third.loadOps()).toStrictEqual(TEST_OPS);
  });

  test('a commit is all or nothing: a record cut anywhere loses exactly that call', async () => {
    const dir = newDir();
    const first = await openStore(dir);
    await first.commitOps(TEST_OPS.slice(0, 1));
    await first.close();
    const log = join(dir, 'ops.log');
    const oneCall = (await stat(log)).size;

    const again = await openStore(dir);
    await again.commitOps(TEST_OPS.slice(1)); // five ops in one record
    await again.close();
    const twoCalls = (await stat(log)).size;

    // Cut the second record at every length short of whole: never a partial call.
    for (const cut of [oneCall + 1, oneCall + 8, oneCall + 9, Math.floor((oneCall + twoCalls) / 2), twoCalls - 1]) {
      const copy = newDir();
      await mkdir(copy);
      await writeFile(join(copy, 'ops.log'), (await readFile(log)).subarray(0, cut));
      const store = await openStore(copy);
      expect(await store.loadOps()).toStrictEqual(TEST_OPS.slice(0, 1));
    }
  });

  test('a record whose bytes did not land (zeros) is torn, not garbage ops', async () => {
    const dir = newDir();
    const first = await openStore(dir);
    await first.commitOps(TEST_OPS.slice(0, 1));
    await first.close();
    const log = join(dir, 'ops.log');
    const size = (await stat(log)).size;
    const bytes = await readFile(log);
    const length = bytes.readUInt32BE(0);
    // The same record again with its payload zeroed: length right, content missing.
    await appendFile(log, Buffer.concat([bytes.subarray(0, 8), Buffer.alloc(length)]));

    const second = await openStore(dir);
    expect(await second.loadOps()).toStrictEqual(TEST_OPS.slice(0, 1));
    expect((await stat(log)).size).toBe(size);
  });

  test('a temp block file left by a crash is not a block, and open removes it', async () => {
    const dir = newDir();
    const first = await openStore(dir);
    const a = testBlock(1);
    const b = testBlock(2);
    await first.putBlocks([a]);
    await first.close();
    const sub = join(dir, 'blocks', b.hash.slice(0, 2));
    await mkdir(sub, { recursive: true });
    const temp = join(sub, `${b.hash}.1234abcd${TEMP_SUFFIX}`);
    await writeFile(temp, b.bytes.subarray(0, 10)); // half-written

    const second = await openStore(dir);
    expect(await second.listBlocks()).toEqual([a.hash]);
    expect(await second.hasBlock(b.hash)).toBe(false);
    expect(await readdir(sub)).not.toContain(`${b.hash}.1234abcd${TEMP_SUFFIX}`);
    await second.putBlocks([b]);
    expect(await second.getBlock(b.hash)).toEqual(b.bytes);
  });

  test('ENOSPC while putting blocks is StoreFullError, and none of that call’s blocks stay', async () => {
    const dir = newDir();
    const store = await openStore(dir);
    const kept = testBlock(1);
    await store.putBlocks([kept]);
    const [a, b] = [testBlock(2), testBlock(3)];
    // Full disk at the second block: opening its temp file fails. (Patching the builtin and
    // syncing its ESM exports is how a named `open` import sees the fault.)
    const realOpen = fsp.open;
    fsp.open = (async (path: Parameters<typeof realOpen>[0], ...rest: unknown[]) => {
      if (String(path).includes(b.hash)) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      return (realOpen as (...args: unknown[]) => unknown)(path, ...rest);
    }) as typeof realOpen;
    syncBuiltinESMExports();
    try {
      const failed = store.putBlocks([a, b]);
      await expect(failed).rejects.toBeInstanceOf(StoreFullError);
      await expect(failed).rejects.toThrow(/ENOSPC/);
    } finally {
      fsp.open = realOpen;
      syncBuiltinESMExports();
    }
    expect(await store.listBlocks()).toEqual([kept.hash]);
    expect(await readdir(join(dir, 'blocks', a.hash.slice(0, 2)))).not.toContain(a.hash);
  });

  test('EDQUOT while committing is StoreFullError, nothing of the call is logged, and later commits load', async () => {
    const dir = newDir();
    const store = await openStore(dir);
    await store.commitOps(TEST_OPS.slice(0, 1));
    const log = join(dir, 'ops.log');
    const size = (await stat(log)).size;
    // The append writes part of the record, then the quota hits.
    const handle = (store as unknown as { log: { appendFile(data: Uint8Array): Promise<void> } }).log;
    const realAppend = handle.appendFile.bind(handle);
    handle.appendFile = async (data) => {
      await realAppend(data.subarray(0, 5));
      throw Object.assign(new Error('disk quota exceeded'), { code: 'EDQUOT' });
    };
    await expect(store.commitOps(TEST_OPS.slice(1, 3))).rejects.toBeInstanceOf(StoreFullError);
    expect((await stat(log)).size).toBe(size);
    handle.appendFile = realAppend;

    await store.commitOps(TEST_OPS.slice(3));
    await store.close();
    const reopened = await openStore(dir);
    expect(reopened.tornTailBytes).toBe(0);
    expect(await reopened.loadOps()).toStrictEqual([TEST_OPS[0], ...TEST_OPS.slice(3)]);
  });

  test('a commit syncs the block directories written since the last one, before its ops', async () => {
    const dir = newDir();
    const store = await openStore(dir);
    const a = testBlock(1);
    await store.putBlocks([a]);
    const pending = (store as unknown as { unsyncedDirs: Set<string> }).unsyncedDirs;
    expect([...pending]).toContain(join(dir, 'blocks', a.hash.slice(0, 2)));
    await store.commitOps(TEST_OPS.slice(0, 1));
    expect(pending.size).toBe(0);
  });

  test('hashes that are not 64 hex never become paths', async () => {
    const store = await openStore(newDir());
    await expect(store.putBlocks([{ hash: '../../escape', bytes: new Uint8Array(1) }])).rejects.toThrow(/not a block hash/);
    expect(await store.getBlock('../ops.log')).toBeUndefined();
    expect(await store.listBlocks()).toEqual([]);
  });

  test('estimate reports the blocks and log as usage, and the free space as quota', async () => {
    const dir = newDir();
    const store = await openStore(dir);
    await store.putBlocks([testBlock(1, 5000)]);
    await store.commitOps(TEST_OPS);
    const { usage, quota } = await store.estimate();
    expect(usage).toBe(5000 + (await stat(join(dir, 'ops.log'))).size);
    expect(Number.isFinite(quota)).toBe(true);
    expect(quota).toBeGreaterThan(usage);
  });
});
