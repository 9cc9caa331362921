import { describe, expect, it } from 'vitest';
import { Errno, FsError, errnoName } from './errno.ts';
import { MemFs, memfsFrom } from './memfs.ts';
import { Namespace, Vfs } from './vfs.ts';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The errno name a call fails with (sync or async), or 'ok'. */
async function errOf(f: () => unknown): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (err) {
    if (err instanceof FsError) return errnoName(err.errno);
    throw err;
  }
}

function vfsOf(fs = new MemFs()): Vfs {
  return new Vfs(new Namespace({ '/': fs }));
}

describe('MemFs: nodes', () => {
  it('creates, writes, reads and grows files; reads past the end are empty', () => {
    const fs = new MemFs();
    const f = fs.createFile(fs.root, 'a');
    expect(fs.write(f, 0, bytes('hello'))).toBe(5);
    expect(fs.write(f, 10, bytes('!'))).toBe(1);
    const all = fs.read(f, 0, 100);
    expect(all.length).toBe(11);
    expect(text(all.subarray(0, 5))).toBe('hello');
    expect([...all.subarray(5, 10)]).toEqual([0, 0, 0, 0, 0]);
    expect(fs.read(f, 11, 10).length).toBe(0);
    expect(fs.stat(f)).toMatchObject({ type: 'file', size: 11, nlink: 1 });
  });

  it('truncates down and up, zero-filling', () => {
    const fs = new MemFs();
    const f = fs.createFile(fs.root, 'a');
    fs.write(f, 0, bytes('abcdef'));
    fs.truncate(f, 2);
    fs.truncate(f, 4);
    expect([...fs.read(f, 0, 10)]).toEqual([97, 98, 0, 0]);
  });

  it('readShared: a view later writes, appends and truncation leave as it was (copy on write)', () => {
    const fs = new MemFs();
    const f = fs.createFile(fs.root, 'log');
    fs.write(f, 0, bytes('abcd'));
    fs.truncate(f, 100); // capacity beyond the size: appends stay in the same buffer
    fs.truncate(f, 4);
    const v1 = fs.readShared(f);
    fs.write(f, 4, bytes('ef')); // an append: no copy needed, the view does not reach it
    const v2 = fs.readShared(f);
    expect(v2.buffer).toBe(v1.buffer);
    fs.write(f, 1, bytes('X')); // below what the views see: the file copies first
    expect(text(v1)).toBe('abcd');
    expect(text(v2)).toBe('abcdef');
    expect(text(fs.read(f, 0, 10))).toBe('aXcdef');
    const v3 = fs.readShared(f);
    fs.truncate(f, 2); // zeroes what v3 sees: copies first
    fs.truncate(f, 6);
    expect(text(v3)).toBe('aXcdef');
    expect([...fs.read(f, 0, 10)]).toEqual([97, 88, 0, 0, 0, 0]);
    expect(fs.readShared(fs.createFile(fs.root, 'empty')).length).toBe(0);
  });

  it('refuses files beyond maxFileSize with EFBIG', async () => {
    const fs = new MemFs({ maxFileSize: 1000 });
    const f = fs.createFile(fs.root, 'a');
    expect(await errOf(() => fs.write(f, 999, bytes('xy')))).toBe('EFBIG');
    expect(await errOf(() => fs.truncate(f, 1001))).toBe('EFBIG');
  });

  it('counts directory links: 2 + subdirectories', () => {
    const fs = new MemFs();
    expect(fs.stat(fs.root).nlink).toBe(2);
    const a = fs.mkdir(fs.root, 'a');
    fs.mkdir(fs.root, 'b');
    expect(fs.stat(fs.root).nlink).toBe(4);
    fs.mkdir(a, 'c');
    expect(fs.stat(a).nlink).toBe(3);
    fs.rename(a, 'c', fs.root, 'c');
    expect(fs.stat(a).nlink).toBe(2);
    expect(fs.stat(fs.root).nlink).toBe(5);
    fs.rmdir(fs.root, 'b');
    expect(fs.stat(fs.root).nlink).toBe(4);
  });

  it('keeps hard-linked files until the last name and the last open fd are gone', () => {
    const fs = new MemFs();
    const before = fs.inodeCount;
    const f = fs.createFile(fs.root, 'a');
    fs.write(f, 0, bytes('data'));
    fs.link(f, fs.root, 'b');
    expect(fs.stat(f).nlink).toBe(2);
    fs.retain(f);
    fs.unlink(fs.root, 'a');
    fs.unlink(fs.root, 'b');
    expect(fs.stat(f).nlink).toBe(0);
    expect(text(fs.read(f, 0, 10))).toBe('data');
    fs.release(f);
    expect(fs.inodeCount).toBe(before);
    expect(() => fs.stat(f)).toThrow(FsError);
  });

  it('errno paths of names', async () => {
    const fs = memfsFrom({ f: 'x', d: { inner: 'y' }, l: { symlink: 'f' } });
    const f = fs.lookup(fs.root, 'f').node;
    const d = fs.lookup(fs.root, 'd').node;
    expect(await errOf(() => fs.lookup(fs.root, 'missing'))).toBe('ENOENT');
    expect(await errOf(() => fs.lookup(f, 'x'))).toBe('ENOTDIR');
    expect(await errOf(() => fs.createFile(fs.root, 'f'))).toBe('EEXIST');
    expect(await errOf(() => fs.mkdir(fs.root, 'd'))).toBe('EEXIST');
    expect(await errOf(() => fs.unlink(fs.root, 'd'))).toBe('EISDIR');
    expect(await errOf(() => fs.rmdir(fs.root, 'f'))).toBe('ENOTDIR');
    expect(await errOf(() => fs.rmdir(fs.root, 'd'))).toBe('ENOTEMPTY');
    expect(await errOf(() => fs.link(d, fs.root, 'd2'))).toBe('EPERM');
    expect(await errOf(() => fs.readlink(f))).toBe('EINVAL');
    expect(fs.readlink(fs.lookup(fs.root, 'l').node)).toBe('f');
    expect(await errOf(() => fs.read(d, 0, 1))).toBe('EISDIR');
    expect(await errOf(() => fs.write(d, 0, bytes('x')))).toBe('EISDIR');
    expect(await errOf(() => fs.createFile(fs.root, '..'))).toBe('EINVAL');
    expect(await errOf(() => fs.createFile(fs.root, 'a/b'))).toBe('EINVAL');
    expect(await errOf(() => fs.stat(12345))).toBe('ESTALE');
    expect(await errOf(() => fs.stat('x'))).toBe('ESTALE');
  });

  it('a removed directory takes no new entries and lists only . and ..', async () => {
    const fs = new MemFs();
    const d = fs.mkdir(fs.root, 'd');
    fs.retain(d);
    fs.rmdir(fs.root, 'd');
    expect(await errOf(() => fs.createFile(d, 'x'))).toBe('ENOENT');
    expect(fs.readdir(d, 0n).map((e) => e.name)).toEqual(['.', '..']);
    fs.release(d);
  });
});

describe('MemFs: rename', () => {
  it('follows POSIX rules for files and directories', async () => {
    const fs = memfsFrom({ f: '1', g: '2', d: {}, e: {}, full: { x: '' }, a: { b: {} } });
    const look = (n: string) => fs.lookup(fs.root, n).node;
    expect(await errOf(() => fs.rename(fs.root, 'f', fs.root, 'd'))).toBe('EISDIR');
    expect(await errOf(() => fs.rename(fs.root, 'd', fs.root, 'f'))).toBe('ENOTDIR');
    expect(await errOf(() => fs.rename(fs.root, 'd', fs.root, 'full'))).toBe('ENOTEMPTY');
    expect(await errOf(() => fs.rename(fs.root, 'a', look('a'), 'x'))).toBe('EINVAL');
    const b = fs.lookup(look('a'), 'b').node;
    expect(await errOf(() => fs.rename(fs.root, 'a', b, 'x'))).toBe('EINVAL');
    expect(await errOf(() => fs.rename(fs.root, 'nope', fs.root, 'x'))).toBe('ENOENT');
    const gIno = fs.stat(look('g')).ino;
    fs.rename(fs.root, 'f', fs.root, 'g'); // replaces g
    expect(text(fs.read(look('g'), 0, 9))).toBe('1');
    expect(fs.stat(look('g')).ino).not.toBe(gIno);
    fs.rename(fs.root, 'd', fs.root, 'e'); // replaces the empty directory e
    expect(await errOf(() => fs.lookup(fs.root, 'd'))).toBe('ENOENT');
    // Two names of one file: rename is a no-op.
    fs.link(look('g'), fs.root, 'g2');
    fs.rename(fs.root, 'g', fs.root, 'g2');
    expect(fs.stat(look('g')).nlink).toBe(2);
  });

  it('a directory moved elsewhere gets its new parent as ..', () => {
    const fs = memfsFrom({ a: { sub: {} }, b: {} });
    const a = fs.lookup(fs.root, 'a').node;
    const b = fs.lookup(fs.root, 'b').node;
    fs.rename(a, 'sub', b, 'sub');
    const sub = fs.lookup(b, 'sub').node;
    const dotdot = fs.readdir(sub, 0n).find((e) => e.name === '..')!;
    expect(dotdot.ino).toBe(fs.stat(b).ino);
  });
});

describe('MemFs: readdir cookies', () => {
  it('lists . and .. first, then entries in creation order; each cookie resumes after its entry', () => {
    const fs = memfsFrom({ d: { a: '', b: '', c: '' } });
    const d = fs.lookup(fs.root, 'd').node;
    const all = fs.readdir(d, 0n);
    expect(all.map((e) => e.name)).toEqual(['.', '..', 'a', 'b', 'c']);
    for (let i = 0; i < all.length; i++) {
      expect(fs.readdir(d, all[i]!.next).map((e) => e.name)).toEqual(all.slice(i + 1).map((e) => e.name));
    }
  });

  it('cookies stay valid while entries are removed and added', () => {
    const fs = memfsFrom({ d: { a: '', b: '', c: '' } });
    const d = fs.lookup(fs.root, 'd').node;
    const afterA = fs.readdir(d, 0n).find((e) => e.name === 'a')!.next;
    fs.unlink(d, 'a');
    fs.unlink(d, 'b');
    fs.createFile(d, 'z');
    expect(fs.readdir(d, afterA).map((e) => e.name)).toEqual(['c', 'z']);
    expect(fs.readdir(d, 1n << 60n)).toEqual([]);
  });
});

describe('Namespace and Vfs', () => {
  it('walks paths: ., .., symlinks (relative and absolute), trailing slashes', async () => {
    const vfs = vfsOf(memfsFrom({ etc: { motd: 'hi' }, lnk: { symlink: 'etc/motd' }, abs: { symlink: '/etc' }, d: {} }));
    expect(await vfs.readText('/etc/./../etc/motd')).toBe('hi');
    expect(await vfs.readText('/lnk')).toBe('hi');
    expect(await vfs.readText('/abs/motd')).toBe('hi');
    expect((await vfs.lstat('/lnk')).type).toBe('symlink');
    expect((await vfs.stat('/lnk')).type).toBe('file');
    expect(await errOf(() => vfs.stat('/etc/motd/'))).toBe('ENOTDIR');
    expect((await vfs.stat('/abs/')).type).toBe('directory');
    expect(await errOf(() => vfs.stat(''))).toBe('ENOENT');
    expect(await errOf(() => vfs.stat('/..'))).toBe('ENOTCAPABLE');
    expect(await errOf(() => vfs.stat('/a\0b'))).toBe('EINVAL');
    expect(await errOf(() => vfs.stat('/' + 'x'.repeat(256)))).toBe('ENAMETOOLONG');
  });

  it('ELOOP after 40 symlinks', async () => {
    const tree: Record<string, { symlink: string }> = {};
    for (let i = 0; i < 45; i++) tree[`l${i}`] = { symlink: `l${i + 1}` };
    const vfs = vfsOf(memfsFrom({ ...tree, l45: 'end' }));
    expect(await vfs.readText('/l10')).toBe('end');
    expect(await errOf(() => vfs.readText('/l0'))).toBe('ELOOP');
  });

  it('crosses mounts, keeps devices apart, and refuses cross-mount rename and link', async () => {
    const ns = new Namespace();
    ns.mount('/', memfsFrom({ tmp: {}, f: 'root file' }));
    ns.mount('/tmp', memfsFrom({ t: 'tmp file' }));
    const vfs = new Vfs(ns);
    expect(await vfs.readText('/tmp/t')).toBe('tmp file');
    expect(await vfs.readText('/tmp/../f')).toBe('root file');
    expect((await vfs.stat('/tmp/t')).ino).toBeDefined();
    expect(await errOf(() => vfs.rename('/f', '/tmp/f'))).toBe('EXDEV');
    expect(await errOf(() => vfs.link('/f', '/tmp/f'))).toBe('EXDEV');
    expect(await errOf(() => vfs.rmdir('/tmp'))).toBe('EBUSY');
    expect(await errOf(() => vfs.mkdir('/tmp'))).toBe('EEXIST');
    expect(ns.mounts().map((m) => [m.path, m.dev])).toEqual([
      ['/', 1n],
      ['/tmp', 2n],
    ]);
    expect(() => ns.mount('/tmp', new MemFs())).toThrow(/already mounted/);
    expect(() => ns.mount('relative', new MemFs())).toThrow(/absolute/);
  });

  it('a mount point need not exist in the parent filesystem', async () => {
    const ns = new Namespace();
    ns.mount('/', new MemFs());
    ns.mount('/data', memfsFrom({ x: 'y' }));
    expect(await new Vfs(ns).readText('/data/x')).toBe('y');
  });

  it('a read-only mount refuses every change with EROFS but reads', async () => {
    const ns = new Namespace();
    ns.mount('/', memfsFrom({ f: 'content', d: {} }), { readonly: true });
    const vfs = new Vfs(ns);
    expect(await vfs.readText('/f')).toBe('content');
    for (const op of [
      () => vfs.writeFile('/f', 'x'),
      () => vfs.writeFile('/new', 'x'),
      () => vfs.mkdir('/e'),
      () => vfs.unlink('/f'),
      () => vfs.rmdir('/d'),
      () => vfs.rename('/f', '/g'),
      () => vfs.symlink('f', '/l'),
      () => vfs.link('/f', '/h'),
      () => vfs.utimes('/f', 1n, 1n),
      () => vfs.open('/f', { write: true }),
    ]) {
      expect(await errOf(op)).toBe('EROFS');
    }
  });

  it('OpenFile: position, append, pread/pwrite, access modes', async () => {
    const vfs = vfsOf();
    await vfs.writeFile('/f', 'hello');
    const f = await vfs.open('/f', { read: true, write: true, append: true });
    await f.write(bytes(' world'));
    expect(text(await f.pread(0, 100))).toBe('hello world');
    expect(await f.seek(-5, 'end')).toBe(6);
    expect(text(await f.read(5))).toBe('world');
    expect(await errOf(() => f.seek(-100, 'cur'))).toBe('EINVAL');
    await f.pwrite(0, bytes('J'));
    await f.close();
    expect(await vfs.readText('/f')).toBe('Jello world');
    const ro = await vfs.open('/f');
    expect(await errOf(() => ro.write(bytes('x')))).toBe('EBADF');
    await ro.close();
    expect(await errOf(() => ro.read(1))).toBe('EBADF');
    expect(await errOf(() => vfs.open('/f', { create: true, exclusive: true, write: true }))).toBe('EEXIST');
  });

  it('mkdir -p, readdir, readlink, link, truncate, utimes', async () => {
    const vfs = vfsOf();
    await vfs.mkdir('/a/b/c', { recursive: true });
    await vfs.mkdir('/a/b/c', { recursive: true });
    await vfs.writeFile('/a/f', 'x');
    expect(await errOf(() => vfs.mkdir('/a/f/g', { recursive: true }))).toBe('ENOTDIR');
    expect((await vfs.readdir('/a')).map((e) => [e.name, e.type])).toEqual([
      ['b', 'directory'],
      ['f', 'file'],
    ]);
    await vfs.symlink('f', '/a/l');
    expect(await vfs.readlink('/a/l')).toBe('f');
    await vfs.link('/a/f', '/a/g');
    expect((await vfs.stat('/a/g')).nlink).toBe(2);
    await vfs.truncate('/a/g', 3);
    expect([...(await vfs.readFile('/a/f'))]).toEqual([120, 0, 0]);
    await vfs.utimes('/a/f', 5n, 7n);
    expect(await vfs.stat('/a/f')).toMatchObject({ atim: 5n, mtim: 7n });
    expect(await vfs.exists('/a/nope')).toBe(false);
    expect(await errOf(() => vfs.readdir('/a/f'))).toBe('ENOTDIR');
  });

  it('uses the injected clock for timestamps', async () => {
    let now = 1000n;
    const vfs = vfsOf(new MemFs({ now: () => now }));
    await vfs.writeFile('/f', 'x');
    now = 2000n;
    await vfs.writeFile('/f', 'y');
    expect(await vfs.stat('/f')).toMatchObject({ atim: 1000n, mtim: 2000n, ctim: 2000n });
  });

  it('FsError carries an errno', () => {
    const e = new FsError(Errno.NOENT);
    expect(e.errno).toBe(44);
    expect(e.message).toBe('ENOENT');
    expect(errnoName(Errno.NOTCAPABLE)).toBe('ENOTCAPABLE');
    expect(errnoName(999)).toBe('E?999');
  });
});
