// The drop walk over fake File and Directory Entries: folders read in small batches, like
// Chromium hands them out, and files handed over untouched.
import { describe, expect, it } from 'vitest';
import { dragHasFiles, droppedFromPicked, readAllEntries, takeDrop, walkDrop, walkEntries, type EntryLike } from './drop.ts';

const fileEntry = (name: string, file = new File([name], name)): EntryLike => ({
  name,
  isFile: true,
  isDirectory: false,
  file: (ok) => setTimeout(() => ok(file), 0),
});

/** A folder whose reader hands out at most `batch` entries per readEntries call, then an empty batch. */
const dirEntry = (name: string, children: EntryLike[], batch = 2): EntryLike & { reads: number } => {
  const dir = {
    name,
    isFile: false,
    isDirectory: true,
    reads: 0,
    createReader: () => {
      let at = 0;
      return {
        readEntries: (ok: (es: EntryLike[]) => void) => {
          dir.reads++;
          const next = children.slice(at, at + batch);
          at += next.length;
          setTimeout(() => ok(next), 0);
        },
      };
    },
  };
  return dir;
};

const brokenFile = (name: string): EntryLike => ({
  name,
  isFile: true,
  isDirectory: false,
  file: (_ok, fail) => fail?.(new Error('NotReadableError')),
});

describe('walkEntries', () => {
  it('gives every file in nested folders its path relative to the drop, keeping the File objects as they are; an empty folder comes as a folder', async () => {
    const b = new File(['bbb'], 'b.txt');
    const entries = [
      fileEntry('a.txt'),
      dirEntry('dir', [fileEntry('one'), dirEntry('sub', [fileEntry('b.txt', b), dirEntry('empty', [])]), fileEntry('two')]),
    ];
    const walked = await walkEntries(entries);
    expect(walked.problems).toEqual([]);
    expect(walked.files.map((f) => f.path)).toEqual(['a.txt', 'dir/one', 'dir/sub/b.txt', 'dir/sub/empty', 'dir/two']);
    expect(walked.files[2]).toMatchObject({ file: b });
    expect(walked.files[3]).toEqual({ path: 'dir/sub/empty', folder: true });
  });

  it('reads a folder until its reader hands back an empty batch', async () => {
    const names = Array.from({ length: 7 }, (_, i) => `f${i}`);
    const dir = dirEntry('many', names.map((n) => fileEntry(n)), 3);
    expect((await readAllEntries(dir)).map((e) => e.name)).toEqual(names);
    expect(dir.reads).toBe(4); // 3 + 3 + 1, then the empty batch
  });

  it('reports what it cannot read and still takes the rest', async () => {
    const unreadableDir: EntryLike = {
      name: 'locked',
      isFile: false,
      isDirectory: true,
      createReader: () => ({ readEntries: (_ok, fail) => fail?.(new Error('SecurityError')) }),
    };
    const walked = await walkEntries([dirEntry('d', [brokenFile('bad.bin'), fileEntry('good.txt')]), unreadableDir]);
    expect(walked.files.map((f) => f.path)).toEqual(['d/good.txt']);
    expect(walked.problems).toEqual([
      { path: 'd/bad.bin', error: 'NotReadableError' },
      { path: 'locked/', error: 'SecurityError' },
    ]);
  });
});

describe('takeDrop + walkDrop', () => {
  it('takes entries from file items, falls back to getAsFile without an entry, and ignores non-file items', async () => {
    const loose = new File(['x'], 'loose.txt');
    const dt = {
      items: [
        { kind: 'string', getAsFile: () => null, webkitGetAsEntry: () => null },
        { kind: 'file', getAsFile: () => null, webkitGetAsEntry: () => dirEntry('photos', [fileEntry('p.jpg')]) },
        { kind: 'file', getAsFile: () => loose, webkitGetAsEntry: () => null },
      ],
    };
    const taken = takeDrop(dt);
    expect(taken.entries.map((e) => e.name)).toEqual(['photos']);
    expect(taken.loose).toEqual([loose]);
    const walked = await walkDrop(taken);
    expect(walked.files.map((f) => f.path)).toEqual(['photos/p.jpg', 'loose.txt']);
    expect(walked.files[1]).toMatchObject({ file: loose });
  });

  it('uses dt.files when there are no items', () => {
    const f = new File(['x'], 'x.txt');
    expect(takeDrop({ files: [f] })).toEqual({ entries: [], loose: [f] });
    expect(takeDrop(null)).toEqual({ entries: [], loose: [] });
  });

  it('tells a drag of files from a drag of text', () => {
    expect(dragHasFiles({ types: ['text/plain', 'Files'] })).toBe(true);
    expect(dragHasFiles({ types: ['text/plain'] })).toBe(false);
    expect(dragHasFiles(null)).toBe(false);
  });
});

describe('droppedFromPicked', () => {
  it('uses the path inside the picked folder when there is one, else the name', () => {
    const inFolder = new File(['1'], 'b.txt');
    Object.defineProperty(inFolder, 'webkitRelativePath', { value: 'pics/2024/b.txt' });
    const plain = new File(['2'], 'a.txt');
    Object.defineProperty(plain, 'webkitRelativePath', { value: '' });
    const picked = droppedFromPicked([inFolder, plain]);
    expect(picked.map((p) => p.path)).toEqual(['pics/2024/b.txt', 'a.txt']);
    expect(picked[0]).toMatchObject({ file: inFolder });
  });
});
