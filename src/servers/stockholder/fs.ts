// The cluster filesystem as a VFS FileSystem: what processes see at /cluster and the shell's
// ls/cat/cp/mv/rm/mkdir act on. Node ids are the view ids of FsModel.
//
// Blocks are immutable, so writes go to a *draft* per file kept on this peer: the blocks it
// touched, in memory, over the version it started from. Every reader on this peer sees the
// draft at once (read-your-writes); the draft becomes a new version (blocks stored, then one
// write op) when the last fd on it closes, on fsync, or after a short idle time. fsync waits
// further, until two peers hold the new version (when the cluster has two), so a program that
// synced knows its data outlives this tab.
import type { Cancel } from '../../kernel/types.ts';
import { FsError, fsError } from '../../kernel/wasi/errno.ts';
import type { DirEntry, FileSystem, FileType, Lookup, Stat } from '../../kernel/wasi/vfs.ts';
import type { FileEntry } from './model.ts';
import { readManifest, type StockholderServer } from './stockholder.ts';
import { BLOCK_SIZE, ROOT, type Hash, type Manifest, type VersionId } from './types.ts';

/** A draft with no write for this long becomes a version. */
const IDLE_COMMIT_MS = 2_000;
/** fsync returns once this many peers hold the data (or all, if the cluster is smaller). */
export const SYNC_REPLICAS = 2;

interface DirtyBlock {
  bytes: Uint8Array;
  /** Bumped on every write, so a commit keeps blocks written while it ran. */
  gen: number;
}

interface Draft {
  id: string;
  base: Manifest;
  /** The version the draft started from: the only one its commit supersedes. */
  baseVersion: VersionId | undefined;
  size: number;
  dirty: Map<number, DirtyBlock>;
  timer?: Cancel;
  committing?: Promise<void>;
}

const EMPTY: Manifest = { size: 0, blocks: [] };

export class ClusterFileSystem implements FileSystem {
  readonly root = ROOT;
  private readonly drafts = new Map<string, Draft>();
  private readonly refs = new Map<string, number>();
  /** Files this peer deleted while an fd still had them open: their drafts are never committed. */
  private readonly unlinked = new Set<string>();

  constructor(
    private readonly sh: StockholderServer,
    private readonly setTimer: (fn: () => void, ms: number) => Cancel,
  ) {}

  private entry(id: string | number): FileEntry {
    const e = this.sh.model.get(String(id));
    if (e === undefined) throw fsError('NOENT', `${String(id)}: no such file in the cluster`);
    return e;
  }

  private dir(id: string | number): string {
    const s = String(id);
    if (s === ROOT) return s;
    const e = this.entry(s);
    if (e.kind !== 'dir') throw fsError('NOTDIR');
    if (e.trashed) throw fsError('NOENT', 'the folder is in the trash');
    return s;
  }

  async lookup(dir: string | number, name: string): Promise<Lookup> {
    await this.sh.ready;
    const e = this.sh.model.lookup(this.dir(dir), name);
    if (e === undefined) throw fsError('NOENT');
    return { node: e.id, type: fileType(e) };
  }

  async stat(node: string | number): Promise<Stat> {
    await this.sh.ready;
    const id = String(node);
    if (id === ROOT) return { type: 'directory', ino: ino(id), nlink: 1, size: 0, atim: 0n, mtim: 0n, ctim: 0n };
    const e = this.entry(id);
    const t = BigInt(Math.max(0, Math.floor(e.mtime))) * 1_000_000n;
    const size = this.drafts.get(id)?.size ?? e.size;
    return { type: fileType(e), ino: ino(id), nlink: 1, size, atim: t, mtim: t, ctim: t };
  }

  async read(node: string | number, position: number, length: number): Promise<Uint8Array> {
    await this.sh.ready;
    const id = String(node);
    const draft = this.drafts.get(id);
    if (draft === undefined) {
      const e = this.entry(id);
      if (e.kind !== 'file') throw fsError('ISDIR');
      return this.io(() => readManifest(this.sh, e.manifest ?? EMPTY, position, length));
    }
    const end = Math.min(draft.size, position + length);
    if (position >= end) return new Uint8Array(0);
    const out = new Uint8Array(end - position);
    for (let at = position; at < end; ) {
      const i = Math.floor(at / BLOCK_SIZE);
      const from = at - i * BLOCK_SIZE;
      const n = Math.min(BLOCK_SIZE - from, end - at);
      const block = draft.dirty.get(i)?.bytes ?? (await this.baseBlock(draft.base, i));
      out.set(block.subarray(from, Math.min(block.length, from + n)), at - position);
      at += n;
    }
    return out;
  }

  async write(node: string | number, position: number, data: Uint8Array): Promise<number> {
    await this.sh.ready;
    const draft = this.draftOf(String(node));
    for (let done = 0; done < data.length; ) {
      const at = position + done;
      const i = Math.floor(at / BLOCK_SIZE);
      const from = at - i * BLOCK_SIZE;
      const n = Math.min(BLOCK_SIZE - from, data.length - done);
      const block = await this.dirtyBlock(draft, i);
      block.bytes.set(data.subarray(done, done + n), from);
      block.gen++;
      done += n;
    }
    draft.size = Math.max(draft.size, position + data.length);
    this.touch(draft);
    return data.length;
  }

  async truncate(node: string | number, size: number): Promise<void> {
    await this.sh.ready;
    const draft = this.draftOf(String(node));
    if (size < draft.size) {
      for (const i of [...draft.dirty.keys()]) if (i * BLOCK_SIZE >= size) draft.dirty.delete(i);
      const last = Math.floor(size / BLOCK_SIZE);
      if (size % BLOCK_SIZE !== 0) {
        const b = await this.dirtyBlock(draft, last);
        b.bytes.fill(0, size - last * BLOCK_SIZE);
        b.gen++;
      }
    }
    draft.size = size;
    this.touch(draft);
  }

  setTimes(): void {
    // Times come from the ops (the wall clock of the write): nothing to store.
  }

  async sync(node: string | number): Promise<void> {
    await this.syncLocal(node);
    await this.syncReplicas(node);
  }

  /** The first part of sync: the draft becomes a version here (its errors are real: quota...). */
  async syncLocal(node: string | number): Promise<void> {
    await this.sh.ready;
    await this.commit(String(node));
  }

  /**
   * The second part: until SYNC_REPLICAS peers hold the file's current version. Fork On Wait
   * predicts it (it practically always succeeds, only late). Close commits like syncLocal and
   * waits for no replica, so it has nothing to hide.
   */
  async syncReplicas(node: string | number): Promise<void> {
    await this.sh.ready;
    const e = this.sh.model.get(String(node));
    if (e?.kind === 'file' && e.version !== undefined) await this.sh.waitReplicas(e.version, SYNC_REPLICAS);
  }

  async readdir(dir: string | number, cookie: bigint): Promise<DirEntry[]> {
    await this.sh.ready;
    const id = this.dir(dir);
    const parent = id === ROOT ? ROOT : this.sh.model.get(id)!.parent;
    const all: DirEntry[] = [
      { name: '.', type: 'directory', ino: ino(id), next: 1n },
      { name: '..', type: 'directory', ino: ino(parent), next: 2n },
      ...this.sh.model.children(id).map((e, i) => ({ name: e.name, type: fileType(e), ino: ino(e.id), next: BigInt(i + 3) })),
    ];
    return all.slice(Number(cookie));
  }

  async createFile(dir: string | number, name: string): Promise<string> {
    await this.sh.ready;
    const parent = this.dir(dir);
    if (this.sh.model.lookup(parent, name)) throw fsError('EXIST');
    const ops = await this.sh.apply((m, wall) => m.createFile(parent, name, EMPTY, wall));
    return childOf(ops[0]!);
  }

  async mkdir(dir: string | number, name: string): Promise<string> {
    await this.sh.ready;
    const parent = this.dir(dir);
    if (this.sh.model.lookup(parent, name)) throw fsError('EXIST');
    const ops = await this.sh.apply((m, wall) => m.mkdir(parent, name, wall));
    return childOf(ops[0]!);
  }

  symlink(): never {
    throw fsError('NOTSUP', 'the cluster filesystem has no symbolic links');
  }

  readlink(): never {
    throw fsError('INVAL');
  }

  link(): never {
    throw fsError('PERM', 'the cluster filesystem has no hard links');
  }

  async unlink(dir: string | number, name: string): Promise<void> {
    await this.sh.ready;
    const e = this.sh.model.lookup(this.dir(dir), name);
    if (e === undefined) throw fsError('NOENT');
    if (e.kind === 'dir') throw fsError('ISDIR');
    this.dropDraft(e.id);
    if (e.conflictOf !== undefined) await this.sh.apply((m, wall) => m.dismiss(e.id, wall));
    else await this.sh.apply((m, wall) => m.remove(e.id, wall));
    // Still open here (the temp-file idiom): it stays readable and writable through its fds,
    // but what is written is never committed — a commit would bring the file back (edit beats delete).
    if (this.refs.has(e.id)) this.unlinked.add(e.id);
  }

  async rmdir(dir: string | number, name: string): Promise<void> {
    await this.sh.ready;
    const e = this.sh.model.lookup(this.dir(dir), name);
    if (e === undefined) throw fsError('NOENT');
    if (e.kind !== 'dir') throw fsError('NOTDIR');
    if (this.sh.model.children(e.id).length > 0) throw fsError('NOTEMPTY');
    await this.sh.apply((m, wall) => m.remove(e.id, wall));
  }

  async rename(fromDir: string | number, fromName: string, toDir: string | number, toName: string): Promise<void> {
    await this.sh.ready;
    const from = this.dir(fromDir);
    const to = this.dir(toDir);
    const src = this.sh.model.lookup(from, fromName);
    if (src === undefined) throw fsError('NOENT');
    const target = this.sh.model.lookup(to, toName);
    if (target?.id === src.id) return;
    if (target !== undefined) {
      if (src.kind === 'dir' && target.kind !== 'dir') throw fsError('NOTDIR');
      if (src.kind !== 'dir' && target.kind === 'dir') throw fsError('ISDIR');
      if (target.kind === 'dir' && this.sh.model.children(target.id).length > 0) throw fsError('NOTEMPTY');
    }
    if (src.kind === 'file') await this.commit(src.id);
    try {
      await this.sh.apply((m, wall) => {
        const ops = [];
        // POSIX rename replaces the target: here the target goes to the trash, never lost.
        if (target !== undefined) ops.push(target.conflictOf !== undefined ? m.dismiss(target.id, wall) : m.remove(target.id, wall));
        if (src.conflictOf !== undefined) {
          // A conflict copy becomes a file of its own under the new name.
          ops.push(...m.createFile(to, toName, src.manifest ?? EMPTY, wall), m.dismiss(src.id, wall));
        } else {
          ops.push(m.move(src.id, to, toName, wall));
        }
        return ops;
      });
    } catch (err) {
      if (err instanceof RangeError) throw fsError('INVAL', err.message);
      throw err;
    }
  }

  retain(node: string | number): void {
    const id = String(node);
    this.refs.set(id, (this.refs.get(id) ?? 0) + 1);
  }

  release(node: string | number): void {
    const id = String(node);
    const n = (this.refs.get(id) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(id, n);
      return;
    }
    this.refs.delete(id);
    if (this.unlinked.delete(id)) {
      this.dropDraft(id);
      return;
    }
    // The last fd closed: the draft becomes a version now.
    if (this.drafts.has(id)) this.commit(id).catch((err) => this.sh.notice('error', `could not save ${this.sh.model.path(id)}: ${errText(err)}`));
  }

  /** Turns the draft of `id` (if any) into a new version: blocks stored, then one write op. */
  async commit(id: string): Promise<void> {
    const draft = this.drafts.get(id);
    if (draft === undefined || this.unlinked.has(id)) return;
    if (draft.committing) {
      await draft.committing;
      return this.commit(id);
    }
    draft.timer?.();
    draft.timer = undefined;
    const run = this.commitDraft(draft);
    draft.committing = run;
    try {
      await run;
    } finally {
      draft.committing = undefined;
    }
  }

  private async commitDraft(draft: Draft): Promise<void> {
    const gens = new Map([...draft.dirty].map(([i, b]) => [i, b.gen]));
    const size = draft.size;
    const count = Math.ceil(size / BLOCK_SIZE);
    const blocks: Hash[] = [];
    const fresh: { hash: Hash; bytes: Uint8Array }[] = [];
    for (let i = 0; i < count; i++) {
      const len = Math.min(BLOCK_SIZE, size - i * BLOCK_SIZE);
      const dirty = draft.dirty.get(i);
      const baseLen = Math.min(BLOCK_SIZE, draft.base.size - i * BLOCK_SIZE);
      if (dirty === undefined && i < draft.base.blocks.length && baseLen === len) {
        blocks.push(draft.base.blocks[i]!);
        continue;
      }
      const bytes = (dirty?.bytes ?? (await this.baseBlock(draft.base, i))).slice(0, len);
      const padded = bytes.length === len ? bytes : grow(bytes, len);
      const hash = await this.sh.hashOf(padded);
      blocks.push(hash);
      fresh.push({ hash, bytes: padded });
    }
    await this.sh.putOwnBlocks(fresh);
    const manifest: Manifest = { size, blocks };
    try {
      const ops = await this.sh.apply((m, wall) => m.write(draft.id, manifest, wall, draft.baseVersion === undefined ? [] : [draft.baseVersion]));
      draft.base = manifest;
      draft.baseVersion = ops[0] ? `${ops[0].origin}:${ops[0].seq}` : draft.baseVersion;
    } finally {
      for (const b of fresh) this.sh.unpin(b.hash);
    }
    for (const [i, gen] of gens) if (draft.dirty.get(i)?.gen === gen) draft.dirty.delete(i);
    if (draft.dirty.size === 0 && draft.size === draft.base.size) this.drafts.delete(draft.id);
  }

  private draftOf(id: string): Draft {
    let d = this.drafts.get(id);
    if (d) return d;
    const e = this.entry(id);
    if (e.kind !== 'file') throw fsError('ISDIR');
    if (e.conflictOf !== undefined) throw fsError('ROFS', 'a conflict copy is read-only: rename it to keep it as a file of its own');
    const base = e.manifest ?? EMPTY;
    d = { id, base, baseVersion: e.version, size: base.size, dirty: new Map() };
    this.drafts.set(id, d);
    return d;
  }

  private dropDraft(id: string): void {
    const d = this.drafts.get(id);
    if (d && this.refs.has(id)) return; // still open: kept for its fds
    d?.timer?.();
    this.drafts.delete(id);
  }

  private touch(draft: Draft): void {
    draft.timer?.();
    draft.timer = this.setTimer(() => {
      draft.timer = undefined;
      this.commit(draft.id).catch((err) => this.sh.notice('error', `could not save ${this.sh.model.path(draft.id)}: ${errText(err)}`));
    }, IDLE_COMMIT_MS);
  }

  private async dirtyBlock(draft: Draft, i: number): Promise<DirtyBlock> {
    let b = draft.dirty.get(i);
    if (b) return b;
    const bytes = new Uint8Array(BLOCK_SIZE);
    bytes.set(await this.baseBlock(draft.base, i));
    b = { bytes, gen: 0 };
    draft.dirty.set(i, b);
    return b;
  }

  /** Block i of a version (zeros past its end). */
  private async baseBlock(m: Manifest, i: number): Promise<Uint8Array> {
    const h = m.blocks[i];
    if (h === undefined) return new Uint8Array(0);
    return this.io(() => this.sh.readBlock(h));
  }

  private async io<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      if (err instanceof FsError) throw err;
      throw fsError('IO', errText(err));
    }
  }
}

function fileType(e: FileEntry): FileType {
  return e.kind === 'dir' ? 'directory' : 'file';
}

function childOf(op: { body: { t: string } }): string {
  const b = op.body as { t: string; child?: string };
  if (b.t !== 'move' || b.child === undefined) throw new Error('expected a create op');
  return b.child;
}

/** Inode numbers: FNV-1a of the view id (stable across peers and reloads). */
function ino(id: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < id.length; i++) {
    h ^= BigInt(id.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

function grow(bytes: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(bytes.subarray(0, len));
  return out;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
