// The Stockholder on a simulated cluster: real kernels, real servers, virtual network and time,
// memory stores that outlive crashes (like IndexedDB). Replication, reading from anywhere,
// surviving the adding peer, fsync's two-peer promise, and every kind of bad input.
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { Simulation, type SimPeer } from '../../host/sim/sim.ts';
import { filesOf } from '../../host/common/boot.ts';
import type { Envelope } from '../../kernel/types.ts';
import { Namespace, Vfs } from '../../kernel/wasi/vfs.ts';
import { MemoryStore, StoreFullError, type BlockStore, type StoredBlock } from './store.ts';
import { StockholderServer, type ByteSource } from './stockholder.ts';
import { BLOCK_SIZE, ROOT, type FsOp, type Hash } from './types.ts';

/** Deterministic bytes: `n` bytes of a simple generator seeded by `seed`. */
function bytesOf(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function source(bytes: Uint8Array, failAt = Infinity): ByteSource {
  return {
    size: bytes.length,
    read: async (offset, length) => {
      if (offset >= failAt) throw new Error('NotFoundError: A requested file or directory could not be found');
      return bytes.slice(offset, offset + length);
    },
  };
}

async function cluster(n: number, opts: { store?: (i: number) => BlockStore } = {}) {
  const sim = new Simulation({ seed: 'stockholder', latencyMs: 1, jitterMs: 0, ...(opts.store ? { store: (p) => opts.store!(p.index) } : {}) });
  const peers: SimPeer[] = [];
  for (let i = 0; i < n; i++) peers.push(await sim.addPeer());
  expect(await sim.runUntil(() => sim.converged(), 20_000)).toBe(true);
  await sim.run(500);
  return { sim, peers };
}

const sh = (p: SimPeer) => filesOf(p.kernel).stockholder;
const fsOf = (p: SimPeer) => filesOf(p.kernel).fs;
const vfsOf = (p: SimPeer) => new Vfs(new Namespace({ '/': fsOf(p) }));

/** Reads a whole file through the FileSystem interface while the simulation runs. */
async function readAll(sim: Simulation, p: SimPeer, path: string): Promise<Uint8Array> {
  let out: Uint8Array | undefined;
  let error: unknown;
  vfsOf(p)
    .readFile(path)
    .then((b) => (out = b), (e) => (error = e));
  await sim.runUntil(() => out !== undefined || error !== undefined, 60_000, 10);
  if (error) throw error;
  if (!out) throw new Error(`reading ${path} did not finish`);
  return out;
}

async function ingest(sim: Simulation, p: SimPeer, name: string, bytes: Uint8Array, failAt?: number) {
  let result: Awaited<ReturnType<StockholderServer['ingest']>> | undefined;
  void sh(p).ingest(ROOT, [{ path: name, source: source(bytes, failAt) }]).then((r) => (result = r));
  await sim.runUntil(() => result !== undefined, 60_000, 10);
  return result!;
}

const fileRow = (p: SimPeer, path: string) => sh(p).snapshot().rows.find((r) => r.path === path && !r.trashed);

describe('Stockholder on a simulated cluster', () => {
  test('a file added on A appears on B and C with the same bytes, on 3 peers, and C still reads it when A is gone', async () => {
    const { sim, peers } = await cluster(3);
    const [a, b, c] = peers as [SimPeer, SimPeer, SimPeer];
    const data = bytesOf(3 * BLOCK_SIZE + 12345);
    expect(await ingest(sim, a, 'photo.raw', data)).toEqual({ added: 1, failed: [] });
    // Read-your-writes: A lists it at once.
    expect(fileRow(a, '/photo.raw')?.size).toBe(data.length);
    expect(await sim.runUntil(() => [a, b, c].every((p) => fileRow(p, '/photo.raw')?.replicas === 3), 30_000)).toBe(true);
    for (const p of [b, c]) expect(sha(await readAll(sim, p, '/photo.raw'))).toBe(sha(data));
    expect(sh(b).stats.blocksIn + sh(c).stats.blocksIn).toBeGreaterThanOrEqual(8);
    sim.crash(a);
    await sim.run(10_000);
    expect(sha(await readAll(sim, c, '/photo.raw'))).toBe(sha(data));
    expect(fileRow(c, '/photo.raw')?.replicas).toBe(2);
  });

  test('a peer that joins late catches up on thousands of ops, answered in bounded pieces', async () => {
    const { sim, peers } = await cluster(1);
    const [a] = peers as [SimPeer];
    let done = false;
    void sh(a)
      .apply((m, wall) => {
        const ops: FsOp[] = [];
        for (let d = 0; d < 25; d++) {
          ops.push(m.mkdir(ROOT, `d${d}`, wall));
          const dir = m.lookup(ROOT, `d${d}`)!.id;
          for (let f = 0; f < 99; f++) ops.push(...m.createFile(dir, `f${f}`, { size: 0, blocks: [] }, wall));
        }
        return ops;
      })
      .then(() => (done = true));
    await sim.runUntil(() => done, 10_000, 1);
    const b = await sim.addPeer();
    expect(await sim.runUntil(() => sh(b).model.entries().length === 25 * 100, 60_000)).toBe(true);
    expect(sh(b).model.versionVector()).toEqual(sh(a).model.versionVector());
    expect(sh(b).stats.opsIn).toBe(25 + 25 * 99 * 2);
  });

  test('each block is fetched once, even while a slow store is still writing the batch it arrived in', async () => {
    const { sim, peers } = await cluster(2, { store: (i) => (i === 1 ? new SlowStore() : new MemoryStore()) });
    const [a, b] = peers as [SimPeer, SimPeer];
    await ingest(sim, a, 'slow.bin', bytesOf(20 * BLOCK_SIZE, 13));
    expect(await sim.runUntil(() => fileRow(b, '/slow.bin')?.local === true, 60_000, 5)).toBe(true);
    expect(sh(b).stats.blocksIn).toBe(20);
    expect(sh(a).stats.blocksOut).toBe(20);
  });

  test('a restarted peer reloads its namespace and blocks from its store', async () => {
    const { sim, peers } = await cluster(2);
    const [a, b] = peers as [SimPeer, SimPeer];
    await ingest(sim, a, 'notes.txt', new TextEncoder().encode('remember the milk\n'));
    await sim.runUntil(() => fileRow(b, '/notes.txt')?.replicas === 2, 10_000);
    const b2 = await sim.restart(b);
    await sim.run(3000);
    expect(fileRow(b2, '/notes.txt')?.local).toBe(true);
    expect(new TextDecoder().decode(await readAll(sim, b2, '/notes.txt'))).toBe('remember the milk\n');
  });

  test('a process write: read-your-writes at once, fsync returns once two peers hold the version', async () => {
    const { sim, peers } = await cluster(3);
    const [a, b] = peers as [SimPeer, SimPeer];
    const fs = fsOf(a);
    let id: string | undefined;
    void fs.createFile(ROOT, 'log.txt').then((x) => (id = x));
    await sim.runUntil(() => id !== undefined, 1000, 1);
    let wrote = false;
    void fs.write(id!, 0, new TextEncoder().encode('line 1\n')).then(() => (wrote = true));
    await sim.runUntil(() => wrote, 1000, 1);
    expect(new TextDecoder().decode(await readAll(sim, a, '/log.txt'))).toBe('line 1\n');
    let synced = false;
    void Promise.resolve(fs.sync(id!)).then(() => (synced = true));
    await sim.runUntil(() => synced, 20_000, 1);
    expect(synced).toBe(true);
    // At the moment sync returned, another peer advertised holding the version.
    const version = sh(a).model.get(id!)!.version!;
    expect(sh(a).replicas(version)).toBeGreaterThanOrEqual(2);
    await sim.run(2000);
    expect(new TextDecoder().decode(await readAll(sim, b, '/log.txt'))).toBe('line 1\n');
  });

  test('a file deleted while open (the temp-file idiom) stays usable through its fd and never comes back', async () => {
    const { sim, peers } = await cluster(2);
    const [a, b] = peers as [SimPeer, SimPeer];
    const fs = fsOf(a);
    const step = async <T>(p: Promise<T> | T): Promise<T> => {
      let out: { v: T } | undefined;
      void Promise.resolve(p).then((v) => (out = { v }));
      await sim.runUntil(() => out !== undefined, 5000, 1);
      return out!.v;
    };
    const id = await step(fs.createFile(ROOT, 'scratch.tmp'));
    fs.retain(id);
    await step(fs.write(id, 0, new TextEncoder().encode('scratch data')));
    await step(fs.unlink(ROOT, 'scratch.tmp'));
    await step(fs.write(id, 12, new TextEncoder().encode(', more')));
    expect(new TextDecoder().decode(await step(fs.read(id, 0, 100)))).toBe('scratch data, more');
    fs.release(id);
    await sim.run(5000);
    for (const p of [a, b]) {
      expect(sh(p).snapshot().rows.filter((r) => !r.trashed)).toEqual([]);
      expect(sh(p).model.heads(id)).toHaveLength(1); // only the empty create: nothing committed
    }
  });

  test('concurrent writes of one file on two sides of a partition keep both: a conflict copy on every peer', async () => {
    const { sim, peers } = await cluster(2);
    const [a, b] = peers as [SimPeer, SimPeer];
    await ingest(sim, a, 'plan.txt', new TextEncoder().encode('v0'));
    await sim.runUntil(() => fileRow(b, '/plan.txt')?.replicas === 2, 10_000);
    sim.partition([a], [b]);
    await ingest(sim, a, 'plan.txt', new TextEncoder().encode('from A'));
    await ingest(sim, b, 'plan.txt', new TextEncoder().encode('from B!'));
    sim.heal();
    expect(await sim.runUntil(() => [a, b].every((p) => sh(p).snapshot().rows.filter((r) => !r.trashed).length === 2), 60_000)).toBe(true);
    const names = (p: SimPeer) => sh(p).snapshot().rows.map((r) => r.name).sort();
    expect(names(a)).toEqual(names(b));
    expect(names(a).filter((n) => n.includes('.sync-conflict-'))).toHaveLength(1);
    const texts = await Promise.all(names(a).map(async (n) => new TextDecoder().decode(await readAll(sim, b, `/${n}`))));
    expect(texts.sort()).toEqual(['from A', 'from B!']);
  });

  test('beyond 8 peers a file is kept on 3; when a holder leaves, another copies it until 3 hold it again', async () => {
    const { sim, peers } = await cluster(10);
    const data = bytesOf(2 * BLOCK_SIZE + 1, 11);
    await ingest(sim, peers[0]!, 'shared.bin', data);
    const holders = () => sim.live().filter((p) => fileRow(p, '/shared.bin')?.local === true);
    expect(await sim.runUntil(() => holders().length >= 3, 60_000)).toBe(true);
    await sim.run(5000);
    // The factor, not everyone: the adding peer plus the (up to) 3 chosen ones.
    expect(holders().length).toBeLessThanOrEqual(4);
    expect(fileRow(peers[5]!, '/shared.bin')?.replicas).toBe(holders().length);
    const before = holders();
    const gone = before.find((p) => p !== peers[0])!;
    sim.crash(gone);
    // The next peer in rank for this file copies it: a holder that did not hold it before.
    const newcomers = () => holders().filter((p) => !before.includes(p));
    expect(await sim.runUntil(() => newcomers().length === 1 && holders().length >= 3, 120_000)).toBe(true);
    const newcomer = newcomers()[0]!;
    expect(sha(await readAll(sim, newcomer, '/shared.bin'))).toBe(sha(data));
  }, 60_000);

  test('a block whose bytes do not match its hash is dropped and fetched from another holder', async () => {
    const { sim, peers } = await cluster(2, { store: (i) => (i === 1 ? new LyingStore() : new MemoryStore()) });
    const [a, b] = peers as [SimPeer, SimPeer];
    const data = bytesOf(2 * BLOCK_SIZE, 7);
    await ingest(sim, a, 'x.bin', data);
    await sim.runUntil(() => fileRow(b, '/x.bin')?.local === true, 20_000);
    // B's store now corrupts what it serves. A third peer must not accept B's bad bytes.
    (await storeOf(b)).lie = true;
    const c = await sim.addPeer();
    await sim.runUntil(() => fileRow(c, '/x.bin')?.local === true, 60_000);
    expect(sha(await readAll(sim, c, '/x.bin'))).toBe(sha(data));
    expect(sh(c).stats.badBlocks).toBeGreaterThan(0);
    expect(sh(c).snapshot().notices.some((n) => n.text.includes('failed its hash check'))).toBe(true);
  });

  test('a peer leaving mid-transfer: the rest comes from another holder, nothing re-fetched', async () => {
    const { sim, peers } = await cluster(2);
    const [a, b] = peers as [SimPeer, SimPeer];
    const data = bytesOf(24 * BLOCK_SIZE, 3);
    await ingest(sim, a, 'big.bin', data);
    await sim.runUntil(() => fileRow(b, '/big.bin')?.local === true, 60_000);
    const c = await sim.addPeer();
    await sim.runUntil(() => sh(c).stats.blocksIn >= 4, 60_000, 1);
    const partial = sh(c).stats.blocksIn;
    expect(partial).toBeLessThan(24);
    sim.crash(a);
    expect(await sim.runUntil(() => fileRow(c, '/big.bin')?.local === true, 60_000)).toBe(true);
    expect(sh(c).stats.blocksIn).toBe(24);
    expect(sha(await readAll(sim, c, '/big.bin'))).toBe(sha(data));
  });

  test('quota exceeded while replicating: paused with a notice, nothing corrupted, resumes with space', async () => {
    const small = new MemoryStore({ quota: BLOCK_SIZE });
    const { sim, peers } = await cluster(2, { store: (i) => (i === 1 ? small : new MemoryStore()) });
    const [a, b] = peers as [SimPeer, SimPeer];
    await ingest(sim, a, 'big.bin', bytesOf(4 * BLOCK_SIZE, 5));
    await sim.run(5000);
    const row = fileRow(b, '/big.bin');
    expect(row?.local).toBe(false);
    expect(row?.progress?.paused).toBe('storage full');
    expect(sh(b).snapshot().notices.some((n) => n.text.startsWith('storage full'))).toBe(true);
    small.quota = Infinity;
    expect(await sim.runUntil(() => fileRow(b, '/big.bin')?.local === true, 120_000)).toBe(true);
  });

  test('quota exceeded or a vanished file while dropping: that file is not added, the others are', async () => {
    const { sim, peers } = await cluster(1, { store: () => new MemoryStore({ quota: 3 * BLOCK_SIZE }) });
    const [a] = peers as [SimPeer];
    let r: Awaited<ReturnType<StockholderServer['ingest']>> | undefined;
    void sh(a)
      .ingest(ROOT, [
        { path: 'ok.txt', source: source(new TextEncoder().encode('fine')) },
        { path: 'gone.bin', source: source(bytesOf(2 * BLOCK_SIZE), BLOCK_SIZE) },
        { path: 'huge.bin', source: source(bytesOf(9 * BLOCK_SIZE)) },
      ])
      .then((x) => (r = x));
    await sim.runUntil(() => r !== undefined, 60_000, 10);
    expect(r!.added).toBe(1);
    expect(r!.failed.map((f) => f.path)).toEqual(['gone.bin', 'huge.bin']);
    expect(r!.failed[0]!.error).toMatch(/could not be read at byte 1048576/);
    expect(r!.failed[1]!.error).toMatch(/^storage full/);
    expect(sh(a).snapshot().rows.map((x) => x.path)).toEqual(['/ok.txt']);
  });

  test('a dropped empty folder is created, nested, next to files', async () => {
    const { sim, peers } = await cluster(2);
    const [a, b] = peers as [SimPeer, SimPeer];
    let r: Awaited<ReturnType<StockholderServer['ingest']>> | undefined;
    void sh(a)
      .ingest(ROOT, [{ path: 'album/empty' }, { path: 'album/pic.txt', source: source(new TextEncoder().encode('pic')) }])
      .then((x) => (r = x));
    await sim.runUntil(() => r !== undefined, 10_000, 1);
    expect(r).toEqual({ added: 2, failed: [] });
    await sim.run(2000);
    for (const p of [a, b]) {
      expect(sh(p).snapshot().rows.map((x) => `${x.kind} ${x.path}`).sort()).toEqual(['dir /album', 'dir /album/empty', 'file /album/pic.txt']);
    }
  });

  test('a crash between storing blocks and committing the op leaves no file naming a missing block; orphans are freed', async () => {
    const store = new CrashingStore();
    const { sim, peers } = await cluster(1, { store: () => store });
    const [a] = peers as [SimPeer];
    store.failCommits = true;
    const r = await ingest(sim, a, 'half.bin', bytesOf(3 * BLOCK_SIZE, 9));
    expect(r.added).toBe(0);
    expect((await store.listBlocks()).length).toBeGreaterThan(0); // blocks stored, op not
    store.failCommits = false;
    const a2 = await sim.restart(a);
    await sim.run(1000);
    expect(sh(a2).snapshot().rows).toEqual([]);
    expect(await store.listBlocks()).toEqual([]);
    // Every write op in the store names only stored blocks.
    for (const op of await store.loadOps()) if (op.body.t === 'write') for (const h of op.body.manifest.blocks) expect(await store.hasBlock(h)).toBe(true);
  });

  test('op-log records the store could not read are named in the files panel; the rest of the log loads', async () => {
    const store = new DamagedStore();
    const { sim, peers } = await cluster(1, { store: () => store });
    const [a] = peers as [SimPeer];
    let r: Awaited<ReturnType<StockholderServer['ingest']>> | undefined;
    void sh(a)
      .ingest(ROOT, [{ path: 'kept' }])
      .then((x) => (r = x));
    await sim.runUntil(() => r !== undefined, 10_000, 1);
    expect(sh(a).snapshot().notices.some((n) => n.text.includes('could not read'))).toBe(false);
    store.damage = 'ops record 7 in lshapes-store: its ops are not valid JSON (Unexpected end of JSON input)';
    const a2 = await sim.restart(a);
    await sim.run(1000);
    const notices = sh(a2).snapshot().notices;
    expect(notices.some((n) => n.level === 'error' && n.text.includes(store.damage!))).toBe(true);
    expect(fileRow(a2, '/kept')?.kind).toBe('dir');
  });

  test('a message from a peer outside the cluster, or a malformed one, is refused before it touches anything', async () => {
    const { sim, peers } = await cluster(1);
    const [a] = peers as [SimPeer];
    const s = sh(a);
    const before = s.model.versionVector();
    const stranger = 'f'.repeat(32);
    const op: FsOp = { origin: `${stranger}~00000001`, seq: 1, time: [1, `${stranger}~00000001`], wall: 0, body: { t: 'move', child: `${stranger}~00000001:1`, parent: ROOT, meta: { name: 'evil', kind: 'file' } } };
    s.receive({ from: { peer: stranger, port: 'stockholder' }, to: { peer: a.id, port: 'stockholder' }, body: { kind: 'ops', ops: [op] } } as Envelope);
    s.receive({ from: { peer: a.id === stranger ? 'e'.repeat(32) : a.id, port: 'x' }, to: { peer: a.id, port: 'stockholder' }, body: { kind: 'ops', ops: [{ ...op, seq: -1 }] } } as Envelope);
    await sim.run(100);
    expect(s.model.versionVector()).toEqual(before);
    expect(s.snapshot().rows).toEqual([]);
    expect(s.stats.refused).toBe(1);
  });

  test('a manifest naming blocks nobody has: listed, reading fails with EIO, replication says why', async () => {
    const { sim, peers } = await cluster(2);
    const [a, b] = peers as [SimPeer, SimPeer];
    // A makes an op naming a block that exists nowhere (as if its blocks were lost).
    const missing: Hash = 'ab'.repeat(32);
    let done = false;
    void sh(a)
      .apply((m, wall) => m.createFile(ROOT, 'ghost.bin', { size: 10, blocks: [missing] }, wall))
      .then(() => (done = true));
    await sim.runUntil(() => done && fileRow(b, '/ghost.bin') !== undefined, 10_000);
    await sim.run(3000);
    expect(fileRow(b, '/ghost.bin')?.progress?.paused).toBe('waiting for a peer that holds it');
    await expect(readAll(sim, b, '/ghost.bin')).rejects.toMatchObject({ errno: 29 });
  });
});

async function storeOf(p: SimPeer): Promise<LyingStore> {
  return (sh(p) as unknown as { store: LyingStore }).store;
}

/** Serves flipped bytes once `lie` is set (a buggy or hostile peer). */
class LyingStore extends MemoryStore {
  lie = false;
  override async getBlock(hash: Hash): Promise<Uint8Array | undefined> {
    const b = await super.getBlock(hash);
    if (!b || !this.lie) return b;
    const bad = b.slice();
    bad[0] = bad[0]! ^ 0xff;
    return bad;
  }
}

/** A store whose loadOps reports a damaged record (as IdbStore does for a batch it cannot read). */
class DamagedStore extends MemoryStore {
  damage: string | undefined;
  refused: readonly string[] = [];
  override async loadOps(): Promise<FsOp[]> {
    this.refused = this.damage === undefined ? [] : [this.damage];
    return super.loadOps();
  }
}

/** A store whose block writes take real time (as IndexedDB's do), while the simulation runs on. */
class SlowStore extends MemoryStore {
  override async putBlocks(blocks: readonly StoredBlock[]): Promise<void> {
    await new Promise((r) => setTimeout(r, 20));
    return super.putBlocks(blocks);
  }
}

/** A store whose strict commit fails (the tab died before the transaction committed). */
class CrashingStore extends MemoryStore {
  failCommits = false;
  override async commitOps(ops: readonly FsOp[]): Promise<void> {
    if (this.failCommits) throw new Error('AbortError: the transaction was aborted');
    return super.commitOps(ops);
  }
  override async putBlocks(blocks: readonly StoredBlock[]): Promise<void> {
    return super.putBlocks(blocks);
  }
}

void StoreFullError;
