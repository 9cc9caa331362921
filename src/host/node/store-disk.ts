// The Stockholder's store for a Node peer: files in one directory that this peer alone uses.
//
//   <dir>/blocks/<first 2 hex>/<hash>   one file per block
//   <dir>/ops.log                       append-only log, one record per commitOps call:
//                                       [u32 payload length][u32 check][msgpack FsOp[]]
//
// Durability (store.ts):
// - A block is written to a temp file, fsynced, then renamed into place: a crash leaves either
//   no block or the whole block, never a torn one. The rename itself is not fsynced (relaxed):
//   a crash may lose recent blocks. Leftover temp files are removed at open.
// - commitOps first fsyncs the block directories renamed into since the last commit (so a
//   committed manifest never names a block the crash then loses), then appends its ops as ONE
//   record and fsyncs the log. A crash mid-append leaves a torn last record; open() ignores and
//   truncates it, so the call is all or nothing.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { opId, type FsOp, type Hash } from '../../servers/stockholder/types.ts';
import { StoreFullError, type BlockStore, type StoreEstimate, type StoredBlock } from '../../servers/stockholder/store.ts';

// Plain msgpack (no record extension): every record decodes on its own, with no shared state.
const packr = new Packr({ useRecords: false });
const HEADER = 8;
const HASH_PATTERN = /^[0-9a-f]{64}$/;
/** Block files being written end so; one found at open is a crash's leftover. */
export const TEMP_SUFFIX = '.tmp';

export class DiskStore implements BlockStore {
  readonly label: string;
  readonly durable = true;
  /** Bytes of a torn last record cut off the op log at open (0 after a clean shutdown). */
  readonly tornTailBytes: number;

  private readonly blocksDir: string;
  /** Every block on disk and its size: the directory is this peer's alone, so memory stays true. */
  private readonly sizes = new Map<Hash, number>();
  private readonly opIds = new Set<string>();
  /** Directories with renames not yet fsynced: commitOps syncs them before its ops. */
  private readonly unsyncedDirs = new Set<string>();
  private logSize: number;
  /** Writes one at a time, in call order (a commit must follow the putBlocks before it). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly log: FileHandle,
    logSize: number,
    tornTailBytes: number,
  ) {
    this.label = dir;
    this.blocksDir = join(dir, 'blocks');
    this.logSize = logSize;
    this.tornTailBytes = tornTailBytes;
  }

  static async open(dir: string): Promise<DiskStore> {
    await mkdir(join(dir, 'blocks'), { recursive: true });
    const logPath = join(dir, 'ops.log');
    const log = await open(logPath, 'a+');
    await syncDir(dir); // the log's (and blocks/'s) directory entry
    const bytes = await readFile(logPath);
    const { ops, validBytes } = parseLog(bytes);
    if (validBytes < bytes.length) {
      await log.truncate(validBytes);
      await log.datasync();
    }
    const store = new DiskStore(dir, log, validBytes, bytes.length - validBytes);
    for (const op of ops) store.opIds.add(opId(op));
    await store.scanBlocks();
    return store;
  }

  /** Indexes the blocks on disk and removes temp files a crash left behind. */
  private async scanBlocks(): Promise<void> {
    for (const sub of await readdir(this.blocksDir)) {
      const subDir = join(this.blocksDir, sub);
      for (const name of await readdir(subDir)) {
        const path = join(subDir, name);
        if (name.endsWith(TEMP_SUFFIX)) await unlink(path);
        else if (HASH_PATTERN.test(name)) this.sizes.set(name, (await stat(path)).size);
      }
    }
  }

  private blockPath(hash: Hash): string {
    return join(this.blocksDir, hash.slice(0, 2), hash);
  }

  async hasBlock(hash: Hash): Promise<boolean> {
    return this.sizes.has(hash);
  }

  async getBlock(hash: Hash): Promise<Uint8Array | undefined> {
    // The index guards the path too: a hash that is not 64 hex never reaches the filesystem.
    if (!this.sizes.has(hash)) return undefined;
    try {
      const buf = await readFile(this.blockPath(hash));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      if (errorCode(e) === 'ENOENT') return undefined;
      throw e;
    }
  }

  putBlocks(blocks: readonly StoredBlock[]): Promise<void> {
    return this.serially(async () => {
      const created: Hash[] = [];
      try {
        for (const { hash, bytes } of blocks) {
          if (!HASH_PATTERN.test(hash)) throw new Error(`${this.label}: not a block hash: ${JSON.stringify(hash)}`);
          if (this.sizes.has(hash)) continue;
          await this.writeBlock(hash, bytes);
          this.sizes.set(hash, bytes.byteLength);
          created.push(hash);
        }
      } catch (e) {
        // StoreFullError promises that nothing was stored: undo this call's blocks.
        await this.removeBlocks(created).catch(() => {});
        throw this.storeError(e);
      }
    });
  }

  private async writeBlock(hash: Hash, bytes: Uint8Array): Promise<void> {
    const subDir = join(this.blocksDir, hash.slice(0, 2));
    if ((await mkdir(subDir, { recursive: true })) !== undefined) this.unsyncedDirs.add(this.blocksDir);
    const temp = join(subDir, `${hash}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
    const file = await open(temp, 'w');
    try {
      await file.writeFile(bytes);
      await file.datasync(); // the bytes are on disk before the name points at them
    } catch (e) {
      await file.close();
      await unlink(temp).catch(() => {});
      throw e;
    }
    await file.close();
    await rename(temp, this.blockPath(hash));
    this.unsyncedDirs.add(subDir);
  }

  deleteBlocks(hashes: readonly Hash[]): Promise<void> {
    return this.serially(() => this.removeBlocks(hashes));
  }

  private async removeBlocks(hashes: readonly Hash[]): Promise<void> {
    for (const hash of hashes) {
      if (!this.sizes.has(hash)) continue;
      await unlink(this.blockPath(hash)).catch((e) => {
        if (errorCode(e) !== 'ENOENT') throw e;
      });
      this.sizes.delete(hash);
    }
  }

  async listBlocks(): Promise<Hash[]> {
    return [...this.sizes.keys()];
  }

  commitOps(ops: readonly FsOp[]): Promise<void> {
    return this.serially(async () => {
      const fresh = new Map<string, FsOp>();
      for (const op of ops) if (!this.opIds.has(opId(op))) fresh.set(opId(op), op);
      // Blocks put before this commit must survive whatever the committed ops survive.
      for (const dir of this.unsyncedDirs) await syncDir(dir);
      this.unsyncedDirs.clear();
      if (fresh.size === 0) return;
      const record = encodeRecord([...fresh.values()]);
      try {
        await this.log.appendFile(record);
        await this.log.datasync();
      } catch (e) {
        // A failed append may have left part of the record: cut it, or the next commit's record
        // would follow garbage and be dropped at the next open as part of a "torn tail".
        await this.log.truncate(this.logSize).catch(() => {});
        throw this.storeError(e);
      }
      this.logSize += record.length;
      for (const id of fresh.keys()) this.opIds.add(id);
    });
  }

  async loadOps(): Promise<FsOp[]> {
    // Only the queue writes the log; read after the writes queued so far, never mid-append.
    const bytes = await this.serially(() => readFile(join(this.dir, 'ops.log')));
    return parseLog(bytes).ops;
  }

  async estimate(): Promise<StoreEstimate> {
    let usage = this.logSize;
    for (const size of this.sizes.values()) usage += size;
    try {
      const fs = await statfs(this.dir);
      return { usage, quota: usage + fs.bavail * fs.bsize };
    } catch {
      return { usage, quota: Infinity };
    }
  }

  async close(): Promise<void> {
    await this.serially(() => this.log.close());
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => {});
    return result;
  }

  private storeError(e: unknown): unknown {
    const code = errorCode(e);
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new StoreFullError(`${this.label}: no space left on the disk (${code})`);
    }
    return e;
  }
}

const errorCode = (e: unknown): unknown => (e as { code?: unknown } | null)?.code;

/** A check of the payload, so a record whose length landed but whose bytes did not is seen as torn. */
const checkOf = (payload: Uint8Array): number => createHash('sha256').update(payload).digest().readUInt32BE(0);

function encodeRecord(ops: FsOp[]): Buffer {
  const payload = packr.pack(ops);
  const header = Buffer.alloc(HEADER);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt32BE(checkOf(payload), 4);
  return Buffer.concat([header, payload]);
}

/** The ops of every whole record, and where the whole records end (a torn tail starts there). */
export function parseLog(bytes: Buffer): { ops: FsOp[]; validBytes: number } {
  const ops: FsOp[] = [];
  let at = 0;
  while (at + HEADER <= bytes.length) {
    const length = bytes.readUInt32BE(at);
    const end = at + HEADER + length;
    if (end > bytes.length) break;
    const payload = bytes.subarray(at + HEADER, end);
    if (checkOf(payload) !== bytes.readUInt32BE(at + 4)) break;
    let decoded: unknown;
    try {
      decoded = packr.unpack(payload);
    } catch {
      break;
    }
    if (!Array.isArray(decoded)) break;
    ops.push(...(decoded as FsOp[]));
    at = end;
  }
  return { ops, validBytes: at };
}

/** fsync a directory, making the names created or renamed in it durable. */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (e) {
    // Windows cannot open a directory; there the rename is as durable as it gets.
    if (!['EISDIR', 'EPERM', 'EACCES', 'EINVAL'].includes(errorCode(e) as string)) throw e;
  } finally {
    await handle?.close();
  }
}
