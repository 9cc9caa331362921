// Rows and snapshots for the files panel's tests.
import type { FileRow, FilesSnapshot } from '../../servers/stockholder/files-api.ts';

/** A file row at `path` (its name is the last part); `parent` defaults to the top. */
export function fileRow(id: string, path: string, extra: Partial<FileRow> = {}): FileRow {
  const trashed = extra.trashed ?? false;
  return {
    id,
    parent: trashed ? 'trash' : 'root',
    name: path.slice(path.lastIndexOf('/') + 1),
    path,
    kind: 'file',
    size: 1000,
    mtime: 0,
    replicas: 2,
    local: true,
    soleCopy: false,
    trashed,
    ...extra,
  };
}

export function dirRow(id: string, path: string, extra: Partial<FileRow> = {}): FileRow {
  return fileRow(id, path, { kind: 'dir', size: 0, replicas: 0, ...extra });
}

export function snapshotOf(rows: FileRow[], extra: Partial<FilesSnapshot> = {}): FilesSnapshot {
  return {
    rows,
    peers: 3,
    factor: 2,
    store: { label: 'IndexedDB', durable: true, usage: 5 * 1024 * 1024, quota: 2 * 1024 * 1024 * 1024 },
    soleCopies: rows.filter((r) => r.soleCopy).length,
    notices: [],
    ...extra,
  };
}
