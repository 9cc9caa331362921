// A FileSystem reached by messages: processes run in execution workers, the cluster filesystem
// lives in the kernel, so each node operation travels as one plain, structured-cloneable request
// (bigints and Uint8Arrays included) and comes back as one reply. RemoteFileSystem is the caller's
// side; serveFileSystem runs a request on the real FileSystem at the other end. Errors keep their
// WASI errno across; anything else a filesystem throws becomes EIO with its message.
//
// sync: with a `replicaWait` hook (Fork On Wait, executor.ts) a sync goes as two requests, the
// local commit (`sync` with `replicas: false`: real, its errors real) and then `replicas` (the
// wait for copies on other peers), whose Promise the hook may answer early with a prediction.
// Without the hook it is one `sync` request, as before.

import { Errno, FsError } from './errno.ts';
import type { DirEntry, FileSystem, Lookup, NodeId, Stat } from './vfs.ts';

/** One FileSystem method call. Names and ids as the FileSystem interface takes them. */
export type FsRequest =
  | { op: 'lookup'; dir: NodeId; name: string }
  | { op: 'stat'; node: NodeId }
  | { op: 'read'; node: NodeId; position: number; length: number }
  | { op: 'write'; node: NodeId; position: number; data: Uint8Array }
  | { op: 'truncate'; node: NodeId; size: number }
  | { op: 'setTimes'; node: NodeId; atim: bigint | undefined; mtim: bigint | undefined }
  /** `replicas: false`: the local part only (FileSystem.syncLocal); absent: the whole sync. */
  | { op: 'sync'; node: NodeId; dataOnly: boolean; replicas?: false }
  /** The second part of a split sync: until enough peers hold the data (FileSystem.syncReplicas). */
  | { op: 'replicas'; node: NodeId }
  | { op: 'readdir'; dir: NodeId; cookie: bigint }
  | { op: 'createFile'; dir: NodeId; name: string }
  | { op: 'mkdir'; dir: NodeId; name: string }
  | { op: 'symlink'; dir: NodeId; name: string; target: string }
  | { op: 'readlink'; node: NodeId }
  | { op: 'link'; node: NodeId; dir: NodeId; name: string }
  | { op: 'unlink'; dir: NodeId; name: string }
  | { op: 'rmdir'; dir: NodeId; name: string }
  | { op: 'rename'; fromDir: NodeId; fromName: string; toDir: NodeId; toName: string }
  /** Fire-and-forget: the caller does not wait for the reply. */
  | { op: 'retain'; node: NodeId }
  | { op: 'release'; node: NodeId };

export type FsOp = FsRequest['op'];

/** What each request answers with. */
export interface FsValues {
  lookup: Lookup;
  stat: Stat;
  read: Uint8Array;
  write: number;
  truncate: void;
  setTimes: void;
  sync: void;
  replicas: void;
  readdir: DirEntry[];
  createFile: NodeId;
  mkdir: NodeId;
  symlink: NodeId;
  readlink: string;
  link: void;
  unlink: void;
  rmdir: void;
  rename: void;
  retain: void;
  release: void;
}

export type FsReply = { ok: true; value: unknown } | { ok: false; errno: number; message: string };

/** Sends one request and resolves with its reply (never rejects for a filesystem error). */
export type FsCall = (req: FsRequest) => Promise<FsReply>;

/** Requests that change the filesystem (Fork On Wait stalls them while a process speculates). */
export const MUTATING_FS_OPS: ReadonlySet<FsOp> = new Set<FsOp>([
  'write',
  'truncate',
  'setTimes',
  'sync',
  'createFile',
  'mkdir',
  'symlink',
  'link',
  'unlink',
  'rmdir',
  'rename',
]);

export interface RemoteFsOptions {
  /**
   * Splits sync into the local commit and the replica wait, and hands the wait's Promise (it
   * rejects with an FsError) here once the commit succeeded; sync settles as the returned one.
   */
  replicaWait?: (node: NodeId, wait: Promise<void>) => Promise<void>;
}

export class RemoteFileSystem implements FileSystem {
  /** Nodes this side holds (retain count), so a client that goes away can drop them all. */
  private readonly held = new Map<NodeId, number>();
  private readonly replicaWait: RemoteFsOptions['replicaWait'];

  constructor(
    private readonly send: FsCall,
    readonly root: NodeId,
    options: RemoteFsOptions = {},
  ) {
    this.replicaWait = options.replicaWait;
  }

  private async call<K extends FsOp>(req: Extract<FsRequest, { op: K }>): Promise<FsValues[K]> {
    const reply = await this.send(req);
    if (!reply.ok) throw new FsError(reply.errno, reply.message);
    return reply.value as FsValues[K];
  }

  lookup(dir: NodeId, name: string): Promise<Lookup> {
    return this.call({ op: 'lookup', dir, name });
  }
  stat(node: NodeId): Promise<Stat> {
    return this.call({ op: 'stat', node });
  }
  read(node: NodeId, position: number, length: number): Promise<Uint8Array> {
    return this.call({ op: 'read', node, position, length });
  }
  write(node: NodeId, position: number, data: Uint8Array): Promise<number> {
    return this.call({ op: 'write', node, position, data: compact(data) });
  }
  truncate(node: NodeId, size: number): Promise<void> {
    return this.call({ op: 'truncate', node, size });
  }
  setTimes(node: NodeId, atim: bigint | undefined, mtim: bigint | undefined): Promise<void> {
    return this.call({ op: 'setTimes', node, atim, mtim });
  }
  async sync(node: NodeId, dataOnly: boolean): Promise<void> {
    if (!this.replicaWait) return this.call({ op: 'sync', node, dataOnly });
    await this.call({ op: 'sync', node, dataOnly, replicas: false });
    return this.replicaWait(node, this.call({ op: 'replicas', node }));
  }
  readdir(dir: NodeId, cookie: bigint): Promise<DirEntry[]> {
    return this.call({ op: 'readdir', dir, cookie });
  }
  createFile(dir: NodeId, name: string): Promise<NodeId> {
    return this.call({ op: 'createFile', dir, name });
  }
  mkdir(dir: NodeId, name: string): Promise<NodeId> {
    return this.call({ op: 'mkdir', dir, name });
  }
  symlink(dir: NodeId, name: string, target: string): Promise<NodeId> {
    return this.call({ op: 'symlink', dir, name, target });
  }
  readlink(node: NodeId): Promise<string> {
    return this.call({ op: 'readlink', node });
  }
  link(node: NodeId, dir: NodeId, name: string): Promise<void> {
    return this.call({ op: 'link', node, dir, name });
  }
  unlink(dir: NodeId, name: string): Promise<void> {
    return this.call({ op: 'unlink', dir, name });
  }
  rmdir(dir: NodeId, name: string): Promise<void> {
    return this.call({ op: 'rmdir', dir, name });
  }
  rename(fromDir: NodeId, fromName: string, toDir: NodeId, toName: string): Promise<void> {
    return this.call({ op: 'rename', fromDir, fromName, toDir, toName });
  }

  retain(node: NodeId): void {
    this.held.set(node, (this.held.get(node) ?? 0) + 1);
    this.notify({ op: 'retain', node });
  }

  release(node: NodeId): void {
    const n = this.held.get(node);
    if (n === undefined) return; // not ours to release
    if (n <= 1) this.held.delete(node);
    else this.held.set(node, n - 1);
    this.notify({ op: 'release', node });
  }

  /** Releases every node still held (the process holding them is gone). */
  releaseAll(): void {
    const held = [...this.held];
    this.held.clear();
    for (const [node, n] of held) for (let i = 0; i < n; i++) this.notify({ op: 'release', node });
  }

  /** Number of nodes held, for tests. */
  get heldCount(): number {
    return this.held.size;
  }

  private notify(req: FsRequest): void {
    try {
      void this.send(req).catch(() => {});
    } catch {
      // a channel that is gone: nothing to hold any more
    }
  }
}

/**
 * The bytes alone: posting a view would copy its whole buffer (a block, a program's memory).
 * `new Uint8Array(view)` copies; `slice()` would not on a Node Buffer (a view of its pool).
 */
function compact(data: Uint8Array): Uint8Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : new Uint8Array(data);
}

/** Runs one request on a real FileSystem. Never rejects. */
export async function serveFileSystem(fs: FileSystem, req: FsRequest): Promise<FsReply> {
  try {
    return { ok: true, value: await perform(fs, req) };
  } catch (err) {
    if (err instanceof FsError) return { ok: false, errno: err.errno, message: err.message };
    return { ok: false, errno: Errno.IO, message: err instanceof Error ? err.message : String(err) };
  }
}

async function perform(fs: FileSystem, req: FsRequest): Promise<unknown> {
  switch (req.op) {
    case 'lookup':
      return fs.lookup(req.dir, req.name);
    case 'stat':
      return fs.stat(req.node);
    case 'read':
      return compact(await fs.read(req.node, req.position, req.length));
    case 'write':
      return fs.write(req.node, req.position, req.data);
    case 'truncate':
      return fs.truncate(req.node, req.size);
    case 'setTimes':
      return fs.setTimes(req.node, req.atim, req.mtim);
    case 'sync':
      if (req.replicas === false && fs.syncLocal) return fs.syncLocal(req.node, req.dataOnly);
      return fs.sync?.(req.node, req.dataOnly);
    case 'replicas':
      // A filesystem without the split did all of its sync in the first part.
      return fs.syncReplicas?.(req.node);
    case 'readdir':
      return fs.readdir(req.dir, req.cookie);
    case 'createFile':
      return fs.createFile(req.dir, req.name);
    case 'mkdir':
      return fs.mkdir(req.dir, req.name);
    case 'symlink':
      return fs.symlink(req.dir, req.name, req.target);
    case 'readlink':
      return fs.readlink(req.node);
    case 'link':
      return fs.link(req.node, req.dir, req.name);
    case 'unlink':
      return fs.unlink(req.dir, req.name);
    case 'rmdir':
      return fs.rmdir(req.dir, req.name);
    case 'rename':
      return fs.rename(req.fromDir, req.fromName, req.toDir, req.toName);
    case 'retain':
      return fs.retain?.(req.node);
    case 'release':
      return fs.release?.(req.node);
    default:
      throw new FsError(Errno.NOSYS, `unknown filesystem request ${JSON.stringify((req as { op?: unknown }).op)}`);
  }
}
