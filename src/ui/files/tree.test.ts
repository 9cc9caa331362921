import { describe, expect, it } from 'vitest';
import { dirRow, fileRow } from './fixtures.ts';
import { buildFileTree, countFiles, folderChoices, visibleRows, type FileNode } from './tree.ts';

/** The forest as nested [name, children] pairs (leaves: just the name). */
function shape(nodes: readonly FileNode[]): unknown[] {
  return nodes.map((n) => (n.children.length > 0 ? [n.row.name, shape(n.children)] : n.row.name));
}

describe('buildFileTree', () => {
  const rows = [
    fileRow('f1', '/b.txt'),
    dirRow('d1', '/docs'),
    fileRow('f2', '/docs/z.md', { parent: 'd1' }),
    dirRow('d2', '/docs/sub', { parent: 'd1' }),
    fileRow('f3', '/docs/sub/deep.bin', { parent: 'd2' }),
    fileRow('f4', '/docs/a10.md', { parent: 'd1' }),
    fileRow('f5', '/docs/a9.md', { parent: 'd1' }),
    fileRow('f6', '/A.txt'),
    dirRow('d3', '/Music'),
    fileRow('t1', 'old.txt', { trashed: true }),
    dirRow('t2', 'gone', { trashed: true }),
    fileRow('t3', 'gone/inside.txt', { parent: 't2', trashed: true }),
  ];

  it('nests rows under their folders, folders first, then by name (natural, case-insensitive)', () => {
    const tree = buildFileTree(rows);
    expect(shape(tree.live)).toEqual([['docs', [['sub', ['deep.bin']], 'a9.md', 'a10.md', 'z.md']], 'Music', 'A.txt', 'b.txt']);
  });

  it('keeps the trash apart from the live namespace', () => {
    const tree = buildFileTree(rows);
    expect(shape(tree.trash)).toEqual([['gone', ['inside.txt']], 'old.txt']);
    expect(countFiles(tree.live)).toBe(6);
    expect(countFiles(tree.trash)).toBe(2);
  });

  it('shows a row whose parent is unknown at the top of its side, with its own children under it', () => {
    const tree = buildFileTree([dirRow('x', '/lost', { parent: 'nowhere' }), fileRow('y', '/lost/y', { parent: 'x' }), fileRow('z', 'z', { parent: 'gone', trashed: true })]);
    expect(shape(tree.live)).toEqual([['lost', ['y']]]);
    expect(shape(tree.trash)).toEqual(['z']);
  });

  it('survives a parent loop without losing either row', () => {
    const tree = buildFileTree([dirRow('a', '/a', { parent: 'b' }), dirRow('b', '/b', { parent: 'a' })]);
    expect(shape(tree.live)).toEqual(['a', 'b']);
  });
});

describe('visibleRows', () => {
  it('lists rows depth first with their depth, skipping the insides of collapsed folders', () => {
    const tree = buildFileTree([dirRow('d', '/d'), dirRow('e', '/d/e', { parent: 'd' }), fileRow('f', '/d/e/f', { parent: 'e' }), fileRow('g', '/g')]);
    expect(visibleRows(tree.live, new Set()).map((l) => [l.row.id, l.depth, l.childCount])).toEqual([
      ['d', 0, 1],
      ['e', 1, 1],
      ['f', 2, 0],
      ['g', 0, 0],
    ]);
    expect(visibleRows(tree.live, new Set(['e'])).map((l) => l.row.id)).toEqual(['d', 'e', 'g']);
    expect(visibleRows(tree.live, new Set(['d'])).map((l) => l.row.id)).toEqual(['d', 'g']);
  });
});

describe('folderChoices', () => {
  const tree = buildFileTree([
    dirRow('d', '/d'),
    dirRow('e', '/d/e', { parent: 'd' }),
    dirRow('c', '/c'),
    fileRow('f', '/d/f', { parent: 'd' }),
    dirRow('t', 'old', { trashed: true }),
  ]);

  it('offers the top level and every live folder, by path', () => {
    expect(folderChoices(tree)).toEqual([
      { id: 'root', path: '/' },
      { id: 'c', path: '/c' },
      { id: 'd', path: '/d' },
      { id: 'e', path: '/d/e' },
    ]);
  });

  it('never offers a folder as a destination for itself or its insides', () => {
    expect(folderChoices(tree, tree.byId.get('d')!.row).map((f) => f.id)).toEqual(['root', 'c']);
    expect(folderChoices(tree, tree.byId.get('f')!.row).map((f) => f.id)).toEqual(['root', 'c', 'd', 'e']);
  });
});
