import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsError, errnoName } from '../../kernel/wasi/errno.ts';
import { MemFs } from '../../kernel/wasi/memfs.ts';
import { Namespace, Vfs } from '../../kernel/wasi/vfs.ts';
import { HostFs } from './hostfs.ts';

async function errOf(f: () => unknown): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (err) {
    if (err instanceof FsError) return errnoName(err.errno);
    throw err;
  }
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

let base: string; // holds `mnt` (the mount) and `outside` (must stay unreachable)
let mnt: string;
let hfs: HostFs;
let vfs: Vfs;

beforeEach(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'lshapes-hostfs-'));
  mnt = path.join(base, 'mnt');
  mkdirSync(mnt);
  mkdirSync(path.join(base, 'outside'));
  writeFileSync(path.join(base, 'outside', 'secret'), 'secret');
  writeFileSync(path.join(base, 'secret'), 'secret');
  hfs = await HostFs.open(mnt);
  vfs = new Vfs(new Namespace({ '/': hfs }));
});

afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('HostFs: files and directories on the host', () => {
  it('writes and reads through to the host directory', async () => {
    await vfs.mkdir('/a/b', { recursive: true });
    await vfs.writeFile('/a/b/f.txt', 'on the host');
    expect(readFileSync(path.join(mnt, 'a', 'b', 'f.txt'), 'utf8')).toBe('on the host');
    writeFileSync(path.join(mnt, 'h.txt'), 'from the host');
    expect(await vfs.readText('/h.txt')).toBe('from the host');
    const st = await vfs.stat('/a/b/f.txt');
    expect(st).toMatchObject({ type: 'file', size: 11, nlink: 1 });
    expect(st.mtim).toBeGreaterThan(1_600_000_000_000_000_000n);
  });

  it('positions, appends, truncates and sets times (to the microsecond)', async () => {
    const f = await vfs.open('/f', { read: true, write: true, create: true });
    await f.write(new TextEncoder().encode('hello'));
    await f.pwrite(10, new TextEncoder().encode('!'));
    expect((await f.stat()).size).toBe(11);
    expect([...(await f.pread(4, 3))]).toEqual([111, 0, 0]);
    await f.truncate(2);
    await f.close();
    expect(await vfs.readText('/f')).toBe('he');
    await vfs.utimes('/f', 1_000_000_123_456n, 2_000_000_654_999n);
    expect(await vfs.stat('/f')).toMatchObject({ atim: 1_000_000_123_000n, mtim: 2_000_000_654_000n });
  });

  it('lists directories with . and .., and cookies that resume after an entry', async () => {
    for (const n of ['c', 'a', 'b']) writeFileSync(path.join(mnt, n), n);
    mkdirSync(path.join(mnt, 'd'));
    const all = await hfs.readdir(hfs.root, 0n);
    expect(all.map((e) => [e.name, e.type])).toEqual([
      ['.', 'directory'],
      ['..', 'directory'],
      ['a', 'file'],
      ['b', 'file'],
      ['c', 'file'],
      ['d', 'directory'],
    ]);
    for (let i = 0; i < all.length; i++) {
      expect((await hfs.readdir(hfs.root, all[i]!.next)).map((e) => e.name)).toEqual(all.slice(i + 1).map((e) => e.name));
    }
    expect((await vfs.readdir('/')).map((e) => e.name)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('errno paths come through as WASI errnos', async () => {
    await vfs.mkdir('/d');
    await vfs.writeFile('/d/x', 'x');
    await vfs.writeFile('/f', 'f');
    expect(await errOf(() => vfs.readText('/missing'))).toBe('ENOENT');
    expect(await errOf(() => vfs.mkdir('/d'))).toBe('EEXIST');
    expect(await errOf(() => vfs.rmdir('/d'))).toBe('ENOTEMPTY');
    expect(await errOf(() => vfs.rmdir('/f'))).toBe('ENOTDIR');
    expect(await errOf(() => vfs.unlink('/d'))).toBe('EISDIR');
    expect(await errOf(() => vfs.rename('/f', '/d'))).toBe('EISDIR');
    expect(await errOf(() => vfs.rename('/d', '/f'))).toBe('ENOTDIR');
    expect(await errOf(() => vfs.rename('/d', '/d/sub'))).toBe('EINVAL');
    expect(await errOf(() => vfs.link('/d', '/d2'))).toBe('EPERM');
    expect(await errOf(() => vfs.readlink('/f'))).toBe('EINVAL');
    expect(await errOf(() => vfs.readText('/f/x'))).toBe('ENOTDIR');
    expect(await errOf(() => vfs.open('/d', { write: true }))).toBe('EISDIR');
    expect(await errOf(() => hfs.createFile(hfs.root, '..'))).toBe('EINVAL');
  });

  it('symlinks and hard links', async () => {
    await vfs.writeFile('/t', 'target');
    await vfs.symlink('t', '/l');
    expect(await vfs.readlink('/l')).toBe('t');
    expect(await vfs.readText('/l')).toBe('target');
    expect((await vfs.lstat('/l')).type).toBe('symlink');
    await vfs.link('/t', '/h');
    expect((await vfs.stat('/t')).nlink).toBe(2);
    expect((await vfs.stat('/h')).ino).toBe((await vfs.stat('/t')).ino);
  });

  it('an open file stays usable after it is unlinked, and its host descriptor is released on close', async () => {
    await vfs.writeFile('/f', 'still here');
    const f = await vfs.open('/f', { read: true, write: true });
    expect(hfs.heldCount).toBe(1);
    await vfs.unlink('/f');
    expect(await vfs.exists('/f')).toBe(false);
    expect(text(await f.read(100))).toBe('still here');
    await f.pwrite(0, new TextEncoder().encode('S'));
    expect(text(await f.pread(0, 5))).toBe('Still');
    expect((await f.stat()).nlink).toBe(0);
    await f.close();
    expect(hfs.heldCount).toBe(0);
  });

  it('a file replaced at the same path is another node: the old id is stale', async () => {
    await vfs.writeFile('/f', 'old');
    const old = await hfs.lookup(hfs.root, 'f');
    rmSync(path.join(mnt, 'f'));
    writeFileSync(path.join(mnt, 'f'), 'new');
    expect(await errOf(() => hfs.read(old.node, 0, 10))).toBe('ESTALE');
    const now = await hfs.lookup(hfs.root, 'f');
    expect(text(await hfs.read(now.node, 0, 10))).toBe('new');
  });
});

describe('HostFs: confinement', () => {
  it('a host symlink leading out of the mount is resolved inside the namespace, never on the host', async () => {
    symlinkSync(path.join(base, 'outside'), path.join(mnt, 'abs'));
    symlinkSync('../outside/secret', path.join(mnt, 'rel'));
    symlinkSync('../secret', path.join(mnt, 'rel2'));
    // Absolute targets are namespace paths: /<base>/outside does not exist in this namespace.
    expect(await errOf(() => vfs.readdir('/abs'))).toBe('ENOENT');
    // `..` above the root of the namespace is refused.
    expect(await errOf(() => vfs.readText('/rel'))).toBe('ENOTCAPABLE');
    expect(await errOf(() => vfs.readText('/rel2'))).toBe('ENOTCAPABLE');
    // And the links themselves are just links.
    expect(await vfs.readlink('/rel')).toBe('../outside/secret');
  });

  it('mounted below /, `..` leaves the mount into the namespace, not into the host', async () => {
    const ns = new Namespace();
    ns.mount('/', new MemFs());
    ns.mount('/host', hfs);
    const v = new Vfs(ns);
    await v.writeFile('/secret', 'namespace file');
    symlinkSync('../secret', path.join(mnt, 'up'));
    expect(await v.readText('/host/up')).toBe('namespace file');
    expect(await v.readText('/host/../secret')).toBe('namespace file');
  });

  it('a directory swapped for a symlink on the host after lookup is refused', async () => {
    mkdirSync(path.join(mnt, 'sub'));
    writeFileSync(path.join(mnt, 'sub', 'secret'), 'inside');
    const sub = await hfs.lookup(hfs.root, 'sub');
    const inner = await hfs.lookup(sub.node, 'secret');
    rmSync(path.join(mnt, 'sub'), { recursive: true });
    symlinkSync(path.join(base, 'outside'), path.join(mnt, 'sub'));
    expect(await errOf(() => hfs.lookup(sub.node, 'secret'))).toBe('ENOTCAPABLE');
    expect(await errOf(() => hfs.readdir(sub.node, 0n))).toBe('ENOTCAPABLE');
    expect(await errOf(() => hfs.read(inner.node, 0, 10))).toBe('ENOTCAPABLE');
    expect(await errOf(() => hfs.createFile(sub.node, 'planted'))).toBe('ENOTCAPABLE');
    expect(await errOf(() => hfs.unlink(sub.node, 'secret'))).toBe('ENOTCAPABLE');
    expect(readFileSync(path.join(base, 'outside', 'secret'), 'utf8')).toBe('secret');
  });

  it('node ids the mount did not make are stale', async () => {
    for (const bad of ['..', '../secret', 'a/../../secret', '/etc/passwd', 'a//b', 7]) {
      expect([bad, await errOf(() => hfs.stat(bad))]).toEqual([bad, 'ESTALE']);
    }
  });

  it('opening the mount requires a directory', async () => {
    await expect(HostFs.open(path.join(base, 'secret'))).rejects.toThrow(/not a directory/);
  });
});
