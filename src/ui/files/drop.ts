// What the desktop hands the page, turned into DroppedFile[] with paths relative to the drop
// target: dropped files and whole folders (walked through the File and Directory Entries API),
// or what an <input type=file> picked. The File objects are passed on as they are: the kernel
// worker reads them with Blob.slice, so no byte is read on the main thread.
import type { DroppedFile } from '../../servers/stockholder/files-api.ts';

/** The parts of a FileSystemEntry the walk uses (the DOM's entries fit; tests pass fakes). */
export interface EntryLike {
  readonly name: string;
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  /** FileSystemFileEntry. */
  file?(ok: (file: File) => void, fail?: (err: unknown) => void): void;
  /** FileSystemDirectoryEntry. */
  createReader?(): DirectoryReaderLike;
}

export interface DirectoryReaderLike {
  /** Hands back the next batch (at most ~100 in Chromium); an empty batch means done. */
  readEntries(ok: (entries: EntryLike[]) => void, fail?: (err: unknown) => void): void;
}

/** Something that could not be taken from the drop, with why. */
export interface DropProblem {
  path: string;
  error: string;
}

export interface WalkedDrop {
  files: DroppedFile[];
  problems: DropProblem[];
}

/** A drop's contents, taken while the drop event runs (a DataTransfer is emptied once the handler returns). */
export interface TakenDrop {
  entries: EntryLike[];
  /** Files that came without an entry (no webkitGetAsEntry, or a synthetic DataTransfer). */
  loose: File[];
}

/** The parts of a DataTransfer the drop reads. */
export interface DataTransferLike {
  readonly items?: ArrayLike<{ kind: string; webkitGetAsEntry?(): EntryLike | null; getAsFile(): File | null }>;
  readonly files?: ArrayLike<File>;
}

const message = (err: unknown): string =>
  err instanceof Error ? err.message : typeof err === 'object' && err && 'name' in err ? String((err as { name: unknown }).name) : String(err);

/** Does a drag carry files (rather than text or a link)? */
export function dragHasFiles(dt: { readonly types?: ArrayLike<string> } | null | undefined): boolean {
  return !!dt?.types && Array.from(dt.types).includes('Files');
}

/** Takes the drop's entries synchronously. Call it inside the drop handler, before any await. */
export function takeDrop(dt: DataTransferLike | null | undefined): TakenDrop {
  const entries: EntryLike[] = [];
  const loose: File[] = [];
  if (!dt) return { entries, loose };
  if (dt.items && dt.items.length > 0) {
    for (const item of Array.from(dt.items)) {
      if (item.kind !== 'file') continue;
      const entry = item.webkitGetAsEntry?.() ?? null;
      if (entry) entries.push(entry);
      else {
        const file = item.getAsFile();
        if (file) loose.push(file);
      }
    }
  } else if (dt.files) {
    loose.push(...Array.from(dt.files));
  }
  return { entries, loose };
}

function fileOf(entry: EntryLike): Promise<File> {
  return new Promise((resolve, reject) => {
    if (!entry.file) reject(new Error('not a readable file entry'));
    else entry.file(resolve, reject);
  });
}

function readBatch(reader: DirectoryReaderLike): Promise<EntryLike[]> {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

/** Every entry of a directory: readEntries hands them out in batches until an empty one. */
export async function readAllEntries(dir: EntryLike): Promise<EntryLike[]> {
  if (!dir.createReader) throw new Error('not a readable folder entry');
  const reader = dir.createReader();
  const all: EntryLike[] = [];
  for (;;) {
    const batch = await readBatch(reader);
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

/**
 * Walks dropped entries depth first: a file becomes `name`, a file inside a dropped folder
 * `folder/sub/name`. What cannot be read is reported, not silently skipped; the rest still goes.
 * An empty folder yields a folder entry, so it is created too.
 */
export async function walkEntries(entries: readonly EntryLike[], prefix = ''): Promise<WalkedDrop> {
  const out: WalkedDrop = { files: [], problems: [] };
  const visit = async (entry: EntryLike, at: string): Promise<void> => {
    const path = at + entry.name;
    if (entry.isDirectory) {
      let children: EntryLike[];
      try {
        children = await readAllEntries(entry);
      } catch (err) {
        out.problems.push({ path: `${path}/`, error: message(err) });
        return;
      }
      if (children.length === 0) out.files.push({ path, folder: true });
      for (const child of children) await visit(child, `${path}/`);
    } else if (entry.isFile) {
      try {
        out.files.push({ path, file: await fileOf(entry) });
      } catch (err) {
        out.problems.push({ path, error: message(err) });
      }
    }
  };
  for (const e of entries) await visit(e, prefix);
  return out;
}

/** The whole drop: walked entries, then the loose files under their own names. */
export async function walkDrop(taken: TakenDrop): Promise<WalkedDrop> {
  const walked = await walkEntries(taken.entries);
  for (const file of taken.loose) walked.files.push({ path: file.name, file });
  return walked;
}

/** What an <input type=file> picked: with `webkitdirectory`, each file knows its path inside the chosen folder (folder name included). */
export function droppedFromPicked(files: ArrayLike<File>): DroppedFile[] {
  return Array.from(files, (file) => ({ path: file.webkitRelativePath || file.name, file }));
}
