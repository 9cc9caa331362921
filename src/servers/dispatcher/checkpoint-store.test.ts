// The checkpoint store on both filesystems it meets: a plain MemFs and the real cluster
// filesystem of a one-peer simulated cluster. Saves replace atomically (a save cut short leaves
// the previous checkpoint), nothing piles up in the folder or the cluster's trash, bad pids and
// filesystem failures come back as clear errors naming the pid.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { filesOf } from '../../host/common/boot.ts';
import { Simulation } from '../../host/sim/sim.ts';
import { Errno, FsError, fsError } from '../../kernel/wasi/errno.ts';
import { MemFs } from '../../kernel/wasi/memfs.ts';
import type { FileSystem } from '../../kernel/wasi/vfs.ts';
import { MemoryStore } from '../stockholder/store.ts';
import { BLOCK_SIZE } from '../stockholder/types.ts';
import { CHECKPOINT_DIR, CheckpointStore } from './checkpoint-store.ts';

const enc = new TextEncoder();
/** Large arrays compared by digest: toEqual on megabytes is slow and its diff unreadable. */
const digest = (b: Uint8Array | undefined) => (b === undefined ? 'none' : `${b.length}:${createHash('sha256').update(b).digest('hex')}`);
const PID = '0123abcd.7';

function bytesOf(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

interface Backend {
  fs: FileSystem;
  /** Settles a promise (the simulator has to run for the cluster filesystem's to). */
  drive<T>(p: Promise<T>): Promise<T>;
  /** Paths of trashed entries under the checkpoint folder, with their sizes (cluster only). */
  trash?(): { path: string; size: number }[];
}

async function memBackend(): Promise<Backend> {
  return { fs: new MemFs(), drive: (p) => p };
}

async function clusterBackend(store = new MemoryStore()): Promise<Backend> {
  const sim = new Simulation({ seed: 'checkpoints', latencyMs: 1, jitterMs: 0, store: () => store });
  const peer = await sim.addPeer();
  expect(await sim.runUntil(() => sim.converged(), 20_000)).toBe(true);
  await sim.run(500);
  const files = filesOf(peer.kernel);
  return {
    fs: files.fs,
    async drive<T>(p: Promise<T>): Promise<T> {
      let r: { ok: true; v: T } | { ok: false; e: unknown } | undefined;
      p.then((v) => (r = { ok: true, v }), (e) => (r = { ok: false, e }));
      await sim.runUntil(() => r !== undefined, 120_000, 10);
      if (!r) throw new Error('the filesystem did not answer');
      if (!r.ok) throw r.e;
      return r.v;
    },
    trash: () => files.stockholder.snapshot().rows.filter((r) => r.trashed).map((r) => ({ path: r.path, size: r.size })),
  };
}

/** Names in a folder of `fs` (by path from the root), without . and ..; undefined if it is missing. */
async function namesIn(fs: FileSystem, path: string): Promise<string[] | undefined> {
  let node = fs.root;
  for (const c of path.split('/').filter(Boolean)) {
    try {
      node = (await fs.lookup(node, c)).node;
    } catch {
      return undefined;
    }
  }
  return (await fs.readdir(node, 0n)).map((e) => e.name).filter((n) => n !== '.' && n !== '..').sort();
}

/** Overwrites a file of the checkpoint folder in place (a torn write, a foreign file). */
async function scribble(fs: FileSystem, name: string, data: Uint8Array, dir = CHECKPOINT_DIR): Promise<void> {
  let node = fs.root;
  for (const c of dir.split('/').filter(Boolean)) node = (await fs.lookup(node, c)).node;
  let file;
  try {
    file = (await fs.lookup(node, name)).node;
  } catch {
    file = await fs.createFile(node, name);
  }
  await fs.truncate(file, 0);
  await fs.write(file, 0, data);
  await fs.sync?.(file, false);
}

/** A slot file as the store writes it, for cases a store would not make (sequence wrap-around). */
function slotBytes(seq: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(52 + data.length);
  out.set(enc.encode('LSHCKPT\0'));
  const v = new DataView(out.buffer);
  v.setUint32(8, 1, true);
  v.setUint32(12, seq, true);
  v.setUint32(16, data.length, true);
  out.set(createHash('sha256').update(data).digest(), 20);
  out.set(data, 52);
  return out;
}

/** A FileSystem that fails the way `fail` says, else passes through. */
function failing(fs: FileSystem, fail: { write?: 'half-then-crash' | FsError; read?: { node?: unknown; error: Error } }): FileSystem {
  const proxy = Object.create(fs) as FileSystem;
  proxy.read = async (node, pos, len) => {
    if (fail.read && (fail.read.node === undefined || node === fail.read.node)) throw fail.read.error;
    return fs.read(node, pos, len);
  };
  proxy.write = async (node, pos, data) => {
    if (fail.write === 'half-then-crash') {
      await fs.write(node, pos, data.subarray(0, data.length >> 1));
      await fs.sync?.(node, false);
      throw new Error('the tab was closed');
    }
    if (fail.write) throw fail.write;
    return fs.write(node, pos, data);
  };
  return proxy;
}

for (const [name, make] of [
  ['MemFs', memBackend],
  ['cluster filesystem (one simulated peer)', clusterBackend],
] as const) {
  describe(`CheckpointStore on ${name}`, () => {
    it('nothing saved: load is undefined, list empty, remove a no-op, and no folder is made', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      expect(await b.drive(store.load(PID))).toBeUndefined();
      expect(await b.drive(store.list())).toEqual([]);
      await b.drive(store.remove(PID));
      expect(await b.drive(namesIn(b.fs, '/.lshapes'))).toBeUndefined();
    });

    it('save creates the folders; load returns the bytes; list names every pid once, sorted', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      await b.drive(store.save(PID, enc.encode('first image')));
      await b.drive(store.save('0123abcd.10', enc.encode('other image')));
      await b.drive(store.save(PID, enc.encode('second image')));
      expect(await b.drive(namesIn(b.fs, '/.lshapes'))).toEqual(['checkpoints']);
      expect(new TextDecoder().decode(await b.drive(store.load(PID)))).toBe('second image');
      expect(new TextDecoder().decode(await b.drive(store.load('0123abcd.10')))).toBe('other image');
      expect(await b.drive(store.list())).toEqual(['0123abcd.10', PID]);
      expect(await b.drive(store.load('0123abcd.8'))).toBeUndefined();
    });

    it('many saves: always the newest, never more than two files per pid, nothing in the trash', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      for (let i = 1; i <= 7; i++) {
        await b.drive(store.save(PID, enc.encode(`image ${i}`)));
        expect(new TextDecoder().decode(await b.drive(store.load(PID)))).toBe(`image ${i}`);
      }
      expect(await b.drive(namesIn(b.fs, CHECKPOINT_DIR))).toEqual([`${PID}.ckpt-a`, `${PID}.ckpt-b`]);
      if (b.trash) expect(b.trash()).toEqual([]);
    });

    it('large and then small: multi-block images read back whole, a shorter one is not padded by the old', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      const big = bytesOf(2 * BLOCK_SIZE + 777, 3);
      await b.drive(store.save(PID, big));
      expect(digest(await b.drive(store.load(PID)))).toBe(digest(big));
      await b.drive(store.save(PID, enc.encode('small')));
      await b.drive(store.save(PID, enc.encode('smaller'))); // overwrites the big slot in place
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('smaller'));
      const big2 = bytesOf(BLOCK_SIZE + 5, 4);
      await b.drive(store.save(PID, big2));
      expect(digest(await b.drive(store.load(PID)))).toBe(digest(big2));
    });

    it('a save cut short (half written, then the tab closed) leaves the previous checkpoint; the next save works', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      await b.drive(store.save(PID, bytesOf(5000, 1)));
      await b.drive(store.save(PID, bytesOf(5000, 2)));
      const crashing = new CheckpointStore(failing(b.fs, { write: 'half-then-crash' }));
      await expect(b.drive(crashing.save(PID, bytesOf(5000, 3)))).rejects.toThrow(`cannot save the checkpoint of ${PID}`);
      expect(await b.drive(store.load(PID))).toEqual(bytesOf(5000, 2));
      await b.drive(store.save(PID, bytesOf(5000, 4)));
      expect(await b.drive(store.load(PID))).toEqual(bytesOf(5000, 4));
    });

    it('the newest slot corrupted (a torn write seen by another reader): the other one is loaded', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      await b.drive(store.save(PID, enc.encode('one'))); // slot a, seq 1
      await b.drive(store.save(PID, enc.encode('two'))); // slot b, seq 2
      const torn = slotBytes(2, enc.encode('two'));
      torn[torn.length - 1]! ^= 0xff;
      await b.drive(scribble(b.fs, `${PID}.ckpt-b`, torn));
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('one'));
      // the next save goes over the bad slot, not over the good one
      await b.drive(store.save(PID, enc.encode('three')));
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('three'));
      await b.drive(scribble(b.fs, `${PID}.ckpt-b`, enc.encode('garbage')));
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('one'));
    });

    it("the newest slot's data unreadable (its writer's peer died before the sync, with the only copy): the other one is loaded", async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      await b.drive(store.save(PID, enc.encode('one'))); // slot a, seq 1
      await b.drive(store.save(PID, enc.encode('two'))); // slot b, seq 2
      let dir = b.fs.root;
      for (const c of CHECKPOINT_DIR.split('/').filter(Boolean)) dir = (await b.fs.lookup(dir, c)).node;
      const node = (await b.fs.lookup(dir, `${PID}.ckpt-b`)).node;
      const error = new FsError(Errno.IO, 'block b4a49a23f091 is on no live peer');
      const reader = new CheckpointStore(failing(b.fs, { read: { node, error } }));
      expect(await b.drive(reader.load(PID))).toEqual(enc.encode('one'));
      // the next save goes over the unreadable slot, not over the good one
      await b.drive(reader.save(PID, enc.encode('three')));
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('three'));
      expect(await b.drive(reader.load(PID))).toEqual(enc.encode('one'));
      // both unreadable: load says why, rather than pretend there is no checkpoint
      const blind = new CheckpointStore(failing(b.fs, { read: { error } }));
      await expect(b.drive(blind.load(PID))).rejects.toThrow(`${PID}.ckpt-b: unreadable: block b4a49a23f091 is on no live peer`);
    });

    it('sequence numbers wrap: 0 after 0xffffffff is the newer', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      await b.drive(store.save(PID, enc.encode('x'))); // makes the folder
      await b.drive(scribble(b.fs, `${PID}.ckpt-a`, slotBytes(0xffff_ffff, enc.encode('old'))));
      await b.drive(scribble(b.fs, `${PID}.ckpt-b`, slotBytes(0, enc.encode('new'))));
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('new'));
      await b.drive(store.save(PID, enc.encode('newer'))); // seq 1 into slot a
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('newer'));
    });

    it('files there but none usable: load says so; an empty slot (a first save cut short) is as good as none', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      await b.drive(store.save(PID, enc.encode('x')));
      await b.drive(scribble(b.fs, `${PID}.ckpt-a`, new Uint8Array(0)));
      expect(await b.drive(store.load(PID))).toBeUndefined();
      await b.drive(scribble(b.fs, `${PID}.ckpt-a`, enc.encode('not a checkpoint, but long enough to have a header here......')));
      await expect(b.drive(store.load(PID))).rejects.toThrow(`cannot load the checkpoint of ${PID} in ${CHECKPOINT_DIR}: it is unusable (${PID}.ckpt-a: not a checkpoint)`);
    });

    it('remove: gone from load and list; the other pids stay; trashed entries hold no data', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      await b.drive(store.save(PID, bytesOf(3000)));
      await b.drive(store.save(PID, bytesOf(3000, 2)));
      await b.drive(store.save('beef.1', enc.encode('keep')));
      await b.drive(store.remove(PID));
      expect(await b.drive(store.load(PID))).toBeUndefined();
      expect(await b.drive(store.list())).toEqual(['beef.1']);
      expect(await b.drive(store.load('beef.1'))).toEqual(enc.encode('keep'));
      if (b.trash) {
        const t = b.trash();
        expect(t.map((e) => e.path).sort()).toEqual([`/${PID}.ckpt-a`, `/${PID}.ckpt-b`]);
        expect(t.every((e) => e.size === 0)).toBe(true);
      }
      // saving again after a remove starts over cleanly
      await b.drive(store.save(PID, enc.encode('again')));
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('again'));
    });

    it('concurrent saves of one pid land in order: the last one given wins, the other slot holds the one before', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      await b.drive(Promise.all([1, 2, 3].map((i) => store.save(PID, enc.encode(`image ${i}`)))));
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('image 3'));
      // the newest slot broken: what remains is image 2, not 1 (saves did not overwrite each other)
      const names = (await b.drive(namesIn(b.fs, CHECKPOINT_DIR)))!;
      expect(names).toHaveLength(2);
      await b.drive(scribble(b.fs, `${PID}.ckpt-a`, new Uint8Array(60)));
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('image 2'));
    });

    it('bad pids are refused with a clear error, before touching the filesystem', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      for (const pid of ['', '..', 'ABC.1', 'a/b', 'x.ckpt-a', '0123.7\0']) {
        await expect(store.save(pid, enc.encode('x'))).rejects.toThrow(/not a process id/);
        await expect(store.load(pid)).rejects.toThrow(/not a process id/);
        await expect(store.remove(pid)).rejects.toThrow(/not a process id/);
      }
      await expect(store.save(PID, 'text' as unknown as Uint8Array)).rejects.toThrow(/must be bytes/);
      expect(await b.drive(namesIn(b.fs, '/.lshapes'))).toBeUndefined();
    });

    it('a filesystem error (quota) propagates with its errno and the pid; the old checkpoint stays', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs);
      await b.drive(store.save(PID, enc.encode('kept')));
      const full = new CheckpointStore(failing(b.fs, { write: fsError('DQUOT', 'quota exceeded') }));
      const err = await b.drive(full.save(PID, enc.encode('lost'))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FsError);
      expect((err as FsError).errno).toBe(Errno.DQUOT);
      expect((err as FsError).message).toBe(`cannot save the checkpoint of ${PID} in ${CHECKPOINT_DIR}: quota exceeded`);
      expect(await b.drive(store.load(PID))).toEqual(enc.encode('kept'));
    });

    it('another folder, given', async () => {
      const b = await make();
      const store = new CheckpointStore(b.fs, '/a/b/c');
      await b.drive(store.save(PID, enc.encode('here')));
      expect(await b.drive(namesIn(b.fs, '/a/b/c'))).toEqual([`${PID}.ckpt-a`]);
      expect(await b.drive(namesIn(b.fs, '/.lshapes'))).toBeUndefined();
      expect(() => new CheckpointStore(b.fs, 'relative')).toThrow(/absolute/);
      expect(() => new CheckpointStore(b.fs, '/a/../b')).toThrow(/absolute/);
    });
  });
}

describe('CheckpointStore on the cluster filesystem, storage full', () => {
  it("the store's quota reached: save fails naming the pid, a complete checkpoint still loads, saving works again with space", async () => {
    const blocks = new MemoryStore({ quota: 3 * BLOCK_SIZE });
    const b = await clusterBackend(blocks);
    const store = new CheckpointStore(b.fs);
    await b.drive(store.save(PID, enc.encode('small and kept')));
    const big = bytesOf(5 * BLOCK_SIZE);
    const err = await b.drive(store.save(PID, big)).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(new RegExp(`^cannot save the checkpoint of ${PID.replace('.', '\\.')} in ${CHECKPOINT_DIR}: `));
    // this peer may still read its own unstored write (read-your-writes); either way, whole
    expect([digest(enc.encode('small and kept')), digest(big)]).toContain(digest(await b.drive(store.load(PID))));
    blocks.quota = Infinity;
    await b.drive(store.save(PID, enc.encode('after')));
    expect(await b.drive(store.load(PID))).toEqual(enc.encode('after'));
  });
});
