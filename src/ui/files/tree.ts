// The files panel's tree, built from the flat rows of a FilesSnapshot: the live namespace and
// the trash as two forests, each level sorted folders first, then by name. Pure.
import type { FileRow } from '../../servers/stockholder/files-api.ts';

/** The view ids of the two fixed tops (the Stockholder's ROOT and TRASH). */
export const ROOT_ID = 'root';
export const TRASH_ID = 'trash';

export interface FileNode {
  row: FileRow;
  children: FileNode[];
}

export interface FileTree {
  /** The live namespace's top level. */
  live: FileNode[];
  /** The trash's top level: what was deleted (with whatever it contained). */
  trash: FileNode[];
  /** Every node by view id. */
  byId: ReadonlyMap<string, FileNode>;
}

/** Folders first, then by name (natural, case-insensitive), then by exact name and id so the order is total. */
export function compareRows(a: FileRow, b: FileRow): number {
  if (a.kind !== b.kind) return a.kind === 'dir' ? -1 : 1;
  return (
    a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' }) ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

/**
 * Nests the rows under their parents. A row whose parent is unknown (or whose parent chain loops,
 * which a consistent snapshot never has) is shown at the top of its side rather than dropped:
 * the panel must never hide a file. The first row of a duplicated id wins.
 */
export function buildFileTree(rows: readonly FileRow[]): FileTree {
  const byId = new Map<string, FileNode>();
  for (const row of rows) if (!byId.has(row.id)) byId.set(row.id, { row, children: [] });

  // Whether a node's parent chain ends (at a fixed top or an unknown parent) without looping, memoized.
  const anchored = new Map<string, boolean>();
  const isAnchored = (id: string): boolean => {
    const path: string[] = [];
    const onPath = new Set<string>();
    let cur = id;
    let result: boolean;
    for (;;) {
      const known = anchored.get(cur);
      if (known !== undefined) {
        result = known;
        break;
      }
      if (cur === ROOT_ID || cur === TRASH_ID) {
        result = true;
        break;
      }
      const node = byId.get(cur);
      if (!node) {
        // An unknown parent: the chain ends at a row shown at the top.
        result = true;
        break;
      }
      if (onPath.has(cur)) {
        result = false;
        break;
      }
      path.push(cur);
      onPath.add(cur);
      cur = node.row.parent;
    }
    for (const p of path) anchored.set(p, result);
    return result;
  };

  const live: FileNode[] = [];
  const trash: FileNode[] = [];
  for (const node of byId.values()) {
    const { parent } = node.row;
    const parentNode = byId.get(parent);
    if (parent === ROOT_ID) live.push(node);
    else if (parent === TRASH_ID) trash.push(node);
    else if (parentNode && isAnchored(node.row.id)) parentNode.children.push(node);
    else (node.row.trashed ? trash : live).push(node);
  }
  const sortDeep = (nodes: FileNode[]): void => {
    nodes.sort((a, b) => compareRows(a.row, b.row));
    for (const n of nodes) sortDeep(n.children);
  };
  sortDeep(live);
  sortDeep(trash);
  return { live, trash, byId };
}

/** One line of the panel: a node at its depth, only under expanded folders. */
export interface VisibleRow {
  row: FileRow;
  depth: number;
  /** How many entries the folder holds (0 for files). */
  childCount: number;
}

/** The rows to show, depth first, skipping the insides of collapsed folders. */
export function visibleRows(nodes: readonly FileNode[], collapsed: ReadonlySet<string>, depth = 0, out: VisibleRow[] = []): VisibleRow[] {
  for (const n of nodes) {
    out.push({ row: n.row, depth, childCount: n.children.length });
    if (!collapsed.has(n.row.id)) visibleRows(n.children, collapsed, depth + 1, out);
  }
  return out;
}

/** A folder something can be put in: its view id and the path to show. */
export interface FolderChoice {
  id: string;
  path: string;
}

/**
 * The live folders, the top level first, then by path. With `moving`, the folders it could move
 * into: not itself and nothing inside it (that would be a cycle).
 */
export function folderChoices(tree: FileTree, moving?: FileRow): FolderChoice[] {
  const excluded = new Set<string>();
  if (moving) {
    const stack = [tree.byId.get(moving.id)];
    for (let n = stack.pop(); n; n = stack.pop()) {
      excluded.add(n.row.id);
      stack.push(...n.children);
    }
  }
  const out: FolderChoice[] = [];
  const walk = (nodes: readonly FileNode[]) => {
    for (const n of nodes) {
      if (n.row.kind !== 'dir' || excluded.has(n.row.id)) continue;
      out.push({ id: n.row.id, path: n.row.path });
      walk(n.children);
    }
  };
  walk(tree.live);
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return [{ id: ROOT_ID, path: '/' }, ...out];
}

/** How many files (not folders) a forest holds, all levels. */
export function countFiles(nodes: readonly FileNode[]): number {
  let n = 0;
  for (const node of nodes) n += (node.row.kind === 'file' ? 1 : 0) + countFiles(node.children);
  return n;
}
