import { describe, expect, it } from 'vitest';
import { Errno, FsError, errnoName } from './errno.ts';
import { MemFs } from './memfs.ts';
import { RemoteFileSystem, serveFileSystem, type FsReply, type FsRequest } from './remote-fs.ts';
import { Namespace, Vfs, type FileSystem } from './vfs.ts';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A MemFs whose clock ticks once per reading, so two of them driven alike agree on times. */
function tickingMemFs(): MemFs {
  let t = 1_000_000n;
  return new MemFs({ now: () => (t += 1000n) });
}

/** `fs` behind RemoteFileSystem → (structured clone, as postMessage) → serveFileSystem. */
function remote(fs: FileSystem, log?: FsRequest[]): RemoteFileSystem {
  return new RemoteFileSystem(async (req) => {
    log?.push(req);
    const reply = await serveFileSystem(fs, structuredClone(req));
    return structuredClone(reply);
  }, fs.root);
}

/** Every outcome of a scripted session, as plain data: values, or the errno name of a failure. */
async function script(vfs: Vfs): Promise<unknown[]> {
  const out: unknown[] = [];
  const step = async (f: () => Promise<unknown>) => {
    try {
      out.push(await f());
    } catch (err) {
      out.push(err instanceof FsError ? errnoName(err.errno) : `thrown: ${String(err)}`);
    }
  };
  await step(() => vfs.mkdir('/docs'));
  await step(() => vfs.mkdir('/docs/deep/er', { recursive: true }));
  await step(() => vfs.writeFile('/docs/a.txt', 'hello world'));
  await step(() => vfs.readText('/docs/a.txt'));
  await step(async () => {
    const f = await vfs.open('/docs/a.txt', { read: true, write: true });
    await f.seek(6);
    await f.write(bytes('there'));
    const back = await f.pread(0, 100);
    await f.close();
    return new TextDecoder().decode(back);
  });
  await step(() => vfs.readdir('/docs'));
  await step(() => vfs.rename('/docs/a.txt', '/docs/deep/b.txt'));
  await step(() => vfs.readdir('/docs/deep'));
  await step(() => vfs.stat('/docs/deep/b.txt'));
  await step(() => vfs.truncate('/docs/deep/b.txt', 3));
  await step(() => vfs.readText('/docs/deep/b.txt'));
  await step(() => vfs.truncate('/docs/deep/b.txt', 6));
  await step(() => vfs.readFile('/docs/deep/b.txt'));
  await step(() => vfs.symlink('deep/b.txt', '/docs/link'));
  await step(() => vfs.readlink('/docs/link'));
  await step(() => vfs.readText('/docs/link'));
  await step(() => vfs.link('/docs/deep/b.txt', '/docs/hard'));
  await step(() => vfs.utimes('/docs/hard', 5n, 7n));
  await step(() => vfs.lstat('/docs/hard'));
  await step(async () => {
    const f = await vfs.open('/docs/hard', { read: true });
    const s = await f.stat();
    await f.close();
    return s;
  });
  await step(() => vfs.unlink('/docs/link'));
  await step(() => vfs.unlink('/docs/hard'));
  await step(() => vfs.rmdir('/docs/deep'));
  await step(() => vfs.unlink('/docs/deep/b.txt'));
  await step(() => vfs.rmdir('/docs/deep/er'));
  await step(() => vfs.rmdir('/docs/deep'));
  await step(() => vfs.readText('/docs/missing'));
  await step(() => vfs.mkdir('/docs'));
  await step(() => vfs.unlink('/docs'));
  await step(() => vfs.readdir('/'));
  await step(() => vfs.stat('/docs'));
  return out;
}

describe('RemoteFileSystem over serveFileSystem', () => {
  it('behaves like the filesystem it reaches, step by step', async () => {
    const direct = await script(new Vfs(new Namespace({ '/': tickingMemFs() })));
    const log: FsRequest[] = [];
    const viaMessages = await script(new Vfs(new Namespace({ '/': remote(tickingMemFs(), log) })));
    expect(viaMessages).toEqual(direct);
    // The script really went through every kind of request and produced errors too.
    const ops = new Set(log.map((r) => r.op));
    for (const op of ['lookup', 'stat', 'read', 'write', 'truncate', 'setTimes', 'readdir', 'createFile', 'mkdir', 'symlink', 'readlink', 'link', 'unlink', 'rmdir', 'rename', 'retain', 'release']) {
      expect(ops, op).toContain(op);
    }
    expect(direct).toContain('ENOTEMPTY');
    expect(direct).toContain('ENOENT');
    expect(direct).toContain('EEXIST');
    expect(direct).toContain('EISDIR');
  });

  it('syncs through, and a filesystem without sync answers it as done', async () => {
    const mem = new MemFs();
    const f = mem.createFile(mem.root, 'f');
    await expect(remote(mem).sync(f, true)).resolves.toBeUndefined();
    await expect(remote(mem).sync(999, false)).rejects.toMatchObject({ errno: Errno.STALE });
    const noSync: FileSystem = Object.assign(Object.create(mem) as MemFs, { sync: undefined });
    expect(await serveFileSystem(noSync, { op: 'sync', node: f, dataOnly: false })).toEqual({ ok: true, value: undefined });
  });

  it('posts only the bytes of a view, not the buffer behind it', async () => {
    const mem = new MemFs();
    const f = mem.createFile(mem.root, 'f');
    const sent: FsRequest[] = [];
    const fs = remote(mem, sent);
    const big = new Uint8Array(1 << 16).fill(7);
    await fs.write(f, 0, big.subarray(10, 20));
    const data = (sent[0] as Extract<FsRequest, { op: 'write' }>).data;
    expect([data.length, data.buffer.byteLength]).toEqual([10, 10]);
    mem.read = (node, position, length) => big.subarray(position, position + length);
    const reply = (await serveFileSystem(mem, { op: 'read', node: f, position: 5, length: 3 })) as { ok: true; value: Uint8Array };
    expect(reply.value.buffer.byteLength).toBe(3);
  });

  it('keeps the errno and message of a filesystem error', async () => {
    const fs = remote(new MemFs());
    const err = await fs.lookup(fs.root, 'nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FsError);
    expect((err as FsError).errno).toBe(Errno.NOENT);
    expect(await serveFileSystem(new MemFs(), { op: 'rmdir', dir: 1, name: 'x' })).toEqual({ ok: false, errno: Errno.NOENT, message: 'ENOENT' });
  });

  it('turns anything else a filesystem throws into EIO with its message', async () => {
    const broken = new MemFs();
    broken.read = () => {
      throw new Error('disk on fire');
    };
    broken.stat = (() => Promise.reject(new TypeError('bad stat'))) as unknown as MemFs['stat'];
    const f = broken.createFile(broken.root, 'f');
    expect(await serveFileSystem(broken, { op: 'read', node: f, position: 0, length: 1 })).toEqual({ ok: false, errno: Errno.IO, message: 'disk on fire' });
    const err = (await remote(broken).stat(f).catch((e: unknown) => e)) as FsError;
    expect(err).toBeInstanceOf(FsError);
    expect([err.errno, err.message]).toEqual([Errno.IO, 'bad stat']);
    const bogus = { op: 'format', node: 1 } as unknown as FsRequest;
    expect(await serveFileSystem(broken, bogus)).toMatchObject({ ok: false, errno: Errno.NOSYS });
  });

  it('sends retain and release without waiting, and releaseAll drops what is still held', async () => {
    const sent: FsRequest[] = [];
    const never = new Promise<FsReply>(() => {});
    const fs = new RemoteFileSystem((req) => {
      sent.push(req);
      return never;
    }, 'root');
    fs.retain('a');
    fs.retain('a');
    fs.retain('b');
    fs.release('b');
    fs.release('zzz'); // never retained here: not sent
    expect(fs.heldCount).toBe(1);
    fs.releaseAll();
    expect(fs.heldCount).toBe(0);
    expect(sent.map((r) => `${r.op}:${String((r as { node: unknown }).node)}`)).toEqual([
      'retain:a',
      'retain:a',
      'retain:b',
      'release:b',
      'release:a',
      'release:a',
    ]);
  });

  it('an unlinked file stays readable while a remote fd holds it, and goes once released', async () => {
    const mem = new MemFs();
    const vfs = new Vfs(new Namespace({ '/': remote(mem) }));
    await vfs.writeFile('/f', 'still here');
    const before = mem.inodeCount;
    const f = await vfs.open('/f');
    await vfs.unlink('/f');
    expect(new TextDecoder().decode(await f.read(100))).toBe('still here');
    await f.close();
    // release is fire-and-forget: let it arrive
    await new Promise((r) => setTimeout(r, 0));
    expect(mem.inodeCount).toBe(before - 1);
  });
});
