import { describe, expect, it } from 'vitest';
import { SAMPLE_FILES } from '../../kernel/process/sample-files.ts';
import { MemFs, memfsFrom } from '../../kernel/wasi/memfs.ts';
import { Namespace, Vfs, type NodeId } from '../../kernel/wasi/vfs.ts';
import { COPY_PIECE_BYTES, ShellFiles } from './shell-files.ts';

const dec = new TextDecoder();

/** A MemFs standing in for the cluster filesystem, and a view of it from its own root. */
function cluster(tree = {}) {
  const fs = memfsFrom({ 'a.txt': 'alpha\n', docs: { 'b.txt': 'beta\n', deep: { 'c.txt': 'gamma\n' } }, empty: {}, ...tree });
  return { fs, vfs: new Vfs(new Namespace({ '/': fs })), files: new ShellFiles(fs) };
}

describe('ShellFiles: the sample files at /', () => {
  const files = new ShellFiles();

  it('lists the sample files: directories and files with their sizes, by name; /cluster and /tmp are there', async () => {
    const root = await files.ls('/');
    expect(root).toEqual([
      { name: 'README.txt', kind: 'file', size: new TextEncoder().encode(SAMPLE_FILES['README.txt'] as string).length },
      { name: 'cluster', kind: 'dir' },
      { name: 'texts', kind: 'dir' },
      { name: 'tmp', kind: 'dir' },
    ]);
    expect((await files.ls('/texts/')).map((e) => e.name)).toEqual(['numbers.txt', 'ozymandias.txt']);
    expect(await files.ls('/cluster')).toEqual([]);
    expect(await files.ls('/texts/../texts/numbers.txt')).toEqual([{ name: 'numbers.txt', kind: 'file', size: 292 }]);
  });

  it('reads a file', async () => {
    expect(dec.decode(await files.cat('/texts/ozymandias.txt'))).toMatch(/^I met a traveller from an antique land,\n/);
    expect(dec.decode(await files.cat('texts/numbers.txt')).split('\n')[99]).toBe('100');
  });

  it('says what is wrong, naming the path', async () => {
    await expect(files.cat('/x')).rejects.toThrow('/x: no such file');
    await expect(files.cat('/README.txt/x')).rejects.toThrow('/README.txt/x: not a directory');
    await expect(files.ls('/nope')).rejects.toThrow('/nope: no such file');
    await expect(files.cat('/texts')).rejects.toThrow('/texts: is a directory');
  });

  it('cannot change them, nor write to /cluster when there is no cluster filesystem', async () => {
    await expect(files.rm('/README.txt')).rejects.toThrow('/README.txt: read-only');
    await expect(files.mkdir('/new')).rejects.toThrow('/new: read-only');
    await expect(files.cp('/README.txt', '/cluster')).rejects.toThrow('/cluster/README.txt: read-only');
    await expect(files.mv('/README.txt', '/x')).rejects.toThrow('/README.txt: read-only');
  });
});

describe('ShellFiles: the cluster filesystem at /cluster', () => {
  it('stat and ls see it', async () => {
    const { files } = cluster();
    expect(await files.stat('/cluster')).toEqual({ name: 'cluster', kind: 'dir' });
    expect(await files.stat('/cluster/a.txt')).toEqual({ name: 'a.txt', kind: 'file', size: 6 });
    expect(await files.stat('/')).toEqual({ name: '/', kind: 'dir' });
    expect(await files.ls('/cluster')).toEqual([
      { name: 'a.txt', kind: 'file', size: 6 },
      { name: 'docs', kind: 'dir' },
      { name: 'empty', kind: 'dir' },
    ]);
    expect(dec.decode(await files.cat('/cluster/docs/deep/c.txt'))).toBe('gamma\n');
    await expect(files.stat('/cluster/zz')).rejects.toThrow('/cluster/zz: no such file');
  });

  it('cp copies a file, into a directory when the destination is one, and replaces a file', async () => {
    const { files, vfs } = cluster();
    await files.cp('/cluster/a.txt', '/cluster/a2.txt');
    await files.cp('/cluster/a.txt', '/cluster/docs');
    await files.cp('/texts/numbers.txt', '/cluster/docs/b.txt');
    expect(await vfs.readText('/a2.txt')).toBe('alpha\n');
    expect(await vfs.readText('/docs/a.txt')).toBe('alpha\n');
    expect((await vfs.readText('/docs/b.txt')).split('\n')[99]).toBe('100');
    await expect(files.cp('/cluster/docs', '/cluster/x')).rejects.toThrow('/cluster/docs: is a directory (cp copies files)');
    await expect(files.cp('/cluster/nope', '/cluster/x')).rejects.toThrow('/cluster/nope: no such file');
    await expect(files.cp('/cluster/a.txt', '/cluster/nodir/x')).rejects.toThrow('/cluster/nodir/x: no such file');
    await expect(files.cp('/cluster/a.txt', '/cluster/a.txt')).rejects.toThrow('/cluster/a.txt: is the same file as /cluster/a.txt');
    expect(await vfs.readText('/a.txt')).toBe('alpha\n');
  });

  it('cp streams a big file in 1 MiB pieces, never reading or writing it whole', async () => {
    const fs = new MemFs();
    const size = 3 * COPY_PIECE_BYTES + 12345;
    const big = new Uint8Array(size);
    for (let i = 0; i < size; i++) big[i] = (i * 31 + (i >> 12)) & 0xff;
    fs.write(fs.createFile(fs.root, 'big'), 0, big);
    const reads: number[] = [];
    const writes: number[] = [];
    const read = fs.read.bind(fs);
    const write = fs.write.bind(fs);
    fs.read = (node: NodeId, position: number, length: number) => {
      reads.push(length);
      return read(node, position, length);
    };
    fs.write = (node: NodeId, position: number, data: Uint8Array) => {
      writes.push(data.length);
      return write(node, position, data);
    };
    const files = new ShellFiles(fs);
    await files.cp('/cluster/big', '/cluster/copy');
    expect(Math.max(...reads)).toBe(COPY_PIECE_BYTES);
    expect(writes).toEqual([COPY_PIECE_BYTES, COPY_PIECE_BYTES, COPY_PIECE_BYTES, 12345]);
    const copy = fs.read(fs.lookup(fs.root, 'copy').node, 0, size + 1);
    expect(copy.length).toBe(size);
    expect(Buffer.compare(copy, big)).toBe(0); // (toEqual compares 3 MiB byte by byte: slow)
  });

  it('mv renames, moves into a directory, and refuses what cannot be', async () => {
    const { files, vfs } = cluster();
    await files.mv('/cluster/a.txt', '/cluster/renamed.txt');
    expect(await vfs.exists('/a.txt')).toBe(false);
    expect(await vfs.readText('/renamed.txt')).toBe('alpha\n');
    await files.mv('/cluster/docs', '/cluster/empty');
    expect(await vfs.readText('/empty/docs/deep/c.txt')).toBe('gamma\n');
    await files.mv('/cluster/renamed.txt', '/cluster/renamed.txt'); // nothing to do
    await expect(files.mv('/cluster/nope', '/cluster/x')).rejects.toThrow('/cluster/nope: no such file');
    await expect(files.mv('/cluster/empty', '/cluster/empty/docs/deep')).rejects.toThrow('/cluster/empty: cannot move a directory into itself');
    await expect(files.mv('/cluster/renamed.txt', '/cluster/nodir/x')).rejects.toThrow('/cluster/nodir/x: no such file');
    await expect(files.mv('/cluster/renamed.txt', '/x')).rejects.toThrow('/x: cannot move between filesystems (use cp)');
    await expect(files.mv('/cluster', '/cluster2')).rejects.toThrow('/cluster: is a mount point');
  });

  it('rm removes a file; a directory only with -r, all it holds included', async () => {
    const { files, vfs } = cluster();
    await files.rm('/cluster/a.txt');
    expect(await vfs.exists('/a.txt')).toBe(false);
    await expect(files.rm('/cluster/a.txt')).rejects.toThrow('/cluster/a.txt: no such file');
    await expect(files.rm('/cluster/docs')).rejects.toThrow('/cluster/docs: is a directory (use rm -r)');
    await files.rm('/cluster/docs', true);
    expect(await vfs.exists('/docs')).toBe(false);
    await files.rm('/cluster/empty', true);
    expect(await vfs.readdir('/')).toEqual([]);
    await expect(files.rm('/cluster', true)).rejects.toThrow('/cluster: is a mount point');
    await expect(files.rm('/', true)).rejects.toThrow('/: cannot remove the root');
  });

  it('mkdir makes a directory; -p its parents too, and an existing one is fine', async () => {
    const { files, vfs } = cluster();
    await files.mkdir('/cluster/new');
    expect((await vfs.stat('/new')).type).toBe('directory');
    await expect(files.mkdir('/cluster/new')).rejects.toThrow('/cluster/new: already exists');
    await expect(files.mkdir('/cluster/x/y')).rejects.toThrow('/cluster/x/y: no such file');
    await files.mkdir('/cluster/x/y/z', true);
    expect((await vfs.stat('/x/y/z')).type).toBe('directory');
    await files.mkdir('/cluster/x/y', true);
    await expect(files.mkdir('/cluster/a.txt/sub', true)).rejects.toThrow('/cluster/a.txt: not a directory');
    await expect(files.mkdir('/texts/sub', true)).rejects.toThrow('/texts/sub: read-only');
  });
});
