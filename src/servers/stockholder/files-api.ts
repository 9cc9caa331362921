// What a shell (the React files panel, over comlink from the tab's kernel worker) sees of the
// cluster filesystem and what it can ask of it. Plain data, structured-cloneable.
import type { NodeKind, VersionId } from './types.ts';

/** Transfer of one file's bytes into this peer: a drop being ingested, or replication. */
export interface FileProgress {
  direction: 'upload' | 'replicate';
  /** Bytes stored on this peer so far, of `total`. */
  done: number;
  total: number;
  /** Recent rate, bytes per second (0 when stalled). */
  bytesPerSecond: number;
  /** Set when the transfer is paused (quota exceeded, no peer holds a block, ...): says why. */
  paused?: string;
}

/** One entry of the namespace as the files panel shows it. */
export interface FileRow {
  /** View id: stable while the entry exists (a conflict copy has its own id). */
  id: string;
  /** View id of the directory it is in: 'root' at the top, 'trash' at the top of the trash. */
  parent: string;
  name: string;
  /** Absolute path in the cluster filesystem (`/docs/a.txt`); trashed entries: the path inside the trash. */
  path: string;
  kind: NodeKind;
  /** Files: bytes of the version shown. Directories: 0. */
  size: number;
  /** Wall-clock ms of the last change (display only). */
  mtime: number;
  version?: VersionId;
  /** Files: peers (this one included) that hold every block of the version shown. */
  replicas: number;
  /** Files: this peer holds every block of the version shown. */
  local: boolean;
  /** Files: no other live peer holds it, and this one does (closing this tab would lose it). */
  soleCopy: boolean;
  trashed: boolean;
  /** A conflict copy: the view id of the file it lost to. */
  conflictOf?: string;
  progress?: FileProgress;
}

export interface FilesSnapshot {
  rows: FileRow[];
  /** Live peers in the cluster, and how many of them each file should be on. */
  peers: number;
  factor: number;
  /** This peer's store: what it is and how full. */
  store: { label: string; durable: boolean; usage: number; quota: number };
  /** Rows that are sole copies (the tab warns before closing when > 0). */
  soleCopies: number;
  /** Recent problems worth showing (quota, bad blocks, vanished files), newest last. */
  notices: { at: number; level: 'info' | 'warn' | 'error'; text: string }[];
}

/**
 * What was dropped from the desktop, at `path` relative to the drop target (`a.txt`,
 * `dir/sub/b.txt`): a file (a File/Blob, read with Blob.slice, never whole), or a folder that
 * was empty (folders with files in them come with their files' paths).
 */
export type DroppedFile = { path: string; file: Blob } | { path: string; folder: true };

export interface FilesApi {
  /** Calls `listener` with the whole snapshot on every change (coalesced). Returns an id for unwatch. */
  watchFiles(listener: (s: FilesSnapshot) => void): Promise<number>;
  unwatchFiles(id: number): Promise<void>;
  /** Ingests dropped files under directory `dir` (a view id), creating folders as needed. Resolves when all are stored here. */
  ingest(dir: string, files: DroppedFile[]): Promise<{ added: number; failed: { path: string; error: string }[] }>;
  /** The bytes of a file (a Blob assembled from its blocks). Rejects when a block is not here and no live peer has it. */
  download(id: string): Promise<Blob>;
  mkdir(dir: string, name: string): Promise<string>;
  rename(id: string, name: string): Promise<void>;
  move(id: string, dir: string): Promise<void>;
  /** Moves to the trash. */
  remove(id: string): Promise<void>;
  /** Back from the trash to where it was (or the top level when that folder is gone). */
  restore(id: string): Promise<void>;
  emptyTrash(): Promise<void>;
}
